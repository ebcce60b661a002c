"""Frozen records passed between pipeline stages; offsets are character offsets into ``Document.text``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Answer", "Chunk", "Citation", "Document", "Passage"]


@dataclass(frozen=True)
class Document:
    """One source text with its metadata. ``doc_id`` is stable for the same path and bytes."""

    doc_id: str
    text: str
    title: str = ""
    date: str | None = None  # ISO 8601 (YYYY-MM-DD) when known
    source: str | None = None
    url: str | None = None
    path: str = ""  # where it came from, relative to the corpus root ("file.jsonl#id" for JSONL lines)
    sha256: str = ""  # hash of the text: equal text, equal vectors

    def to_json(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "title": self.title,
            "date": self.date,
            "source": self.source,
            "url": self.url,
            "path": self.path,
            "sha256": self.sha256,
            "text": self.text,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Document:
        return cls(
            doc_id=d["doc_id"],
            text=d["text"],
            title=d.get("title") or "",
            date=d.get("date"),
            source=d.get("source"),
            url=d.get("url"),
            path=d.get("path") or "",
            sha256=d.get("sha256") or "",
        )


@dataclass(frozen=True)
class Chunk:
    """A run of whole sentences of one document: ``doc.text[start:end] == text``."""

    chunk_id: str
    doc_id: str
    text: str
    start: int
    end: int
    n_tokens: int  # in the chunking encoding (tiktoken)

    def to_json(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "doc_id": self.doc_id,
            "start": self.start,
            "end": self.end,
            "n_tokens": self.n_tokens,
            "text": self.text,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Chunk:
        return cls(d["chunk_id"], d["doc_id"], d["text"], int(d["start"]), int(d["end"]), int(d["n_tokens"]))


@dataclass(frozen=True)
class Passage:
    """A search hit: a chunk with its document's metadata and a score (higher is better)."""

    chunk_id: str
    doc_id: str
    title: str
    date: str | None
    source: str | None
    text: str
    start: int
    end: int
    score: float
    url: str | None = None
    dense_score: float | None = None  # cosine similarity, when the dense retriever saw it
    keyword_score: float | None = None  # BM25 score, when the keyword retriever saw it

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Citation:
    """Where a quoted sentence stands: ``quote == document.text[start:end]``."""

    doc_id: str
    title: str
    date: str | None
    source: str | None
    start: int
    end: int
    quote: str
    url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Answer:
    """An extractive answer: ``text`` is made only of the cited quotes, or a refusal when ``abstained``.

    ``score`` in [0, 1] is the estimated probability that the sources answer the question with the
    quoted sentence: a logistic model (``answer.ABSTAIN_WEIGHTS``) over the evidence (whether the
    question's names, numbers and dates occur around the sentence and in its document, the cosine of the
    sentence and of its passage with the question, its share of the question's terms, how well its
    contextual token vectors match the least-supported question word, whether it holds a token of the
    kind of answer asked for, a negation in the question that the sentence lacks), fitted on SQuAD 2.0
    dev, where half the questions have no answer, plus answerable SQuAD v1.1 dev questions. Under
    ``answer.THRESHOLD`` (0.64) the answer is refused (``abstained``; ``text`` says so; ``passages`` keeps the closest
    passages). ``details`` holds the features, for debugging.
    """

    question: str
    text: str
    citations: tuple[Citation, ...] = ()
    abstained: bool = False
    passages: tuple[Passage, ...] = ()
    score: float = 0.0
    resolved_question: str = ""  # the question after follow-up resolution with the history
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "resolved_question": self.resolved_question,
            "text": self.text,
            "abstained": self.abstained,
            "score": self.score,
            "citations": [c.to_json() for c in self.citations],
            "passages": [p.to_json() for p in self.passages],
        }
