from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import HASH_MODEL


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "haitirag", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_help_is_instant_and_shows_examples():
    r = run("--help")
    assert r.returncode == 0 and "haitirag build" in r.stdout
    for cmd in ("build", "search", "ask", "serve"):
        r = run(cmd, "--help")
        assert r.returncode == 0 and "example" in r.stdout, cmd


def test_help_does_not_import_heavy_libraries():
    code = ("import sys, haitirag.cli as c; c._parser();"
            "print(sorted(m for m in ('torch','faiss','gradio','sentence_transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_build_search_and_exit_codes(corpus: Path, tmp_path: Path):
    index = tmp_path / "index"
    r = run("build", "--corpus", str(corpus), "--index", str(index), "--model", HASH_MODEL, "-q")
    assert r.returncode == 0, r.stderr
    assert "indexed 5 documents" in r.stdout
    r = run("search", "Nile perch", "--index", str(index), "-k", "2", "--json")
    assert r.returncode == 0, r.stderr
    hits = json.loads(r.stdout)
    assert len(hits) == 2 and {"doc_id", "chunk_id", "title", "date", "source", "text", "start", "end",
                               "score"} <= set(hits[0])
    for args, needle in [
        (("search", "", "--index", str(index)), "empty"),
        (("search", "court", "--index", str(index), "-k", "0"), "k must be"),
        (("search", "court", "--index", str(tmp_path / "missing")), "haitirag build"),
        (("build", "--corpus", str(tmp_path / "nothing"), "--index", str(index), "--model", HASH_MODEL), "not found"),
        (("search", "court", "--index", str(index), "--mode", "nope"), "invalid choice"),
    ]:
        r = run(*args)
        assert r.returncode != 0, args
        assert needle in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
        assert len([ln for ln in r.stderr.splitlines() if ln.startswith("error")]) == 1 or "usage" in r.stderr
