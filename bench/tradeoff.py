"""Abstention trade-off from saved answers: what each threshold refuses on SQuAD 2.0 and costs on SQuAD v1.1.

    haitirag eval --corpus ../shared/eval/squad20/corpus.jsonl --questions ../shared/eval/squad20/questions-dev.jsonl \
        --threshold 0 --json --items > e20.json
    haitirag eval --corpus ../shared/eval/squad11/corpus.jsonl --questions ../shared/eval/squad11/questions-dev.jsonl \
        --threshold 0 --json --items > e11.json
    python bench/tradeoff.py e20.json e11.json [--held-out 0 --questions20 Q20 --questions11 Q11]

At threshold 0 every answer is given with its score, so one run yields every threshold's figures (a
refusal counts as wrong). Prints a table and the lowest threshold that refuses at least 40 % of SQuAD 2.0's
unanswerable questions (how answer.THRESHOLD is chosen). ``--held-out H`` keeps only the articles that the
models were not fitted on (those whose name does not hash to H, as in bench/fit_answer.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from fit_answer import halves


def load(path: str, questions: str | None, fitted_half: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    items = json.loads(Path(path).read_text(encoding="utf-8"))["items"]
    if fitted_half is not None and questions:
        half = halves(questions)
        items = [it for it in items if half.get(str(it["id"]).split(".")[0]) != fitted_half]
    score = np.array([it.get("score", 0.0) if not it.get("error") else -1.0 for it in items])
    answerable = np.array([bool(it.get("answerable", True)) for it in items])
    correct = np.array([bool(it.get("correct", False)) for it in items])
    return score, answerable, correct


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("squad20", help="eval --json --items output on SQuAD 2.0 dev, --threshold 0")
    ap.add_argument("squad11", help="the same on SQuAD v1.1 dev")
    ap.add_argument("--held-out", type=int, choices=(0, 1), help="drop the articles of this (fitted) half")
    ap.add_argument("--questions20")
    ap.add_argument("--questions11")
    ap.add_argument("--thresholds", default="0,0.3,0.35,0.4,0.45,0.5,0.55,0.6,0.65,0.7")
    args = ap.parse_args()
    s2, a2, c2 = load(args.squad20, args.questions20, args.held_out)
    s1, _, c1 = load(args.squad11, args.questions11, args.held_out)
    print(f"SQuAD 2.0: {int((~a2).sum())} unanswerable, {int(a2.sum())} answerable; SQuAD v1.1: {len(s1)}")
    print("| threshold | 2.0 unanswerable refused | 2.0 answerable refused | 2.0 accuracy (answerable) "
          "| v1.1 refused | v1.1 accuracy |")
    print("|---:|---:|---:|---:|---:|---:|")
    grid = sorted({float(t) for t in args.thresholds.split(",")} | {round(t, 3) for t in np.arange(0, 1, 0.005)})
    first = next((t for t in grid if np.mean(s2[~a2] < t) >= 0.40), None)
    for t in sorted({float(x) for x in args.thresholds.split(",")} | ({first} if first is not None else set())):
        mark = " **(lowest with >= 40 %)**" if t == first else ""
        print(f"| {t:.3f}{mark} | {np.mean(s2[~a2] < t):.3f} | {np.mean(s2[a2] < t):.3f} "
              f"| {np.mean(c2[a2] & (s2[a2] >= t)):.3f} | {np.mean(s1 < t):.3f} | {np.mean(c1 & (s1 >= t)):.3f} |")


if __name__ == "__main__":
    main()
