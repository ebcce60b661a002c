"""Measure incremental rebuilds: full build, rebuild after editing 1 % of the documents, no-op rebuild.

    python bench/incremental.py --corpus ../shared/eval/squad11/corpus.jsonl [--rounds 3] [--fraction 0.01]

Works on a temporary copy of the corpus (the original is never touched). Each build runs as its own
``haitirag build`` process, as a user runs it, so every figure includes starting Python and, where
something must be embedded, loading the model; "in-process" is the build's own ``report.seconds``.
The "model loaded" row is a rebuild through ``update_index`` with an embedder that is already loaded,
as ``haitirag watch`` does. Also times ``haitirag status`` and ``Index.refresh``. Prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import haitirag
from haitirag.build import update_index
from haitirag.embedding import make_embedder


def cli(*args: str) -> tuple[float, dict[str, Any]]:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "haitirag", *args, "--json"], capture_output=True, text=True,
                       check=False)
    wall = time.perf_counter() - t
    if r.returncode:
        sys.exit(f"haitirag {' '.join(args)} failed: {r.stderr}")
    return wall, json.loads(r.stdout)


def edit(corpus_file: Path, fraction: float, rng: random.Random, tag: str) -> list[tuple[str, str]]:
    """Append a sentence to ``fraction`` of the documents (one JSONL line each); return (id, marker word)."""
    lines = corpus_file.read_text(encoding="utf-8").splitlines()
    picked = rng.sample(range(len(lines)), max(1, round(len(lines) * fraction)))
    ids = []
    for i in picked:
        doc = json.loads(lines[i])
        marker = f"zq{tag}x{i}"
        doc["text"] += f" An editor revised this paragraph in round {tag} (marker {marker})."
        lines[i] = json.dumps(doc, ensure_ascii=False)
        ids.append((doc["id"], marker))
    corpus_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True, help="a .jsonl corpus file (copied, never modified)")
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--rounds", type=int, default=3, help="repetitions of each rebuild (median reported)")
    ap.add_argument("--fraction", type=float, default=0.01, help="share of documents edited (default: 0.01)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="haitirag-bench-"))
    try:
        corpus = work / "corpus"
        corpus.mkdir()
        corpus_file = corpus / Path(args.corpus).name
        shutil.copyfile(args.corpus, corpus_file)
        index = work / "index"
        common = ("--corpus", str(corpus), "--index", str(index), "--model", args.model, "-q")
        print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", file=sys.stderr)

        stages: dict[str, list[dict[str, float]]] = {"full build": [], "nothing changed": [], "1 % modified": []}
        full_wall, full = cli("build", *common)
        stages["full build"].append({"process start-up and exit": full_wall - full["seconds"], **full["timings"]})
        rows: list[tuple[str, list[float], list[float], str]] = []
        rows.append(("full build", [full_wall], [full["seconds"]], f"{full['chunks_embedded']} chunks embedded"))

        walls, ins = [], []
        for _ in range(args.rounds):
            wall, rep = cli("build", *common)
            assert not rep["wrote"] and not rep["changed"] and rep["chunks_embedded"] == 0, rep
            walls.append(wall)
            ins.append(rep["seconds"])
            stages["nothing changed"].append({"process start-up and exit": wall - rep["seconds"], **rep["timings"]})
        rows.append(("nothing changed", walls, ins, "no model, nothing written"))

        walls, ins, status_walls, embedded = [], [], [], []
        served = haitirag.load_index(index)
        refresh_switch = []
        for r in range(args.rounds):
            ids = edit(corpus_file, args.fraction, rng, f"{r}")
            wall, st = cli("status", "--corpus", str(corpus), "--index", str(index), "--model", args.model)
            assert sorted(p.split("#", 1)[1] for p in st["modified"]) == sorted(i for i, _ in ids), st["modified"]
            status_walls.append(wall)
            wall, rep = cli("build", *common)
            assert len(rep["modified"]) == len(ids) and not rep["full"], rep
            walls.append(wall)
            ins.append(rep["seconds"])
            embedded.append(rep["chunks_embedded"])
            stages["1 % modified"].append({"process start-up and exit": wall - rep["seconds"], **rep["timings"]})
            t = time.perf_counter()
            assert served.refresh()
            refresh_switch.append(time.perf_counter() - t)
            for doc_id, marker in ids:  # the served index has the new text
                assert served.search(marker, k=1, mode="keyword")[0].doc_id == doc_id
        n_edit = len(ids)
        rows.append((f"{n_edit} documents modified ({args.fraction:.0%})", walls, ins,
                     f"{statistics.median(embedded):.0f} chunks embedded"))

        emb = make_embedder(args.model)
        emb.encode(["warm-up"])
        warm = []
        for r in range(args.rounds):
            edit(corpus_file, args.fraction, rng, f"w{r}")
            rep2 = update_index(corpus, index, embedder=emb)
            assert len(rep2.modified) == n_edit
            warm.append(rep2.seconds)
        rows.append((f"{n_edit} modified, model already loaded (watch)", [], warm, "update_index in one process"))
        rows.append(("status after the edit", status_walls, [], "haitirag status --json"))

        assert served.refresh()  # switch to the last build first: time only the no-op checks
        t = time.perf_counter()
        n = 2000
        for _ in range(n):
            served.refresh()
        noop_us = (time.perf_counter() - t) / n * 1e6

        base = full_wall
        print(f"\ncorpus: {args.corpus} ({full['documents']} documents, {full['chunks']} chunks), model "
              f"{args.model}, {os.cpu_count()} CPUs; median of {args.rounds} rounds\n")
        print("| rebuild | wall s (haitirag build process) | % of full build | in-process s (report) | notes |")
        print("|---|---:|---:|---:|---|")
        for name, w, i, note in rows:
            ws = f"{statistics.median(w):.2f}" if w else "-"
            pct = f"{100 * statistics.median(w) / base:.1f} %" if w else f"{100 * statistics.median(i) / base:.1f} %"
            ins_s = f"{statistics.median(i):.2f}" if i else "-"
            print(f"| {name} | {ws} | {pct} | {ins_s} | {note} |")
        names = list(dict.fromkeys(k for runs in stages.values() for t in runs for k in t))
        print("\nwhere the time goes (median seconds per stage):\n")
        print("| stage | " + " | ".join(stages) + " |")
        print("|---|" + "---:|" * len(stages))
        for name in names:
            cells = [f"{statistics.median(t.get(name, 0.0) for t in runs):.2f}" if runs else "-"
                     for runs in stages.values()]
            print(f"| {name} | " + " | ".join(cells) + " |")
        print(f"\nIndex.refresh(): {noop_us:.1f} µs when nothing changed; "
              f"{1000 * statistics.median(refresh_switch):.0f} ms to switch to a new build")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
