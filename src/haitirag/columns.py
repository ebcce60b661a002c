"""The index folder's records as columns: numpy arrays and two UTF-8 files, memory-mapped at load.

A segment's records (``store.py``), row i of ``chunks.npy`` = FAISS vector i = BM25 row i::

    text.bin        every document's text, UTF-8, one after another (no second copy of a chunk's text)
    meta.bin        one JSON object per document: doc_id, title, date, source, url, path, sha256
    documents.npy   int64 (documents, 9): byte span of the text in text.bin, byte span of the metadata in
                    meta.bin, row span in sentences.npy, row span in pages.npy, source number
    dates.npy       each document's date as ASCII bytes (b"" when it has none), for date filters
    doc_ids.npy     each document's id (bytes), row order; doc_keys.npy / doc_key_rows.npy: the same sorted, and
                    their rows (a lookup by id is a binary search, nothing is built at load)
    sentences.npy   int64 (sentences, 2): character offsets of every sentence, document after document
    pages.npy       int64: each page's start offset, for paged documents (PDF)
    chunks.npy      int64 (chunks, 4): document row, start, end (character offsets), tokens
    chunk_ids.npy   each chunk's id (bytes)
    columns.json    the source names (source number -> name; "" for documents without one)

Nothing is parsed into Python objects at load: ``Documents``, ``Sentences`` and ``Chunks`` are read-only
mappings over the arrays of a generation's segments (``Part``: one segment's columns, where its rows start,
which of its documents later builds removed) that build a ``Document`` or ``Chunk`` when one is asked for (the
last few are kept). Filters are computed over the columns (``Documents.allowed``). ``open_columns`` checks
shapes, counts and that every span lies inside its file; checksums are the store's business (``store.py``).
"""

from __future__ import annotations

import bisect
import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np

from .records import Chunk, Document

__all__ = ["Chunks", "Columns", "Documents", "Part", "Sentences", "open_columns", "write_columns"]

Span = tuple[int, int]
FILES = ("text.bin", "meta.bin", "documents.npy", "dates.npy", "doc_ids.npy", "doc_keys.npy", "doc_key_rows.npy",
         "sentences.npy", "pages.npy", "chunks.npy", "chunk_ids.npy", "columns.json")
_META = ("doc_id", "title", "date", "source", "url", "path", "sha256")


def _save(path: Path, array: np.ndarray) -> None:
    with path.open("wb") as f:
        np.save(f, array, allow_pickle=False)


def _bytes_column(values: Sequence[str]) -> np.ndarray:
    encoded = [v.encode("utf-8") for v in values]
    return np.array(encoded, dtype=f"S{max((len(b) for b in encoded), default=0) or 1}")


def write_columns(folder: Path, docs: Sequence[Document], sentences: Mapping[str, Sequence[Span]],
                  chunks: Sequence[Chunk]) -> None:
    """Write the records of one generation into ``folder`` (chunks in vector order)."""
    sources = sorted({d.source or "" for d in docs})
    source_no = {s: i for i, s in enumerate(sources)}
    rows = np.zeros((len(docs), 9), dtype=np.int64)
    sent_rows: list[Sequence[Span]] = []
    page_rows: list[Sequence[int]] = []
    text_at = meta_at = sent_at = page_at = 0
    with (folder / "text.bin").open("wb") as text_f, (folder / "meta.bin").open("wb") as meta_f:
        for i, d in enumerate(docs):
            text = d.text.encode("utf-8")
            meta = json.dumps({k: getattr(d, k) for k in _META}, ensure_ascii=False).encode("utf-8")
            text_f.write(text)
            meta_f.write(meta)
            spans = sentences[d.doc_id]
            rows[i] = (text_at, text_at + len(text), meta_at, meta_at + len(meta), sent_at, sent_at + len(spans),
                       page_at, page_at + len(d.pages), source_no[d.source or ""])
            text_at, meta_at = text_at + len(text), meta_at + len(meta)
            sent_at, page_at = sent_at + len(spans), page_at + len(d.pages)
            sent_rows.append(spans)
            page_rows.append(d.pages)
    _save(folder / "documents.npy", rows)
    _save(folder / "dates.npy", np.array([(d.date or "").encode("ascii", "replace") for d in docs],
                                          dtype=f"S{max((len(d.date or '') for d in docs), default=0) or 1}"))
    ids = _bytes_column([d.doc_id for d in docs])
    order = np.argsort(ids, kind="stable")
    _save(folder / "doc_ids.npy", ids)
    _save(folder / "doc_keys.npy", ids[order])
    _save(folder / "doc_key_rows.npy", order.astype(np.int64))
    flat = np.fromiter((x for spans in sent_rows for span in spans for x in span), dtype=np.int64, count=2 * sent_at)
    _save(folder / "sentences.npy", flat.reshape(-1, 2))
    _save(folder / "pages.npy", np.fromiter((p for pages in page_rows for p in pages), dtype=np.int64, count=page_at))
    doc_row = {d.doc_id: i for i, d in enumerate(docs)}
    table = np.zeros((len(chunks), 4), dtype=np.int64)
    for i, c in enumerate(chunks):
        table[i] = (doc_row[c.doc_id], c.start, c.end, c.n_tokens)
    _save(folder / "chunks.npy", table)
    _save(folder / "chunk_ids.npy", _bytes_column([c.chunk_id for c in chunks]))
    (folder / "columns.json").write_text(json.dumps({"sources": sources}, ensure_ascii=False) + "\n", encoding="utf-8")


class Columns:
    """One generation's arrays, memory-mapped (``open_columns``)."""

    def __init__(self, folder: Path):
        def load(name: str) -> np.ndarray:  # (plain arrays over the mapping: np.memmap's indexing is slow)
            return np.asarray(np.load(folder / name, mmap_mode="r", allow_pickle=False))

        def raw(name: str) -> np.ndarray:
            path = folder / name
            return np.asarray(np.memmap(path, dtype=np.uint8, mode="r")) if path.stat().st_size \
                else np.zeros(0, dtype=np.uint8)

        self.text, self.meta = raw("text.bin"), raw("meta.bin")
        self.docs, self.dates, self.doc_ids = load("documents.npy"), load("dates.npy"), load("doc_ids.npy")
        self.doc_keys, self.doc_key_rows = load("doc_keys.npy"), load("doc_key_rows.npy")
        self.sentences, self.pages = load("sentences.npy"), load("pages.npy")
        self.chunks, self.chunk_ids = load("chunks.npy"), load("chunk_ids.npy")
        self.sources: list[str] = json.loads((folder / "columns.json").read_text(encoding="utf-8"))["sources"]

    def check(self) -> None:
        """ValueError unless the arrays fit together (shapes, counts, spans inside their files)."""
        n, m = len(self.docs), len(self.chunks)
        d, c = self.docs, self.chunks
        ok = (d.ndim == 2 and d.shape[1] == 9 and c.ndim == 2 and c.shape[1] == 4 and self.sentences.ndim == 2
              and self.sentences.shape[1] == 2 and len(self.dates) == len(self.doc_ids) == len(self.doc_keys)
              == len(self.doc_key_rows) == n and len(self.chunk_ids) == m and isinstance(self.sources, list))
        if ok and n:
            ok = bool(d[0, 0] == 0 and d[-1, 1] == len(self.text) and np.all(d[1:, 0] == d[:-1, 1])
                      and d[0, 2] == 0 and d[-1, 3] == len(self.meta) and np.all(d[1:, 2] == d[:-1, 3])
                      and d[0, 4] == 0 and d[-1, 5] == len(self.sentences) and np.all(d[1:, 4] == d[:-1, 5])
                      and d[0, 6] == 0 and d[-1, 7] == len(self.pages) and np.all(d[1:, 6] == d[:-1, 7])
                      and np.all(d[:, 1] >= d[:, 0]) and np.all(d[:, 3] >= d[:, 2]) and np.all(d[:, 5] >= d[:, 4])
                      and np.all(d[:, 7] >= d[:, 6]) and d[:, 8].min() >= 0 and d[:, 8].max() < len(self.sources)
                      and np.all((self.doc_key_rows >= 0) & (self.doc_key_rows < n)))
        elif ok:
            ok = len(self.text) == len(self.meta) == len(self.sentences) == len(self.pages) == 0
        if ok and m:
            ok = bool(c[:, 0].min() >= 0 and c[:, 0].max() < n and np.all(c[:, 2] >= c[:, 1]) and c[:, 1].min() >= 0)
        if not ok:
            raise ValueError("the record files do not fit together")

    def check_offsets(self) -> None:
        """ValueError unless every text is UTF-8 and every sentence, page and chunk lies inside its document
        (reads every text: ``haitirag verify``)."""
        d, c = self.docs, self.chunks
        lengths = np.fromiter((len(self.text[a:b].tobytes().decode("utf-8")) for a, b in d[:, :2].tolist()),
                              dtype=np.int64, count=len(d))
        sent_doc = np.repeat(np.arange(len(d)), d[:, 5] - d[:, 4])
        page_doc = np.repeat(np.arange(len(d)), d[:, 7] - d[:, 6])
        s = self.sentences
        if not (np.all((c[:, 1] <= c[:, 2]) & (c[:, 2] <= lengths[c[:, 0]]))
                and np.all((0 <= s[:, 0]) & (s[:, 0] <= s[:, 1]) & (s[:, 1] <= lengths[sent_doc]))
                and np.all((0 <= self.pages) & (self.pages <= lengths[page_doc]))):
            raise ValueError("a chunk, sentence or page lies outside its document")

    def metadata(self, row: int) -> dict[str, Any]:
        """A document's fields other than its text and pages (its JSON object in meta.bin)."""
        m0, m1 = self.docs[row, 2:4].tolist()
        return dict(json.loads(self.meta[m0:m1].tobytes().decode("utf-8")))

    def document(self, row: int, spans: Sequence[int] | None = None) -> Document:
        t0, t1, _, _, _, _, p0, p1, _ = self.docs[row].tolist() if spans is None else spans
        return Document(text=self.text[t0:t1].tobytes().decode("utf-8"), pages=tuple(self.pages[p0:p1].tolist()),
                        **self.metadata(row))

    def everything(self) -> Iterator[tuple[Document, list[Span], list[int], list[Chunk]]]:
        """Every document in row order with its sentences, its chunk rows (ascending) and their chunks: one pass
        over the columns (what the next build reuses)."""
        order = np.argsort(self.chunks[:, 0], kind="stable")
        bounds = np.searchsorted(self.chunks[order, 0], np.arange(len(self.docs) + 1)).tolist()
        table, ids, sentences = self.chunks, self.chunk_ids, self.sentences
        for block in range(0, len(self.docs), 4096):
            for row, spans in enumerate(self.docs[block:block + 4096].tolist(), start=block):
                doc = self.document(row, spans)
                rows = order[bounds[row]:bounds[row + 1]].tolist()
                chunks = [Chunk(ids[i].decode("ascii"), doc.doc_id, doc.text[a:b], a, b, n)
                          for i, (_, a, b, n) in zip(rows, table[rows].tolist(), strict=True)]
                yield doc, [(a, b) for a, b in sentences[spans[4]:spans[5]].tolist()], rows, chunks


def open_columns(folder: Path) -> Columns:
    """The arrays of ``folder``, checked (``OSError`` / ``ValueError`` when missing or damaged)."""
    cols = Columns(folder)
    cols.check()
    return cols


@dataclass(frozen=True)
class Part:
    """One segment's columns within a generation: its first document and chunk rows there, and which of its
    documents later builds removed (sorted local rows; their chunks are no longer searched)."""

    cols: Columns
    doc_at: int = 0
    chunk_at: int = 0
    removed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @functools.cached_property
    def doc_live(self) -> np.ndarray | None:
        """A bool per document row, None when none was removed."""
        if not len(self.removed):
            return None
        live = np.ones(len(self.cols.docs), dtype=bool)
        live[self.removed] = False
        return live

    def live(self, local: int) -> bool:
        live = self.doc_live
        return live is None or bool(live[local])

    def find(self, doc_id: str) -> int | None:
        """The local row of ``doc_id`` if it is live here."""
        key = doc_id.encode("utf-8")
        keys = self.cols.doc_keys
        i = int(np.searchsorted(keys, key))
        if i < len(keys) and keys[i] == key:
            local = int(self.cols.doc_key_rows[i])
            return local if self.live(local) else None
        return None

    @functools.cached_property
    def chunk_order(self) -> tuple[np.ndarray, np.ndarray]:
        """Chunk rows grouped by document (stable) and each document's bounds in that order."""
        order = np.argsort(self.cols.chunks[:, 0], kind="stable")
        bounds = np.searchsorted(self.cols.chunks[order, 0], np.arange(len(self.cols.docs) + 1))
        return order, bounds

    def chunk_rows(self, local: int) -> np.ndarray:
        """A document's local chunk rows, ascending."""
        order, bounds = self.chunk_order
        return order[bounds[local]:bounds[local + 1]]


def _parts(cols: Columns | Sequence[Part]) -> list[Part]:
    return [Part(cols)] if isinstance(cols, Columns) else list(cols)


class Documents(Mapping[str, Document]):
    """doc_id -> ``Document`` over the live documents of every segment, read from the columns when asked (the last
    256 are kept). Rows are global: a segment's rows follow the previous segment's."""

    def __init__(self, cols: Columns | Sequence[Part]):
        self.parts = _parts(cols)
        self._starts = [p.doc_at for p in self.parts]
        self.at = functools.lru_cache(maxsize=256)(self._document)
        self._sources: frozenset[str] | None = None

    def part(self, row: int) -> tuple[Part, int]:
        """The segment of a global document row, and the row there."""
        p = self.parts[bisect.bisect_right(self._starts, row) - 1]
        return p, row - p.doc_at

    def _document(self, row: int) -> Document:
        p, local = self.part(row)
        return p.cols.document(local)

    def row(self, doc_id: str) -> int | None:
        for p in reversed(self.parts):  # (a document edited since its segment was written is live in a later one)
            local = p.find(doc_id)
            if local is not None:
                return p.doc_at + local
        return None

    def __getitem__(self, doc_id: str) -> Document:
        row = self.row(doc_id) if isinstance(doc_id, str) else None
        if row is None:
            raise KeyError(doc_id)
        return self.at(row)

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self.row(doc_id) is not None

    def __iter__(self) -> Iterator[str]:
        for p in self.parts:
            live = p.doc_live
            for local, b in enumerate(p.cols.doc_ids):
                if live is None or live[local]:
                    yield b.decode("utf-8")

    def __len__(self) -> int:
        return sum(len(p.cols.docs) - len(p.removed) for p in self.parts)

    def live(self) -> np.ndarray | None:
        """A bool per global document row, None when every document is live."""
        if all(p.doc_live is None for p in self.parts):
            return None
        return np.concatenate([np.ones(len(p.cols.docs), bool) if p.doc_live is None else p.doc_live
                               for p in self.parts])

    def everything(self, parts: Sequence[Part] | None = None
                   ) -> Iterator[tuple[Document, list[Span], list[int], list[Chunk]]]:
        """Every live document (of ``parts``, default all) with its sentences, its global chunk rows (ascending)
        and their chunks (what the next build reuses)."""
        for p in self.parts if parts is None else parts:
            live = p.doc_live
            for row, (doc, sentences, rows, chunks) in enumerate(p.cols.everything()):
                if live is None or live[row]:
                    yield doc, sentences, [p.chunk_at + r for r in rows], chunks

    def newest_titles(self) -> Iterator[tuple[str, str | None]]:
        """(title, date) of the documents, newest first (undated last, then row order), each read from its
        metadata when reached (no text decoded)."""
        if not len(self):
            return
        dates = np.concatenate([p.cols.dates for p in self.parts])
        rank = np.unique(dates, return_inverse=True)[1].reshape(-1)  # b"" (undated) ranks lowest
        live = self.live()
        for row in np.lexsort((np.arange(len(dates)), -rank)).tolist():
            if live is None or live[row]:
                p, local = self.part(row)
                meta = p.cols.metadata(local)
                yield meta["title"], meta["date"]

    def has_title(self, title: str) -> bool:
        """Whether a live document's title, stripped and lower-cased, is ``title`` stripped and lower-cased. For an
        ASCII ``title`` each segment's metadata bytes are searched once for its text (in any case) and each document
        found there is read to compare; other titles are compared over every document."""
        wanted = title.strip().lower()
        if not wanted or not len(self):
            return False
        if not wanted.isascii():
            return any((t or "").strip().lower() == wanted for t, _ in self.newest_titles())
        needle = json.dumps(wanted, ensure_ascii=False)[1:-1].encode()  # as meta.bin was written
        for p in self.parts:
            if not len(p.cols.meta):
                continue
            lowered, starts = p.cols.meta.tobytes().lower(), p.cols.docs[:, 2]  # (bytes.lower: ASCII letters only)
            at = lowered.find(needle)
            while at >= 0:
                row = int(np.searchsorted(starts, at, side="right")) - 1
                at = lowered.find(needle, at + 1)
                if p.live(row) and (p.cols.metadata(row)["title"] or "").strip().lower() == wanted:
                    return True
        return False

    def sources(self) -> set[str]:
        """The sources of the live documents ("" for those without one)."""
        if self._sources is None:
            found: set[str] = set()
            for p in self.parts:
                codes = p.cols.docs[:, 8] if p.doc_live is None else p.cols.docs[p.doc_live, 8]
                found |= {p.cols.sources[int(i)] for i in np.unique(codes).tolist()}
            self._sources = frozenset(found)
        return set(self._sources)

    def allowed(self, sources: frozenset[str] | None, date_from: str | None, date_to: str | None,
                keep_undated: bool) -> np.ndarray:
        """Which global document rows are live and pass the filters (as ``backend.Filters.allows`` says)."""
        out = []
        for p in self.parts:
            ok = np.ones(len(p.cols.docs), dtype=bool) if p.doc_live is None else p.doc_live.copy()
            if sources is not None:
                ok &= np.isin(p.cols.docs[:, 8], [i for i, s in enumerate(p.cols.sources) if s in sources])
            dates = p.cols.dates
            in_range = np.ones(len(dates), dtype=bool)
            if date_from is not None:
                in_range &= dates >= date_from.encode()
            if date_to is not None:
                in_range &= dates <= date_to.encode()
            out.append(ok & np.where(dates != b"", in_range, keep_undated))
        return np.concatenate(out) if out else np.zeros(0, dtype=bool)


class Sentences(Mapping[str, list[Span]]):
    """doc_id -> the (start, end) of its sentences."""

    def __init__(self, documents: Documents):
        self.documents = documents

    def __getitem__(self, doc_id: str) -> list[Span]:
        row = self.documents.row(doc_id) if isinstance(doc_id, str) else None
        if row is None:
            raise KeyError(doc_id)
        p, local = self.documents.part(row)
        s0, s1 = (int(x) for x in p.cols.docs[local, 4:6])
        return [(int(a), int(b)) for a, b in p.cols.sentences[s0:s1]]

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self.documents

    def __iter__(self) -> Iterator[str]:
        return iter(self.documents)

    def __len__(self) -> int:
        return len(self.documents)


class Chunks(Sequence[Chunk]):
    """Global row -> ``Chunk`` (rows of removed documents included: searches never return them; ``live`` says
    which rows are searched, ``dead`` lists the others); a chunk's text is a slice of its document's."""

    def __init__(self, documents: Documents):
        self.documents = documents
        self.parts = documents.parts
        self._starts = [p.chunk_at for p in self.parts]
        self.rows = sum(len(p.cols.chunks) for p in self.parts)
        if len(self.parts) == 1 and not self.parts[0].doc_at:
            self.doc_rows = self.parts[0].cols.chunks[:, 0]
        else:  # each chunk's global document row
            self.doc_rows = np.concatenate([p.cols.chunks[:, 0] + p.doc_at for p in self.parts]
                                           or [np.zeros(0, np.int64)])
        doc_live = documents.live()
        self.live = None if doc_live is None else doc_live[self.doc_rows]
        self.dead = np.zeros(0, dtype=np.int64) if self.live is None else np.flatnonzero(~self.live)  # (few)

    def __len__(self) -> int:
        return self.rows

    @overload
    def __getitem__(self, i: int) -> Chunk: ...

    @overload
    def __getitem__(self, i: slice) -> list[Chunk]: ...

    def __getitem__(self, i: int | slice) -> Chunk | list[Chunk]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += self.rows
        if not 0 <= i < self.rows:
            raise IndexError(i)
        p = self.parts[bisect.bisect_right(self._starts, i) - 1]
        local = i - p.chunk_at
        row, start, end, n_tokens = (int(x) for x in p.cols.chunks[local])
        doc = self.documents.at(p.doc_at + row)
        return Chunk(p.cols.chunk_ids[local].decode("ascii"), doc.doc_id, doc.text[start:end], start, end, n_tokens)

    def __iter__(self) -> Iterator[Chunk]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other: object) -> bool:  # as a list of its chunks compares
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]
