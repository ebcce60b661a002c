"""Fit the two logistic models of answer.py (sentence scorer, abstention score) on development questions.

    python bench/fit_answer.py sentence --index /work/cache/squad11 \
        --questions ../shared/eval/squad11/questions-dev.jsonl --limit 1500
    python bench/fit_answer.py abstain --index /work/cache/squad20 \
        --questions ../shared/eval/squad20/questions-dev.jsonl --limit 2000

Prints the weights to paste into SENTENCE_WEIGHTS / ABSTAIN_WEIGHTS (needs scikit-learn, a dependency of
sentence-transformers). ``--skip N`` leaves the first N questions out, to fit on one part and evaluate on another.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

import haitirag
from haitirag.answer import ABSTAIN_FEATURES, SENTENCE_FEATURES, SENTENCE_WEIGHTS, Answerer, resolve_followup
from haitirag.evaluate import contains_answer, load_questions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("sentence", "abstain"))
    ap.add_argument("--index", required=True)
    ap.add_argument("--questions", required=True)
    ap.add_argument("--limit", type=int, default=1500)
    ap.add_argument("--skip", type=int, default=0)
    ap.add_argument("--every", type=int, default=1, help="use every N-th question")
    ap.add_argument("--label", choices=("correct", "answerable"), default="correct",
                    help="abstain: what the score predicts (default: the answer is correct)")
    ap.add_argument("-C", type=float, default=1.0)
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression

    index = haitirag.load_index(args.index)
    ans = Answerer(index)
    qs = load_questions(args.questions)[args.skip::args.every][: args.limit]
    xs, ys = [], []
    for q in qs:
        resolved = resolve_followup(q.question, q.history)
        passages = ans.retrieve(resolved, ans.passages)
        cands = ans.candidates(passages)
        if not cands:
            continue
        f = ans.features(resolved, cands, passages)
        texts = [index.documents[c.doc_id].text[c.start:c.end] for c in cands]
        if args.what == "sentence":
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
            ys.append(q.answerable and (args.label == "answerable" or contains_answer(text, q.answers)))
    x = np.concatenate(xs)
    y = np.array(ys, dtype=int)
    model = LogisticRegression(C=args.C, fit_intercept=False, max_iter=2000).fit(x, y)
    names = SENTENCE_FEATURES if args.what == "sentence" else ABSTAIN_FEATURES
    print(f"{len(qs)} questions, {len(y)} rows, {y.mean():.3f} positive")
    for n, w in zip(names, model.coef_[0], strict=True):
        print(f"  {n:>18} {w:+.3f}")
    print("weights = np.array([" + ", ".join(f"{w:.3f}" for w in model.coef_[0]) + "])")
    p = model.predict_proba(x)[:, 1]
    if args.what == "abstain":
        ans_mask = np.array([q.answerable for q in qs if ans.candidates(ans.retrieve(q.question, ans.passages))])
        print("| threshold | unanswerable refused | answerable refused | accuracy (answerable) |")
        for t in np.arange(0.15, 0.6, 0.025):
            ref = p < t
            print(f"| {t:.3f} | {ref[~ans_mask].mean():.3f} | {ref[ans_mask].mean():.3f} | "
                  f"{(y[ans_mask] & ~ref[ans_mask]).mean():.3f} |")
        np.save("/tmp/ans_abstain_xy.npy", np.concatenate([x, y[:, None], ans_mask[:, None]], axis=1))
    print(f"log loss {-np.mean(y * np.log(p + 1e-9) + (1 - y) * np.log(1 - p + 1e-9)):.4f}"
          f" (base {-(y.mean() * math.log(y.mean()) + (1 - y.mean()) * math.log(1 - y.mean())):.4f})")


if __name__ == "__main__":
    main()
