"""The index folder at 10k / 100k / 1M chunks: write, load, search, verify, RSS and disk; one table.

    python bench/scale.py --questions ../shared/eval/squad11/questions-dev.jsonl \\
        [--corpus ../shared/eval/squad11/corpus.jsonl] [--sizes 10000,100000,1000000] [--queries 200] \\
        [--builds 10000,100000,1000000 [--measure-builds]]

Each size is written once into ``--work`` (kept, and reused while its manifest says the same count): the SQuAD
v1.1 dev paragraphs again and again, each copy perturbed (``bench/rows.py``: one chunk a document, ten sources,
dates over 2020-2024), vectors from the test embedder ``hash:384`` (the model's size; the figures are the
pipeline's own cost, not the model's), ``--index-type auto`` (exact up to 100k chunks, HNSW from there).
Then, in a new process each, as a user's command line or server starts (``--cold``: with the page cache emptied
first, as after a reboot; root only):

* **load**: ``load_index`` (manifest, sizes and small files' checksums, the columns memory-mapped, FAISS read),
  and the process's RSS after it (before any model is loaded);
* **search**: ``Index.search`` p50 / p99 over ``--queries`` dev questions (k 5, 50 candidates a retriever),
  hybrid, dense, keyword, and hybrid with a filter (one source of ten; a date range, a fifth of the rows). The
  question's vector is given (``remember_query``): its encode is the model's cost, not the index's;
* **first search**: the first hybrid question after load (pages of the memory-mapped files read in); the
  timed runs follow one untimed run of every question in every mode (a server that has been answering a while);
* **ask**: ``Index.ask`` p50 / p99 over the first ``--asks`` of those questions (first stage and the reader, on
  ONNX Runtime after ``haitirag export``; the reader's cost does not grow with the index, the rest does);
* **verify**: ``haitirag verify`` (every file's SHA-256, every chunk's offsets).

``--builds 10000,100000,1000000``: also the real pipeline at those sizes, each ``haitirag build --model hash:384``
its own process on the same rows written as a JSONL corpus: a full build (from ``--direct-from`` chunks the
first index is written by the bench itself, the corpus's documents one chunk each), then one document edited,
another edited, nothing changed; wall time, the build's own stage timings and the build process's peak RSS
(VmHWM). ``--measure-builds``: then the load / search table for those indexes too, as the edits left them (a
second segment, removed rows); ``--measured-only``: that table alone, for the indexes an earlier run left.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rows import SOURCES, corpus_rows, pct, write

MODES = {"hybrid": {}, "dense": {"mode": "dense"}, "keyword": {"mode": "keyword"},
         "hybrid, one source": {"sources": [SOURCES[3]]},
         "hybrid, date range": {"date_from": "2021-01-01", "date_to": "2021-12-31"}}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(folder: str, questions: list[str], asks: int) -> dict:  # type: ignore[type-arg]
    """In a fresh process: load, RSS, first search, search latencies per mode."""
    t0 = time.perf_counter()
    from haitirag import load_index
    from haitirag.embedding import HashEmbedder

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = load_index(folder)
    t_load = time.perf_counter() - t0
    out = {"import_s": t_import, "load_s": t_load, "rss_mb": rss_mb()}
    vecs = HashEmbedder(384).encode(questions)
    for q, v in zip(questions, vecs, strict=True):
        index.remember_query(q, v)
    t0 = time.perf_counter()
    index.search(questions[0], k=5)
    out["first_ms"] = 1000 * (time.perf_counter() - t0)
    for kw in MODES.values():  # once untimed: the memory-mapped pages these questions touch are read in
        for q in questions:
            index.search(q, k=5, **kw)
    out["warm_rss_mb"] = rss_mb()
    for name, kw in MODES.items():
        times = []
        for q in questions:
            t0 = time.perf_counter()
            index.search(q, k=5, **kw)
            times.append(1000 * (time.perf_counter() - t0))
        out[name] = (statistics.median(times), pct(times, 0.99))
    index.ask(questions[0])  # the reader loaded
    times = []
    for q in questions[:asks]:
        t0 = time.perf_counter()
        index.ask(q)
        times.append(1000 * (time.perf_counter() - t0))
    out["ask"] = (statistics.median(times), pct(times, 0.99)) if times else (float("nan"), float("nan"))
    return out


def make(folder: Path, paragraphs: list[dict], n: int) -> dict:  # type: ignore[type-arg]
    """Write ``n`` chunks into ``folder`` unless it already holds them; the write's figures."""
    from haitirag.backend import FolderStore
    from haitirag.embedding import HashEmbedder
    from haitirag.index import embed_text
    from haitirag.store import read_manifest

    try:
        if read_manifest(folder, catalog=False)["counts"]["chunks"] == n:
            return {}
    except Exception:
        pass
    t0 = time.perf_counter()
    docs, chunks = corpus_rows(paragraphs, n)
    texts = [embed_text(d.title, d.text) for d in docs]
    t_rows = time.perf_counter() - t0
    t0 = time.perf_counter()
    emb = HashEmbedder(384)
    matrix = emb.encode(texts)
    t_embed = time.perf_counter() - t0
    seconds, laps = write(FolderStore(folder), docs, chunks, matrix, texts, emb.name, "auto")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rows_s": t_rows, "embed_s": t_embed, "write_s": seconds, "laps": laps, "peak_mb": peak}


PEAK = ("import sys; from haitirag.cli import main; rc = main(sys.argv[1:]); "  # VmHWM: this process's own peak
        "print('PEAK', next(line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM')), "
        "file=sys.stderr); sys.exit(rc)")  # (ru_maxrss would carry over a large parent's peak through exec)


def builds(folder: Path, paragraphs: list[dict], n: int, direct_from: int) -> dict[str, tuple[float, float]]:  # type: ignore[type-arg]
    """Full build, one document edited, another edited, nothing changed: (seconds, peak RSS MB) of each
    ``haitirag build``. From ``direct_from`` chunks the first index is written by this process instead (the
    corpus's own documents, one chunk each, through ``FolderStore.write``: a full build through the command line
    takes most of an hour there)."""
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    corpus = folder / "corpus.jsonl"
    docs, _ = corpus_rows(paragraphs, n)

    def write_corpus() -> None:
        with corpus.open("w", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps({"id": d.doc_id, "title": d.title, "text": d.text, "date": d.date,
                                    "source": d.source}, ensure_ascii=False) + "\n")

    def edit(i: int) -> None:
        d = docs[i]
        docs[i] = type(d)(**{**d.__dict__, "text": d.text + " An editor revised this paragraph."})
        write_corpus()

    write_corpus()
    out = {}
    if n >= direct_from:  # in a process of its own: this one stays small, the page cache keeps the files
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, __file__, "--questions", "-", "--write-directly", str(corpus),
                            str(folder / "index")], check=True, capture_output=True, text=True)
        print(f"{n:,} written directly: {time.perf_counter() - t0:.1f} s, {r.stdout.strip()}", flush=True)
    steps = (["full build"] if n < direct_from else []) + ["1 document edited", "another document edited",
                                                            "nothing changed"]
    for step in steps:
        if step == "1 document edited":
            edit(n // 2)
        elif step == "another document edited":
            edit(n // 3)
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-c", PEAK, "build", "-q", "--json", "--corpus", str(corpus), "--index",
                            str(folder / "index"), "--model", "hash:384"], capture_output=True, text=True, check=True)
        peak = next(int(line.split()[1]) for line in r.stderr.splitlines() if line.startswith("PEAK")) / 1024
        out[step] = (time.perf_counter() - t0, peak)
        report = json.loads(r.stdout)
        stages = {k: round(v, 1) for k, v in report.get("timings", {}).items()}
        print(f"{n:,} {step}: {out[step][0]:.1f} s, peak RSS {peak:,.0f} MB, full {report['full']}, "
              f"embedded {report['chunks_embedded']}; stages {stages}", flush=True)
    return out


def _write_directly(corpus: Path, index: Path) -> dict[str, float]:
    """The index of ``corpus`` with one chunk a document, as ``haitirag build --model hash:384`` would record it
    (same documents, catalog, model and settings), written by ``FolderStore.write``."""
    from haitirag.backend import FolderStore
    from haitirag.chunking import Chunker
    from haitirag.corpus import load_corpus
    from haitirag.embedding import HashEmbedder
    from haitirag.index import embed_text
    from haitirag.records import Chunk

    t0 = time.perf_counter()
    docs = load_corpus(corpus).documents
    chunks = [Chunk(Chunker.chunk_id(d.doc_id, 0, len(d.text)), d.doc_id, d.text, 0, len(d.text), len(d.text) // 4)
              for d in docs]
    texts = [embed_text(d.title, d.text) for d in docs]
    t_rows = time.perf_counter() - t0
    emb = HashEmbedder(384)
    t0 = time.perf_counter()
    matrix = emb.encode(texts)
    t_embed = time.perf_counter() - t0
    seconds, laps = write(FolderStore(index), docs, chunks, matrix, texts, emb.name, "auto")
    return {"rows_s": round(t_rows, 1), "embed_s": round(t_embed, 1), "write_s": round(seconds, 1),
            **{k: round(v, 1) for k, v in laps.items()}}


def du_mb(folder: Path) -> float:
    """Bytes on disk, a file linked into two generations counted once."""
    seen = {p.stat().st_ino: p.stat().st_size for p in folder.rglob("*") if p.is_file()}
    return sum(seen.values()) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", required=True)
    ap.add_argument("--corpus", default="../shared/eval/squad11/corpus.jsonl")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--work", default="/tmp/haitirag-bench-scale")
    ap.add_argument("--cold", action="store_true", help="empty the page cache before each load (needs root)")
    ap.add_argument("--asks", type=int, default=30, help="questions asked (Index.ask) per size (default: 30)")
    ap.add_argument("--builds", default="", help="sizes to build through the real pipeline too (e.g. 10000,100000)")
    ap.add_argument("--measure-builds", action="store_true",
                    help="after --builds, measure load, search and verify on those indexes too")
    ap.add_argument("--measured-only", action="store_true",
                    help="with --builds: measure the indexes an earlier --builds run left, build nothing")
    ap.add_argument("--direct-from", type=int, default=200_000,
                    help="from this size the first index of --builds is written directly (default: 200000)")
    ap.add_argument("--measure", help=argparse.SUPPRESS)  # (the child process: an index folder)
    ap.add_argument("--write-directly", nargs=2, help=argparse.SUPPRESS)  # (the child process: corpus, index)
    args = ap.parse_args()
    if args.write_directly:
        print(json.dumps(_write_directly(Path(args.write_directly[0]), Path(args.write_directly[1]))))
        return
    questions = [json.loads(line)["question"] for line in Path(args.questions).open(encoding="utf-8")]
    questions = random.Random(1).sample(questions, min(args.queries, len(questions)))
    if args.measure:
        print(json.dumps(measure(args.measure, questions, args.asks)))
        return
    paragraphs = [json.loads(line) for line in Path(args.corpus).open(encoding="utf-8")]
    rows = []

    def measured(n: int, folder: Path) -> None:
        child = [sys.executable, __file__, "--questions", args.questions, "--queries", str(args.queries),
                 "--asks", str(args.asks), "--measure", str(folder)]
        if args.cold:  # the page cache emptied: the load reads from the disk, as after a reboot
            subprocess.run(["sync"], check=True)
            Path("/proc/sys/vm/drop_caches").write_text("3\n")
        got = json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "haitirag", "verify", "--index", str(folder)], check=True,
                       capture_output=True)
        got["verify_s"] = time.perf_counter() - t0
        got["disk_mb"] = du_mb(folder)
        from haitirag.store import read_manifest

        manifest = read_manifest(folder, catalog=False)
        got["kind"] = manifest["vectors"]["type"] + (f" + {len(manifest['segments']) - 1} segment"
                                                     if len(manifest["segments"]) > 1 else "")
        rows.append((n, got))
        print(f"{n:,}: {json.dumps(got)}", flush=True)

    for n in (int(x) for x in args.sizes.split(",") if x):
        folder = Path(args.work) / f"n{n}"
        made = make(folder, paragraphs, n)
        if made:
            print(f"{n:,} chunks written: rows {made['rows_s']:.1f} s, test embedder {made['embed_s']:.1f} s, "
                  f"store.write {made['write_s']:.1f} s {json.dumps({k: round(v, 1) for k, v in made['laps'].items()})}"
                  f", peak RSS {made['peak_mb']:,.0f} MB", flush=True)
        measured(n, folder)
    sizes = [int(x) for x in args.builds.split(",") if x]
    done = {} if args.measured_only else {n: builds(Path(args.work) / f"build{n}", paragraphs, n, args.direct_from)
                                          for n in sizes}
    if args.measure_builds or args.measured_only:  # the built indexes as the edits left them: 2 segments, removals
        for n in sizes:
            measured(n, Path(args.work) / f"build{n}" / "index")
    if rows:
        print(f"\n{args.queries} SQuAD v1.1 dev questions, k 5; the test embedder hash:384; search p50 / p99 in ms\n")
        print("| chunks | vectors | `load_index` | RSS after load | first search | " + " | ".join(MODES)
              + " | `ask` | RSS after searching | `haitirag verify` | disk |")
        print("|---:|---|---:|---:|---:|" + "---:|" * len(MODES) + "---:|---:|---:|---:|")
    for n, g in rows:
        cells = " | ".join(f"{g[m][0]:.1f} / {g[m][1]:.1f}" for m in MODES)
        print(f"| {n:,} | {g['kind']} | {g['load_s']:.2f} s | {g['rss_mb']:,.0f} MB | {g['first_ms']:.0f} ms | "
              f"{cells} | {g['ask'][0]:.0f} / {g['ask'][1]:.0f} | {g['warm_rss_mb']:,.0f} MB | "
              f"{g['verify_s']:.1f} s | {g['disk_mb']:,.0f} MB |")
    if done:
        steps = list(dict.fromkeys(step for got in done.values() for step in got))
        print("\n`haitirag build --model hash:384`, each its own process: seconds (peak RSS)\n")
        print("| chunks | " + " | ".join(steps) + " |")
        print("|---:|" + "---:|" * len(steps))
        for n, got in done.items():
            print(f"| {n:,} | " + " | ".join(f"{got[k][0]:.1f} s ({got[k][1]:,.0f} MB)" if k in got else "(written)"
                                             for k in steps) + " |")


if __name__ == "__main__":
    main()
