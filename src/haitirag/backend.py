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
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .errors import IndexCorruptError
from .records import Chunk, Document

if TYPE_CHECKING:
    from .columns import Chunks, Documents, Sentences
    from .keyword import KeywordIndex

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

    def vector_type(self, index_type: str, n: int) -> str: ...

    def write(self, manifest: dict[str, Any], docs: list[Document], sentences: dict[str, list[Span]],
              chunks: list[Chunk], matrix: np.ndarray, texts: list[str], fresh: Sequence[int], index_type: str,
              lap: Lap) -> dict[str, Any]: ...

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
class FolderGeneration:
    """A generation of the index folder: the records as memory-mapped columns (``columns.py``), FAISS vectors and
    the BM25 matrix, row i = chunk i."""

    def __init__(self, documents: Documents, sentences: Sentences, chunks: Chunks, vectors: Any,
                 keyword: KeywordIndex):
        self.documents, self.sentences, self.chunks = documents, sentences, chunks
        self.vectors, self.keyword = vectors, keyword
        self._last: tuple[Filters, np.ndarray] | None = None  # the last filter's mask (hybrid asks twice)

    def sources(self) -> set[str]:
        return self.documents.sources()

    def allowed(self, filters: Filters | None) -> np.ndarray | None:
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

        return search(self.vectors, vec, n, self.allowed(filters))

    def keyword_top(self, query: str, n: int, filters: Filters | None) -> dict[int, float]:
        try:
            return self.keyword.top(query, n, self.allowed(filters))
        except IndexError as err:  # postings past the last chunk: a large file damaged in place
            raise IndexCorruptError("the index's keyword files are damaged; run `haitirag verify`, then "
                                    "`haitirag build --full` to rebuild it") from err


class FolderStore:
    """The index folder of ``store.py``: generations of files, manifest.json swapped in last, flock."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.location = str(path)

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
            gen.documents.cols.check_offsets()
            gen.keyword.check_bounds()
        except (ValueError, UnicodeDecodeError) as err:
            raise IndexCorruptError(f"index {self.path} is damaged ({err}); run `haitirag build --full` to rebuild it"
                                    ) from err

    def load(self, manifest: dict[str, Any]) -> FolderGeneration:
        from .columns import Chunks, Documents, Sentences, open_columns
        from .keyword import KeywordIndex
        from .store import generation_dir
        from .vectors import load as load_vectors

        gen = generation_dir(self.path, manifest)
        try:
            documents = Documents(open_columns(gen))
            sentences, chunks = Sentences(documents), Chunks(documents)
            vectors = load_vectors(gen, manifest.get("vectors"))
            keyword = KeywordIndex.load(gen / "bm25")
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            raise IndexCorruptError(f"index {self.path} is unreadable ({err}); run `haitirag build` to rebuild it"
                                    ) from err
        counts = manifest["counts"]
        if not (len(chunks) == vectors.ntotal == keyword.size == counts["chunks"]
                and len(documents) == counts["documents"] and vectors.d == manifest["dimension"]):
            raise IndexCorruptError(f"index {self.path} is inconsistent (counts differ from the manifest); "
                                    "run `haitirag build` to rebuild it")
        return FolderGeneration(documents, sentences, chunks, vectors, keyword)

    def lock(self, wait_s: float = 0.0) -> contextlib.AbstractContextManager[None]:
        from .store import build_lock

        return build_lock(self.path, wait_s=wait_s)

    def stored_documents(self, manifest: dict[str, Any]) -> Iterator[Document]:
        from .columns import open_columns
        from .store import generation_dir

        cols = open_columns(generation_dir(self.path, manifest))
        for row in range(len(cols.docs)):
            yield cols.document(row)

    def previous(self, manifest: dict[str, Any]) -> list[Previous]:
        from .store import verify_files
        from .vectors import matrix

        verify_files(self.path, manifest, full=True)  # what is reused is checked in full
        old = self.load(manifest)
        vectors = matrix(old.vectors)
        return [Previous(doc, sentences, chunks, vectors[rows])
                for doc, sentences, rows, chunks in old.documents.cols.everything()]

    def vector_type(self, index_type: str, n: int) -> str:
        from .vectors import resolve

        return resolve(index_type, n)

    def write(self, manifest: dict[str, Any], docs: list[Document], sentences: dict[str, list[Span]],
              chunks: list[Chunk], matrix: np.ndarray, texts: list[str], fresh: Sequence[int], index_type: str,
              lap: Lap) -> dict[str, Any]:
        """A new generation folder from every row (``fresh`` is not needed here), then the manifest swap."""
        import shutil

        from . import vectors as dense
        from .columns import write_columns
        from .keyword import KeywordIndex
        from .store import new_tmp_dir, pause, write_generation

        tmp = new_tmp_dir(self.path)
        try:
            vec_index, vec_settings = dense.build(matrix, index_type)
            lap("vector index")
            try:
                dense.save(vec_index, tmp)
            except RuntimeError as err:  # faiss reports I/O errors as RuntimeError
                raise OSError(f"vectors: {err}") from err
            pause("vectors written")
            write_columns(tmp, docs, sentences, chunks)
            pause("records written")
            lap("write vectors and records")
            (tmp / "bm25").mkdir()
            KeywordIndex.build(texts).save(tmp / "bm25")
            lap("keyword index")
            new = write_generation(self.path, tmp, {**manifest, "vectors": vec_settings})
        except BaseException:  # disk full, Ctrl-C...: leave no half-written folder behind
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        lap("checksums, fsync, swap")
        return new

    def prune(self, keep: set[str]) -> None:
        from .store import prune

        prune(self.path, keep)


def chunk_rows(chunks: Iterable[Chunk]) -> dict[str, int]:
    """Chunks per document."""
    n: dict[str, int] = {}
    for c in chunks:
        n[c.doc_id] = n.get(c.doc_id, 0) + 1
    return n
