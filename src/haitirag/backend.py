"""Where an index lives: the ``Store`` interface, the index folder (``FolderStore``), and a dispatcher.

Everything above this module (``Index``, ``build_index`` / ``update_index``, the command line, the page) talks
to a ``Store`` and to the ``Generation`` it loads, never to files or SQL:

* ``open_store("index")`` is the index folder of ``store.py`` (the default, unchanged);
* ``open_store("postgresql://user:password@host/db")`` is PostgreSQL with pgvector (``pgstore.py``; psycopg
  is imported only then).

A ``Store`` reads and writes whole generations (``read_manifest``, ``check``, ``load``, ``write``), holds the
build lock, and says cheaply whether a new generation appeared (``stamp``). A loaded ``Generation`` holds the
documents, their sentences and chunks, and answers the two retrievers' questions (``dense``, ``keyword``) with
the filters applied where the data are (a boolean mask over FAISS rows here, ``WHERE`` in SQL there).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .errors import IndexCorruptError
from .records import Chunk, Document

if TYPE_CHECKING:
    from .columns import Chunks, Documents, Sentences
    from .keyword import KeywordIndex, RowTerms

__all__ = ["Filters", "FolderGeneration", "FolderStore", "Generation", "Store", "is_database", "open_store"]

Span = tuple[int, int]
Lap = Callable[[str], None]
DATABASE_SCHEMES = ("postgresql://", "postgres://")


@dataclass(frozen=True)
class Filters:
    """Which documents a search may return (already checked by ``index.check_filters``)."""

    sources: frozenset[str] | None = None  # "" stands for documents without a source
    date_from: str | None = None
    date_to: str | None = None
    keep_undated: bool = True

    def allows(self, doc: Document) -> bool:
        if self.sources is not None and (doc.source or "") not in self.sources:
            return False
        if doc.date is None:
            return self.keep_undated
        return (self.date_from is None or doc.date >= self.date_from) and (self.date_to is None
                                                                           or doc.date <= self.date_to)


@dataclass
class Previous:
    """One document of the previous generation, for reuse: its sentences, chunks and (folder) vectors.
    ``vectors`` is None where the store keeps them itself (PostgreSQL copies rows inside the database)."""

    document: Document
    sentences: list[Span]
    chunks: list[Chunk]
    vectors: np.ndarray | None


class Generation(Protocol):
    """One loaded generation: what ``Index`` searches and cites."""

    @property
    def documents(self) -> Mapping[str, Document]: ...

    @property
    def sentences(self) -> Mapping[str, list[Span]]: ...

    @property
    def chunks(self) -> Sequence[Chunk]: ...  # chunk key (what dense/keyword return) -> Chunk; len(): the count

    @property
    def vectors(self) -> Any: ...  # .d (dimension) and .ntotal (count): a FAISS index, or pgstore's stand-in

    @property
    def keyword(self) -> Any: ...  # vocab, document_frequency(), size, stemmer, query_tokens(): KeywordIndex...

    def sources(self) -> set[str]: ...

    def dense(self, vec: np.ndarray, n: int, filters: Filters | None) -> list[tuple[int, float]]: ...

    def keyword_top(self, query: str, n: int, filters: Filters | None) -> dict[int, float]: ...


class Store(Protocol):
    """An index's home. ``location`` is safe to show (a database password is masked)."""

    location: str

    def exists(self) -> bool: ...

    def stamp(self) -> Hashable | None: ...

    def read_manifest(self, catalog: bool = True) -> dict[str, Any]: ...

    def check(self, manifest: dict[str, Any]) -> None: ...  # cheap: before every load

    def verify(self, manifest: dict[str, Any]) -> None: ...  # everything (``haitirag verify``)

    def load(self, manifest: dict[str, Any]) -> Generation: ...

    def lock(self, wait_s: float = 0.0) -> contextlib.AbstractContextManager[None]: ...

    def stored_documents(self, manifest: dict[str, Any]) -> Iterator[Document]: ...

    def previous(self, manifest: dict[str, Any]) -> list[Previous]: ...

    def chunk_vectors(self, doc_ids: Sequence[str]) -> dict[str, np.ndarray]: ...  # of ``previous``'s chunks, in order

    def vector_type(self, index_type: str, n: int) -> str: ...

    def write(self, manifest: dict[str, Any], docs: list[Document], sentences: dict[str, list[Span]],
              chunks: list[Chunk], matrix: np.ndarray, texts: list[str], fresh: Sequence[int], index_type: str,
              lap: Lap) -> dict[str, Any]: ...  # fresh: the rows whose vectors ``matrix`` holds for writing

    def prune(self, keep: set[str]) -> None: ...


def is_database(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith(DATABASE_SCHEMES)


def open_store(location: str | Path | Store) -> Store:
    """The store at ``location``: a ``postgresql://`` connection string, or an index folder."""
    if not isinstance(location, (str, Path)):
        return location
    if is_database(location):
        from .pgstore import PgStore

        return PgStore(str(location))
    return FolderStore(location)


# -- the index folder ---------------------------------------------------------------------------------------
DEAD_MARGIN = 64  # removed rows a search asks for beyond n before it filters them out over every row


class FolderGeneration:
    """A generation of the index folder: its segments' records as memory-mapped columns (``columns.py``), FAISS
    vectors and BM25 postings, searched as one; global row i = chunk i. Rows of removed documents are never
    returned (``chunks.live``, ``chunks.dead``)."""

    def __init__(self, documents: Documents, sentences: Sentences, chunks: Chunks, vectors: Any,
                 keyword: KeywordIndex):
        self.documents, self.sentences, self.chunks = documents, sentences, chunks
        self.vectors, self.keyword = vectors, keyword
        self._last: tuple[Filters, np.ndarray] | None = None  # the last filter's mask (hybrid asks twice)

    def sources(self) -> set[str]:
        return self.documents.sources()

    def allowed(self, filters: Filters | None) -> np.ndarray | None:
        """The rows a filtered search may return (live ones only); None without filters (the retrievers leave
        out removed rows themselves: a mask over every row would cost each question a pass over a million)."""
        if filters is None:
            return None
        last = self._last
        if last is not None and last[0] == filters:
            return last[1]
        ok_rows = self.documents.allowed(filters.sources, filters.date_from, filters.date_to, filters.keep_undated)
        mask = np.asarray(ok_rows[self.chunks.doc_rows])
        self._last = (filters, mask)
        return mask

    def dense(self, vec: np.ndarray, n: int, filters: Filters | None) -> list[tuple[int, float]]:
        from .vectors import search

        dead = self.chunks.dead
        if filters is not None or not len(dead):
            return search(self.vectors, vec, n, self.allowed(filters))
        extra = min(len(dead), DEAD_MARGIN)  # removed rows: a few more asked for, those dropped
        hits = search(self.vectors, vec, n + extra, None)
        found = [h for h, gone in zip(hits, np.isin([r for r, _ in hits], dead), strict=True) if not gone]
        if len(found) >= n or len(hits) < n + extra:
            return found[:n]
        return search(self.vectors, vec, n, self.chunks.live)  # (more removed rows than that among the best)

    def keyword_top(self, query: str, n: int, filters: Filters | None) -> dict[int, float]:
        try:
            return self.keyword.top(query, n, self.allowed(filters))
        except IndexError as err:  # postings past the last chunk: a large file damaged in place
            raise IndexCorruptError("the index's keyword files are damaged; run `haitirag verify`, then "
                                    "`haitirag build --full` to rebuild it") from err


class FolderStore:
    """The index folder of ``store.py``: generations of segments, manifest.json swapped in last, flock."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.location = str(path)
        # set by ``previous``: that generation and its chunks' rows by keyword text (``write`` takes their terms)
        self._terms_from: tuple[FolderGeneration, dict[bytes, int]] | None = None

    def __repr__(self) -> str:
        return f"FolderStore({self.location!r})"

    def exists(self) -> bool:
        from .store import MANIFEST

        return (self.path / MANIFEST).exists()

    def stamp(self) -> Hashable | None:
        from .store import manifest_stamp

        return manifest_stamp(self.path)

    def read_manifest(self, catalog: bool = True) -> dict[str, Any]:
        from .store import read_manifest

        return read_manifest(self.path, catalog=catalog)

    def check(self, manifest: dict[str, Any]) -> None:
        from .store import verify_files

        verify_files(self.path, manifest)

    def verify(self, manifest: dict[str, Any]) -> None:
        """Every file's SHA-256, then a full load and every chunk's offsets against its document's text."""
        from .store import verify_files

        verify_files(self.path, manifest, full=True)
        gen = self.load(manifest)
        try:
            for part in gen.documents.parts:
                part.cols.check_offsets()
            gen.keyword.check_bounds()
        except (ValueError, UnicodeDecodeError) as err:
            raise IndexCorruptError(f"index {self.path} is damaged ({err}); run `haitirag build --full` to rebuild it"
                                    ) from err

    def load(self, manifest: dict[str, Any], search: bool = True) -> FolderGeneration:
        """The generation ``manifest`` names; ``search=False``: an HNSW graph is not read (its vectors are mapped
        as for exact search), for builds that only read rows."""
        from .columns import Chunks, Documents, Part, Sentences, open_columns
        from .keyword import KeywordIndex, Postings
        from .store import generation_dir, segment_dir
        from .vectors import Segments
        from .vectors import load as load_vectors

        gen = generation_dir(self.path, manifest)
        parts, vec_parts, kw_parts = [], [], []
        doc_at = chunk_at = 0
        try:
            for seg in manifest["segments"]:
                folder = segment_dir(gen, seg)
                cols = open_columns(folder)
                removed = np.load(gen / f"removed-{seg['id']}.npy", allow_pickle=False) if seg.get("removed") \
                    else np.zeros(0, dtype=np.int64)
                vec = load_vectors(folder, seg.get("vectors") if search else None)
                postings = Postings.load(folder / "bm25")
                if not (len(cols.chunks) == vec.ntotal == len(postings.lengths) == seg["chunks"]
                        and len(cols.docs) == seg["documents"] and len(removed) == seg.get("removed", 0)
                        and (not len(removed) or (int(removed.min()) >= 0 and int(removed.max()) < len(cols.docs)))):
                    raise ValueError(f"segment {seg['id']} is inconsistent with the manifest")
                parts.append(Part(cols, doc_at, chunk_at, removed.astype(np.int64)))
                vec_parts.append((chunk_at, vec))
                kw_parts.append((chunk_at, postings))
                doc_at, chunk_at = doc_at + len(cols.docs), chunk_at + len(cols.chunks)
            terms = json.loads((gen / "vocab.json").read_text(encoding="utf-8"))
            first_df = np.load(gen / "df.npy", allow_pickle=False)
            if not isinstance(terms, list) or not parts or first_df.ndim != 1 or len(first_df) > len(terms) \
                    or any(len(p.indptr) - 1 > len(terms) for _, p in kw_parts) \
                    or any(seg.get("removed") for seg in manifest["segments"][1:]):
                raise ValueError("the keyword vocabulary does not fit its statistics")
            df = np.pad(first_df.astype(np.int64), (0, len(terms) - len(first_df)))
            for _, p in kw_parts[1:]:  # later segments have no removed rows: every posting counts
                held = np.diff(p.indptr)
                df[:len(held)] += held
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
            raise IndexCorruptError(f"index {self.path} is unreadable ({err}); run `haitirag build` to rebuild it"
                                    ) from err
        documents = Documents(parts)
        sentences, chunks = Sentences(documents), Chunks(documents)
        vectors = vec_parts[0][1] if len(vec_parts) == 1 else Segments(vec_parts)
        keyword = KeywordIndex({t: i for i, t in enumerate(terms)}, kw_parts, chunks.live, df)
        counts = manifest["counts"]
        if not (len(chunks) == vectors.ntotal == keyword.rows and keyword.size == counts["chunks"]
                and len(documents) == counts["documents"] and vectors.d == manifest["dimension"]):
            raise IndexCorruptError(f"index {self.path} is inconsistent (counts differ from the manifest); "
                                    "run `haitirag build` to rebuild it")
        return FolderGeneration(documents, sentences, chunks, vectors, keyword)

    def lock(self, wait_s: float = 0.0) -> contextlib.AbstractContextManager[None]:
        from .store import build_lock

        return build_lock(self.path, wait_s=wait_s)

    def stored_documents(self, manifest: dict[str, Any]) -> Iterator[Document]:
        docs = self.load(manifest).documents
        for doc_id in docs:
            yield docs[doc_id]

    def previous(self, manifest: dict[str, Any]) -> list[Previous]:
        from .index import embed_text
        from .store import verify_files
        from .vectors import matrix

        verify_files(self.path, manifest, full=True)  # what is reused is checked in full
        old = self.load(manifest)
        vectors = matrix(old.vectors)
        out: list[Previous] = []
        rows_of: dict[bytes, int] = {}
        terms = manifest.get("keyword") == _keyword_settings() and len(old.chunks) <= TERMS_FROM_MAX  # same tokenizer
        for doc, sentences, rows, chunks in old.documents.everything():
            out.append(Previous(doc, sentences, chunks, vectors[rows]))
            for row, chunk in zip(rows, chunks, strict=True) if terms else ():
                rows_of.setdefault(_text_key(embed_text(doc.title, chunk.text)), row)
        if terms:
            self._terms_from = (old, rows_of)  # ``write`` takes these chunks' terms from the postings
        return out

    def _known_terms(self, texts: list[str], vocab: dict[str, int]) -> RowTerms | None:
        """The terms of the ``texts`` that were texts of the generation ``previous`` read (from its postings, so
        they are not tokenized again); ``vocab`` becomes that generation's vocabulary (unused terms are dropped
        after)."""
        if self._terms_from is None:
            return None
        old, rows_of = self._terms_from
        new_rows, old_rows = _matched(texts, rows_of)
        if not new_rows:
            return None
        vocab.update(old.keyword.vocab)
        return _terms_of(old.keyword, new_rows, old_rows)

    def chunk_vectors(self, doc_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Nothing to fetch: ``previous`` gives every document's vectors."""
        return {}

    def vector_type(self, index_type: str, n: int) -> str:
        from .vectors import resolve

        return resolve(index_type, n)

    def write(self, manifest: dict[str, Any], docs: list[Document], sentences: dict[str, list[Span]],
              chunks: list[Chunk], matrix: np.ndarray, texts: list[str], fresh: Sequence[int], index_type: str,
              lap: Lap) -> dict[str, Any]:
        """A new generation of one segment from every row (``fresh`` is not needed here), then the manifest swap."""
        import shutil

        from .store import new_tmp_dir, write_generation

        tmp = new_tmp_dir(self.path)
        try:
            vocab: dict[str, int] = {}
            known = self._known_terms(texts, vocab)
            seg, postings = self._segment(tmp, docs, sentences, chunks, matrix, texts, index_type, vocab, lap, known)
            self._keyword_files(tmp, vocab, np.diff(postings.indptr))
            lap("keyword index")
            new = write_generation(self.path, tmp, {**manifest, "vectors": seg["vectors"], "segments": [seg],
                                                    "keyword": _keyword_settings()})
        except BaseException:  # disk full, Ctrl-C...: leave no half-written folder behind
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        lap("checksums, fsync, swap")
        return new

    def append(self, manifest: dict[str, Any], fields: dict[str, Any], docs: list[Document],
               sentences: dict[str, list[Span]], chunks: list[Chunk], matrix: np.ndarray, texts: list[str],
               removed: Iterable[str], lap: Lap, old: FolderGeneration | None = None) -> dict[str, Any]:
        """A new generation that shares the previous one's first segment (hard links, nothing rewritten) with
        ``removed`` documents marked removed, and one small segment, written anew, holding the later documents
        still live and ``docs`` (their sentences, chunks, vectors and texts given). ``old``: the previous
        generation when the caller has it loaded (``load(manifest, search=False)``)."""
        import os
        import shutil

        from .index import embed_text
        from .keyword import tokenize
        from .store import generation_dir, new_tmp_dir, segment_dir, write_generation
        from .vectors import take

        old = old or self.load(manifest, search=False)
        gone = set(removed)
        base, base_seg = old.documents.parts[0], manifest["segments"][0]
        dead = [r for r in (base.find(doc_id) for doc_id in gone) if r is not None]
        carried = [(doc, sents, doc_chunks, take(old.vectors, rows), rows)  # the later segments' live documents
                   for doc, sents, rows, doc_chunks in old.documents.everything(old.documents.parts[1:])
                   if doc.doc_id not in gone]
        lap("read previous segments")
        new_docs = [c[0] for c in carried] + list(docs)
        new_sentences = {**{c[0].doc_id: c[1] for c in carried}, **sentences}
        new_chunks = [ch for c in carried for ch in c[2]] + list(chunks)
        dim = int(manifest["dimension"])
        new_matrix = np.concatenate([c[3].reshape(-1, dim) for c in carried] + [matrix.reshape(-1, dim)]) \
            if carried or len(matrix) else np.zeros((0, dim), dtype=np.float32)
        titles = {d.doc_id: d.title for d in new_docs}
        carried_texts = [embed_text(titles[c.doc_id], c.text) for c in new_chunks[:len(new_chunks) - len(chunks)]]
        tmp = new_tmp_dir(self.path)
        try:
            src, dst = segment_dir(generation_dir(self.path, manifest), base_seg), segment_dir(tmp, base_seg)
            for p in sorted(src.rglob("*")):  # the first segment: the same files, linked
                q = dst / p.relative_to(src)
                if p.is_dir():
                    q.mkdir(parents=True, exist_ok=True)
                else:
                    q.parent.mkdir(parents=True, exist_ok=True)
                    try:
                        os.link(p, q)
                    except OSError:  # a file system without hard links: a copy (the same bytes and checksum)
                        shutil.copyfile(p, q)
            removed_rows = np.unique(np.concatenate([base.removed, np.asarray(dead, dtype=np.int64)]))
            first = {**base_seg, "removed": len(removed_rows)}
            if len(removed_rows):
                with (tmp / f"removed-{base_seg['id']}.npy").open("wb") as f:
                    np.save(f, removed_rows, allow_pickle=False)
            lap("link the first segment")
            vocab = dict(old.keyword.vocab)  # (grows with the new segment's terms)
            segments = [first]
            df = np.load(generation_dir(self.path, manifest) / "df.npy", allow_pickle=False).astype(np.int64)
            # the first segment's live document frequencies lose the rows removed now (``find`` gives live rows)
            gone_rows = [base.chunk_at + int(r) for local in dead for r in base.chunk_rows(local)]
            gone_texts = [embed_text(old.documents.at(old.chunks.doc_rows[r]).title, old.chunks[r].text)
                          for r in gone_rows]  # (a few rows: tokenized, not looked up in the first segment's postings)
            for terms_of_row in tokenize(gone_texts):
                df[[vocab[t] for t in set(terms_of_row)]] -= 1
            if new_chunks:  # terms read from the postings, not tokenized again: the carried rows', and those of the
                # new documents' chunks that a removed row held (the unchanged chunks of an edited document)
                old_rows = [r for c in carried for r in c[4]]
                was = {_text_key(text): r for r, text in zip(gone_rows, gone_texts, strict=True)}
                new_rows, kept_rows = _matched(texts, was, start=len(old_rows))
                new_rows, old_rows = list(range(len(old_rows))) + new_rows, old_rows + kept_rows
                terms = _terms_of(old.keyword, new_rows, old_rows) if old_rows else None
                seg, _ = self._segment(tmp, new_docs, new_sentences, new_chunks, new_matrix,
                                       carried_texts + list(texts), "flat", vocab, lap, terms, compact=False)
                segments.append(seg)
            self._keyword_files(tmp, vocab, df)
            lap("keyword index")
            known = {k: v for k, v in manifest["files"].items() if k.startswith(f"seg-{base_seg['id']}/")}
            new = write_generation(self.path, tmp, {**fields, "vectors": manifest["vectors"], "segments": segments,
                                                    "keyword": _keyword_settings()}, known=known)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        lap("checksums, fsync, swap")
        return new

    @staticmethod
    def _segment(tmp: Path, docs: list[Document], sentences: dict[str, list[Span]], chunks: list[Chunk],
                 matrix: np.ndarray, texts: list[str], index_type: str, vocab: dict[str, int],
                 lap: Lap, known: RowTerms | None = None, compact: bool = True) -> tuple[dict[str, Any], Any]:
        """Write one segment folder into ``tmp``; its manifest entry and its postings (``vocab`` grows; the rows of
        ``known`` are not tokenized, and with them, when ``compact``, terms no row holds are dropped)."""
        import uuid

        from . import vectors as dense
        from .columns import write_columns
        from .keyword import build_postings
        from .store import pause, segment_dir

        seg: dict[str, Any] = {"id": uuid.uuid4().hex[:12], "documents": len(docs), "chunks": len(chunks),
                               "removed": 0}
        folder = segment_dir(tmp, seg)
        folder.mkdir()
        vec_index, seg["vectors"] = dense.build(matrix, index_type)
        lap("vector index")
        try:
            dense.save(vec_index, folder)
        except RuntimeError as err:  # faiss reports I/O errors as RuntimeError
            raise OSError(f"vectors: {err}") from err
        pause("vectors written")
        write_columns(folder, docs, sentences, chunks)
        pause("records written")
        lap("write vectors and records")
        postings = build_postings(texts, vocab, known=known)
        if known is not None and compact:
            from .keyword import drop_unused

            kept, postings = drop_unused(vocab, postings)
            if kept is not vocab:
                vocab.clear()
                vocab.update(kept)
        postings.save(folder / "bm25")
        return seg, postings

    @staticmethod
    def _keyword_files(tmp: Path, vocab: dict[str, int], df: np.ndarray) -> None:
        """The vocabulary, and each term's document frequency over the first segment's live chunks."""
        (tmp / "vocab.json").write_text(json.dumps(list(vocab), ensure_ascii=False) + "\n", encoding="utf-8")
        with (tmp / "df.npy").open("wb") as f:
            np.save(f, df.astype(np.int64), allow_pickle=False)

    def prune(self, keep: set[str]) -> None:
        from .store import prune

        prune(self.path, keep)


TERMS_FROM_MAX = 200_000  # rows of a previous index whose terms a full write reads from its postings; a larger one
# is merged rarely (edits append a segment) and is tokenized again in batches, holding memory down


def _terms_of(keyword: KeywordIndex, new_rows: Sequence[int], old_rows: Sequence[int]) -> RowTerms:
    """New rows' terms: those of the old rows of ``keyword`` (same order; an old row may be taken twice)."""
    from .keyword import RowTerms

    unique, at = np.unique(np.asarray(old_rows, dtype=np.int64), return_inverse=True)
    got = keyword.row_terms(unique)
    sizes, starts = np.diff(got.ptr)[at], got.ptr[:-1][at]
    take = np.repeat(starts - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes) + np.arange(int(sizes.sum()))
    return RowTerms(np.asarray(new_rows, dtype=np.int64), np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                    got.terms[take], got.tf[take], got.lengths[at])


def _matched(texts: Sequence[str], rows_of: dict[bytes, int], start: int = 0) -> tuple[list[int], list[int]]:
    """The rows (numbered from ``start``) of the ``texts`` that ``rows_of`` (``_text_key`` -> old row) holds, and
    their old rows."""
    new_rows, old_rows = [], []
    for i, text in enumerate(texts, start=start):
        r = rows_of.get(_text_key(text))
        if r is not None:
            new_rows.append(i)
            old_rows.append(r)
    return new_rows, old_rows


def _text_key(text: str) -> bytes:
    """A chunk's keyword text, as a key: 16 bytes of BLAKE2b (no collision to fear among a million chunks)."""
    import hashlib

    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def _keyword_settings() -> dict[str, Any]:
    from .keyword import K1, TOKENIZER, B

    return {"method": "lucene", "k1": K1, "b": B, "tokenizer": TOKENIZER}


def chunk_rows(chunks: Iterable[Chunk]) -> dict[str, int]:
    """Chunks per document."""
    n: dict[str, int] = {}
    for c in chunks:
        n[c.doc_id] = n.get(c.doc_id, 0) + 1
    return n
