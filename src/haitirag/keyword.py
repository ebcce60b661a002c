"""Stage 4b: keyword retrieval with BM25 (bm25s's Lucene formula, English stop words, Snowball stemming).

What is stored is what does not change when other chunks come and go: for each segment of the index
(``store.py``), every term's postings (the rows holding it and how often) and every row's length in terms,
as ``.npy`` files (no pickle). The scores are computed when a question is asked, from the statistics of the
chunks that are live now (their count, average length and each term's document frequency), which the
generation keeps beside its segments. So a build that adds a document writes that document's postings and
new statistics, not the whole matrix again (bm25s bakes the IDF and the average length into every stored
score), and the scores are those of bm25s over the live chunks, computed in float32 (within a relative 1e-6 of
bm25s's float64 sums; a test compares them).

``tokenize`` is bm25s's tokenizer (scikit-learn's word pattern, lower case, its English stop words, then the
stemmer); a test checks it against bm25s.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["K1", "TOKENIZER", "B", "KeywordIndex", "Postings", "QueryTerms", "RowTerms", "build_postings",
           "drop_unused", "tokenize"]

# bm25s.stopwords.STOPWORDS_EN (from NLTK; bm25s is MIT-licensed): what ``stopwords="en"`` removes
STOPWORDS = frozenset(("a an and are as at be but by for if in into is it no not of on or such that the their then "
                       "there these they this to was will with").split())
_WORDS = re.compile(r"(?u)\b\w\w+\b")
K1, B = 1.5, 0.75  # bm25s's defaults
TOKENIZER = "bm25s-en-snowball"  # recorded in the manifest: a build reuses stored terms only when it is the same
POSTINGS = ("indptr", "rows", "tf", "lengths")


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


@dataclass(frozen=True)
class Postings:
    """One segment's term postings (CSC: term t's rows are ``rows[indptr[t]:indptr[t + 1]]``, ascending, with
    their term frequencies ``tf``) and each row's length in terms. Term ids are the generation's vocabulary's;
    a segment written before a term existed has fewer columns."""

    indptr: np.ndarray  # int64 (terms + 1,)
    rows: np.ndarray  # int32
    tf: np.ndarray  # float32
    lengths: np.ndarray  # int32 (rows,)

    def save(self, folder: Path) -> None:
        folder.mkdir(exist_ok=True)
        for name in POSTINGS:
            with (folder / f"{name}.npy").open("wb") as f:
                np.save(f, getattr(self, name), allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> Postings:
        """The arrays of ``folder``, memory-mapped (``ValueError`` / ``OSError`` when they do not fit together)."""
        arrays = {name: np.asarray(np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False))
                  for name in POSTINGS}
        p = cls(**arrays)
        if not (p.indptr.ndim == p.rows.ndim == p.tf.ndim == p.lengths.ndim == 1 and len(p.indptr) >= 1
                and len(p.rows) == len(p.tf) and int(p.indptr[0]) == 0 and int(p.indptr[-1]) == len(p.rows)):
            raise ValueError("BM25 files do not fit together")
        return p

    def check_bounds(self) -> None:
        """ValueError unless every posting names a row and the term ranges are in order (reads every posting)."""
        if (len(self.rows) and (int(self.rows.min()) < 0 or int(self.rows.max()) >= len(self.lengths))) \
                or np.any(np.diff(self.indptr) < 0) or (len(self.tf) and float(self.tf.min()) < 1):
            raise ValueError("BM25 postings name chunks that are not there")

    def frequency(self, live: np.ndarray | None, terms: int) -> np.ndarray:
        """Live rows holding each of ``terms`` terms (int64)."""
        counts = np.diff(self.indptr).astype(np.int64)
        if live is not None and len(counts):  # (reduceat over an empty range gives the next element: masked)
            held = np.append(live[self.rows], False).astype(np.int64)
            counts = np.add.reduceat(held, self.indptr[:-1]) * (counts > 0)
        return np.pad(counts, (0, terms - len(counts)))


@dataclass(frozen=True)
class RowTerms:
    """The terms of some rows already known (from a previous index's postings), so they are not tokenized again:
    text ``rows[i]`` has the term ids ``terms[ptr[i]:ptr[i + 1]]`` (of the vocabulary being built) with counts
    ``tf``, and ``lengths[i]`` terms in all."""

    rows: np.ndarray  # int64, ascending
    ptr: np.ndarray  # int64 (len(rows) + 1,)
    terms: np.ndarray  # int64
    tf: np.ndarray  # float32
    lengths: np.ndarray  # int64


def build_postings(texts: Sequence[str], vocab: dict[str, int], batch: int = 20_000,
                   known: RowTerms | None = None) -> Postings:
    """The postings of ``texts`` (row i = text i), tokenized ``batch`` at a time; new terms are added to ``vocab``
    (in place). The rows of ``known`` are not tokenized: their terms are given (ids of ``vocab``)."""
    stemmer, n = _stemmer(), max(len(texts), 1)
    keys, counts = [], []
    lengths = np.zeros(len(texts), dtype=np.int64)
    todo = np.arange(len(texts), dtype=np.int64)
    if known is not None and len(known.rows):
        per_row = np.diff(known.ptr)
        keys.append(known.terms * n + np.repeat(known.rows, per_row))
        counts.append(known.tf)
        lengths[known.rows] = known.lengths
        todo = np.setdiff1d(todo, known.rows, assume_unique=True)
    for at in range(0, len(todo), batch):
        rows = todo[at:at + batch]
        tokens = tokenize([texts[r] for r in rows], stemmer)
        size = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
        ids = np.fromiter((vocab.setdefault(t, len(vocab)) for terms in tokens for t in terms), dtype=np.int64,
                          count=int(size.sum()))
        key, count = np.unique(ids * n + np.repeat(rows, size), return_counts=True)  # (term, row) pairs, how often
        keys.append(key)
        counts.append(count.astype(np.float32))
        lengths[rows] = size
    # (one pair array at a time: a million chunks hold tens of millions of pairs)
    key = np.concatenate(keys) if keys else np.zeros(0, dtype=np.int64)
    keys.clear()
    tf = np.concatenate(counts) if counts else np.zeros(0, dtype=np.float32)
    counts.clear()
    order = np.argsort(key, kind="stable")  # by term, then row
    key = key[order]
    tf = tf[order]
    del order
    row = (key % n).astype(np.int32)
    key //= n  # (now the term of each pair)
    indptr = np.searchsorted(key, np.arange(len(vocab) + 1)).astype(np.int64)
    return Postings(indptr, row, tf, lengths.astype(np.int32))


def drop_unused(vocab: dict[str, int], postings: Postings) -> tuple[dict[str, int], Postings]:
    """``vocab`` without the terms no row holds (left by a previous index's vocabulary), ids renumbered in order."""
    held = np.diff(postings.indptr) > 0
    if held.all():
        return vocab, postings
    terms = [t for t, i in sorted(vocab.items(), key=lambda kv: kv[1]) if held[i]]
    indptr = np.concatenate([[0], np.cumsum(np.diff(postings.indptr)[held])]).astype(np.int64)
    return {t: i for i, t in enumerate(terms)}, Postings(indptr, postings.rows, postings.tf, postings.lengths)


class KeywordIndex(QueryTerms):
    """BM25 over the live chunks of every segment: ``scores(query)`` gives every row's score (0 for removed rows).

    ``segments`` are (first row, postings) in row order; ``live`` is None when every row is live, else a bool per
    row; ``df`` is each term's live document frequency. ``size`` is the number of live chunks."""

    def __init__(self, vocab: dict[str, int], segments: Sequence[tuple[int, Postings]], live: np.ndarray | None,
                 df: np.ndarray):
        self.vocab = vocab
        self.segments = list(segments)
        self.live = live
        self.dead = np.zeros(0, dtype=np.int64) if live is None else np.flatnonzero(~live)  # (few: set to 0)
        self.df = df
        self.rows = sum(len(p.lengths) for _, p in self.segments)
        self.size = self.rows if live is None else int(np.count_nonzero(live))
        total = sum(int(p.lengths.astype(np.int64).sum() if live is None else
                        p.lengths[live[at:at + len(p.lengths)]].astype(np.int64).sum()) for at, p in self.segments)
        self.avg_terms = total / self.size if total else 1.0  # (no terms at all: nothing is scored)
        self._stemmer: Any = None
        self._norms: list[np.ndarray] | None = None

    @classmethod
    def build(cls, texts: Sequence[str]) -> KeywordIndex:
        """An index of ``texts`` held in memory (one segment, every row live)."""
        vocab: dict[str, int] = {}
        postings = build_postings(texts, vocab)
        return cls(vocab, [(0, postings)], None, postings.frequency(None, len(vocab)))

    def check_bounds(self) -> None:
        """ValueError unless every segment's postings name its rows and the document frequencies are those of the
        live rows' postings (reads every posting: ``haitirag verify``)."""
        for _, p in self.segments:
            p.check_bounds()
            if len(p.indptr) - 1 > len(self.vocab):
                raise ValueError("BM25 postings name terms that are not in the vocabulary")
        if len(self.df) != len(self.vocab):
            raise ValueError("BM25 statistics do not fit the vocabulary")
        counted = sum((p.frequency(None if self.live is None else self.live[at:at + len(p.lengths)], len(self.vocab))
                       for at, p in self.segments), np.zeros(len(self.vocab), dtype=np.int64))
        if not np.array_equal(counted, self.df):
            raise ValueError("BM25 document frequencies differ from the postings")

    def row_terms(self, rows: np.ndarray) -> RowTerms:
        """The term ids (this index's vocabulary) and counts of each of ``rows`` (ascending), from the postings."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, terms, tfs, lengths, held = [], [], [], [], 0
        for at, p in self.segments:
            local = rows[(rows >= at) & (rows < at + len(p.lengths))] - at
            if not len(local):
                continue
            pick = np.zeros(len(p.lengths), dtype=bool)
            pick[local] = True
            sel = np.flatnonzero(pick[p.rows])
            r = np.asarray(p.rows[sel], dtype=np.int64)
            order = np.argsort(r, kind="stable")  # by row, then term (postings are by term, then row)
            starts.append(np.searchsorted(r[order], local) + held)
            terms.append(np.searchsorted(p.indptr, sel, side="right")[order] - 1)  # the term of each posting
            tfs.append(np.asarray(p.tf[sel], dtype=np.float32)[order])
            lengths.append(np.asarray(p.lengths[local], dtype=np.int64))
            held += len(r)
        return RowTerms(rows, np.concatenate([*starts, [held]]).astype(np.int64),
                        np.concatenate(terms) if terms else np.zeros(0, dtype=np.int64),
                        np.concatenate(tfs) if tfs else np.zeros(0, dtype=np.float32),
                        np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64))

    def document_frequency(self) -> np.ndarray:
        """Live chunks holding each term, by term id."""
        return self.df

    def idf(self, term: int) -> float:
        df = float(self.df[term])
        return math.log(1 + (self.size - df + 0.5) / (df + 0.5))

    def _terms(self, query: str) -> list[int]:
        return [i for i in (self.vocab.get(t) for t in self.query_tokens(query)) if i is not None and self.df[i] > 0]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for ``query`` (zeros when no query word is in a live chunk)."""
        return self._scores(self._terms(query))

    def top(self, query: str, n: int, allowed: np.ndarray | None = None) -> dict[int, float]:
        """The ``n`` best-scoring rows with a score above 0 (only where ``allowed``), best first (ties: lower row
        first). Exact; the full sort is avoided: the ``n``-th best score among the rows of the question's rarest
        term is a lower bound of the ``n``-th best overall, so only rows scoring at least that are ranked."""
        ids = self._terms(query)
        if not ids or n <= 0:
            return {}
        scores = self._scores(ids)
        if allowed is not None:
            scores = np.where(allowed, scores, np.float32(0))
        rare = min(ids, key=lambda t: int(self.df[t]))
        sub = np.concatenate([scores[at + p.rows[int(p.indptr[rare]):int(p.indptr[rare + 1])]]
                              for at, p in self.segments if rare < len(p.indptr) - 1] or [np.zeros(0, np.float32)])
        sub = sub[sub > 0]
        floor = np.partition(sub, len(sub) - n)[len(sub) - n] if len(sub) >= n else np.float32(0)
        rows = np.flatnonzero(scores >= floor) if floor > 0 else np.flatnonzero(scores > 0)
        vals = scores[rows]
        best = np.lexsort((rows, -vals))[:n]
        return {int(rows[i]): float(vals[i]) for i in best}

    def _scores(self, ids: list[int]) -> np.ndarray:
        scores = np.zeros(self.rows, dtype=np.float32)
        if self._norms is None:  # each row's k1 * (1 - b + b * length / average), as bm25s computes it
            self._norms = [(K1 * ((1 - B) + B * p.lengths.astype(np.float64) / self.avg_terms)).astype(np.float32)
                           for _, p in self.segments]
        for t in ids:  # term by term, as bm25s adds them, in float32 (bm25s: float64, stored as float32; the scores
            idf = np.float32(self.idf(t))  # agree to 1e-6, and float32 takes half the time at a million chunks)
            for (at, p), norm in zip(self.segments, self._norms, strict=True):
                if t >= len(p.indptr) - 1:
                    continue
                a, b = int(p.indptr[t]), int(p.indptr[t + 1])
                rows, tf = p.rows[a:b], p.tf[a:b]
                weight = norm[rows]
                weight += tf
                np.divide(tf, weight, out=weight)
                weight *= idf
                scores[rows + at if at else rows] += weight  # (a term's rows are distinct)
        scores[self.dead] = 0
        return scores
