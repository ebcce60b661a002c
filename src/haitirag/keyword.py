"""Stage 4b: keyword retrieval with BM25 (bm25s, English stop words, Snowball stemming).

Built with bm25s and saved beside the vectors in bm25s's own JSON and ``.npy`` files (no pickle); one row
per chunk, in the same order as the FAISS vectors. Questions read those files with numpy here: the
precomputed per-(term, chunk) scores are summed over the question's terms exactly as bm25s does, without
importing bm25s and scipy (half a second of a new process's first question). ``tokenize`` is bm25s's
tokenizer (scikit-learn's word pattern, lower case, its English stop words, then the stemmer); a test
checks both against bm25s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["KeywordIndex", "QueryTerms", "tokenize"]

# bm25s.stopwords.STOPWORDS_EN (from NLTK; bm25s is MIT-licensed): what ``stopwords="en"`` removes
STOPWORDS = frozenset(("a an and are as at be but by for if in into is it no not of on or such that the their then "
                       "there these they this to was will with").split())
_WORDS = re.compile(r"(?u)\b\w\w+\b")
_METHODS = ("lucene", "robertson", "atire")  # bm25s variants whose scores are the stored sums alone
_FILES = ("data", "indices", "indptr")


def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: Sequence[str], stemmer: Any = None) -> list[list[str]]:
    """Stemmed terms of each text, as ``bm25s.tokenize(texts, stopwords="en", stemmer=stemmer)`` gives them."""
    if not texts:
        return []
    stem = (stemmer or _stemmer()).stemWords
    split = [[w for w in _WORDS.findall(t.lower()) if w not in STOPWORDS] for t in texts]
    unique = list(dict.fromkeys(w for words in split for w in words))
    stems = dict(zip(unique, stem(unique), strict=True))
    return [[stems[w] for w in words] for words in split]


class QueryTerms:
    """A question's terms as the keyword index counts them (``tokenize`` with the English stemmer, loaded once
    per instance); shared by the folder's ``KeywordIndex`` and PostgreSQL's statistics."""

    _stemmer: Any = None

    @property
    def stemmer(self) -> Any:
        if self._stemmer is None:
            self._stemmer = _stemmer()
        return self._stemmer

    def query_tokens(self, query: str) -> list[str]:
        return tokenize([query], self.stemmer)[0]


class KeywordIndex(QueryTerms):
    """BM25 over the chunks: ``scores(query)`` gives every chunk's score."""

    def __init__(self, vocab: dict[str, int], data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, size: int):
        self.vocab = vocab  # stemmed term -> column
        self.data, self.indices, self.indptr = data, indices, indptr  # CSC: a term's chunks and their scores
        self.size = size
        self._stemmer: Any = None
        self._retriever: Any = None  # the bm25s object, until saved (build only)

    @classmethod
    def build(cls, texts: Sequence[str]) -> KeywordIndex:
        import logging

        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets itself to DEBUG on import
        retriever = bm25s.BM25()
        tokens = tokenize(texts)
        if any(tokens):
            retriever.index(tokens, show_progress=False)
        else:  # bm25s needs a vocabulary: index a placeholder token that no query produces
            retriever.index([["\u0000"]] * len(texts), show_progress=False)
        sc = retriever.scores
        out = cls(dict(retriever.vocab_dict), np.asarray(sc["data"]), np.asarray(sc["indices"]),
                  np.asarray(sc["indptr"]), len(texts))
        out._retriever = retriever
        return out

    def save(self, folder: Path) -> None:
        if self._retriever is None:
            raise ValueError("only a KeywordIndex made by build() is saved; a loaded one is already on disk")
        self._retriever.save(str(folder), show_progress=False)

    @classmethod
    def load(cls, folder: Path) -> KeywordIndex:
        """Read bm25s's files (``ValueError`` or ``OSError`` when they are damaged or of another BM25 variant)."""
        params = json.loads((folder / "params.index.json").read_text(encoding="utf-8"))
        vocab = json.loads((folder / "vocab.index.json").read_text(encoding="utf-8"))
        if params.get("method", "lucene") not in _METHODS:
            raise ValueError(f"BM25 variant {params.get('method')!r} is not read here")
        data, indices, indptr = (np.load(folder / f"{name}.csc.index.npy", mmap_mode="r", allow_pickle=False)
                                 for name in _FILES)
        size = int(params["num_docs"])
        # bm25s's vocabulary also holds "" (for empty texts) without a column; no query produces it
        if not isinstance(vocab, dict) or len(indptr) != len(vocab) + 1 - ("" in vocab) or len(data) != len(indices) \
                or (len(indptr) and int(indptr[-1]) != len(indices)):
            raise ValueError("BM25 files do not fit together")
        return cls(vocab, data.astype(np.float32, copy=False), indices, indptr, size)

    def check_bounds(self) -> None:
        """ValueError unless every posting names a chunk and the term ranges are in order (reads every posting:
        ``haitirag verify``; a load checks the sizes only)."""
        if (len(self.indices) and (int(self.indices.min()) < 0 or int(self.indices.max()) >= self.size)) \
                or (len(self.indptr) and (int(self.indptr[0]) != 0 or np.any(np.diff(self.indptr) < 0))):
            raise ValueError("BM25 postings name chunks that are not there")

    def document_frequency(self) -> np.ndarray:
        """Chunks holding each term, by column."""
        return np.diff(self.indptr)

    def _terms(self, query: str) -> list[int]:
        n = len(self.indptr) - 1
        return [i for i in (self.vocab.get(t, n) for t in self.query_tokens(query)) if i < n]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for ``query`` (zeros when no query word is in the vocabulary)."""
        return self._scores(self._terms(query))

    def top(self, query: str, n: int, allowed: np.ndarray | None = None) -> dict[int, float]:
        """The ``n`` best-scoring chunks with a score above 0 (only where ``allowed``), best first (ties: lower row
        first). Exact; the full sort is avoided: the ``n``-th best score among the rows of the question's rarest
        term is a lower bound of the ``n``-th best overall, so only rows scoring at least that are ranked."""
        ids = self._terms(query)
        if not ids or n <= 0:
            return {}
        scores = self._scores(ids)
        if allowed is not None:
            scores = np.where(allowed, scores, np.float32(0))
        rare = min(ids, key=lambda t: int(self.indptr[t + 1] - self.indptr[t]))
        sub = scores[self.indices[int(self.indptr[rare]):int(self.indptr[rare + 1])]]
        sub = sub[sub > 0]
        floor = np.partition(sub, len(sub) - n)[len(sub) - n] if len(sub) >= n else np.float32(0)
        rows = np.flatnonzero(scores >= floor) if floor > 0 else np.flatnonzero(scores > 0)
        vals = scores[rows]
        best = np.lexsort((rows, -vals))[:n]
        return {int(rows[i]): float(vals[i]) for i in best}

    def _scores(self, ids: list[int]) -> np.ndarray:
        scores = np.zeros(self.size, dtype=np.float32)
        for t in ids:  # term by term, as bm25s adds them (the same float32 sums)
            a, b = int(self.indptr[t]), int(self.indptr[t + 1])
            np.add.at(scores, self.indices[a:b], self.data[a:b])
        return scores
