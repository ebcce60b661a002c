"""Stage 6: extractive answers: the reader picks the source sentence(s) that answer the question, or abstains.

1. Retrieval: the top passages of hybrid search (``Index.search``).
2. First stage (``ranker.py``): the passages' sentences ranked cheaply; the best ``READ`` go on.
3. Reader (``reader.py``): a model trained on SQuAD v1.1 train reads the question with each of those
   sentences and its neighbours, and gives the best answer span in that window and a logit for "this
   window answers the question". The sentence holding the best span is quoted; ``Answer.span`` is the span.
4. A second sentence when the runner-up window's span lies in another sentence and its reader logit is at
   most ``SECOND_MARGIN`` under the best one's. Never more than two; adjacent sentences are quoted as one span.
5. Abstention: ``Answer.score`` is the reader's calibrated probability that the quoted sentence answers the
   question (calibration in ``models/reader.json``); under ``THRESHOLD`` the answer is refused.
6. Follow-ups: with a history, a short or pronoun-led question is also asked with the previous question's
   content words added (``resolve_followup``); the reader's probability decides which reading is kept, so
   an unrelated history does not hijack a question that stands alone.
"""

from __future__ import annotations

import bisect
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .errors import QueryError
from .index import clean_query
from .ranker import _STOP, PRONOUNS, WH_WORDS, SentenceRanker
from .reader import Reader, Reading, window_bounds
from .records import Answer, Citation, Passage

if TYPE_CHECKING:
    from .index import Index

__all__ = ["NO_ANSWER", "READ", "SECOND_MARGIN", "THRESHOLD", "Answerer", "default_reader", "resolve_followup"]

NO_ANSWER = "The sources don't say."
THRESHOLD = 0.48  # on Answer.score: highest with <= 8 % of v1.1 refused on the calibration articles
PASSAGES = 5  # passages whose sentences are candidates
READ = 8  # first-stage candidates the reader reads
RANK_PENALTY = 0.0  # subtracted from a window's reader logit per first-stage rank, for choosing the best window
SECOND_MARGIN = 2.0  # a second sentence is kept when its reader logit is at most this much under the best one

_READER: Reader | None = None


def default_reader() -> Reader:
    """The shipped reader, loaded once per process (it is thread-safe)."""
    global _READER
    if _READER is None:
        _READER = Reader()
    return _READER


def resolve_followup(question: str, history: Sequence[str]) -> str:
    """``question`` with the previous question's content words added when it may lean on it; else unchanged.

    A question may be a follow-up when it has at most one content word ("When?", "What about Benin?"), or a
    pronoun and at most four content words and no name of its own ("When was it signed?"); the previous
    question (itself resolved) lends its content words.
    """
    history = [h for h in history if isinstance(h, str) and h.strip()]
    if not history:
        return question
    words = re.findall(r"[A-Za-z0-9']+", question)
    lower = [w.lower() for w in words]
    content = [w for w in lower if w not in WH_WORDS and w not in PRONOUNS and w not in _STOP]
    has_pronoun = any(w in PRONOUNS for w in lower)
    has_name = any(w[:1].isupper() for w in words[1:])
    if not (len(content) < 2 or (has_pronoun and len(content) <= 4 and not has_name)):
        return question
    previous = resolve_followup(history[-1], history[:-1])
    prev_words = [w for w in re.findall(r"[A-Za-z0-9'.,-]+", previous) if w.lower().strip(".,") not in WH_WORDS]
    extra = " ".join(w for w in prev_words if w.lower() not in lower)
    return f"{question.rstrip()} ({extra.strip()})" if extra.strip() else question


def _clean_or_none(text: object) -> str | None:
    try:
        return clean_query(text)
    except QueryError:
        return None


class Answerer:
    """Retrieval -> first stage -> reader -> citations or a refusal, for one index."""

    def __init__(self, index: Index, threshold: float = THRESHOLD, passages: int = PASSAGES, read: int = READ,
                 second_margin: float = SECOND_MARGIN, rank_penalty: float = RANK_PENALTY,
                 reader: Reader | None = None):
        self.index = index
        self.threshold = threshold
        self.passages = passages
        self.read = read
        self.second_margin = second_margin
        self.rank_penalty = rank_penalty
        self.reader = reader or default_reader()
        self.ranker = SentenceRanker(index)
        self._sentence_starts: dict[str, list[int]] = {}

    def retrieve(self, resolved: str, k: int, **filters: Any) -> list[Passage]:
        return self.index.search(resolved, k=k, **filters)

    def ask(self, question: str, history: Sequence[str] | None = (), k: int | None = None, **filters: Any) -> Answer:
        return self.ask_with_passages(question, history, k, **filters)[0]

    def ask_with_passages(self, question: str, history: Sequence[str] | None = (), k: int | None = None,
                          depth: int = 0, **filters: Any) -> tuple[Answer, list[Passage]]:
        """The answer, and the ``max(depth, k)`` passages retrieved for the question as it was answered."""
        q = clean_query(question)
        history = () if history is None else history
        if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
            example = f" (e.g. [{history!r}])" if isinstance(history, str) else ""
            raise QueryError(f"history must be a list of earlier questions, oldest first{example}, "
                             f"not {type(history).__name__}")
        if not all(isinstance(h, str) for h in history):
            raise QueryError("history must hold the earlier questions as text")
        hist = [h for h in (_clean_or_none(h) for h in history) if h]  # empty or overlong entries are skipped
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k <= 0):
            raise QueryError(f"k must be a positive whole number, not {k!r}")
        k = k or self.passages
        self.ranker.question(q)  # one model pass gives the question's vector and its token vectors
        passages = self.retrieve(q, max(k, depth), **filters)
        best = self.answer(q, q, passages[:k])
        resolved = resolve_followup(q, hist)
        if resolved != q:  # a possible follow-up: the reading with the previous question's words must do better
            self.ranker.question(resolved)
            more = self.retrieve(resolved, max(k, depth), **filters)
            alt = self.answer(q, resolved, more[:k])
            if alt.score > best.score:
                best, passages = alt, more
        return best, passages

    # -- the answer -------------------------------------------------------------------------------
    def windows(self, resolved: str, passages: Sequence[Passage]) -> list[tuple[str, int, int]]:
        """What the reader reads: (doc_id, start, end) of the first stage's best ``read`` candidate sentences,
        each with its neighbours, best first (training reads the same: ``train.retrieved_examples``)."""
        cands, logits = self.ranker.rank(resolved, tuple(passages)[: self.passages])
        order = [int(i) for i in (-logits).argsort(kind="stable")[: self.read]] if cands else []
        return [(cands[i].doc_id, *window_bounds(self.index.sentences[cands[i].doc_id], cands[i].sentence_no))
                for i in order]

    def answer(self, question: str, resolved: str, passages: Sequence[Passage]) -> Answer:
        """The answer to ``resolved`` (the reader reads it) from ``passages``; ``question`` as asked."""
        passages = tuple(passages)
        t0 = time.perf_counter()
        windows = self.windows(resolved, passages)
        t1 = time.perf_counter()
        if not windows:
            return self._refusal(question, resolved, passages, 0.0, "no candidate sentence or no usable word")
        docs = self.index.documents
        readings = self.reader.read(resolved, [docs[d].text[a:b] for d, a, b in windows])
        t2 = time.perf_counter()
        found = [self._locate(d, w0, r) for (d, w0, _), r in zip(windows, readings, strict=True)]
        # the reader's logit, less a small learned penalty per first-stage rank (bench/fit_answer.py calibrate)
        ranked = sorted(range(len(found)), key=lambda j: -(readings[j].logit - self.rank_penalty * j))
        b = ranked[0]
        score = self.reader.probability(readings[b].logit)
        chosen = [found[b]]
        details: dict[str, Any] = {"logit": readings[b].logit, "read": len(windows),
                                   "windows": [(f[0], f[1], f[2], round(r.logit, 3)) for f, r in zip(found, readings,
                                                                                                     strict=True)],
                                   "ms": {"rank": round(1000 * (t1 - t0), 1), "read": round(1000 * (t2 - t1), 1)}}
        runner = next((j for j in ranked[1:] if found[j][:2] != found[b][:2]), None)
        if runner is not None:
            gap = readings[b].logit - readings[runner].logit
            details["runner_up"] = {"doc_id": found[runner][0], "start": found[runner][1], "end": found[runner][2],
                                    "gap": round(gap, 3)}
            if gap <= self.second_margin:
                chosen.append(found[runner])
        if score < self.threshold:
            return self._refusal(question, resolved, passages, score, "score under threshold", details, found[b])
        doc_id, _, _, a_start, a_end = found[b]
        doc = docs[doc_id]
        span = Citation(doc.doc_id, doc.title, doc.date, doc.source, a_start, a_end, doc.text[a_start:a_end],
                        doc.url, doc.page_at(a_start)) if a_end > a_start else None
        if len(chosen) == 2 and chosen[1][0] == doc_id and self._adjacent(doc_id, chosen[0][1], chosen[1][1]):
            chosen.sort(key=lambda c: c[1])  # neighbours read in the document's order, as one span
        cits = tuple(Citation(d.doc_id, d.title, d.date, d.source, s, e, d.text[s:e], d.url, d.page_at(s))
                     for d, s, e in ((docs[c[0]], c[1], c[2]) for c in chosen))
        if len(cits) == 2 and cits[0].doc_id == cits[1].doc_id and cits[0].end <= cits[1].start and \
                not docs[cits[0].doc_id].text[cits[0].end:cits[1].start].strip():
            text = docs[cits[0].doc_id].text[cits[0].start:cits[1].end]  # adjacent: one span of the source
        else:
            text = " ".join(c.quote.strip() for c in cits)
        return Answer(question, text, cits, False, passages, score, resolved, span, details)

    def _starts(self, doc_id: str) -> list[int]:
        """Start offsets of the document's sentences (cached: the index never changes under an Answerer)."""
        if doc_id not in self._sentence_starts:
            self._sentence_starts[doc_id] = [s for s, _ in self.index.sentences[doc_id]]
        return self._sentence_starts[doc_id]

    def _adjacent(self, doc_id: str, a: int, b: int) -> bool:
        starts = self._starts(doc_id)
        return abs(bisect.bisect_left(starts, a) - bisect.bisect_left(starts, b)) == 1

    def _locate(self, doc_id: str, w0: int, r: Reading) -> tuple[str, int, int, int, int]:
        """(doc_id, sentence start, sentence end, span start, span end): the span cut to the sentence holding it."""
        sents = self.index.sentences[doc_id]
        a0 = w0 + r.start
        i = max(0, bisect.bisect_right(self._starts(doc_id), a0) - 1)
        s, e = sents[i]
        a0, a1 = max(a0, s), min(w0 + r.end, e)
        text = self.index.documents[doc_id].text
        while a1 > a0 and text[a1 - 1] in " \t\n":
            a1 -= 1
        return doc_id, s, e, a0, max(a0, a1)

    def _refusal(self, question: str, resolved: str, passages: tuple[Passage, ...], score: float, why: str,
                 details: dict[str, Any] | None = None, closest: tuple[str, int, int, int, int] | None = None
                 ) -> Answer:
        d = dict(details or {})
        d["refused_because"] = why
        if closest is not None:
            d["closest"] = {"doc_id": closest[0], "start": closest[1], "end": closest[2]}
        return Answer(question, NO_ANSWER, (), True, passages, score, resolved, None, d)

