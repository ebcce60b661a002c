"""Stage 6: extractive answers: pick the source sentence that answers the question, cite it, or abstain.

Baseline: candidate sentences are those of the top passages; each is scored by cosine similarity
to the question plus the share of the question's content words it contains.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .index import clean_query
from .records import Answer, Citation, Passage

if TYPE_CHECKING:
    from .index import Index

__all__ = ["NO_ANSWER", "Answerer"]

NO_ANSWER = "The sources don't say."
THRESHOLD = 0.45


class Answerer:
    def __init__(self, index: Index, threshold: float = THRESHOLD):
        self.index = index
        self.threshold = threshold

    def ask(self, question: str, history: Sequence[str] = (), k: int = 5, **filters: Any) -> Answer:
        q = clean_query(question)
        passages = self.index.search(q, k=k, **filters)
        cands: list[tuple[Passage, int, int]] = []
        for p in passages:
            for s, e in self.index.sentences[p.doc_id]:
                if s >= p.start and e <= p.end:
                    cands.append((p, s, e))
        if not cands:
            return Answer(question, NO_ANSWER, abstained=True, passages=tuple(passages), resolved_question=q)
        texts = [self.index.documents[p.doc_id].text[s:e] for p, s, e in cands]
        vecs = self.index.embedder.encode([q, *texts])
        cos = vecs[1:] @ vecs[0]
        qwords = set(self.index.keyword.query_tokens(q))
        overlap = np.array([len(qwords & set(self.index.keyword.query_tokens(t))) / max(1, len(qwords))
                            for t in texts])
        score = 0.7 * cos + 0.3 * overlap
        best = int(np.argmax(score))
        p, s, e = cands[best]
        doc = self.index.documents[p.doc_id]
        if score[best] < self.threshold:
            return Answer(q, NO_ANSWER, abstained=True, passages=tuple(passages), score=float(score[best]),
                          resolved_question=q)
        cit = Citation(doc.doc_id, doc.title, doc.date, doc.source, s, e, doc.text[s:e], doc.url)
        return Answer(q, cit.quote, (cit,), False, tuple(passages), float(score[best]), q)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())
