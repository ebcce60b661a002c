"""Incremental builds: change detection, reuse, status, atomic swaps under SIGKILL, the lock, refresh, watch.

Builds run with the deterministic ``hash:64`` embedder. The kill tests set ``HAITIRAG_TEST_PAUSE``
(a test-only hook in store.py: the build sleeps that long at each stage) so a kill lands in every stage.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import haitirag
from haitirag.build import index_status, update_index
from haitirag.embedding import HashEmbedder
from haitirag.errors import IndexCorruptError
from haitirag.store import PAUSE_ENV
from haitirag.watch import watch

from .conftest import HASH_MODEL, segment_dir

NEW_DOC = """---
title: Volcano alert in Iceland
date: 2024-02-08
source: Nordic Desk
---
A lava fissure opened near Grindavik on Thursday, and the town was evacuated for the third time.
"""
OLD_SENTENCE = "Benin also pledged to send 2,000 troops to the mission last week."
NEW_SENTENCE = "Chad also promised 700 gendarmes to the mission last week."


def edit(corpus: Path) -> None:
    """Add, modify, delete and rename one document each."""
    (corpus / "new.md").write_text(NEW_DOC, encoding="utf-8")
    report = corpus / "haiti_report.txt"
    text = report.read_text(encoding="utf-8")
    assert OLD_SENTENCE in text
    report.write_text(text.replace(OLD_SENTENCE, NEW_SENTENCE), encoding="utf-8")
    (corpus / "court.md").unlink()
    (corpus / "sub" / "fisheries.html").rename(corpus / "sub" / "lake.html")


def signature(index: haitirag.Index) -> list[tuple[str, str]]:
    return sorted((d.path, d.sha256) for d in index.documents.values())


def assert_consistent(index: haitirag.Index) -> None:
    """Chunk records, vectors and keyword rows agree, and every live chunk is a span of its document."""
    assert len(index.chunks) == index.vectors.ntotal == getattr(index.keyword, "rows", index.keyword.size)
    live = getattr(index.chunks, "live", None)  # (rows of documents removed since their segment was written)
    rows = [i for i in range(len(index.chunks)) if live is None or live[i]]
    assert len(rows) == len(index) == index.keyword.size
    chunks = [index.chunks[i] for i in rows]
    for c in chunks:
        assert index.documents[c.doc_id].text[c.start:c.end] == c.text
    emb = HashEmbedder(index.vectors.d)
    fresh = emb.encode([haitirag.index.embed_text(index.documents[c.doc_id].title, c.text) for c in chunks])
    assert np.allclose(index.vectors.reconstruct_n(0, index.vectors.ntotal)[rows], fresh, atol=1e-6)


def all_texts(index: haitirag.Index, query: str, mode: str) -> list[haitirag.Passage]:
    return index.search(query, k=len(index), mode=mode)


class SpyEmbedder(HashEmbedder):
    """A hash embedder that records every use of the model."""

    def __init__(self, dim: int = 64):
        super().__init__(dim)
        self.calls: list[str] = []

    @property
    def dimension(self) -> int:
        self.calls.append("dimension")
        return self.dim

    @property
    def precision(self) -> str:
        self.calls.append("precision")
        return "fp32"

    def fits(self, text: str) -> bool:
        self.calls.append("fits")
        return super().fits(text)

    def encode(self, texts, batch_size=64, show_progress=False):  # type: ignore[no-untyped-def]
        self.calls.append(f"encode {len(texts)}")
        return super().encode(texts, batch_size, show_progress)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "haitirag", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


# -- change detection, reuse, status -------------------------------------------------------------------


def test_add_modify_delete_rename(hash_index: haitirag.Index, corpus: Path, tmp_path: Path):
    before = {d.path: d for d in hash_index.documents.values()}
    edit(corpus)
    status = index_status(corpus, hash_index.path, model=HASH_MODEL)
    assert (status.added, status.modified, status.deleted) == (["new.md"], ["haiti_report.txt"], ["court.md"])
    assert status.renamed == ["sub/fisheries.html -> sub/lake.html"]
    assert not status.full and status.documents_to_embed == 2 and len(status.unchanged) == 2

    index = haitirag.build_index(corpus, hash_index.path, model=HASH_MODEL)
    report = index.report
    assert report is not None and report.wrote and not report.full
    assert (report.added, report.modified, report.deleted, report.renamed) == (
        status.added, status.modified, status.deleted, status.renamed)
    new_ids = {d.doc_id for d in index.documents.values() if d.path in ("new.md", "haiti_report.txt")}
    old_inputs = {haitirag.index.embed_text(hash_index.documents[c.doc_id].title, c.text) for c in hash_index.chunks}
    changed = [c for c in index.chunks if c.doc_id in new_ids
               and haitirag.index.embed_text(index.documents[c.doc_id].title, c.text) not in old_inputs]
    assert report.chunks_embedded == len(changed) < sum(c.doc_id in new_ids for c in index.chunks)  # (chunk reuse:
    assert report.chunks_kept > 0  # the edited report's unchanged chunks keep their vectors, test_chunk_reuse.py)
    assert report.chunks_reused == len(index.chunks) - report.chunks_embedded
    assert report.previous_generation == hash_index.manifest["generation"] != report.generation
    assert sorted(d.path for d in index.documents.values()) == [
        "briefs.jsonl#brief-1", "briefs.jsonl#brief-2", "haiti_report.txt", "new.md", "sub/lake.html"]
    assert index.documents[next(iter(new_ids - {before["haiti_report.txt"].doc_id}))]  # ids follow the content
    assert_consistent(index)

    # search finds the new content and never the old or the deleted
    for mode in ("hybrid", "dense", "keyword"):
        passages = all_texts(index, "Benin troops victory Nile perch Grindavik gendarmes", mode)
        assert all("Benin" not in p.text and "victory" not in p.text for p in passages), mode
        assert {p.doc_id for p in passages} <= set(index.documents)
    assert index.search("Grindavik lava fissure", k=1, mode="keyword")[0].title == "Volcano alert in Iceland"
    top = index.search("gendarmes", k=1, mode="keyword")[0]
    assert top.doc_id in new_ids and "gendarmes" in top.text
    assert index.search("Benin", k=5, mode="keyword") == []
    assert index.search("victory", k=5, mode="keyword") == []
    assert index.search("Nile perch catches", k=1, mode="keyword")[0].doc_id == next(
        d.doc_id for d in index.documents.values() if d.path == "sub/lake.html")

    # the incremental index holds exactly what a full build of the same corpus holds
    full = haitirag.build_index(corpus, tmp_path / "full", model=HASH_MODEL)
    assert full.documents == index.documents and full.sentences == index.sentences
    rows = {c.chunk_id: i for i, c in enumerate(index.chunks)}
    assert sorted(rows) == sorted(c.chunk_id for c in full.chunks)
    mine = index.vectors.reconstruct_n(0, index.vectors.ntotal)
    theirs = full.vectors.reconstruct_n(0, full.vectors.ntotal)
    for j, c in enumerate(full.chunks):
        assert index.chunks[rows[c.chunk_id]] == c
        assert np.allclose(mine[rows[c.chunk_id]], theirs[j])

    after = index_status(corpus, hash_index.path, model=HASH_MODEL)
    assert not after.changed and not after.full and len(after.unchanged) == 5


def test_unchanged_build_loads_no_model_and_writes_nothing(hash_index: haitirag.Index, corpus: Path):
    manifest = hash_index.path / "manifest.json"
    stat = manifest.stat()
    spy = SpyEmbedder()
    report = update_index(corpus, hash_index.path, embedder=spy)
    assert spy.calls == []
    assert not report.wrote and not report.changed and len(report.unchanged) == 5
    assert report.generation == hash_index.manifest["generation"] and report.chunks == len(hash_index)
    assert report.chunks_reused == len(hash_index) and report.chunks_embedded == 0
    assert (manifest.stat().st_ino, manifest.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    assert "up to date" in report.summary()


def test_deletion_and_rename_need_no_model(hash_index: haitirag.Index, corpus: Path):
    (corpus / "court.md").unlink()
    (corpus / "haiti_report.txt").rename(corpus / "haiti.txt")
    spy = SpyEmbedder()
    report = update_index(corpus, hash_index.path, embedder=spy)
    assert spy.calls == [] and report.wrote and report.chunks_embedded == 0
    assert report.deleted == ["court.md"] and report.renamed == ["haiti_report.txt -> haiti.txt"]
    index = haitirag.load_index(hash_index.path)
    assert "court.md" not in {d.path for d in index.documents.values()}
    assert index.manifest["dimension"] == 64
    assert_consistent(index)


def test_metadata_edits(hash_index: haitirag.Index, corpus: Path):
    court = corpus / "court.md"
    court.write_text(court.read_text().replace("date: 2024-01-26", "date: 2024-01-27"))
    status = index_status(corpus, hash_index.path, model=HASH_MODEL)
    assert status.modified == ["court.md"] and status.documents_to_embed == 0
    index = haitirag.build_index(corpus, hash_index.path, model=HASH_MODEL)
    assert index.report is not None and index.report.chunks_embedded == 0 and index.report.modified == ["court.md"]
    assert [d.date for d in index.documents.values() if d.path == "court.md"] == ["2024-01-27"]
    assert all(p.date == "2024-01-27" for p in index.search("court ruling", k=10) if p.title.startswith("Court"))

    court.write_text(court.read_text().replace("title: Court ruling on police deployment", "title: Judges say no"))
    index = haitirag.build_index(corpus, hash_index.path, model=HASH_MODEL)
    assert index.report is not None and index.report.modified == ["court.md"]
    court_chunks = [c for c in index.chunks if index.documents[c.doc_id].path == "court.md"]
    assert index.report.chunks_embedded == len(court_chunks) > 0  # the title is embedded with the text
    assert_consistent(index)


def test_copies_reuse_vectors(hash_index: haitirag.Index, corpus: Path):
    shutil.copy(corpus / "haiti_report.txt", corpus / "copy.txt")
    index = haitirag.build_index(corpus, hash_index.path, model=HASH_MODEL)
    assert index.report is not None and index.report.added == ["copy.txt"] and index.report.chunks_embedded == 0
    assert_consistent(index)


def test_model_or_chunking_change_forces_full_rebuild(hash_index: haitirag.Index, corpus: Path):
    status = index_status(corpus, hash_index.path, model="hash:32")
    assert status.full and status.reason == "model changed (hash:64 -> hash:32)" and not status.changed
    index = haitirag.build_index(corpus, hash_index.path, model="hash:32")
    assert index.report is not None and index.report.full and "model changed" in index.report.reason
    assert index.report.chunks_reused == 0 and index.report.chunks_embedded == len(index)
    assert index.vectors.d == 32 and index.model == "hash:32"
    assert_consistent(index)

    settings = haitirag.ChunkSettings(max_tokens=40, overlap_tokens=8)
    status = index_status(corpus, hash_index.path, model="hash:32", settings=settings)
    assert status.full and status.reason.startswith("chunking settings changed (max_tokens 200 -> 40")
    index = haitirag.build_index(corpus, hash_index.path, model="hash:32", settings=settings)
    assert index.report is not None and index.report.full and index.report.chunks_reused == 0
    assert max(c.n_tokens for c in index.chunks) <= 40
    assert_consistent(index)


def test_full_build_reports_changes_against_the_old_manifest(hash_index: haitirag.Index, corpus: Path):
    edit(corpus)
    r = run_cli("build", "--corpus", str(corpus), "--index", str(hash_index.path), "--model", HASH_MODEL,
                "--full", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["full"] and report["reason"] == "--full requested" and report["chunks_reused"] == 0
    assert report["added"] == ["new.md"] and report["deleted"] == ["court.md"]
    assert report["modified"] == ["haiti_report.txt"] and report["renamed"] == ["sub/fisheries.html -> sub/lake.html"]


def test_status_command(hash_index: haitirag.Index, corpus: Path, tmp_path: Path):
    args = ("--corpus", str(corpus), "--index", str(hash_index.path))
    r = run_cli("status", *args, "--model", HASH_MODEL)
    assert r.returncode == 0, r.stderr
    assert "up to date" in r.stdout and "unchanged 5" in r.stdout
    edit(corpus)
    r = run_cli("status", *args, "--model", HASH_MODEL)
    assert r.returncode == 0, r.stderr
    for line in ("+ added    new.md", "~ modified haiti_report.txt", "- deleted  court.md",
                 "> renamed  sub/fisheries.html -> sub/lake.html", "will embed 2 document(s)"):
        assert line in r.stdout, (line, r.stdout)
    r = run_cli("status", *args, "--model", HASH_MODEL, "--json")
    report = json.loads(r.stdout)
    assert report["added"] == ["new.md"] and report["changed"] and not report["full"]
    r = run_cli("status", *args)  # the default model differs from the index's
    assert "will rebuild everything: model changed (hash:64 -> all-MiniLM-L6-v2)" in r.stdout
    r = run_cli("status", "--corpus", str(corpus), "--index", str(tmp_path / "none"), "--model", HASH_MODEL)
    assert r.returncode == 0 and "will rebuild everything: no index at" in r.stdout and "added 5" in r.stdout
    r = run_cli("status", "--corpus", str(tmp_path / "missing"), "--index", str(hash_index.path))
    assert r.returncode == 2 and r.stderr.startswith("error: corpus not found") and "Traceback" not in r.stderr


def test_damaged_index_is_rebuilt_not_trusted(hash_index: haitirag.Index, corpus: Path):
    (segment_dir(hash_index.path) / "chunks.npy").write_bytes(b"damaged\n")
    status = index_status(corpus, hash_index.path, model=HASH_MODEL)
    assert status.full and status.reason.startswith("index unusable")
    index = haitirag.build_index(corpus, hash_index.path, model=HASH_MODEL)
    assert index.report is not None and index.report.full and index.report.wrote
    assert_consistent(index)


def test_leftovers_of_killed_builds_are_removed(hash_index: haitirag.Index, corpus: Path):
    root = hash_index.path
    (root / "tmp-deadbeef0000").mkdir()
    (root / "tmp-deadbeef0000" / "vectors.faiss").write_bytes(b"half")
    (root / "gen-0rphan000000").mkdir()
    (root / "manifest.json.tmp-1234").write_text("{")
    haitirag.build_index(corpus, root, model=HASH_MODEL)  # nothing changed: no write, but cleans up
    names = {p.name for p in root.iterdir()}
    assert names == {"manifest.json", "build.lock", f"gen-{hash_index.manifest['generation']}"}


def test_failed_write_keeps_the_previous_index(hash_index: haitirag.Index, corpus: Path, monkeypatch):
    from haitirag.keyword import Postings

    def disk_full(self, folder):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    edit(corpus)
    monkeypatch.setattr(Postings, "save", disk_full)
    with pytest.raises(haitirag.HaitiragError, match=r"could not write the new index .*No space left.*unchanged"):
        update_index(corpus, hash_index.path, model=HASH_MODEL)
    assert not any(p.name.startswith("tmp-") for p in hash_index.path.iterdir())
    assert haitirag.load_index(hash_index.path).manifest == hash_index.manifest
    monkeypatch.undo()
    assert update_index(corpus, hash_index.path, model=HASH_MODEL).added == ["new.md"]


# -- crash safety and the lock ------------------------------------------------------------------------------


def _state_b(corpus_a: Path, dst: Path) -> Path:
    shutil.copytree(corpus_a, dst)
    edit(dst)
    return dst


def kill_builds(corpus: Path, tmp_path: Path, command: list[str], rounds: int = 10, seed: int = 4,
                first: Callable[[Path], None] | None = None) -> tuple[Path, list[list[tuple[str, str]]]]:
    """Build ``corpus`` into ``tmp_path/index``, then run ``command build ...`` (a new process with
    ``HAITIRAG_TEST_PAUSE``) alternately on the edited corpus and back, killing each with SIGKILL at a point spread
    over the build; after each kill the index must load, be consistent and be one of the two states. ``first``
    sees the index after the first, unkilled build. Returns the index and the two states' signatures."""
    corpus_b = _state_b(corpus, tmp_path / "corpus_b")
    sigs = [signature(haitirag.build_index(c, tmp_path / f"ref{i}", model=HASH_MODEL))
            for i, c in enumerate((corpus, corpus_b))]
    index = tmp_path / "index"
    haitirag.build_index(corpus, index, model=HASH_MODEL)
    env = {**os.environ, PAUSE_ENV: "0.1"}

    def start(c: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen([*command, "build", "--corpus", str(c), "--index", str(index), "--model",
                                 HASH_MODEL, "-q"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    t0 = time.monotonic()
    assert start(corpus_b).wait(timeout=120) == 0
    span = time.monotonic() - t0  # how long a whole build takes here, pauses included
    if first:
        first(index)
    rng = random.Random(seed)
    killed, current = 0, sigs[1]
    for i in range(rounds):
        target = corpus if current == sigs[1] else corpus_b  # always the other state: every build writes
        proc = start(target)
        # spread the kills over the build, after the interpreter's start-up, and a little past its end
        time.sleep(span * (0.25 + (i + rng.random()) / rounds))
        if proc.poll() is None:
            killed += 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        loaded = haitirag.load_index(index)  # never broken
        current = signature(loaded)
        assert current in sigs, i
        assert_consistent(loaded)
    assert killed >= rounds // 2
    return index, sigs


def test_killed_builds_leave_a_loadable_consistent_index(corpus: Path, tmp_path: Path):
    index, sigs = kill_builds(corpus, tmp_path, [sys.executable, "-m", "haitirag"])
    final = haitirag.build_index(tmp_path / "corpus_b", index, model=HASH_MODEL)
    assert signature(final) == sigs[1]
    assert final.report is not None
    keep = {f"gen-{final.report.generation}", f"gen-{final.report.previous_generation}"}
    left = {p.name for p in index.iterdir()} - {"manifest.json", "build.lock"}
    assert left <= keep, left


def test_concurrent_builds_never_interleave(corpus: Path, tmp_path: Path):
    corpus_b = _state_b(corpus, tmp_path / "corpus_b")
    index = tmp_path / "index"
    env = {**os.environ, PAUSE_ENV: "0.5"}  # a build holds the lock for 3.5 s or more: the two overlap

    def start(c: Path, wait: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "haitirag", "build", "--corpus", str(c), "--index",
                                 str(index), "--model", HASH_MODEL, "-q", "--json", "--wait", wait], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    procs = [start(corpus, "0"), start(corpus_b, "0")]
    outs = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    refused = outs[[p.returncode for p in procs].index(2)][1]
    assert refused.startswith("error: another build is running") and "Traceback" not in refused
    assert_consistent(haitirag.load_index(index))

    procs = [start(corpus, "120"), start(corpus_b, "120")]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    reports = [json.loads(o) for o, _ in outs]
    a, b = reports  # serialised: the later build started from the generation the earlier one left
    assert a["generation"] != b["generation"]
    assert b["previous_generation"] == a["generation"] or a["previous_generation"] == b["generation"]
    gens = {a["generation"], b["generation"]}
    loaded = haitirag.load_index(index)
    assert loaded.manifest["generation"] in gens
    assert_consistent(loaded)


# -- a loaded index follows new builds -------------------------------------------------------------------------


def test_refresh_switches_to_a_new_build(hash_index: haitirag.Index, corpus: Path, monkeypatch):
    served = haitirag.load_index(hash_index.path)
    assert served.refresh() is False
    from haitirag.backend import FolderStore

    def no_read(*_a, **_k):  # type: ignore[no-untyped-def]
        raise AssertionError("refresh read the manifest although it did not change")

    with monkeypatch.context() as m:
        m.setattr(FolderStore, "read_manifest", no_read)
        assert served.refresh() is False  # one stat, no read
    edit(corpus)
    haitirag.build_index(corpus, hash_index.path, model=HASH_MODEL)
    assert served.search("Grindavik", k=1, mode="keyword") == []  # not yet switched
    assert served.refresh() is True
    assert served.search("Grindavik", k=1, mode="keyword")[0].title == "Volcano alert in Iceland"
    assert served.search("Benin", k=3, mode="keyword") == []
    assert served.refresh() is False
    assert_consistent(served)

    haitirag.build_index(corpus, hash_index.path, model="hash:32")  # another model: another embedder
    assert served.refresh() is True and served.model == "hash:32"
    assert served.search("lava fissure", k=1, mode="dense")[0].title == "Volcano alert in Iceland"


def test_refresh_keeps_serving_when_the_new_build_is_broken(hash_index: haitirag.Index, corpus: Path):
    served = haitirag.load_index(hash_index.path)
    generation = served.manifest["generation"]
    manifest = hash_index.path / "manifest.json"
    m = json.loads(manifest.read_text())
    staged = hash_index.path / "staged.json"
    staged.write_text(json.dumps({**m, "generation": "nonexistent0"}))
    os.replace(staged, manifest)
    assert served.refresh() is False and served.manifest["generation"] == generation
    assert served.search("Nile perch", k=1)
    haitirag.build_index(corpus, hash_index.path, model=HASH_MODEL)  # the next good build is picked up
    assert served.refresh() is True and served.manifest["generation"] != generation


def test_load_retries_when_a_build_swaps_in_meanwhile(hash_index: haitirag.Index, corpus: Path, monkeypatch):
    calls = []
    building = threading.Event()
    original = haitirag.Index._load_generation.__func__  # type: ignore[attr-defined]

    def racing(cls, path, manifest, model, embedder):  # type: ignore[no-untyped-def]
        if building.is_set():  # the build's own loads
            return original(cls, path, manifest, model, embedder)
        calls.append(manifest["generation"])
        if len(calls) == 1:  # a build swaps in a new generation and prunes this one mid-read
            edit(corpus)
            building.set()
            haitirag.build_index(corpus, hash_index.path, model=HASH_MODEL)
            building.clear()
            raise IndexCorruptError("index file gone")
        return original(cls, path, manifest, model, embedder)

    monkeypatch.setattr(haitirag.Index, "_load_generation", classmethod(racing))
    loaded = haitirag.Index.load(hash_index.path)
    assert len(calls) == 2 and calls[0] != calls[1] == loaded.manifest["generation"]


# -- watch ------------------------------------------------------------------------------------------------


def test_watch_debounces_and_rebuilds(corpus: Path, tmp_path: Path):
    index = tmp_path / "index"
    builds: list[tuple[float, haitirag.BuildReport]] = []
    stop = threading.Event()
    thread = threading.Thread(target=watch, args=(corpus, index), kwargs=dict(
        interval=0.05, debounce=0.6, on_build=lambda r: builds.append((time.monotonic(), r)), stop=stop,
        model=HASH_MODEL), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not builds and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(builds) == 1 and builds[0][1].wrote
        note = corpus / "note.txt"
        last_write = 0.0
        for i in range(20):  # a burst of writes: no build until it stops
            note.write_text(f"Field note\n\nThe ferry to Grindavik ran {i} times this week.\n")
            last_write = time.monotonic()
            time.sleep(0.05)
        while len(builds) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(builds) == 2 and builds[1][0] >= last_write + 0.6
        assert builds[1][1].added == ["note.txt"] and builds[1][1].chunks_embedded > 0
        time.sleep(1.0)
        assert len(builds) == 2  # no change, no build
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    index_now = haitirag.load_index(index)
    assert "ran 19 times" in index_now.search("ferry Grindavik", k=1, mode="keyword")[0].text


def test_watch_command_stops_cleanly_on_ctrl_c(corpus: Path, tmp_path: Path):
    index = tmp_path / "index"
    proc = subprocess.Popen([sys.executable, "-m", "haitirag", "watch", "--corpus", str(corpus), "--index",
                             str(index), "--model", HASH_MODEL, "--interval", "0.1", "--debounce", "0.3", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as from a terminal,
    try:  # even when the tests themselves run in the background (there SIGINT is ignored, and children inherit it)
        deadline = time.monotonic() + 60
        while not (index / "manifest.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        first = haitirag.load_index(index).manifest["generation"]
        (corpus / "court.md").unlink()
        while time.monotonic() < deadline:
            loaded = haitirag.load_index(index)
            if loaded.manifest["generation"] != first:
                break
            time.sleep(0.1)
        assert "court.md" not in {d.path for d in loaded.documents.values()}
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped watching" in out and "deleted 1" in out and "Traceback" not in err
