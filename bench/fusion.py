"""Fusion ablation: recall@k and MRR@10 of dense, BM25 and their fusions on one index and question file.

    python bench/fusion.py --index /work/cache/squad11 \
        --questions ../shared/eval/squad11/questions-dev.jsonl --limit 1000

Each question is embedded and BM25-scored once; every fusion ranks the same two candidate lists
(top ``--candidates`` of each retriever, as ``Index.search`` does). Prints a table.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

import haitirag
from haitirag.evaluate import load_questions

Lists = tuple[dict[int, float], dict[int, float]]


def rrf(k: int, w: float = 0.5) -> Callable[[Lists], list[int]]:
    def fuse(lists: Lists) -> list[int]:
        out: dict[int, float] = {}
        for weight, ranking in zip((w, 1 - w), lists, strict=True):
            for rank, i in enumerate(ranking):
                out[i] = out.get(i, 0.0) + weight / (k + rank + 1)
        return sorted(out, key=lambda i: (-out[i], i))
    return fuse


def convex(w: float) -> Callable[[Lists], list[int]]:
    """w * min-max-normalised cosine + (1 - w) * min-max-normalised BM25 (missing = 0)."""
    def fuse(lists: Lists) -> list[int]:
        norm = []
        for scores in lists:
            if not scores:
                norm.append({})
                continue
            lo, hi = min(scores.values()), max(scores.values())
            norm.append({i: (s - lo) / (hi - lo) if hi > lo else 1.0 for i, s in scores.items()})
        ids = set(norm[0]) | set(norm[1])
        out = {i: w * norm[0].get(i, 0.0) + (1 - w) * norm[1].get(i, 0.0) for i in ids}
        return sorted(out, key=lambda i: (-out[i], i))
    return fuse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", required=True)
    ap.add_argument("--questions", required=True)
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--candidates", type=int, default=50)
    args = ap.parse_args()
    index = haitirag.load_index(args.index)
    qs = [q for q in load_questions(args.questions) if q.answerable and q.gold_ids][: args.limit]
    methods: dict[str, Callable[[Lists], list[int]]] = {
        "dense only": lambda lists: list(lists[0]),
        "BM25 only": lambda lists: list(lists[1]),
        "RRF k=60 (the previous default)": rrf(60),
        "RRF k=20": rrf(20),
        "RRF k=60, BM25 weight 0.6": rrf(60, 0.4),
        "convex w=0.3": convex(0.3),
        "convex w=0.5": convex(0.5),
        "convex w=0.7": convex(0.7),
    }
    stats = {name: [0, 0, 0, 0.0] for name in methods}
    for q in qs:
        dense = dict(index.dense_scores(q.question, args.candidates))
        bm = index.keyword.scores(q.question)
        top = np.argsort(-bm, kind="stable")[: args.candidates]
        kw = {int(i): float(bm[i]) for i in top if bm[i] > 0}
        gold = set(q.gold_ids)
        for name, fuse in methods.items():
            docs = [index.chunks[i].doc_id for i in fuse((dense, kw))[:10]]
            rank = next((r for r, d in enumerate(docs) if d in gold), None)
            if rank is not None:
                s = stats[name]
                s[0] += rank < 1
                s[1] += rank < 5
                s[2] += rank < 10
                s[3] += 1.0 / (rank + 1)
    n = len(qs)
    print(f"{n} answerable questions, {args.candidates} candidates per retriever\n")
    print("| fusion | recall@1 | recall@5 | recall@10 | MRR@10 |")
    print("|---|---:|---:|---:|---:|")
    for name, (r1, r5, r10, mrr) in stats.items():
        print(f"| {name} | {r1 / n:.3f} | {r5 / n:.3f} | {r10 / n:.3f} | {mrr / n:.3f} |")


if __name__ == "__main__":
    main()
