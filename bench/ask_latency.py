"""Latency of ``Index.ask``, cold (a question not asked before) and warm (asked again), and where it goes.

    python bench/ask_latency.py [--corpus corpus] [--index bench/out/seed] [--rounds 5]
    python bench/ask_latency.py --corpus ../shared/eval/squad11/corpus.jsonl --index IDX11 \
        --questions ../shared/eval/squad11/questions-dev.jsonl --sample 100

Builds (or reuses) the index and warms the models up with one question. Then each question (the seed
questions below, or ``--sample`` questions drawn with a fixed seed from ``--questions``) is asked once cold
and ``--rounds`` times warm. Prints median and 90th percentile in milliseconds, with the median of each
stage: retrieval (hybrid search), first stage (sentence ranking, with the sentence vectors it computes and
caches), reader (the trained model over the best candidates). Target: median at most 150 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

QUESTIONS = [
    ("Who signed the agreement for the deployment of police officers?", ()),
    ("Which court blocked Kenya's deployment?", ()),
    ("How many troops did Benin pledge to the mission?", ()),
    ("What is the population of Haiti?", ()),
    ("Who is Ariel Henry?", ()),
    ("When was it signed?", ("Who signed the agreement for the deployment of police officers?",)),
]


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=10)[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="corpus")
    ap.add_argument("--index", default="bench/out/seed")
    ap.add_argument("--questions", help="a question file to sample from instead of the seed questions")
    ap.add_argument("--sample", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()

    t0 = time.perf_counter()
    from haitirag.evaluate import open_eval_index

    index = open_eval_index(args.corpus, args.index)
    index.ask("warm up")
    print(f"index ready and models warm in {time.perf_counter() - t0:.1f} s ({len(index.documents)} documents, "
          f"{len(index)} chunks)\n")
    questions: list[tuple[str, tuple[str, ...]]] = QUESTIONS
    if args.questions:
        with open(args.questions, encoding="utf-8") as f:
            pool = [json.loads(line)["question"] for line in f if line.strip()]
        questions = [(q, ()) for q in random.Random(0).sample(pool, min(args.sample, len(pool)))]
    rows: dict[str, dict[str, list[float]]] = {"cold": {}, "warm": {}}
    for q, history in questions:
        for run in ["cold"] + ["warm"] * args.rounds:
            t = time.perf_counter()
            a = index.ask(q, history=history)
            total = (time.perf_counter() - t) * 1000
            ms = a.details.get("ms", {})
            for name, v in (("total", total), ("first stage", ms.get("rank", 0.0)), ("reader", ms.get("read", 0.0)),
                            ("retrieval and the rest", total - ms.get("rank", 0.0) - ms.get("read", 0.0))):
                rows[run].setdefault(name, []).append(v)
    print(f"{len(questions)} questions, each once cold and {args.rounds} times warm\n")
    print("| run | median ms | p90 ms | first stage (median) | reader (median) | retrieval and the rest (median) |")
    print("|---|---:|---:|---:|---:|---:|")
    for run, r in rows.items():
        print(f"| {run} | **{statistics.median(r['total']):.0f}** | {pct(r['total'], 9):.0f} "
              f"| {statistics.median(r['first stage']):.0f} | {statistics.median(r['reader']):.0f} "
              f"| {statistics.median(r['retrieval and the rest']):.0f} |")


if __name__ == "__main__":
    main()
