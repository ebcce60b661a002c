"""Keyword retrieval scored from stored postings gives bm25s's tokens and scores (within float32 rounding)."""

from __future__ import annotations

import logging
from pathlib import Path

import bm25s
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import haitirag
from haitirag.keyword import KeywordIndex, Postings, _stemmer, build_postings, tokenize

STEMMER = _stemmer()
logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets itself to DEBUG on import
WORDS = st.sampled_from(["Kenya's", "police", "officers", "the", "a", "AND", "running", "ran", "Haïti", "2,000",
                         "x", "ab", "_under_", "naïve", "Ruto", "it's", "é", "42", "co-operation", "ΑΘΗΝΑ"])
TEXT = st.one_of(st.text(max_size=80), st.lists(WORDS, max_size=20).map(" ".join))


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(TEXT, min_size=1, max_size=5))
def test_tokenize_is_bm25s_tokenize(texts: list[str]):
    ref = bm25s.tokenize(texts, stopwords="en", stemmer=STEMMER, return_ids=False, show_progress=False)
    assert tokenize(texts, STEMMER) == [list(t) for t in ref]


QUERIES = ["Nile perch catches on Lake Victoria", "Which court blocked Kenya's deployment?", "railway railway",
           "the and of", "zzzz unknownword", "rainfall farmers plant early", "2,000 troops Benin"]


def same_scores(ours: np.ndarray, ref: np.ndarray) -> bool:
    """Equal within float32 rounding (ours are float32 sums; bm25s's each term's score in float64), zeros alike."""
    return bool(np.array_equal(ours > 0, ref > 0) and np.allclose(ours, ref, rtol=1e-6, atol=0))


def _bm25s_scores(texts: list[str], query: str) -> np.ndarray:
    ref = bm25s.BM25()
    ref.index(tokenize(texts, STEMMER), show_progress=False)
    toks = [t for t in tokenize([query], STEMMER)[0] if t in ref.vocab_dict]
    return np.asarray(ref.get_scores(toks), dtype=np.float32) if toks else np.zeros(len(texts), np.float32)


def test_scores_are_bm25s_scores(hash_index: haitirag.Index):
    from haitirag.index import embed_text

    texts = [embed_text(hash_index.documents[c.doc_id].title, c.text) for c in hash_index.chunks]
    ours = hash_index.keyword
    assert ours.size == len(hash_index) == len(texts)
    for q in QUERIES:
        assert same_scores(ours.scores(q), _bm25s_scores(texts, q)), q
    assert not ours.scores("zzzz unknownword").any()


@settings(max_examples=40, deadline=None)
@given(texts=st.lists(st.lists(WORDS, min_size=0, max_size=8).map(" ".join), min_size=2, max_size=12),
       cut=st.integers(1, 11), data=st.data())
def test_segments_with_removed_rows_score_as_bm25s_over_the_live_rows(texts: list[str], cut: int, data):
    """Two segments (the second's postings made with the first's vocabulary) and removed rows: the scores of the
    live rows equal bm25s's over those rows alone, removed rows score 0."""
    cut = min(cut, len(texts) - 1)
    live = np.array(data.draw(st.lists(st.booleans(), min_size=len(texts), max_size=len(texts))))
    vocab: dict[str, int] = {}
    first = build_postings(texts[:cut], vocab)
    second = build_postings(texts[cut:], vocab)
    df = first.frequency(live[:cut], len(vocab)) + second.frequency(live[cut:], len(vocab))
    index = KeywordIndex(vocab, [(0, first), (cut, second)], live, df)
    assert index.size == int(live.sum())
    kept = [t for t, ok in zip(texts, live, strict=True) if ok]
    for q in ["police officers", "Kenya's Ruto", "ran running 42", "Haïti naïve co-operation"]:
        got = index.scores(q)
        assert not got[~live].any()
        if any(tokenize(kept, STEMMER)):  # (bm25s cannot index texts without a term)
            assert same_scores(got[live], _bm25s_scores(kept, q)), q
        else:
            assert not got.any()


def test_files_that_do_not_fit_together_are_refused(tmp_path: Path):
    postings = build_postings(["Kenya police", "police officers in Haiti"], {})
    postings.save(tmp_path / "bm25")
    Postings.load(tmp_path / "bm25").check_bounds()
    np.save(tmp_path / "bm25" / "indptr.npy", postings.indptr[:-1])
    with pytest.raises(ValueError, match="do not fit"):
        Postings.load(tmp_path / "bm25")
    postings.save(tmp_path / "bm25")
    np.save(tmp_path / "bm25" / "rows.npy", postings.rows + 5)
    with pytest.raises(ValueError, match="not there"):
        Postings.load(tmp_path / "bm25").check_bounds()


def test_top_is_the_best_rows_of_scores():
    """``top`` (which ranks only rows at or above a lower bound) equals a full sort of ``scores``."""
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(40)]
    texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 12)), p=np.linspace(2, 0.1, 40) / 42.0))
             for _ in range(3000)]
    index = KeywordIndex.build(texts)
    for trial in range(60):
        query = " ".join(rng.choice(words, size=int(rng.integers(1, 5))))
        n = int(rng.integers(1, 80))
        allowed = rng.random(len(texts)) < 0.3 if trial % 2 else None
        scores = index.scores(query)
        if allowed is not None:
            scores = np.where(allowed, scores, 0)
        rows = [i for i in np.lexsort((np.arange(len(scores)), -scores)) if scores[i] > 0][:n]
        got = index.top(query, n, allowed)
        assert list(got) == rows and all(got[i] == scores[i] for i in rows), (query, n)
    assert index.top("nothing here", 5) == {}
