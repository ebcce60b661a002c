"""Build an index over an evaluation corpus and measure retrieval: build time, chunks/s, recall@k, MRR@10.

    python bench/retrieval.py --corpus ../shared/eval/squad11/corpus.jsonl \
        --questions ../shared/eval/squad11/questions-dev.jsonl [--limit 1000] [--index bench/out/squad11]

Prints one table row per retriever (dense, keyword, hybrid). Recall@k: share of answerable questions
with a gold document among the top k passages.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import haitirag


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--questions", required=True)
    ap.add_argument("--index", default="bench/out/index")
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--limit", type=int, default=0, help="use the first N answerable questions (0: all)")
    ap.add_argument("--reuse", action="store_true", help="keep an existing index (skip the timed build)")
    args = ap.parse_args()

    index_dir = Path(args.index)
    if not args.reuse and index_dir.exists():
        shutil.rmtree(index_dir)
    t0 = time.perf_counter()
    index = haitirag.build_index(args.corpus, index_dir, model=args.model, progress=True)
    build_s = time.perf_counter() - t0
    rep = index.report
    assert rep is not None
    print("| corpus | documents | chunks | build s | embed s | chunks/s (embedding) | precision |")
    print("|---|---:|---:|---:|---:|---:|---|")
    rate = rep.chunks_embedded / rep.embed_seconds if rep.embed_seconds else float("nan")
    print(f"| {args.corpus} | {rep.documents} | {rep.chunks} | {build_s:.1f} | {rep.embed_seconds:.1f} | "
          f"{rate:.0f} | {index.manifest['precision']} |")

    questions = [json.loads(line) for line in Path(args.questions).read_text(encoding="utf-8").splitlines() if line]
    questions = [q for q in questions if q.get("gold_ids") and not q.get("is_impossible")]
    if args.limit:
        questions = questions[: args.limit]
    print()
    print("| retriever | questions | recall@1 | recall@5 | recall@10 | MRR@10 | queries/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for mode in ("dense", "keyword", "hybrid"):
        hits = {1: 0, 5: 0, 10: 0}
        rr = 0.0
        t = time.perf_counter()
        for q in questions:
            ids = [p.doc_id for p in index.search(q["question"], k=10, mode=mode)]
            gold = set(q["gold_ids"])
            rank = next((i for i, d in enumerate(ids) if d in gold), None)
            if rank is not None:
                rr += 1 / (rank + 1)
                for k in hits:
                    hits[k] += rank < k
        qps = len(questions) / (time.perf_counter() - t)
        n = len(questions)
        r1, r5, r10 = (hits[k] / n for k in (1, 5, 10))
        print(f"| {mode} | {n} | {r1:.3f} | {r5:.3f} | {r10:.3f} | {rr / n:.3f} | {qps:.0f} |")


if __name__ == "__main__":
    main()
