"""From what size an edit should append a segment rather than rewrite the index (``build.APPEND_FROM``).

    python bench/append.py --corpus ../shared/eval/squad11/corpus.jsonl [--sizes 100,500,2000,10000] [--rounds 5]

For each size, an index of about that many chunks of long documents: the corpus's articles (``bench/peer.py
--articles``, about 43 chunks each), repeated under new ids when more are needed. Then, ``--rounds`` times, one
article is edited (a sentence appended) and the index brought up to date in process (``update_index``, the embedder
loaded) two ways: rewriting everything (``APPEND_FROM`` above the size) and appending a segment (``APPEND_FROM``
0). Printed: each way's median update time and its slowest stages (the report's ``timings``), and the median hybrid
search time of the resulting index (two segments after appending) over 50 of the corpus's words. The test embedder
(``--model hash:384``, the default) leaves only the pipeline's own cost.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.peer import articles
from haitirag import build as build_mod
from haitirag.build import update_index
from haitirag.embedding import make_embedder
from haitirag.index import load_index


def corpus_of(docs: list[dict], size: int, per_doc: float, out: Path) -> int:  # type: ignore[type-arg]
    """Write about ``size`` chunks of articles to ``out`` (repeated under new ids); return the documents."""
    n = max(2, round(size / per_doc))
    with out.open("w", encoding="utf-8") as f:
        for i in range(n):
            doc = docs[i % len(docs)]
            copy = i // len(docs)
            f.write(json.dumps({**doc, "id": f"{doc['id']}-{copy}" if copy else doc["id"]}, ensure_ascii=False) + "\n")
    return n


def edited(path: Path, which: int, tag: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    doc = json.loads(lines[which])
    doc["text"] += f" An editor added this sentence in round {tag}."
    lines[which] = json.dumps(doc, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def searched(index_dir: Path, model: str, words: list[str]) -> float:
    index = load_index(index_dir, model)
    index.search(words[0], k=5)
    times = []
    for w in words:
        t = time.perf_counter()
        index.search(w, k=5)
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True, help="a .jsonl corpus of paragraphs (SQuAD's), never modified")
    ap.add_argument("--sizes", default="100,500,2000,10000", help="chunks, comma-separated")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--model", default="hash:384")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="haitirag-append-"))
    emb = make_embedder(args.model)
    rows = []
    try:
        docs = [json.loads(line) for line in articles(args.corpus, work / "articles.jsonl").read_text(
            encoding="utf-8").splitlines()]
        words = sorted({w for d in docs[:5] for w in d["text"].split() if w.isalpha() and len(w) > 6})[:50]
        per_doc = 43.0
        for size in (int(s) for s in args.sizes.split(",")):
            result = {}
            for way, append_from in (("rewrite", 10**12), ("append", 0)):
                folder = work / f"{size}-{way}"
                (folder / "corpus").mkdir(parents=True)
                path = folder / "corpus" / "docs.jsonl"
                n_docs = corpus_of(docs, size, per_doc, path)
                build_mod.APPEND_FROM = append_from
                first = update_index(folder / "corpus", folder / "index", embedder=emb, full=True)
                times, stages = [], []
                for r in range(args.rounds):
                    edited(path, (r * 7) % n_docs, f"{r}")
                    rep = update_index(folder / "corpus", folder / "index", embedder=emb)
                    times.append(rep.seconds)
                    stages.append(rep.timings)
                slow = sorted(stages[0], key=lambda k: -statistics.median(s.get(k, 0.0) for s in stages))[:3]
                result[way] = (statistics.median(times) * 1000, ", ".join(
                    f"{k} {1000 * statistics.median(s.get(k, 0.0) for s in stages):.0f}" for k in slow),
                    searched(folder / "index", args.model, words), first.chunks_embedded)
                shutil.rmtree(folder)
            rows.append(result)
            print(f"done {size}", file=sys.stderr)
    finally:
        build_mod.APPEND_FROM = 10_000
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n1 article edited (a sentence appended), update_index in process, model {args.model}; median of "
          f"{args.rounds} rounds\n")
    print("| chunks | rewrite ms | its slowest stages (ms) | append ms | its slowest stages (ms) | search p50 ms: "
          "rewritten / appended |")
    print("|---:|---:|---|---:|---|---:|")
    for res in rows:
        rw, ap_ = res["rewrite"], res["append"]
        print(f"| {rw[3]:,} | {rw[0]:.0f} | {rw[1]} | {ap_[0]:.0f} | {ap_[1]} | {rw[2]:.2f} / {ap_[2]:.2f} |")


if __name__ == "__main__":
    main()
