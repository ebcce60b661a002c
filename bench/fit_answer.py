"""Fit the learned parts around the reader on development questions: the first-stage ranker and calibration.

    python bench/fit_answer.py sentence --index IDX11 --questions ../shared/eval/squad11/questions-dev.jsonl \
        --half 0
    python bench/fit_answer.py calibrate e20.json e11.json --questions20 ../shared/eval/squad20/questions-dev.jsonl \
        --questions11 ../shared/eval/squad11/questions-dev.jsonl --half 0 [--write]

    python bench/fit_answer.py questions ../shared/eval/squad20/questions-dev.jsonl --half 0 > cal20.jsonl
    python bench/fit_answer.py compare e11.json e11-history.json   # e.g. eval with --unrelated-history

(IDX11: an index of the whole ``corpus.jsonl``, e.g. from ``haitirag eval``; e20.json / e11.json: the output
of ``haitirag eval ... --threshold 0 --json --items`` on SQuAD 2.0 and v1.1 dev.) ``--half 0`` fits on the
articles whose name hashes to 0 and reports on the others; articles the reader was trained on
(``python -m haitirag.train --dev-part``, recorded in ``reader.json``) are in neither half.

- sentence: the first stage (``ranker.py``), a softmax over each question's candidate sentences
  (conditional logit, L2-regularised, fitted with scipy's L-BFGS), maximising the probability of the
  sentences that hold a gold answer. Prints SENTENCE_WEIGHTS and how often the best sentences hold one.
- questions: the questions of the fitted half that calibration may use (to evaluate all of them, not every 4th).
- calibrate: a logistic model (scikit-learn) of "the quoted answer is right" on the reader's logit, over the
  fitted half of both sets (an unanswerable question is never right; an answer is right when its sentence,
  or the runner-up added within ``--margin``, holds a gold answer); ``--write`` stores it in
  ``models/reader.json``. Prints, on the held-out half, what each threshold refuses and costs, and the
  second-sentence margin's effect on v1.1 accuracy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

import haitirag
from haitirag.answer import resolve_followup
from haitirag.evaluate import EvalQuestion, article_part, contains_answer, load_questions
from haitirag.ranker import SENTENCE_FEATURES, SentenceRanker
from haitirag.ranker import softmax as _softmax
from haitirag.train import trained_on


def articles(path: str) -> dict[str, str]:
    """Question id -> its article's name."""
    out = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rec = json.loads(line)
                out[str(rec.get("id"))] = str(rec.get("article", rec.get("id")))
    return out


def halves(path: str) -> dict[str, int]:
    """Question id -> 0 or 1, by a hash of its article's name (all questions of an article together)."""
    return {q: article_part(a, 2) for q, a in articles(path).items()}


def shipped_trained_on() -> set[str]:
    """The development articles the shipped reader was trained on: in neither half."""
    from haitirag.reader import READER_PATH

    return trained_on(json.loads(READER_PATH.with_suffix(".json").read_text(encoding="utf-8")))


def collect(index_path: str, qs: list[EvalQuestion]) -> list[dict[str, Any]]:
    """Per question: candidate features and which candidates hold a gold answer."""
    index = haitirag.load_index(index_path)
    ranker = SentenceRanker(index)
    out = []
    for q in qs:
        resolved = resolve_followup(q.question, q.history)
        passages = index.search(resolved, k=5)
        cands = ranker.candidates(passages)
        if not cands or not index.keyword.query_tokens(resolved):
            out.append({"answerable": q.answerable, "x": None})
            continue
        f = ranker.features(resolved, cands, passages)
        texts = [index.documents[c.doc_id].text[c.start:c.end] for c in cands]
        out.append({"answerable": q.answerable, "x": f["x"],
                    "labels": np.array([q.answerable and contains_answer(t, q.answers) for t in texts], dtype=bool)})
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


def load_items(paths: str, questions: str, skip: set[str] = frozenset()) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Eval items of one or more runs (``a.json,b.json``; a question once) and, for each, the half its article
    falls in (-1: an article in ``skip``, used by neither)."""
    by_id: dict[str, dict[str, Any]] = {}
    for path in paths.split(","):
        for it in json.loads(open(path, encoding="utf-8").read())["items"]:
            if not it.get("error"):
                by_id.setdefault(str(it["id"]), it)
    items = list(by_id.values())
    art = articles(questions)
    names = [art.get(str(it["id"]).split(".")[0], "") for it in items]
    return items, np.array([-1 if a in skip else article_part(a, 2) for a in names])


def calibrate(args: argparse.Namespace) -> None:
    from sklearn.linear_model import LogisticRegression

    from haitirag.reader import READER_PATH

    seen = shipped_trained_on()
    if seen:
        print(f"not calibrated on: the {len(seen)} articles the reader was trained on: {', '.join(sorted(seen))}")
    i20, h20 = load_items(args.squad20, args.questions20, seen)
    i11, h11 = load_items(args.squad11, args.questions11, seen)

    def arrays(items: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        logit = np.array([it["logit"] if it.get("logit") is not None else -20.0 for it in items])
        answerable = np.array([bool(it["answerable"]) for it in items])
        first = np.array([bool(it.get("first_correct")) for it in items])
        second = np.array([bool(it.get("runner_up_correct")) for it in items])
        gap = np.array([it["runner_up_gap"] if it.get("runner_up_gap") is not None else np.inf for it in items])
        return logit, answerable, answerable & (first | (second & (gap <= args.margin)))

    l20, a20, c20 = arrays(i20)
    l11, _, c11 = arrays(i11)
    fit20, fit11 = h20 == args.half, h11 == args.half
    out11 = h11 == 1 - args.half  # held out (articles the reader was trained on are in neither)
    x = np.concatenate([l20[fit20], l11[fit11]])[:, None]
    y = np.concatenate([c20[fit20], c11[fit11]]).astype(int)
    model = LogisticRegression(C=1.0, max_iter=1000).fit(x, y)
    a, b = float(model.coef_[0][0]), float(model.intercept_[0])
    print(f"calibration on the fitted half ({len(y)} questions): p = sigmoid({a:.4f} * logit + {b:.4f})")

    def prob(lg: np.ndarray) -> np.ndarray:
        return np.asarray(1 / (1 + np.exp(-(a * lg + b))))

    for name, keep in (("held-out half", lambda h: h == 1 - args.half), ("fitted half", lambda h: h == args.half)):
        k20, k11 = keep(h20), keep(h11)
        p20, p11 = prob(l20[k20]), prob(l11[k11])
        aa, cc, c1 = a20[k20], c20[k20], c11[k11]
        print(f"\n{name}: SQuAD 2.0 {int((~aa).sum())} unanswerable / {int(aa.sum())} answerable; v1.1 {len(p11)}")
        print("| threshold | 2.0 unanswerable refused | 2.0 answerable refused | 2.0 accuracy (answerable) "
              "| v1.1 refused | v1.1 accuracy |")
        print("|---:|---:|---:|---:|---:|---:|")
        for t in [float(v) for v in args.thresholds.split(",")]:
            print(f"| {t:.2f} | {np.mean(p20[~aa] < t):.3f} | {np.mean(p20[aa] < t):.3f} "
                  f"| {np.mean(cc[aa] & (p20[aa] >= t)):.3f} | {np.mean(p11 < t):.3f} "
                  f"| {np.mean(c1 & (p11 >= t)):.3f} |")
    # the second sentence: v1.1 accuracy, never refusing, for margins (the runner-up within the margin is added)
    print("\nsecond sentence (v1.1, never refusing): | margin | fitted half | held-out half | sentences per answer |")
    first = np.array([bool(it.get("first_correct")) for it in i11])
    second = np.array([bool(it.get("runner_up_correct")) for it in i11])
    gap = np.array([it.get("runner_up_gap") if it.get("runner_up_gap") is not None else np.inf for it in i11])
    for m in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0):
        ok = first | (second & (gap <= m))
        print(f"| {m:.1f} | {ok[fit11].mean():.3f} | {ok[out11].mean():.3f} | {1 + np.mean(gap <= m):.2f} |")
    # the default threshold: every figure the issue asks for, on each half and on the whole of both sets
    from haitirag.evaluate import span_scores

    t = args.threshold
    print(f"\nat threshold {t} (answer.THRESHOLD), margin {args.margin}:")
    print("| articles | v1.1 accuracy | v1.1 refused | v1.1 span EM / F1 | 2.0 unanswerable refused "
          "| 2.0 answerable refused | 2.0 accuracy (answerable) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    span11 = np.array([span_scores(it.get("span") or "", it["answers"]) if it.get("span") else (0.0, 0.0)
                       for it in i11])
    for name, k20, k11 in (("held-out half", h20 == 1 - args.half, out11),
                           ("fitted half", fit20, fit11),
                           ("both halves", h20 >= 0, h11 >= 0)):
        p20, p11 = prob(l20[k20]), prob(l11[k11])
        aa, cc = a20[k20], c20[k20]
        given = p11 >= t
        em, f1 = (100 * np.mean(span11[k11][:, j] * given) for j in (0, 1))
        print(f"| {name} | {np.mean(c11[k11] & given):.3f} | {np.mean(~given):.3f} | {em:.1f} / {f1:.1f} "
              f"| {np.mean(p20[~aa] < t):.3f} | {np.mean(p20[aa] < t):.3f} | {np.mean(cc[aa] & (p20[aa] >= t)):.3f} |")
    # ranking the windows: the reader's logit less a penalty per first-stage rank (answer.RANK_PENALTY)
    print("\nrank penalty (v1.1, never refusing, one sentence): | penalty | fitted half | held-out half |")
    wins_all = [it.get("windows") or [] for it in i11]
    for lam in (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0):
        ok = np.array([bool(w) and bool(max(enumerate(w), key=lambda x: x[1][0] - lam * x[0])[1][1])
                       for w in wins_all])
        print(f"| {lam:.2f} | {ok[fit11].mean():.3f} | {ok[out11].mean():.3f} |")
    # how many first-stage candidates the reader needs to read (answer.READ): the best of the first r windows
    print("\nreader windows (v1.1, never refusing, one sentence): | read | fitted half | held-out half | "
          "some window holds the answer: fitted | held-out |")
    wins = [it.get("windows") or [] for it in i11]
    for r in range(1, max((len(w) for w in wins), default=0) + 1):
        ok = np.array([bool(w) and bool(max(w[:r], key=lambda x: x[0])[1]) for w in wins])
        some = np.array([any(x[1] for x in w[:r]) for w in wins])
        print(f"| {r} | {ok[fit11].mean():.3f} | {ok[out11].mean():.3f} | {some[fit11].mean():.3f} "
              f"| {some[out11].mean():.3f} |")
    if args.write:
        meta_path = READER_PATH.with_suffix(".json")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        meta["calibration"] = {"weights": [round(a, 6), round(b, 6)], "fitted_on": (
            f"{' + '.join(Path(f).name for f in (*args.squad20.split(','), *args.squad11.split(',')))}, "
            f"the articles of half {args.half} "
            "(bench/fit_answer.py halves) the reader was not trained on"), "questions": len(y)}
        meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        print(f"wrote the calibration to {meta_path}")


def compare(args: argparse.Namespace) -> None:
    """Accuracy of two eval runs on the questions they share, at the shipped calibration, threshold and margin."""
    from haitirag.answer import SECOND_MARGIN, THRESHOLD
    from haitirag.reader import Reader

    reader = Reader()
    runs = [{str(it["id"]): it for it in json.loads(open(p, encoding="utf-8").read())["items"]} for p in args.runs]
    common = sorted(set(runs[0]).intersection(*runs[1:]))

    def right(it: dict[str, Any], threshold: float) -> bool:
        if it.get("logit") is None or not it.get("answerable", True):
            return False
        gap = it.get("runner_up_gap")
        sentence = it.get("first_correct") or (it.get("runner_up_correct") and gap is not None and gap <= SECOND_MARGIN)
        return bool(sentence) and reader.probability(it["logit"]) >= threshold

    print(f"{len(common)} questions in common")
    print("| run | accuracy, never refusing | accuracy at the default threshold | read with the history's words |")
    print("|---|---:|---:|---:|")
    for path, run in zip(args.runs, runs, strict=True):
        its = [run[i] for i in common]
        resolved = sum(it.get("resolved") not in (None, " ".join(it["question"].split())) for it in its)
        print(f"| {Path(path).name} | {np.mean([right(it, 0.0) for it in its]):.3f} "
              f"| {np.mean([right(it, THRESHOLD) for it in its]):.3f} | {resolved} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    sp = sub.add_parser("sentence", help="fit the first-stage ranker")
    sp.add_argument("--index", required=True)
    sp.add_argument("--questions", required=True)
    sp.add_argument("--half", type=int, choices=(0, 1), default=0, help="fit on this half of the articles")
    sp.add_argument("--every", type=int, default=1, help="use every N-th question")
    sp.add_argument("--l2", type=float, default=1e-4, help="L2 penalty")
    cp = sub.add_parser("calibrate", help="fit the reader's calibration from eval items")
    cp.add_argument("squad20", help="haitirag eval --threshold 0 --json --items on SQuAD 2.0 dev (a.json,b.json: "
                    "several runs, e.g. every 4th question and every calibration question)")
    cp.add_argument("squad11", help="the same on SQuAD v1.1 dev")
    cp.add_argument("--questions20", required=True)
    cp.add_argument("--questions11", required=True)
    cp.add_argument("--half", type=int, choices=(0, 1), default=0, help="fit on this half of the articles")
    cp.add_argument("--thresholds", default="0,0.2,0.3,0.35,0.4,0.45,0.5,0.55,0.6,0.65,0.7")
    cp.add_argument("--threshold", type=float, default=0.5, help="the default threshold (answer.THRESHOLD)")
    cp.add_argument("--margin", type=float, default=1.0, help="the second-sentence margin (answer.SECOND_MARGIN)")
    cp.add_argument("--write", action="store_true", help="store the calibration in models/reader.json")
    qp = sub.add_parser("questions", help="write the calibration questions: the fitted half's, less the articles "
                        "the shipped reader was trained on")
    qp.add_argument("questions", help="a development question file, e.g. ../shared/eval/squad20/questions-dev.jsonl")
    qp.add_argument("--half", type=int, choices=(0, 1), default=0)
    mp = sub.add_parser("compare", help="accuracy of eval runs on shared questions (e.g. with / without history)")
    mp.add_argument("runs", nargs="+", help="haitirag eval --threshold 0 --json --items outputs")
    args = ap.parse_args()
    if args.what == "calibrate":
        calibrate(args)
        return
    if args.what == "questions":
        seen, art = shipped_trained_on(), articles(args.questions)
        with open(args.questions, encoding="utf-8") as fh:
            for line in fh:
                qid = str(json.loads(line).get("id")) if line.strip() else None
                if qid is not None and art[qid] not in seen and article_part(art[qid], 2) == args.half:
                    print(line.rstrip("\n"))
        return
    if args.what == "compare":
        compare(args)
        return

    def split(path: str) -> tuple[list[EvalQuestion], list[EvalQuestion]]:
        h = halves(path)
        qs = load_questions(path)[:: args.every]
        return [q for q in qs if h.get(q.qid) == args.half], [q for q in qs if h.get(q.qid) != args.half]

    train, test = split(args.questions)
    w = fit_softmax(collect(args.index, train), args.l2)
    for n, v in zip(SENTENCE_FEATURES, w, strict=True):
        print(f"  {n:>20} {v:+.3f}")
    print("SENTENCE_WEIGHTS = np.array([" + ", ".join(f"{v:.3f}" for v in w) + "])")
    print("held-out half:")
    ranking_report(collect(args.index, test), w, (1.0, 0.3, 0.2, 0.15, 0.1))


if __name__ == "__main__":
    main()
