"""Latency of ``Index.ask`` on the seed index: median and 90th percentile over repeated questions.

    python bench/ask_latency.py [--corpus corpus] [--index bench/out/seed] [--rounds 20]

Builds (or reuses) the index, warms the model up with one question, then times each question of
``QUESTIONS`` ``--rounds`` times and prints a table (milliseconds). Target: median under 50 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time

QUESTIONS = [
    ("Who signed the agreement for the deployment of police officers?", ()),
    ("Which court blocked Kenya's deployment?", ()),
    ("How many troops did Benin pledge to the mission?", ()),
    ("What is the population of Haiti?", ()),
    ("When?", ("Who signed the agreement for the deployment of police officers?",)),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="corpus")
    ap.add_argument("--index", default="bench/out/seed")
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()

    t0 = time.perf_counter()
    from haitirag.evaluate import open_eval_index

    index = open_eval_index(args.corpus, args.index)
    index.ask("warm up")
    print(f"index ready and model warm in {time.perf_counter() - t0:.1f} s ({len(index.documents)} documents, "
          f"{len(index)} chunks)\n")
    print("| question | median ms | p90 ms | abstained |")
    print("|---|---:|---:|---|")
    every: list[float] = []
    for q, history in QUESTIONS:
        times = []
        for _ in range(args.rounds):
            t = time.perf_counter()
            a = index.ask(q, history=history)
            times.append((time.perf_counter() - t) * 1000)
        every.extend(times)
        label = q if not history else f"{q} (follow-up)"
        p90 = statistics.quantiles(times, n=10)[-1]
        print(f"| {label} | {statistics.median(times):.1f} | {p90:.1f} | {a.abstained} |")
    print(f"| **all** | **{statistics.median(every):.1f}** | {statistics.quantiles(every, n=10)[-1]:.1f} | |")


if __name__ == "__main__":
    main()
