"""The index folder's columnar records (format 2): round trip, filters over columns, checks, verify, old format."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import haitirag
from haitirag import store
from haitirag.backend import Filters
from haitirag.columns import Chunks, Documents, Sentences, open_columns, write_columns
from haitirag.errors import IndexCorruptError, IndexMismatchError
from haitirag.records import Chunk, Document
from tests.conftest import HASH_MODEL, segment_dir

TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=40)
DATES = st.one_of(st.none(), st.dates().map(lambda d: d.isoformat()))
SOURCES = st.one_of(st.none(), st.sampled_from(["AP", "Reuters", "Le Nouvelliste", ""]))


@st.composite
def documents(draw: st.DrawFn) -> tuple[list[Document], dict[str, list[tuple[int, int]]], list[Chunk]]:
    docs, sentences, chunks = [], {}, []
    for i in range(draw(st.integers(0, 6))):
        text = draw(TEXT)
        cuts = sorted(set(draw(st.lists(st.integers(0, len(text)), max_size=4))) | {0, len(text)})
        spans = list(itertools.pairwise(cuts))
        doc = Document(doc_id=f"{draw(st.sampled_from(['z', 'a', 'm']))}{i}", text=text, title=draw(TEXT),
                       date=draw(DATES), source=draw(SOURCES), url=draw(st.one_of(st.none(), TEXT)),
                       path=f"f{i}.txt", sha256=f"{i:064x}", pages=tuple(cuts[:-1]) if draw(st.booleans()) else ())
        docs.append(doc)
        sentences[doc.doc_id] = spans
        for s, e in spans:
            chunks.append(Chunk(f"{i:04d}{s:06d}", doc.doc_id, text[s:e], s, e, e - s))
    draw(st.randoms()).shuffle(chunks)  # chunk rows need not follow document order
    return docs, sentences, chunks


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=documents(), wanted=st.one_of(st.none(), st.frozensets(st.sampled_from(["AP", "Reuters", ""]))),
       date_from=DATES, date_to=DATES, keep_undated=st.booleans())
def test_columns_round_trip_and_filters(tmp_path: Path, records, wanted, date_from, date_to, keep_undated):
    docs, sentences, chunks = records
    import tempfile

    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    write_columns(folder, docs, sentences, chunks)
    table = Documents(open_columns(folder))
    assert list(table) == [d.doc_id for d in docs] and len(table) == len(docs)
    assert dict(table) == {d.doc_id: d for d in docs}  # every field, the text and the pages
    assert dict(Sentences(table)) == sentences
    assert list(Chunks(table)) == chunks
    assert "missing" not in table and table.get("missing") is None
    assert table.sources() == {d.source or "" for d in docs}
    f = Filters(wanted, date_from, date_to, keep_undated)
    assert table.allowed(wanted, date_from, date_to, keep_undated).tolist() == [f.allows(d) for d in docs]


def test_damaged_columns_are_refused(tmp_path: Path):
    doc = Document("d1", "One. Two.", title="T", path="a.txt", sha256="0" * 64)
    write_columns(tmp_path, [doc], {"d1": [(0, 4), (5, 9)]}, [Chunk("c1", "d1", "One. Two.", 0, 9, 3)])
    open_columns(tmp_path)
    np.save(tmp_path / "chunks.npy", np.array([[5, 0, 9, 3]], dtype=np.int64))  # a chunk of a document not there
    with pytest.raises(ValueError, match="do not fit"):
        open_columns(tmp_path)
    (tmp_path / "chunks.npy").write_bytes(b"\x93NUMPY damaged")
    with pytest.raises(ValueError):
        open_columns(tmp_path)


def test_load_checks_sizes_verify_checks_every_byte(hash_index: haitirag.Index, monkeypatch):
    text = segment_dir(hash_index.path) / "text.bin"
    data = bytearray(text.read_bytes())
    data[3] ^= 0x01  # same size, another byte
    text.write_bytes(bytes(data))
    monkeypatch.setattr(store, "CHECKSUM_AT_LOAD", 16)  # as if text.bin were a large file
    haitirag.load_index(hash_index.path)  # a load checks large files by size only
    with pytest.raises(IndexCorruptError, match=r"text\.bin is damaged.*haitirag build"):
        haitirag.index.verify_index(hash_index.path)
    monkeypatch.undo()
    with pytest.raises(IndexCorruptError, match=r"text\.bin is damaged"):
        haitirag.load_index(hash_index.path)  # small files: their checksum at every load


def test_verify_command(hash_index: haitirag.Index):
    ok = subprocess.run([sys.executable, "-m", "haitirag", "verify", "--index", str(hash_index.path), "--json"],
                        capture_output=True, text=True, timeout=120)
    result = json.loads(ok.stdout)
    assert ok.returncode == 0 and result["ok"] and result["chunks"] == len(hash_index.chunks)
    assert result["files"] == len(hash_index.manifest["files"])
    gen = hash_index.path / f"gen-{hash_index.manifest['generation']}"
    (gen / "catalog.json").write_text("{}\n")
    bad = subprocess.run([sys.executable, "-m", "haitirag", "verify", "--index", str(hash_index.path)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and bad.stderr.count("\n") == 1
    assert "catalog.json" in bad.stderr and "haitirag build" in bad.stderr


def test_an_index_of_format_1_says_rebuild_and_a_build_replaces_it(hash_index: haitirag.Index, corpus: Path):
    manifest_path = hash_index.path / "manifest.json"
    old = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**old, "format_version": 1}))
    with pytest.raises(IndexMismatchError, match=r"index format 1 .* reads 3; run `haitirag build`"):
        haitirag.load_index(hash_index.path)
    rebuilt = haitirag.build_index(corpus, hash_index.path, model=HASH_MODEL)
    assert rebuilt.report is not None and rebuilt.report.full and rebuilt.report.wrote
    assert rebuilt.manifest["format_version"] == 3 and list(rebuilt.chunks) == list(hash_index.chunks)


def test_verify_finds_a_chunk_outside_its_document(hash_index: haitirag.Index):
    import hashlib

    gen = segment_dir(hash_index.path)
    table = np.load(gen / "chunks.npy")
    table[0, 2] = 10**6  # its end far past its document's text; re-signed, so only the offsets are wrong
    np.save(gen / "chunks.npy", table)
    manifest_path = hash_index.path / "manifest.json"
    m = json.loads(manifest_path.read_text())
    m["files"][f"{gen.name}/chunks.npy"] = {"bytes": (gen / "chunks.npy").stat().st_size,
                                "sha256": hashlib.sha256((gen / "chunks.npy").read_bytes()).hexdigest()}
    manifest_path.write_text(json.dumps(m))
    with pytest.raises(IndexCorruptError, match=r"lies outside its document.*haitirag build --full"):
        haitirag.index.verify_index(hash_index.path)


def test_the_page_rebuilds_an_index_of_an_older_format(hash_index: haitirag.Index, corpus: Path):
    from haitirag import web

    manifest_path = hash_index.path / "manifest.json"
    manifest_path.write_text(json.dumps({**json.loads(manifest_path.read_text()), "format_version": 1}))
    served = web.open_or_build(corpus, hash_index.path, model=HASH_MODEL)
    assert served.report is not None and served.report.full and served.manifest["format_version"] == 3
    assert list(served.chunks) == list(hash_index.chunks)


def test_damaged_postings_in_a_large_file_fail_cleanly(hash_index: haitirag.Index, monkeypatch):
    """Past the sizes a load checks, a posting that names no chunk is a one-line error when searched, and
    ``verify`` finds it."""
    path = segment_dir(hash_index.path) / "bm25" / "rows.npy"
    postings = np.load(path)
    postings[:] = 10**6  # same size, every posting past the last chunk
    np.save(path, postings)
    monkeypatch.setattr(store, "CHECKSUM_AT_LOAD", 16)
    index = haitirag.load_index(hash_index.path)
    with pytest.raises(IndexCorruptError, match=r"keyword files are damaged.*haitirag build --full"):
        index.search("court deployment", mode="keyword")
    with pytest.raises(IndexCorruptError, match=r"is damaged"):
        haitirag.index.verify_index(hash_index.path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=documents())
def test_titles_newest_first_and_a_title_found_as_the_page_does(tmp_path: Path, records):
    import tempfile

    docs, sentences, chunks = records
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    write_columns(folder, docs, sentences, chunks)
    table = Documents(open_columns(folder))
    want = sorted(((d.title, d.date) for d in docs), key=lambda t: t[1] or "", reverse=True)
    assert list(table.newest_titles()) == want  # as the page sorted the documents (stable, undated last)
    for d in docs:
        plain = d.title.strip().lower()
        if plain and all((c.isalnum() and c.isascii()) or c in " '" for c in plain):
            assert table.has_title(plain.upper())
        if d.title.strip().isascii() or not d.title.strip().lower().isascii():
            assert table.has_title(d.title) == bool(d.title.strip())
    assert not table.has_title("a title that no document has")
