"""Fit the two logistic models of answer.py (sentence scorer, abstention score) on development questions.

    python bench/fit_answer.py sentence --index /work/cache/squad11 \
        --questions ../shared/eval/squad11/questions-dev.jsonl --limit 800 --every 3
    python bench/fit_answer.py abstain --index /work/cache/squad20 \
        --questions ../shared/eval/squad20/questions-dev.jsonl --every 2 --half 0 \
        --also-index /work/cache/squad11 --also-questions ../shared/eval/squad11/questions-dev.jsonl

Prints the weights to paste into SENTENCE_WEIGHTS / ABSTAIN_WEIGHTS (needs scikit-learn, a dependency of
sentence-transformers). ``--half 0`` (or 1) keeps only the questions of half the articles (by a hash of the
article name), so that the other half is held out; ``--also-*`` adds the answerable questions of a second set
(SQuAD v1.1) to the abstention data, so the model does not learn SQuAD 2.0's artefacts only.
"""

from __future__ import annotations

import argparse
import json
import math
import zlib

import numpy as np

import haitirag
from haitirag.answer import ABSTAIN_FEATURES, SENTENCE_FEATURES, SENTENCE_WEIGHTS, Answerer, resolve_followup
from haitirag.evaluate import EvalQuestion, contains_answer, load_questions


def select(path: str, every: int, half: int | None, limit: int) -> list[EvalQuestion]:
    """Every ``every``-th question of ``path``, only the articles of ``half`` (0/1) when given."""
    article = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rec = json.loads(line)
                article[str(rec.get("id"))] = str(rec.get("article", rec.get("id")))
    qs = load_questions(path)[::every]
    if half is not None:
        qs = [q for q in qs if zlib.crc32(article.get(q.qid, q.qid).encode()) % 2 == half]
    return qs[:limit] if limit else qs


def rows(index_path: str, qs: list[EvalQuestion], what: str, label: str, answerable_only: bool = False):
    index = haitirag.load_index(index_path)
    ans = Answerer(index)
    xs, ys, answerable = [], [], []
    for q in qs:
        if answerable_only and not q.answerable:
            continue
        resolved = resolve_followup(q.question, q.history)
        passages = ans.retrieve(resolved, ans.passages)
        cands = ans.candidates(passages)
        if not cands or not index.keyword.query_tokens(resolved):
            continue
        f = ans.features(resolved, cands, passages)
        texts = [index.documents[c.doc_id].text[c.start:c.end] for c in cands]
        if what == "sentence":
            if not q.answerable:
                continue
            labels = [contains_answer(t, q.answers) for t in texts]
            if not any(labels):
                continue
            xs.append(f["x"])
            ys.extend(labels)
        else:
            probs = 1.0 / (1.0 + np.exp(-(f["x"] @ SENTENCE_WEIGHTS)))
            best = int(np.argmax(probs))
            second = ans._second(cands, probs, f, best)
            text = texts[best] + (" " + texts[second] if second is not None else "")
            xs.append(ans.evidence(f, cands, probs, best)[None, :])
            ys.append(q.answerable and (label == "answerable" or contains_answer(text, q.answers)))
            answerable.append(q.answerable)
    return xs, ys, answerable


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("sentence", "abstain"))
    ap.add_argument("--index", required=True)
    ap.add_argument("--questions", required=True)
    ap.add_argument("--also-index", help="abstain: index of a second question set (its answerable questions)")
    ap.add_argument("--also-questions")
    ap.add_argument("--limit", type=int, default=0, help="at most N questions of each set (0: all selected)")
    ap.add_argument("--every", type=int, default=1, help="use every N-th question")
    ap.add_argument("--half", type=int, choices=(0, 1), help="only the articles of this half")
    ap.add_argument("--label", choices=("correct", "answerable"), default="answerable",
                    help="abstain: what the score predicts (default: the question is answerable)")
    ap.add_argument("-C", type=float, default=1.0)
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression

    qs = select(args.questions, args.every, args.half, args.limit)
    xs, ys, answerable = rows(args.index, qs, args.what, args.label)
    if args.what == "abstain" and args.also_index and args.also_questions:
        more = select(args.also_questions, args.every, args.half, args.limit)
        x2, y2, a2 = rows(args.also_index, more, args.what, args.label, answerable_only=True)
        xs, ys, answerable = xs + x2, ys + y2, answerable + a2
    x = np.concatenate(xs)
    y = np.array(ys, dtype=int)
    model = LogisticRegression(C=args.C, fit_intercept=False, max_iter=5000).fit(x, y)
    names = SENTENCE_FEATURES if args.what == "sentence" else ABSTAIN_FEATURES
    print(f"{len(y)} rows, {y.mean():.3f} positive")
    for n, w in zip(names, model.coef_[0], strict=True):
        print(f"  {n:>18} {w:+.3f}")
    print("weights = np.array([" + ", ".join(f"{w:.3f}" for w in model.coef_[0]) + "])")
    p = model.predict_proba(x)[:, 1]
    if args.what == "abstain":
        mask = np.array(answerable, dtype=bool)
        print("| threshold | unanswerable refused | answerable refused |")
        for t in np.arange(0.3, 0.8, 0.025):
            ref = p < t
            unans = f"{ref[~mask].mean():.3f}" if (~mask).any() else "n/a"
            print(f"| {t:.3f} | {unans} | {ref[mask].mean():.3f} |")
    print(f"log loss {-np.mean(y * np.log(p + 1e-9) + (1 - y) * np.log(1 - p + 1e-9)):.4f}"
          f" (base {-(y.mean() * math.log(y.mean()) + (1 - y.mean()) * math.log(1 - y.mean())):.4f})")


if __name__ == "__main__":
    main()
