"""Stage 4b: keyword retrieval with BM25 (bm25s, English stop words, Snowball stemming).

Saved beside the vectors as bm25s's own JSON and ``.npy`` files (no pickle); one row per chunk,
in the same order as the FAISS vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["KeywordIndex", "tokenize"]


def _quiet_bm25s() -> None:
    import logging

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets itself to DEBUG on import


def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: Sequence[str], stemmer: Any = None) -> list[list[str]]:
    import bm25s

    if not texts:
        return []
    out = bm25s.tokenize(list(texts), stopwords="en", stemmer=stemmer or _stemmer(), return_ids=False,
                         show_progress=False)
    return [list(t) for t in out]


class KeywordIndex:
    def __init__(self, retriever: Any, size: int):
        self.retriever = retriever
        self.size = size
        self._stemmer: Any = None

    @classmethod
    def build(cls, texts: Sequence[str]) -> KeywordIndex:
        import bm25s

        _quiet_bm25s()
        retriever = bm25s.BM25()
        tokens = tokenize(texts)
        if any(tokens):
            retriever.index(tokens, show_progress=False)
        else:  # bm25s needs a vocabulary: index a placeholder token that no query produces
            retriever.index([["\u0000"]] * len(texts), show_progress=False)
        return cls(retriever, len(texts))

    def save(self, folder: Path) -> None:
        self.retriever.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> KeywordIndex:
        import bm25s

        retriever = bm25s.BM25.load(str(folder), mmap=False)
        return cls(retriever, int(retriever.scores["num_docs"]))

    def query_tokens(self, query: str) -> list[str]:
        if self._stemmer is None:
            self._stemmer = _stemmer()
        return tokenize([query], self._stemmer)[0]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for ``query`` (zeros when no query word is in the vocabulary)."""
        vocab = self.retriever.vocab_dict
        tokens = [t for t in self.query_tokens(query) if t in vocab]
        if not tokens:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self.retriever.get_scores(tokens), dtype=np.float32)
