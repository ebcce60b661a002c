"""Builds that append a segment (store.py): the first segment is shared by hard links, removed documents are never
returned, and the index answers exactly as a full build of the same corpus does; merges; kill safety.

The fixture corpus is tiny, so ``build.APPEND_FROM`` is lowered to 0 here (from 10,000 chunks by default) and
``build.REMOVED_MAX`` raised to 1."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import haitirag
from haitirag import build
from haitirag.build import update_index

from .conftest import HASH_MODEL, segment_dir
from .test_incremental import NEW_DOC, assert_consistent, edit, kill_builds

QUERIES = ["Kenya police officers Haiti", "Chad gendarmes", "volcano lava Grindavik", "court deployment ruling",
           "Nile perch fishing Lake Victoria", "Benin troops", "rainfall farmers"]


@pytest.fixture()
def appending(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "APPEND_FROM", 0)
    monkeypatch.setattr(build, "REMOVED_MAX", 1.0)  # (each edit of the tiny corpus removes a large share)


def results(index: haitirag.Index, query: str, mode: str, **filters: object) -> list[tuple[str, float]]:
    """(chunk id, score) of every result, ties in any order."""
    hits = index.search(query, k=50, mode=mode, **filters)  # type: ignore[arg-type]
    return sorted((p.chunk_id, round(p.score, 5)) for p in hits)


def assert_same_answers(index: haitirag.Index, full: haitirag.Index) -> None:
    assert dict(index.documents) == dict(full.documents) and len(index) == len(full)
    assert dict(index.sentences) == dict(full.sentences)
    assert index.generation.sources() == full.generation.sources()
    for q in QUERIES:
        for mode in ("keyword", "dense", "hybrid"):
            assert results(index, q, mode) == results(full, q, mode), (q, mode)
        assert results(index, q, "hybrid", sources=["Nordic Desk"]) == results(full, q, "hybrid",
                                                                                 sources=["Nordic Desk"])
        assert results(index, q, "keyword", date_from="2024-02-01") == results(full, q, "keyword",
                                                                                date_from="2024-02-01")
    def df(kw: object, term: str) -> int:
        i = kw.vocab.get(term)  # type: ignore[attr-defined]
        return 0 if i is None else int(kw.document_frequency()[i])  # type: ignore[attr-defined]

    for term in ("polic", "haiti", "chad", "benin", "court"):  # BM25 statistics over the live chunks only
        assert df(index.keyword, term) == df(full.keyword, term), term


def test_an_append_shares_the_first_segment_and_answers_as_a_full_build(appending: None, corpus: Path,
                                                                        tmp_path: Path):
    first = haitirag.build_index(corpus, tmp_path / "index", model=HASH_MODEL)
    base = segment_dir(first.path)
    before = {haitirag.index.embed_text(first.documents[c.doc_id].title, c.text) for c in first.chunks}
    edit(corpus)  # one document added, one modified, one deleted, one renamed
    report = update_index(corpus, first.path, model=HASH_MODEL)
    assert report.wrote and not report.full and report.added == ["new.md"] and report.deleted == ["court.md"]
    index = haitirag.load_index(first.path)
    manifest = index.manifest
    assert len(manifest["segments"]) == 2 and manifest["segments"][0]["removed"] >= 2
    shared = segment_dir(first.path)
    assert shared.name == base.name
    for f in base.rglob("*.npy"):  # the same files, linked: nothing rewritten
        assert os.path.samefile(f, shared / f.relative_to(base))
    full = haitirag.build_index(corpus, tmp_path / "full", model=HASH_MODEL)
    assert len(full.manifest["segments"]) == 1
    changed = {d.doc_id for d in full.documents.values() if d.path in ("new.md", "haiti_report.txt")}
    fresh = [c for c in full.chunks if c.doc_id in changed  # the renamed one reused, and the edited one's chunks
             and haitirag.index.embed_text(full.documents[c.doc_id].title, c.text) not in before]  # not edited
    assert report.chunks_embedded == len(fresh) > 0 and report.chunks_kept > 0
    assert_same_answers(index, full)
    assert_consistent(index)
    court = [c.chunk_id for c in first.chunks if first.documents[c.doc_id].path == "court.md"]
    assert court and not {p.chunk_id for p in index.search("court deployment ruling", k=50)} & set(court)
    haitirag.index.verify_index(first.path)  # every checksum and offset of both segments


def test_later_appends_rewrite_only_the_second_segment_then_merge(appending: None, corpus: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch):
    index = tmp_path / "index"
    haitirag.build_index(corpus, index, model=HASH_MODEL)
    edit(corpus)
    update_index(corpus, index, model=HASH_MODEL)
    (corpus / "new.md").write_text(NEW_DOC.replace("third time", "fourth time"), encoding="utf-8")
    (corpus / "more.md").write_text("# Floods in Porto Alegre\n\nThe Guaiba river rose five metres.\n",
                                    encoding="utf-8")
    report = update_index(corpus, index, model=HASH_MODEL)
    assert not report.full and sorted(report.added) == ["more.md"] and report.modified == ["new.md"]
    assert report.chunks_embedded == 2  # the two documents, nothing else
    manifest = haitirag.load_index(index).manifest
    assert len(manifest["segments"]) == 2
    assert_same_answers(haitirag.load_index(index), haitirag.build_index(corpus, tmp_path / "full1", model=HASH_MODEL))
    monkeypatch.setattr(build, "DELTA_MAX", 1)  # the second segment is now too large: one segment again
    (corpus / "more.md").write_text("# Floods in Porto Alegre\n\nThe Guaiba river rose six metres.\n",
                                    encoding="utf-8")
    report = update_index(corpus, index, model=HASH_MODEL)
    merged = haitirag.load_index(index)
    assert report.wrote and report.chunks_embedded == 1 and len(merged.manifest["segments"]) == 1
    assert merged.chunks.live is None  # removed rows are gone
    assert_same_answers(merged, haitirag.build_index(corpus, tmp_path / "full2", model=HASH_MODEL))


def test_nothing_changed_writes_nothing_and_the_page_cache_is_reused(appending: None, corpus: Path, tmp_path: Path):
    index = tmp_path / "index"
    haitirag.build_index(corpus, index, model=HASH_MODEL)
    edit(corpus)
    update_index(corpus, index, model=HASH_MODEL)
    again = update_index(corpus, index, model=HASH_MODEL)
    assert not again.wrote and again.chunks_embedded == 0


def test_a_damaged_first_segment_is_found_by_verify_after_appends(appending: None, corpus: Path, tmp_path: Path):
    index = tmp_path / "index"
    haitirag.build_index(corpus, index, model=HASH_MODEL)
    edit(corpus)
    update_index(corpus, index, model=HASH_MODEL)
    path = segment_dir(index) / "text.bin"
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    os.unlink(path)  # (a new file: the previous generation's link keeps the old bytes)
    path.write_bytes(bytes(data))
    with pytest.raises(haitirag.IndexCorruptError, match=r"text\.bin is damaged"):
        haitirag.index.verify_index(index)


APPEND_BUILD = ("import sys; import haitirag.build as b; b.APPEND_FROM, b.REMOVED_MAX = 0, 1.0; "
                "from haitirag.cli import main; "
                "sys.exit(main(sys.argv[1:]))")


def test_killed_appends_leave_a_loadable_consistent_index(corpus: Path, tmp_path: Path):
    """SIGKILL at every stage of an appending build (``HAITIRAG_TEST_PAUSE``): the index is the old or the new one."""
    def appended(index: Path) -> None:
        assert len(json.loads((index / "manifest.json").read_text())["segments"]) == 2

    index, _ = kill_builds(corpus, tmp_path, [sys.executable, "-c", APPEND_BUILD], rounds=8, seed=5, first=appended)
    haitirag.index.verify_index(index)


@pytest.mark.parametrize("margin", [64, 0])
def test_removed_rows_are_never_returned(appending: None, corpus: Path, tmp_path: Path, margin: int,
                                         monkeypatch: pytest.MonkeyPatch):
    """Without a filter the retrievers leave removed rows out themselves (dense: a few more asked for, then, margin
    0, the search again over the live rows); with one, the filter's mask holds live rows only."""
    from haitirag import backend

    monkeypatch.setattr(backend, "DEAD_MARGIN", margin)
    first = haitirag.build_index(corpus, tmp_path / "index", model=HASH_MODEL)
    edit(corpus)
    update_index(corpus, first.path, model=HASH_MODEL)
    index = haitirag.load_index(first.path)
    live = index.chunks.live
    assert live is not None and int(live.sum()) == len(index) < len(index.chunks)
    dead = set(np.flatnonzero(~live).tolist())
    gen = index.generation
    for q in QUERIES:
        vec = index.embedder.encode([q])
        rows = [r for r, _ in gen.dense(vec, len(index), None)]
        assert len(rows) == len(index) and not dead & set(rows)  # every live row, no removed one
        assert not dead & set(gen.keyword_top(q, 50, None))
    nordic = gen.allowed(haitirag.backend.Filters(sources=frozenset({"Nordic Desk"})))
    assert nordic is not None and not (nordic & ~live).any()
    assert {index.documents[index.chunks[int(r)].doc_id].source for r in np.flatnonzero(nordic)} == {"Nordic Desk"}


def test_verify_recounts_the_keyword_statistics(appending: None, corpus: Path, tmp_path: Path):
    """``df.npy`` is kept up to date by appends, not recomputed: ``verify`` recounts it from the postings."""
    import hashlib

    index = tmp_path / "index"
    haitirag.build_index(corpus, index, model=HASH_MODEL)
    edit(corpus)
    update_index(corpus, index, model=HASH_MODEL)
    haitirag.index.verify_index(index)
    manifest = json.loads((index / "manifest.json").read_text())
    path = index / f"gen-{manifest['generation']}" / "df.npy"
    df = np.load(path)
    df[int(np.argmax(df))] += 1  # one term counted once too often, the file re-signed
    np.save(path, df)
    manifest["files"]["df.npy"] = {"bytes": path.stat().st_size,
                                   "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    (index / "manifest.json").write_text(json.dumps(manifest))
    haitirag.load_index(index)  # (a load trusts it)
    with pytest.raises(haitirag.IndexCorruptError, match=r"document frequencies differ.*haitirag build --full"):
        haitirag.index.verify_index(index)
