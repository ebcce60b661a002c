"""Frozen records passed between pipeline stages; offsets are character offsets into ``Document.text``."""

from __future__ import annotations

import bisect
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
    pages: tuple[int, ...] = ()  # a paged document (PDF): each page's start offset in text, page 1 first

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding ``text[offset]``; None for a document without pages."""
        return bisect.bisect_right(self.pages, offset) if self.pages else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "doc_id": self.doc_id,
            "title": self.title,
            "date": self.date,
            "source": self.source,
            "url": self.url,
            "path": self.path,
            "sha256": self.sha256,
            "text": self.text,
        }
        if self.pages:
            out["pages"] = list(self.pages)
        return out

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
            pages=tuple(int(x) for x in d.get("pages") or ()),
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
    page: int | None = None  # 1-based page of ``start`` in a paged document (PDF), else None

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Answer:
    """An extractive answer: ``text`` is made only of the cited quotes, or a refusal when ``abstained``.

    ``score`` in [0, 1] is the reader's calibrated probability that the quoted sentence answers the question
    (``reader.py``; calibrated on development questions, see ``docs/answers.md``). Under
    ``answer.THRESHOLD`` the answer is refused (``abstained``; ``text`` says so; ``passages`` keeps the
    closest passages). ``span`` is the exact answer ("Ariel Henry", "the High Court") inside the quoted
    sentence the reader found it in: a ``Citation`` whose ``quote == document.text[start:end]``, or None. ``details``
    holds the reader's figures, for debugging.
    """

    question: str
    text: str
    citations: tuple[Citation, ...] = ()
    abstained: bool = False
    passages: tuple[Passage, ...] = ()
    score: float = 0.0
    resolved_question: str = ""  # the question as the reader read it (with the history's words, for a follow-up)
    span: Citation | None = None  # the exact answer, inside one of the quoted sentences
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "resolved_question": self.resolved_question,
            "text": self.text,
            "abstained": self.abstained,
            "score": self.score,
            "span": self.span.to_json() if self.span is not None else None,
            "citations": [c.to_json() for c in self.citations],
            "passages": [p.to_json() for p in self.passages],
        }
