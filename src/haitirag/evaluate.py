"""Evaluation: retrieval recall@k / MRR@10, answer accuracy, abstention and speed over a question file.

Question files are JSON lines in the format of ``../shared/eval/README.md``: ``{"id", "question",
"answers", "gold_ids"?, "is_impossible"? | "answerable"?}``, or a conversation ``{"id", "turns":
[{"question", "answers"}, ...]}`` whose later turns are asked with the earlier questions as history.
"""

from __future__ import annotations

import json
import re
import string
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import HaitiragError

if TYPE_CHECKING:
    from .index import Index
    from .records import Answer

__all__ = ["EvalError", "EvalQuestion", "EvalReport", "article_part", "contains_answer", "evaluate", "load_questions",
           "normalize", "open_eval_index", "span_scores"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation + "\u2018\u2019\u201c\u201d\u2013\u2014"})


def article_part(article: str, parts: int = 4) -> int:
    """The fixed split of development articles: CRC-32 of the article's name modulo ``parts``. With 4 parts:
    odd parts are the held-out half (never fitted on), part 0 calibrates, part 2 may train the reader
    (``python -m haitirag.train --dev-part 2``); ``bench/fit_answer.py halves`` is this modulo 2."""
    return zlib.crc32(article.encode()) % parts


class EvalError(HaitiragError):
    """The question file is missing or malformed."""


def normalize(text: str) -> str:
    """Lower case, punctuation and articles (a, an, the) removed, single spaces (SQuAD's normalisation)."""
    text = text.lower().translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def span_scores(prediction: str, golds: Iterable[str]) -> tuple[float, float]:
    """SQuAD's exact match and token F1 of ``prediction`` against the best of ``golds`` (official normalisation)."""
    from collections import Counter

    p = normalize(prediction).split()
    em = f1 = 0.0
    for g in golds:
        gt = normalize(g).split()
        em = max(em, float(p == gt))
        common = sum((Counter(p) & Counter(gt)).values())
        if common:
            prec, rec = common / len(p), common / len(gt)
            f1 = max(f1, 2 * prec * rec / (prec + rec))
    return em, f1


def contains_answer(text: str, answers: Iterable[str]) -> bool:
    """True when the normalised ``text`` contains one of the normalised ``answers`` (as whole words)."""
    norm = f" {normalize(text)} "
    return any(a and f" {a} " in norm for a in (normalize(x) for x in answers))


@dataclass(frozen=True)
class EvalQuestion:
    qid: str
    question: str
    answers: tuple[str, ...]
    answerable: bool
    gold_ids: tuple[str, ...] = ()
    history: tuple[str, ...] = ()  # earlier questions of the conversation, oldest first


def load_questions(path: str | Path) -> list[EvalQuestion]:
    """Read a question file; conversation turns become questions with their history."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise EvalError(f"cannot read question file {p} ({err.strerror}); pass an existing --questions FILE.jsonl") \
            from err
    out: list[EvalQuestion] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            qid = str(rec.get("id", n))
            if "turns" in rec:
                history: list[str] = []
                for t, turn in enumerate(rec["turns"]):
                    answers = tuple(turn.get("answers") or ())
                    out.append(EvalQuestion(f"{qid}.{t}", turn["question"], answers,
                                            bool(turn.get("answerable", bool(answers))),
                                            tuple(turn.get("gold_ids") or ()), tuple(history)))
                    history.append(turn["question"])
                continue
            answers = tuple(rec.get("answers") or ())
            answerable = rec["answerable"] if "answerable" in rec else not rec.get("is_impossible", not answers)
            out.append(EvalQuestion(qid, rec["question"], answers, bool(answerable), tuple(rec.get("gold_ids") or ())))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise EvalError(f"{p} line {n} is not a question record ({err}); "
                            "see ../shared/eval/README.md for the format") from err
    if not out:
        raise EvalError(f"{p} holds no questions; pass a JSON-lines question file")
    return out


@dataclass
class EvalReport:
    questions: int = 0
    answerable: int = 0
    unanswerable: int = 0
    with_gold_ids: int = 0
    recall_at_1: float | None = None
    recall_at_5: float | None = None
    recall_at_10: float | None = None
    mrr_at_10: float | None = None
    answer_accuracy: float | None = None  # answerable questions answered with a gold answer (refusal = wrong)
    abstention_unanswerable: float | None = None  # unanswerable questions refused
    wrong_abstention_answerable: float | None = None  # answerable questions refused
    span_em: float | None = None  # Answer.span against the gold answers, % (answerable; refusal or no span = 0)
    span_f1: float | None = None
    mean_answer_words: float | None = None  # over answers given (not refusals)
    max_answer_sentences: int = 0
    queries_per_s: float = 0.0
    k: int = 5
    items: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, items: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not items:
            d.pop("items")
        return d

    def table(self) -> str:
        def f(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.3f}"

        counts = f"{self.questions} ({self.answerable} / {self.unanswerable})"
        rows = [("questions (answerable / unanswerable)", counts),
                ("recall@1", f(self.recall_at_1)), ("recall@5", f(self.recall_at_5)),
                ("recall@10", f(self.recall_at_10)), ("MRR@10", f(self.mrr_at_10)),
                ("answer accuracy", f(self.answer_accuracy)),
                ("abstention on unanswerable", f(self.abstention_unanswerable)),
                ("wrong abstention on answerable", f(self.wrong_abstention_answerable)),
                ("answer span EM / F1 (%)", "n/a" if self.span_em is None or self.span_f1 is None
                 else f"{self.span_em:.1f} / {self.span_f1:.1f}"),
                ("mean answer length (words)", "n/a" if self.mean_answer_words is None
                 else f"{self.mean_answer_words:.1f}"),
                ("max sentences in an answer", str(self.max_answer_sentences)),
                ("queries/s", f"{self.queries_per_s:.1f}")]
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def evaluate(index: Index, questions: Sequence[EvalQuestion], k: int = 5, depth: int = 10,
             threshold: float | None = None, unrelated_history: bool = False) -> EvalReport:
    """Ask every question (retrieving ``depth`` passages for recall, answering from the top ``k``).

    ``unrelated_history``: a question without a history of its own is asked after the question half the file
    away (another article, in files ordered by article), to measure how much a stray history costs.
    """
    from .answer import Answerer
    from .index import clean_query

    answerer = Answerer(index, passages=k) if threshold is None else Answerer(index, threshold=threshold, passages=k)
    rep = EvalReport(questions=len(questions), k=k)
    hits = {1: 0, 5: 0, 10: 0}
    rr = 0.0
    correct = refused_ans = refused_unans = 0
    ems: list[float] = []
    f1s: list[float] = []
    words: list[int] = []
    t0 = time.perf_counter()
    for n, q in enumerate(questions):
        hist = q.history or ((questions[(n + len(questions) // 2) % len(questions)].question,)
                             if unrelated_history and len(questions) > 1 else ())
        try:
            question = clean_query(q.question)
            history = [clean_query(h) for h in hist]
        except HaitiragError as err:
            rep.items.append({"id": q.qid, "error": str(err)})
            answer: Answer | None = None
            passages_ids: list[str] = []
        else:
            answer, passages = answerer.ask_with_passages(question, history, k=k, depth=depth)
            passages_ids = [p.doc_id for p in passages]
        if q.answerable:
            rep.answerable += 1
            if q.gold_ids:
                rep.with_gold_ids += 1
                rank = next((i for i, d in enumerate(passages_ids[:10]) if d in set(q.gold_ids)), None)
                if rank is not None:
                    for n in hits:
                        hits[n] += rank < n
                    rr += 1.0 / (rank + 1)
            ok = answer is not None and not answer.abstained and contains_answer(answer.text, q.answers)
            correct += ok
            refused_ans += answer is None or answer.abstained
            em, f1 = span_scores(answer.span.quote, q.answers) if answer is not None and not answer.abstained \
                and answer.span is not None and q.answers else (0.0, 0.0)
            ems.append(em)
            f1s.append(f1)
        else:
            rep.unanswerable += 1
            refused_unans += answer is None or answer.abstained
        if answer is not None and not answer.abstained:
            words.append(len(answer.text.split()))
            rep.max_answer_sentences = max(rep.max_answer_sentences, len(answer.citations))
        if answer is not None:
            rep.items.append({"id": q.qid, "question": q.question, "resolved": answer.resolved_question,
                              "answerable": q.answerable, "answers": list(q.answers), "text": answer.text,
                              "abstained": answer.abstained, "score": round(answer.score, 4),
                              "logit": answer.details.get("logit"),
                              "first_correct": contains_answer(_sentence_of(answer), q.answers),
                              "runner_up_correct": _runner_up_correct(index, answer, q.answers),
                              "runner_up_gap": (answer.details.get("runner_up") or {}).get("gap"),
                              # the reader's windows in first-stage order: logit, and whether the sentence of
                              # its span holds a gold answer (for choosing answer.READ)
                              "windows": [(lg, contains_answer(index.documents[d].text[s:e], q.answers))
                                          for d, s, e, lg in answer.details.get("windows", [])],
                              "span": answer.span.quote if answer.span is not None else None,
                              "correct": q.answerable and not answer.abstained
                              and contains_answer(answer.text, q.answers),
                              "gold_rank": next((i for i, d in enumerate(passages_ids) if d in set(q.gold_ids)),
                                                None)})
    elapsed = time.perf_counter() - t0
    rep.queries_per_s = len(questions) / elapsed if elapsed > 0 else 0.0
    if rep.with_gold_ids:
        rep.recall_at_1, rep.recall_at_5, rep.recall_at_10 = (hits[n] / rep.with_gold_ids for n in (1, 5, 10))
        rep.mrr_at_10 = rr / rep.with_gold_ids
    if rep.answerable:
        rep.answer_accuracy = correct / rep.answerable
        rep.wrong_abstention_answerable = refused_ans / rep.answerable
    if ems:
        rep.span_em, rep.span_f1 = 100 * sum(ems) / len(ems), 100 * sum(f1s) / len(f1s)
    if rep.unanswerable:
        rep.abstention_unanswerable = refused_unans / rep.unanswerable
    if words:
        rep.mean_answer_words = sum(words) / len(words)
    return rep


def _sentence_of(answer: Answer) -> str:
    """The quoted sentence the reader's best span is in (the first quote without a span; "" for a refusal)."""
    span = answer.span
    for c in answer.citations:
        if span is not None and c.doc_id == span.doc_id and c.start <= span.start < c.end:
            return c.quote
    return answer.citations[0].quote if answer.citations else ""


def _runner_up_correct(index: Index, answer: Answer, answers: Sequence[str]) -> bool:
    r = answer.details.get("runner_up")
    if not r or not answers:
        return False
    return contains_answer(index.documents[r["doc_id"]].text[r["start"]:r["end"]], answers)


def open_eval_index(corpus: str | Path, index: str | Path | None = None, model: str | None = None,
                    progress: bool = False) -> Index:
    """The index of ``corpus`` at ``index``: loaded when its manifest matches the corpus, else built."""
    import hashlib

    from .build import build_index, index_status
    from .embedding import DEFAULT_MODEL
    from .index import load_index

    model = model or DEFAULT_MODEL
    if index is None:
        src = Path(corpus).resolve()
        tag = hashlib.sha256(str(src).encode()).hexdigest()[:8]
        index = Path(".haitirag-eval") / f"{src.stem}-{tag}"
    status = index_status(corpus, index, model=model)
    if not status.full and not (status.added or status.modified or status.deleted or status.renamed) \
            and (Path(index) / "manifest.json").exists():
        return load_index(index, model=model)
    return build_index(corpus, index, model=model, progress=progress)
