from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import haitirag
from haitirag.errors import IndexCorruptError, IndexLockedError, IndexMismatchError, IndexNotFoundError, QueryError
from haitirag.store import build_lock, read_manifest

from .conftest import HASH_MODEL, segment_dir

QUERIES = ["Which court blocked the deployment?", "fisheries Nile perch catches", "railway extension cost",
           "rainfall outlook for farmers", "Who signed the agreement?", "police officers Haiti Kenya"]


def test_faiss_top_k_equals_brute_force(hash_index: haitirag.Index):
    matrix = hash_index.vectors.reconstruct_n(0, hash_index.vectors.ntotal)
    for q in QUERIES:
        qv = hash_index.embed_query(q)[0]
        sims = matrix @ qv
        want = np.argsort(-sims, kind="stable")[:5]
        got = hash_index.dense_scores(q, 5)
        assert np.allclose([s for _, s in got], sims[want], atol=1e-5)
        assert [r for r, _ in got] == [int(i) for i in want] or np.allclose(sims[[r for r, _ in got]], sims[want])


def test_search_returns_passages_with_offsets(hash_index: haitirag.Index):
    for mode in ("hybrid", "dense", "keyword"):
        for q in QUERIES:
            passages = hash_index.search(q, k=3, mode=mode)
            assert len(passages) <= 3
            scores = [p.score for p in passages]
            assert scores == sorted(scores, reverse=True)
            for p in passages:
                doc = hash_index.document(p.doc_id)
                assert doc.text[p.start:p.end] == p.text
                assert (p.title, p.date, p.source) == (doc.title, doc.date, doc.source)
    top = hash_index.search("Nile perch catches on Lake Victoria", k=1, mode="keyword")[0]
    assert top.title == "Lake Victoria fisheries recover"


def test_filters(hash_index: haitirag.Index):
    only = hash_index.search("deployment court police", k=10, sources=["Example Wire"])
    assert only and {p.source for p in only} == {"Example Wire"}
    dated = hash_index.search("deployment court police rainfall railway", k=10, date_from="2024-03-01",
                              keep_undated=False)
    assert dated and all(p.date and p.date >= "2024-03-01" for p in dated)
    with_undated = hash_index.search("railway extension", k=10, date_from="2024-03-01")
    assert any(p.date is None for p in with_undated)


def test_save_load_round_trip(hash_index: haitirag.Index):
    loaded = haitirag.load_index(hash_index.path)
    assert loaded.manifest == hash_index.manifest
    assert list(loaded.chunks) == list(hash_index.chunks) and len(loaded.chunks) == 7
    assert dict(loaded.documents) == dict(hash_index.documents)
    for c in loaded.chunks:  # offsets end to end: the chunk is its document's text at its span
        assert loaded.documents[c.doc_id].text[c.start:c.end] == c.text
    for q in QUERIES:
        assert loaded.search(q, k=5) == hash_index.search(q, k=5)
    m = loaded.manifest
    assert m["model"] == HASH_MODEL and m["dimension"] == 64
    assert m["counts"] == {"documents": 5, "chunks": len(loaded.chunks)}
    assert "documents" not in m  # the per-document catalog is read by builds, not by load_index
    catalog = read_manifest(loaded.path)["documents"]
    assert {d["path"] for d in catalog.values()} >= {"court.md", "haiti_report.txt"}


def _gen(index: haitirag.Index) -> Path:
    return segment_dir(index.path)


@pytest.mark.parametrize("damage", ["truncate", "delete", "flip"])
def test_corrupted_index_is_refused(hash_index: haitirag.Index, damage: str):
    target = _gen(hash_index) / "vectors.faiss"
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "delete":
        target.unlink()
    else:
        data = bytearray(target.read_bytes())
        data[-1] ^= 0xFF
        target.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError, match="haitirag build"):
        haitirag.load_index(hash_index.path)


def test_mismatched_index_is_refused(hash_index: haitirag.Index):
    with pytest.raises(IndexMismatchError, match="haitirag build --model"):
        haitirag.load_index(hash_index.path, model="all-MiniLM-L6-v2")
    manifest_path = hash_index.path / "manifest.json"
    m = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**m, "format_version": 999}))
    with pytest.raises(IndexMismatchError, match="haitirag build"):
        haitirag.load_index(hash_index.path)
    manifest_path.write_text("{not json")
    with pytest.raises(IndexCorruptError):
        haitirag.load_index(hash_index.path)


def test_counts_mismatch_is_refused(hash_index: haitirag.Index):
    import hashlib

    import numpy as np

    manifest_path = hash_index.path / "manifest.json"  # re-sign the files so only the counts disagree
    m = json.loads(manifest_path.read_text())
    for name in ("chunks.npy", "chunk_ids.npy"):
        path = _gen(hash_index) / name
        np.save(path, np.load(path)[:-1])
        m["files"][f"{path.parent.name}/{name}"] = {"bytes": path.stat().st_size,
                                                    "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    manifest_path.write_text(json.dumps(m))
    with pytest.raises(IndexCorruptError, match="inconsistent"):
        haitirag.load_index(hash_index.path)


def test_missing_index(tmp_path: Path):
    with pytest.raises(IndexNotFoundError, match="haitirag build"):
        haitirag.load_index(tmp_path / "nothing")


@pytest.mark.parametrize("query", ["", "   ", "\n\t", "x" * 100_000, None])
def test_bad_queries(hash_index: haitirag.Index, query):
    with pytest.raises(QueryError):
        hash_index.search(query)


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_bad_k(hash_index: haitirag.Index, k):
    with pytest.raises(QueryError):
        hash_index.search("court", k=k)


def test_control_characters_and_other_scripts(hash_index: haitirag.Index):
    assert hash_index.search("court\x00\x1b[31m ruling", k=2)
    hash_index.search("Кто заблокировал развертывание? 谁阻止了部署？", k=2)  # no crash, maybe no match


def test_failed_build_keeps_the_previous_index(hash_index: haitirag.Index, tmp_path: Path):
    before = hash_index.manifest["generation"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(haitirag.CorpusError):
        haitirag.build_index(empty, hash_index.path, model=HASH_MODEL)
    assert haitirag.load_index(hash_index.path).manifest["generation"] == before


def test_second_build_is_refused_while_one_holds_the_lock(hash_index: haitirag.Index, corpus: Path):
    with build_lock(hash_index.path):
        with pytest.raises(IndexLockedError, match="another build"):
            haitirag.build_index(corpus, hash_index.path, model=HASH_MODEL)


def test_unchanged_rebuild_reuses_everything(hash_index: haitirag.Index, corpus: Path):
    again = haitirag.build_index(corpus, hash_index.path, model=HASH_MODEL)
    assert again.report is not None
    assert again.report.chunks_embedded == 0 and again.report.chunks_reused == len(hash_index.chunks)
    assert again.chunks == hash_index.chunks
    assert np.array_equal(again.vectors.reconstruct_n(0, again.vectors.ntotal),
                          hash_index.vectors.reconstruct_n(0, hash_index.vectors.ntotal))
    gens = [p.name for p in hash_index.path.iterdir() if p.name.startswith("gen-")]
    assert len(gens) <= 2 and not any(p.name.startswith("tmp-") for p in hash_index.path.iterdir())


def test_build_from_a_single_jsonl_file(tmp_path: Path, corpus: Path):
    idx = haitirag.build_index(corpus / "briefs.jsonl", tmp_path / "idx", model=HASH_MODEL)
    assert set(idx.documents) == {"brief-1", "brief-2"}


def test_copy_of_index_folder_loads(hash_index: haitirag.Index, tmp_path: Path):
    dst = tmp_path / "copy"
    shutil.copytree(hash_index.path, dst)
    assert len(haitirag.load_index(dst)) == len(hash_index)


@pytest.mark.parametrize(("filters", "message"), [
    ({"date_from": "March 2024"}, "YYYY-MM-DD"),
    ({"date_to": "2024-13-45"}, "YYYY-MM-DD"),
    ({"date_from": "2024-03-05", "date_to": "2024-01-01"}, "swap them"),
    ({"sources": "Livenow Africa"}, r"list of source names, e\.g\. \[.Livenow Africa.\], not a string"),
    ({"sources": 5}, "list of source names, not int"),
    ({"date_from": 20240101}, "date as text"),
])
def test_bad_filters_raise_query_error_with_the_fix(hash_index: haitirag.Index, filters: dict, message: str):
    with pytest.raises(QueryError, match=message):
        hash_index.search("court ruling", **filters)


def test_history_must_be_a_list(hash_index: haitirag.Index):
    with pytest.raises(QueryError, match=r"history must be a list of earlier questions"):
        hash_index.ask("When?", history="Who signed?")  # type: ignore[arg-type]


def test_sources_may_be_any_iterable(hash_index: haitirag.Index):
    names = sorted({d.source or "" for d in hash_index.documents.values()})
    as_list = hash_index.search("court ruling", k=3, sources=names)
    assert as_list and hash_index.search("court ruling", k=3, sources=(n for n in names)) == as_list


def test_build_embeds_longest_first_but_returns_vectors_in_chunk_order():
    import numpy as np

    from haitirag.build import _embed
    from haitirag.embedding import HashEmbedder

    emb = HashEmbedder(32)
    texts = [" ".join(["word"] * n) + f" t{n}" for n in (3, 40, 1, 17, 60, 2, 9)] * 11
    calls: list[list[str]] = []
    real = emb.encode

    def spy(batch, batch_size=64, show_progress=False):
        calls.append(list(batch))
        return real(batch, batch_size=batch_size)

    emb.encode = spy  # type: ignore[method-assign]
    got = _embed(emb, texts, 16, False)
    assert np.array_equal(got, real(texts))
    lengths = [len(t) for batch in calls for t in batch]
    assert lengths == sorted(lengths, reverse=True) and len(calls) == -(-len(texts) // 32)
