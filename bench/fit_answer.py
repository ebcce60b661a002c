"""Fit the two models of answer.py (sentence ranker, abstention score) on development questions.

    python bench/fit_answer.py sentence --index IDX11 --questions ../shared/eval/squad11/questions-dev.jsonl \
        --half 0
    python bench/fit_answer.py abstain --index IDX20 --questions ../shared/eval/squad20/questions-dev.jsonl \
        --half 0 --also-index IDX11 --also-questions ../shared/eval/squad11/questions-dev.jsonl

(IDX11 / IDX20: indexes of the whole ``corpus.jsonl`` of each set, e.g. from ``haitirag eval``.)
Prints the weights to paste into SENTENCE_WEIGHTS / ABSTAIN_WEIGHTS and the same measures on the held-out
half of the articles (``--half 0`` fits on the articles whose name hashes to 0, reports on the others).

- sentence: a softmax over each question's candidate sentences (conditional logit, L2-regularised, fitted
  with scipy's L-BFGS), maximising the probability of the sentences that hold a gold answer. Reports how often
  the best sentence holds one and, with the second-sentence rule, how often the answer does.
- abstain: a logistic model (scikit-learn) of "the question is answerable" on SQuAD 2.0, plus the answerable
  questions of a second set (``--also-*``, SQuAD v1.1) so that it does not learn SQuAD 2.0's artefacts only;
  a feature whose fitted weight contradicts its meaning (EXPECTED_SIGN) is left out and the rest refitted.
  Prints, for thresholds, the share of unanswerable questions refused and of answerable ones refused.
"""

from __future__ import annotations

import argparse
import json
import zlib
from typing import Any

import numpy as np

import haitirag
from haitirag.answer import ABSTAIN_FEATURES, SENTENCE_FEATURES, Answerer, _softmax, resolve_followup
from haitirag.evaluate import EvalQuestion, contains_answer, load_questions

# the direction in which each abstention feature should move the score ("more of it: more likely answered");
# SQuAD 2.0's unanswerable questions were written to resemble their paragraph, so a fit alone can learn
# the opposite, and such a feature is left out (weight 0)
EXPECTED_SIGN = {"prob": 1, "margin": 1, "logit": 1, "entities_sentence": 1, "entities_document": 1, "type_new": 1,
                 "terms_document": 1, "missing_idf": -1, "terms_window": 1, "missing_idf_window": -1, "cos": 1,
                 "negation_unmatched": -1, "overlap": 1, "passage_cos": 1, "soft_mean": 1, "soft_min": 1,
                 "soft_mean_window": 1, "soft_min_window": 1}


def halves(path: str) -> dict[str, int]:
    """Question id -> 0 or 1, by a hash of its article's name (all questions of an article together)."""
    out = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rec = json.loads(line)
                out[str(rec.get("id"))] = zlib.crc32(str(rec.get("article", rec.get("id"))).encode()) % 2
    return out


def collect(index_path: str, qs: list[EvalQuestion], weights: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Per question: candidate features, which candidates hold a gold answer, and (with weights) evidence."""
    ans = Answerer(haitirag.load_index(index_path))
    out = []
    for q in qs:
        resolved = resolve_followup(q.question, q.history)
        passages = ans.retrieve(resolved, ans.passages)
        cands = ans.candidates(passages)
        if not cands or not ans.index.keyword.query_tokens(resolved):
            out.append({"answerable": q.answerable, "x": None})
            continue
        f = ans.features(resolved, cands, passages)
        texts = [ans.index.documents[c.doc_id].text[c.start:c.end] for c in cands]
        row = {"answerable": q.answerable, "x": f["x"],
               "labels": np.array([q.answerable and contains_answer(t, q.answers) for t in texts], dtype=bool)}
        if weights is not None:
            logits = f["x"] @ weights
            best = int(np.argmax(logits))
            second = ans._second(cands, _softmax(logits), f, best)
            row["evidence"] = ans.evidence(f, cands, logits, best)
            row["correct"] = contains_answer(texts[best] + (" " + texts[second] if second is not None else ""),
                                             q.answers) if q.answerable else False
        out.append(row)
    return out


def fit_softmax(rows: list[dict[str, Any]], l2: float) -> np.ndarray:
    from scipy.optimize import minimize

    data = [(r["x"], r["labels"]) for r in rows if r["x"] is not None and r["labels"].any()]
    d = data[0][0].shape[1]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = 0.0, np.zeros(d)
        for x, y in data:
            p = _softmax(x @ w)
            pos = p[y].sum()
            total -= np.log(pos + 1e-12)
            grad += p @ x - (p[y] @ x[y]) / (pos + 1e-12)
        return total / len(data) + l2 * float(w @ w), grad / len(data) + 2 * l2 * w

    return np.asarray(minimize(loss, np.zeros(d), jac=True, method="L-BFGS-B").x)


def ranking_report(rows: list[dict[str, Any]], w: np.ndarray, ratios: tuple[float, ...]) -> None:
    rows = [r for r in rows if r["answerable"]]
    has = [r for r in rows if r["x"] is not None]
    print(f"{len(rows)} answerable questions; a candidate holds the answer for "
          f"{np.mean([r['labels'].any() for r in has]) * len(has) / len(rows):.3f}")
    print("| second-sentence ratio | answer holds a gold answer | sentences per answer |")
    print("|---:|---:|---:|")
    for ratio in ratios:
        ok = n_sent = 0
        for r in has:
            p = _softmax(r["x"] @ w)
            order = np.argsort(-p)
            two = len(p) > 1 and p[order[1]] >= ratio * p[order[0]]
            ok += bool(r["labels"][order[0]] or (two and r["labels"][order[1]]))
            n_sent += 1 + two
        print(f"| {ratio:g} | {ok / len(rows):.3f} | {n_sent / len(rows):.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("sentence", "abstain"))
    ap.add_argument("--index", required=True)
    ap.add_argument("--questions", required=True)
    ap.add_argument("--also-index", help="abstain: index of a second question set (its answerable questions)")
    ap.add_argument("--also-questions")
    ap.add_argument("--half", type=int, choices=(0, 1), default=0, help="fit on this half of the articles")
    ap.add_argument("--every", type=int, default=1, help="use every N-th question")
    ap.add_argument("--l2", type=float, default=1e-4, help="sentence: L2 penalty")
    ap.add_argument("-C", type=float, default=1.0, help="abstain: inverse regularisation")
    ap.add_argument("--save", help="abstain: also write the evidence rows to this .npz file")
    ap.add_argument("--load", help="abstain: fit on rows saved by --save instead of asking the questions again")
    args = ap.parse_args()

    def split(path: str) -> tuple[list[EvalQuestion], list[EvalQuestion]]:
        h = halves(path)
        qs = load_questions(path)[:: args.every]
        return [q for q in qs if h.get(q.qid) == args.half], [q for q in qs if h.get(q.qid) != args.half]

    train, test = split(args.questions)
    if args.what == "sentence":
        w = fit_softmax(collect(args.index, train), args.l2)
        for n, v in zip(SENTENCE_FEATURES, w, strict=True):
            print(f"  {n:>20} {v:+.3f}")
        print("SENTENCE_WEIGHTS = np.array([" + ", ".join(f"{v:.3f}" for v in w) + "])")
        print("held-out half:")
        ranking_report(collect(args.index, test), w, (1.0, 0.3, 0.2, 0.15, 0.1))
        return
    from sklearn.linear_model import LogisticRegression

    from haitirag.answer import SENTENCE_WEIGHTS

    if args.load:
        arrays = dict(np.load(args.load))
    else:
        parts = {"fit": collect(args.index, train, SENTENCE_WEIGHTS),
                 "test": collect(args.index, test, SENTENCE_WEIGHTS), "also_test": []}
        if args.also_index and args.also_questions:
            a_train, a_test = split(args.also_questions)
            parts["fit"] += collect(args.also_index, a_train, SENTENCE_WEIGHTS)
            parts["also_test"] = collect(args.also_index, a_test, SENTENCE_WEIGHTS)
        arrays = {}
        for name, rows in parts.items():  # questions without any candidate are refused whatever the weights
            arrays[f"{name}_evidence"] = np.stack([r["evidence"] if r["x"] is not None else
                                                   np.full(len(ABSTAIN_FEATURES), np.nan) for r in rows])
            arrays[f"{name}_answerable"] = np.array([r["answerable"] for r in rows], dtype=bool)
            arrays[f"{name}_correct"] = np.array([r.get("correct", False) for r in rows], dtype=bool)
        if args.save:
            np.savez(args.save, **arrays)
    usable = ~np.isnan(arrays["fit_evidence"]).any(axis=1)
    x = arrays["fit_evidence"][usable]
    y = arrays["fit_answerable"][usable].astype(int)
    # fit, then leave out the feature whose weight most contradicts its meaning, until none does
    cols = list(range(len(ABSTAIN_FEATURES)))
    while True:
        model = LogisticRegression(C=args.C, fit_intercept=False, max_iter=5000).fit(x[:, cols], y)
        w = np.zeros(len(ABSTAIN_FEATURES))
        w[cols] = model.coef_[0]
        bad = [j for j in cols if EXPECTED_SIGN.get(ABSTAIN_FEATURES[j], 0) * w[j] < 0]
        if not bad:
            break
        cols.remove(min(bad, key=lambda j: EXPECTED_SIGN[ABSTAIN_FEATURES[j]] * w[j]))
    for n, v in zip(ABSTAIN_FEATURES, w, strict=True):
        print(f"  {n:>20} {v:+.3f}")
    print("ABSTAIN_WEIGHTS = np.array([" + ", ".join(f"{v:.3f}" for v in w) + "])")

    def score(ev: np.ndarray) -> np.ndarray:
        return np.nan_to_num(1 / (1 + np.exp(-(ev @ w))), nan=0.0)

    s, ans = score(arrays["test_evidence"]), arrays["test_answerable"]
    s2, c2 = score(arrays["also_test_evidence"]), arrays["also_test_correct"]
    print("held-out half: | threshold | unanswerable refused | answerable refused | second set: accuracy, refused |")
    print("|---:|---:|---:|---:|")
    for t in np.arange(0.40, 0.80, 0.02):
        second = f"{np.mean(c2 & (s2 >= t)):.3f}, {np.mean(s2 < t):.3f}" if len(s2) else "n/a"
        print(f"| {t:.2f} | {np.mean(s[~ans] < t):.3f} | {np.mean(s[ans] < t):.3f} | {second} |")


if __name__ == "__main__":
    main()
