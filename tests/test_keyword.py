"""Keyword retrieval read with numpy gives bm25s's tokens and scores exactly (bm25s itself only builds)."""

from __future__ import annotations

from pathlib import Path

import bm25s
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import haitirag
from haitirag.keyword import KeywordIndex, _stemmer, tokenize

STEMMER = _stemmer()
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


def test_scores_are_bm25s_scores(hash_index: haitirag.Index):
    folder = Path(hash_index.path)
    gen = folder / f"gen-{hash_index.manifest['generation']}" / "bm25"
    ours, ref = KeywordIndex.load(gen), bm25s.BM25.load(str(gen))
    assert ours.size == len(hash_index)
    for q in QUERIES:
        toks = [t for t in tokenize([q], STEMMER)[0] if t in ref.vocab_dict]
        want = np.asarray(ref.get_scores(toks), dtype=np.float32) if toks else np.zeros(ours.size, np.float32)
        assert np.array_equal(ours.scores(q), want), q
    assert not ours.scores("zzzz unknownword").any()


def test_files_that_do_not_fit_together_are_refused(hash_index: haitirag.Index, tmp_path: Path):
    gen = Path(hash_index.path) / f"gen-{hash_index.manifest['generation']}" / "bm25"
    bad = tmp_path / "bm25"
    bad.mkdir()
    for f in gen.iterdir():
        bad.joinpath(f.name).write_bytes(f.read_bytes())
    np.save(bad / "indptr.csc.index.npy", np.load(gen / "indptr.csc.index.npy")[:-3])
    with pytest.raises(ValueError, match="do not fit"):
        KeywordIndex.load(bad)


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
