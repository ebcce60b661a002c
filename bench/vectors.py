"""Exact (flat) against HNSW vector search: build time, search time, recall@10 against exact.

    python bench/vectors.py --index IDX11 --questions ../shared/eval/squad11/questions-dev.jsonl \\
        [--sizes 10000,100000] [--queries 300]

Vectors: the index's own MiniLM chunk vectors (``IDX11``: the SQuAD v1.1 dev index of
``haitirag eval``), and for the larger sizes those vectors again with Gaussian noise (sigma 0.02 a
dimension, renormalised), so the neighbourhoods look like real ones; queries: the embedding of
``--queries`` dev questions (ONNX export or torch). Recall@10: the share of exact search's top 10 that
HNSW returns, also with a filter that allows 30 % of the rows (``vectors.search``). Prints a table.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", required=True)
    ap.add_argument("--questions", required=True)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()

    from haitirag import vectors
    from haitirag.index import load_index

    index = load_index(args.index)
    base = vectors.matrix(index.vectors)
    with open(args.questions, encoding="utf-8") as f:
        pool = [json.loads(line)["question"] for line in f if line.strip()]
    qs = random.Random(0).sample(pool, min(args.queries, len(pool)))
    queries = index.embedder.encode(qs)
    rng = np.random.default_rng(0)
    print(f"{len(base):,} real chunk vectors ({index.model}), {len(queries)} questions; HNSW {vectors.HNSW}\n")
    print("| vectors | kind | build s | search p50 ms | p99 ms | recall@10 | filtered recall@10 |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for n in [len(base), *(int(s) for s in args.sizes.split(",") if s)]:
        if n == len(base):
            data = base
        else:
            data = base[rng.integers(0, len(base), n)] + rng.normal(0, 0.02, (n, base.shape[1])).astype(np.float32)
            data /= np.linalg.norm(data, axis=1, keepdims=True)
        allowed = rng.random(n) < 0.3
        truth: dict[str, list[list[int]]] = {}
        for kind in ("flat", "hnsw"):
            t = time.perf_counter()
            vi, _ = vectors.build(data, kind)
            built = time.perf_counter() - t
            times, found, found_f = [], [], []
            for q in queries:
                v = q.reshape(1, -1)
                t = time.perf_counter()
                found.append([r for r, _ in vectors.search(vi, v, 10)])
                times.append(1000 * (time.perf_counter() - t))
                found_f.append([r for r, _ in vectors.search(vi, v, 10, allowed)])
            if kind == "flat":
                truth = {"all": found, "filtered": found_f}
            recall = statistics.mean(len(set(a) & set(b)) / 10 for a, b in zip(found, truth["all"], strict=True))
            recall_f = statistics.mean(len(set(a) & set(b)) / max(1, len(b))
                                       for a, b in zip(found_f, truth["filtered"], strict=True))
            times.sort()
            print(f"| {n:,} | {kind} | {built:.1f} | {statistics.median(times):.2f} "
                  f"| {times[int(0.99 * (len(times) - 1))]:.2f} | {recall:.3f} | {recall_f:.3f} |", flush=True)


if __name__ == "__main__":
    main()
