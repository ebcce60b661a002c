"""Chunk-level reuse (issue 10): a changed document embeds only the chunks whose embedding input changed.

A long report (a ``.txt`` file, whose id follows its bytes: its previous version is found by path) and a long
JSONL document with an ``id`` (found by id), each about a dozen chunks, next to a short document. Each test runs
three ways: the full write (``_chunk_all``), the segment append (``_append``, ``APPEND_FROM`` lowered to 0) and an
append that has to merge (``DELTA_MAX`` 1). The embedder is the deterministic hash embedder, counting the texts it
is asked to encode; the incremental index must hold exactly the chunks and vectors of a full build.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import haitirag
from haitirag import build
from haitirag.build import update_index
from haitirag.embedding import HashEmbedder
from haitirag.index import embed_text

from .conftest import HASH_MODEL
from .test_incremental import assert_consistent

REGIONS = ["Artibonite", "Nippes", "Grand'Anse", "Centre", "Nord-Est", "Sud-Est", "Ouest", "Nord-Ouest", "Sud",
           "Nord"]
WORDS = ["rainfall", "prices", "school attendance", "fuel imports", "clinic visits", "road repairs", "exports",
         "fishing catches", "power cuts", "bus fares", "rice harvests", "market fees"]


def sentence(i: int) -> str:
    """The i-th sentence of a long report: distinct words and numbers, so distinct chunks have distinct vectors."""
    return (f"In week {i + 1} the {WORDS[i % len(WORDS)]} of {REGIONS[i % len(REGIONS)]} changed by {3 * i + 7} "
            f"percent, officials counted {1000 + 37 * i} cases and inspector {chr(65 + i % 26)}{i} filed report "
            f"number {4000 + i}.")


def long_text(n: int = 120, first: int = 0) -> str:
    paras = [" ".join(sentence(first + j) for j in range(i, min(i + 6, n))) for i in range(0, n, 6)]
    return "\n\n".join(paras) + "\n"


EDITED = sentence(110)  # near the end of the report
FIXED = EDITED.replace("changed by", "fell by").replace("filed report", "signed report")


class Counting(HashEmbedder):
    """The hash embedder, keeping every text it was asked to encode, and to check the length of (``fits``)."""

    def __init__(self, dim: int = 64):
        super().__init__(dim)
        self.texts: list[str] = []
        self.fitted: list[str] = []

    def fits(self, text: str) -> bool:
        self.fitted.append(text)
        return super().fits(text)

    def encode(self, texts: Sequence[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        self.texts += list(texts)
        return super().encode(texts, batch_size, show_progress)


@pytest.fixture()
def long_corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "report.txt").write_text("Weekly situation report\n\n" + long_text(), encoding="utf-8")
    rows = [{"id": "long-1", "title": "Regional bulletin", "text": long_text(first=200), "date": "2024-03-05"},
            {"id": "short-1", "title": "Port notice", "text": "The port of Jacmel reopened on Monday."}]
    (corpus / "bulletins.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return corpus


@pytest.fixture(params=["full write", "append", "append then merge"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param != "full write":
        monkeypatch.setattr(build, "APPEND_FROM", 0)
        monkeypatch.setattr(build, "REMOVED_MAX", 1.0)
    if request.param == "append then merge":
        monkeypatch.setattr(build, "DELTA_MAX", 1)
    return str(request.param)


def inputs(index: haitirag.Index, where: str) -> list[str]:
    """The embedding inputs of the live chunks of the document at path ``where``."""
    live = index.chunks.live if hasattr(index.chunks, "live") else None
    doc = next(d for d in index.documents.values() if d.path == where)
    return [embed_text(doc.title, c.text) for i, c in enumerate(index.chunks)
            if c.doc_id == doc.doc_id and (live is None or live[i])]


def assert_same_as_full(index: haitirag.Index, corpus: Path, tmp_path: Path) -> None:
    """``index`` holds exactly the documents, sentences, chunks and vectors of a full build of ``corpus``."""
    full = haitirag.build_index(corpus, tmp_path / "full", model=HASH_MODEL, full=True)
    assert dict(index.documents) == dict(full.documents) and dict(index.sentences) == dict(full.sentences)
    live = index.chunks.live if hasattr(index.chunks, "live") else None
    rows = {c.chunk_id: i for i, c in enumerate(index.chunks) if live is None or live[i]}
    assert sorted(rows) == sorted(c.chunk_id for c in full.chunks) and len(rows) == len(full.chunks)
    mine = index.vectors.reconstruct_n(0, index.vectors.ntotal)
    theirs = full.vectors.reconstruct_n(0, full.vectors.ntotal)
    for j, c in enumerate(full.chunks):
        assert index.chunks[rows[c.chunk_id]] == c
        assert np.array_equal(mine[rows[c.chunk_id]], theirs[j]), c.chunk_id
    assert_consistent(index)
    # BM25: the same live statistics, and every chunk scored as in the full build (terms taken from the postings)
    assert index.keyword.size == full.keyword.size and index.keyword.avg_terms == pytest.approx(full.keyword.avg_terms)
    assert live_df(index) == live_df(full)
    for query in ("rainfall in Artibonite", "report number 4110", "port of Jacmel", "inspector filed", "bridge"):
        mine_s, theirs_s = index.keyword.scores(query), full.keyword.scores(query)
        for j, c in enumerate(full.chunks):
            assert mine_s[rows[c.chunk_id]] == pytest.approx(theirs_s[j], rel=1e-6, abs=1e-9), (query, c.chunk_id)


def live_df(index: haitirag.Index) -> dict[str, int]:
    """Each term's live document frequency, by the term (ids differ between builds)."""
    df = index.keyword.document_frequency()
    return {t: int(df[i]) for t, i in index.keyword.vocab.items() if df[i] > 0}


def check_segments(index: haitirag.Index, path: str) -> None:
    assert len(index.manifest["segments"]) == (2 if path == "append" else 1)


@pytest.mark.parametrize(("where", "old", "new"), [
    ("report.txt", EDITED, FIXED),  # one sentence near the end edited (a file: its id changes with its bytes)
    ("report.txt", sentence(119), sentence(119) + " " + sentence(120)),  # one sentence appended
    ("bulletins.jsonl#long-1", sentence(310), sentence(310).replace("changed by", "fell by")),  # by id
])
def test_an_edit_embeds_only_the_chunks_that_changed(long_corpus: Path, tmp_path: Path, path: str, where: str,
                                                     old: str, new: str):
    first = haitirag.build_index(long_corpus, tmp_path / "index", model=HASH_MODEL)
    before = inputs(first, where)
    assert len(before) >= 8  # a long document
    target = long_corpus / where.split("#")[0]
    text = target.read_text(encoding="utf-8")
    assert text.count(old) == 1
    target.write_text(text.replace(old, new), encoding="utf-8")

    spy = Counting()
    report = update_index(long_corpus, first.path, model=HASH_MODEL, embedder=spy)
    index = haitirag.load_index(first.path)
    after = inputs(index, where)
    changed = [t for t in after if t not in set(before)]
    assert 1 <= len(changed) <= 2 < len(after)  # the chunk or two that hold the edit, not the document
    assert sorted(spy.texts) == sorted(changed)  # only those were embedded
    assert spy.fitted and not set(spy.fitted) & set(before)  # the kept chunks' lengths were not checked again
    assert report.modified == [where] and not report.full and report.wrote
    assert report.chunks_embedded == len(changed) and report.documents_to_embed == 1
    assert report.chunks_kept == len(after) - len(changed)
    assert report.chunks_reused == len(index) - len(changed)
    assert f"reused {report.chunks_reused} ({report.chunks_kept} of them in changed documents)" in report.summary()
    check_segments(index, path)
    assert_same_as_full(index, long_corpus, tmp_path)

    again = update_index(long_corpus, first.path, model=HASH_MODEL, embedder=Counting())
    assert not again.wrote and again.chunks_embedded == 0


def test_a_new_title_embeds_every_chunk_again(long_corpus: Path, tmp_path: Path, path: str):
    """The title is part of every chunk's embedding input: no chunk's vector may be kept."""
    first = haitirag.build_index(long_corpus, tmp_path / "index", model=HASH_MODEL)
    n = len(inputs(first, "bulletins.jsonl#long-1"))
    target = long_corpus / "bulletins.jsonl"
    target.write_text(target.read_text(encoding="utf-8").replace("Regional bulletin", "Regional digest"),
                      encoding="utf-8")
    spy = Counting()
    report = update_index(long_corpus, first.path, model=HASH_MODEL, embedder=spy)
    assert len(spy.texts) == report.chunks_embedded == n and report.chunks_kept == 0
    assert_same_as_full(haitirag.load_index(first.path), long_corpus, tmp_path)


def test_edits_to_several_documents_and_a_new_one(long_corpus: Path, tmp_path: Path, path: str):
    """Two long documents edited, one added, one deleted in the same build: each edit costs its own chunks."""
    first = haitirag.build_index(long_corpus, tmp_path / "index", model=HASH_MODEL)
    report_before = inputs(first, "report.txt")
    bulletin_before = inputs(first, "bulletins.jsonl#long-1")
    target = long_corpus / "report.txt"
    target.write_text(target.read_text(encoding="utf-8").replace(EDITED, FIXED), encoding="utf-8")
    rows = [json.loads(line) for line in (long_corpus / "bulletins.jsonl").read_text(encoding="utf-8").splitlines()]
    rows[0]["text"] = rows[0]["text"].replace(sentence(305), sentence(305).replace("filed", "lost"))
    rows = rows[:1]  # short-1 deleted
    (long_corpus / "bulletins.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (long_corpus / "new.md").write_text("# Bridge opened\n\nThe bridge at Les Cayes opened on Friday.\n",
                                        encoding="utf-8")
    spy = Counting()
    report = update_index(long_corpus, first.path, model=HASH_MODEL, embedder=spy)
    index = haitirag.load_index(first.path)
    fresh = [t for t in inputs(index, "report.txt") if t not in set(report_before)]
    fresh += [t for t in inputs(index, "bulletins.jsonl#long-1") if t not in set(bulletin_before)]
    fresh += inputs(index, "new.md")
    assert sorted(spy.texts) == sorted(fresh) and report.chunks_embedded == len(fresh) <= 5
    assert report.documents_to_embed == 3 and report.deleted == ["bulletins.jsonl#short-1"]
    check_segments(index, path)
    assert_same_as_full(index, long_corpus, tmp_path)


def test_only_the_changed_documents_previous_versions_are_kept(long_corpus: Path, tmp_path: Path):
    """The full write looks up the previous version of the changed documents only (memory as the edit)."""
    first = haitirag.build_index(long_corpus, tmp_path / "index", model=HASH_MODEL)
    target = long_corpus / "report.txt"
    target.write_text(target.read_text(encoding="utf-8").replace(EDITED, FIXED), encoding="utf-8")
    docs = haitirag.corpus.load_corpus(long_corpus).documents
    store = haitirag.backend.open_store(first.path)
    previous, reason = build._load_previous(store, store.read_manifest(), HASH_MODEL, haitirag.ChunkSettings(),
                                            docs)
    assert previous is not None and not reason
    changed = next(d for d in docs if d.path == "report.txt")
    assert list(previous.versions) == [changed.doc_id]
    version = previous.versions[changed.doc_id]
    old = next(d for d in first.documents.values() if d.path == "report.txt")
    assert version.document == old and version.sentences == first.sentences[old.doc_id]
    assert len(version.chunks) == len(version.vectors) == len(inputs(first, "report.txt"))


def tokenized_by_an_edit(corpus: Path, first: haitirag.Index, monkeypatch: pytest.MonkeyPatch
                        ) -> tuple[list[str], Counting]:
    """Edit the report, bring ``first`` up to date; the texts tokenized for BM25 meanwhile, and the embedder."""
    from haitirag import keyword

    target = corpus / "report.txt"
    target.write_text(target.read_text(encoding="utf-8").replace(EDITED, FIXED), encoding="utf-8")
    seen: list[str] = []
    real = keyword.tokenize

    def counting(texts: Sequence[str], stemmer: object = None) -> list[list[str]]:
        seen.extend(texts)
        return real(texts, stemmer)

    spy = Counting()
    with monkeypatch.context() as m:
        m.setattr(keyword, "tokenize", counting)
        update_index(corpus, first.path, model=HASH_MODEL, embedder=spy)
    return seen, spy


def test_an_edit_tokenizes_only_the_chunks_that_changed(long_corpus: Path, tmp_path: Path, path: str,
                                                        monkeypatch: pytest.MonkeyPatch):
    """The keyword index takes the unchanged chunks' terms from the previous postings: only the new chunks are
    tokenized (the same texts that are embedded); an append also tokenizes the edited document's old chunks, to take
    them out of the document frequencies. Never the other documents' chunks."""

    first = haitirag.build_index(long_corpus, tmp_path / "index", model=HASH_MODEL)
    before = inputs(first, "report.txt")
    seen, spy = tokenized_by_an_edit(long_corpus, first, monkeypatch)
    assert 1 <= len(spy.texts) <= 2
    if path == "full write":
        assert sorted(seen) == sorted(spy.texts)
    else:
        assert set(spy.texts) <= set(seen) <= set(spy.texts) | set(before) and len(seen) < len(first)
    assert_same_as_full(haitirag.load_index(first.path), long_corpus, tmp_path)


def test_an_index_of_another_tokenizer_is_tokenized_again(long_corpus: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    """Terms are reused only from an index whose manifest names this tokenizer (an older one is read again)."""
    from haitirag import keyword

    first = haitirag.build_index(long_corpus, tmp_path / "index", model=HASH_MODEL)
    assert first.manifest["keyword"]["tokenizer"] == keyword.TOKENIZER
    monkeypatch.setattr(keyword, "TOKENIZER", "another")
    seen, _ = tokenized_by_an_edit(long_corpus, first, monkeypatch)
    assert len(seen) == len(first)  # every chunk
    index = haitirag.load_index(first.path)
    assert index.manifest["keyword"]["tokenizer"] == "another"
    assert_same_as_full(index, long_corpus, tmp_path)


def test_a_large_previous_index_is_tokenized_again(long_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Above ``backend.TERMS_FROM_MAX`` rows a full write tokenizes every chunk (memory held down), same result."""
    from haitirag import backend

    first = haitirag.build_index(long_corpus, tmp_path / "index", model=HASH_MODEL)
    monkeypatch.setattr(backend, "TERMS_FROM_MAX", len(first) - 1)
    seen, _ = tokenized_by_an_edit(long_corpus, first, monkeypatch)
    assert len(seen) == len(first)
    assert_same_as_full(haitirag.load_index(first.path), long_corpus, tmp_path)
