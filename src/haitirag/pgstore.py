"""The index in PostgreSQL with pgvector: ``build_index(corpus, "postgresql://user:pw@host/db")``.

Tables (prefix ``haitirag_``)::

    manifest   one row: generation, the manifest's fields (format version, model, dimension, chunking...) as jsonb
    documents  doc_id, path, sha256, meta_key, vec_key, title, date, source, url, body (the text), sentences
               (character spans, jsonb), pages, n_chunks
    chunks     id, doc_id, chunk_id, start_char, end_char, n_tokens, body (= document body[start:end]),
               terms (keyword.py's stemmed tokens of title + text), source, date (the document's, for filters),
               embedding vector(dim), tsv tsvector generated from terms
    terms      term, df: how many chunks hold each term (BM25's document frequencies)

Indexes: HNSW on ``embedding`` with inner-product operators (vectors are L2-normalised: cosine), GIN on
``tsv``, btree on (source, date), on date and on doc_id. Text, terms and vector are stored out of line, so the
rows a keyword search scans are narrow (the vector search reads the HNSW index).

Search: dense top-N by pgvector (``SET hnsw.iterative_scan``, so filtered queries in ``WHERE`` still return
N rows) and keyword top-N, fused by ``index.fuse`` exactly as the folder index. Keyword: the chunks holding
any question term (GIN), ordered in SQL by BM25 with every term frequency taken as 1 (idf from ``terms``,
length from the terms array), the best ``KEYWORD_POOL`` x N of them then scored with full BM25 in Python
(bm25s's Lucene formula, k1 1.5, b 0.75, the same tokenizer), so the ranking is the folder's.

Builds: incremental by content hash, in one transaction on a connection that holds an advisory lock (a
second build is refused or waits); unchanged documents keep their rows, renamed ones get their chunks
copied inside the database, changed ones are embedded. A build that fails or is killed rolls back: the
previous generation stays whole, and readers never see a half-written one. Questions use a psycopg 3
connection pool. The password is never shown: ``location`` and every message carry the DSN masked.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Hashable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import numpy as np

from .backend import Filters, Lap, Previous, Span
from .errors import DatabaseError, IndexCorruptError, IndexFormatError, IndexLockedError, IndexNotFoundError
from .keyword import K1, B, QueryTerms
from .records import Chunk, Document

__all__ = ["PgStore", "mask_dsn"]

log = logging.getLogger(__name__)

FORMAT = "haitirag-index"
FORMAT_VERSION = 1
T = "haitirag_"  # table prefix
LOCK_KEY = 0x6861697469726167  # "haitirag": the advisory lock of builds
HNSW = {"m": 32, "ef_construction": 200, "ef_search": 1000}  # docs/scale-out.md: recall@10 against exact
KEYWORD_POOL = 4  # keyword candidates scored in Python: this many times N
INSTALL = "install the PostgreSQL driver with: pip install 'haitirag[postgres]'"
FIX = "run `haitirag build --index DSN` to rebuild it"
_cache_lock = threading.Lock()
_stores: dict[str, PgStore] = {}


def mask_dsn(dsn: str) -> str:
    """The connection string with its password (in the authority or a ``password=`` parameter) as ***."""
    try:
        parts = urlsplit(dsn)
        netloc = parts.netloc
        if "@" in netloc:
            cred, host = netloc.rsplit("@", 1)
            if ":" in cred:
                cred = cred.split(":", 1)[0] + ":***"
            netloc = f"{cred}@{host}"
        query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "postgresql://***"


def _password(dsn: str) -> str | None:
    try:
        parts = urlsplit(dsn)
        pw = parts.password
        for k, v in parse_qsl(parts.query):
            if k.lower() == "password":
                pw = v
        return pw or None
    except ValueError:
        return None


def _psycopg() -> Any:
    try:
        import psycopg
        import psycopg_pool  # noqa: F401
        from pgvector.psycopg import register_vector  # noqa: F401
    except ImportError as err:
        raise DatabaseError(f"a postgresql:// index needs psycopg, psycopg_pool and pgvector ({err.name} is "
                            f"missing); {INSTALL}") from err
    return psycopg


def _date(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


class PgStore:
    """An index in a PostgreSQL database (with the pgvector extension). One per connection string."""

    def __new__(cls, dsn: str) -> PgStore:
        with _cache_lock:  # one pool per database and process, shared by every Index loaded from it
            store = _stores.get(dsn)
            if store is None:
                store = super().__new__(cls)
                store._init(dsn)
                _stores[dsn] = store
            return store

    def _init(self, dsn: str) -> None:
        self.__dsn = dsn
        self.__password = _password(dsn)
        self.location = mask_dsn(dsn)
        self._pool: Any = None
        self._build = threading.local()  # .conn: this thread's build connection, holding the advisory lock
        self._pool_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PgStore({self.location!r})"

    __str__ = __repr__

    # -- connections and errors -------------------------------------------------------------------------
    def _error(self, err: BaseException, doing: str) -> DatabaseError:
        text = " ".join(str(err).split())
        if self.__password:
            text = text.replace(self.__password, "***")
        return DatabaseError(f"PostgreSQL at {self.location}: {doing} failed ({text}); check that the server is "
                             "running, the connection string (user, password, host, database) and that the "
                             "pgvector extension is available (CREATE EXTENSION vector)")

    def pool(self) -> Any:
        psycopg = _psycopg()
        with self._pool_lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                try:  # one plain connection first: a clear error at once rather than the pool's retries
                    psycopg.connect(self.__dsn, connect_timeout=10).close()
                except psycopg.Error as err:
                    raise self._error(err, "connecting") from None

                self._pool = ConnectionPool(self.__dsn, min_size=1, max_size=8, open=False, name="haitirag",
                                            kwargs={"autocommit": True})
                try:
                    self._pool.open(wait=True, timeout=10)
                except Exception as err:
                    self._pool.close()
                    self._pool = None
                    raise self._error(err, "connecting") from None
            return self._pool

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        """A pooled connection (autocommit); database errors become ``DatabaseError`` with the DSN masked."""
        psycopg = _psycopg()
        pool = self.pool()
        try:
            with pool.connection() as conn:
                yield conn
        except psycopg.Error as err:
            raise self._error(err, "a query") from None
        except Exception as err:
            if type(err).__module__.startswith("psycopg_pool"):
                raise self._error(err, "getting a connection") from None
            raise

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def _tables(self, conn: Any) -> bool:
        return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{T}manifest",)).fetchone()[0]

    # -- reading ----------------------------------------------------------------------------------------
    def exists(self) -> bool:
        with self.connection() as conn:
            return self._tables(conn) and conn.execute(f"SELECT count(*) FROM {T}manifest").fetchone()[0] > 0

    def stamp(self) -> Hashable | None:
        """The current generation (one small query), None without an index; DatabaseError when the server cannot
        be reached (questions could not be answered either)."""
        with self.connection() as conn:
            if not self._tables(conn):
                return None
            row = conn.execute(f"SELECT generation FROM {T}manifest").fetchone()
        return row[0] if row else None

    def read_manifest(self, catalog: bool = True) -> dict[str, Any]:
        """The manifest row; with ``catalog``, also every document's entry (``documents``: what a build compares)."""
        with self.connection() as conn:
            if not self._tables(conn):
                raise IndexNotFoundError(f"no index in {self.location}; run `haitirag build --index "
                                         f"{self.location}` first (with the password)")
            row = conn.execute(f"SELECT generation, body FROM {T}manifest").fetchone()
            if row is None:
                raise IndexNotFoundError(f"no index in {self.location}; run `haitirag build --index "
                                         f"{self.location}` first (with the password)")
            manifest = row[1]
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise IndexCorruptError(f"the manifest row in {self.location} is not a haitirag manifest; "
                                        f"{FIX.replace('DSN', self.location)}")
            if manifest.get("format_version") != FORMAT_VERSION:
                raise IndexFormatError(f"index format {manifest.get('format_version')} in {self.location}, this "
                                         f"haitirag reads {FORMAT_VERSION}; {FIX.replace('DSN', self.location)}")
            if manifest.get("generation") != row[0]:
                raise IndexCorruptError(f"the manifest row in {self.location} disagrees with itself; "
                                        f"{FIX.replace('DSN', self.location)}")
            if catalog:
                manifest["documents"] = {
                    r[0]: {"path": r[1], "sha256": r[2], "meta": r[3], "vec": r[4], "n_chunks": r[5]}
                    for r in conn.execute(f"SELECT doc_id, path, sha256, meta_key, vec_key, n_chunks FROM {T}documents")
                }
        return manifest

    def check(self, manifest: dict[str, Any]) -> None:
        """The rows agree with the manifest: counts, chunks per document, the vector column's dimension."""
        fix = FIX.replace("DSN", self.location)
        with self.connection() as conn:
            docs, chunks = conn.execute(f"SELECT (SELECT count(*) FROM {T}documents), "
                                        f"(SELECT count(*) FROM {T}chunks)").fetchone()
            listed = conn.execute(f"SELECT coalesce(sum(n_chunks), 0) FROM {T}documents").fetchone()[0]
            dim = conn.execute("SELECT atttypmod FROM pg_attribute WHERE attrelid = %s::regclass AND "
                               "attname = 'embedding'", (f"{T}chunks",)).fetchone()
            n_terms = conn.execute(f"SELECT count(*) FROM {T}terms").fetchone()[0]
        counts = manifest.get("counts") or {}
        if (docs, chunks, int(listed)) != (counts.get("documents"), counts.get("chunks"), counts.get("chunks")):
            raise IndexCorruptError(f"index {self.location} is inconsistent (rows differ from the manifest: "
                                    f"{docs} documents, {chunks} chunks); {fix}")
        if dim is None or dim[0] != manifest.get("dimension"):
            raise IndexCorruptError(f"index {self.location} holds vectors of another dimension; {fix}")
        if n_terms != (manifest.get("keyword") or {}).get("terms"):
            raise IndexCorruptError(f"index {self.location}: the keyword statistics differ from the manifest; {fix}")

    def load(self, manifest: dict[str, Any]) -> PgGeneration:
        return PgGeneration(self, manifest)

    def verify(self, manifest: dict[str, Any]) -> None:
        """Everything the database can say cheaply is what ``check`` says (the rows are the database's own)."""
        self.check(manifest)

    def stored_documents(self, manifest: dict[str, Any]) -> Iterator[Document]:
        with self.connection() as conn:
            rows = conn.execute(f"SELECT {DOC_COLUMNS} FROM {T}documents").fetchall()
        for r in rows:
            yield _document(r)

    def previous(self, manifest: dict[str, Any]) -> list[Previous]:
        """Every document with its sentences and chunks; vectors stay in the database (``write`` copies them)."""
        self.check(manifest)
        with self.connection() as conn:
            docs = conn.execute(f"SELECT {DOC_COLUMNS}, sentences FROM {T}documents").fetchall()
            chunks: dict[str, list[Chunk]] = {}
            for r in conn.execute(f"SELECT {CHUNK_COLUMNS} FROM {T}chunks ORDER BY doc_id, start_char, id"):
                chunks.setdefault(r[2], []).append(_chunk(r))
        return [Previous(_document(r), [(int(s), int(e)) for s, e in r[-1]], chunks.get(r[0], []), None)
                for r in docs]

    def chunk_vectors(self, doc_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The vectors of these documents' chunks, in ``previous``'s order (the previous versions of edited
        documents: the build keeps those of their unchanged chunks)."""
        import numpy as np

        out: dict[str, list[list[float]]] = {}
        with self.connection() as conn:
            for doc_id, vec in conn.execute(f"SELECT doc_id, embedding::real[] FROM {T}chunks WHERE doc_id = ANY(%s) "
                                            "ORDER BY doc_id, start_char, id", (list(doc_ids),)):
                out.setdefault(doc_id, []).append(vec)
        return {d: np.asarray(v, dtype=np.float32) for d, v in out.items()}

    def vector_type(self, index_type: str, n: int) -> str:
        return "flat" if index_type == "flat" else "hnsw"

    def prune(self, keep: set[str]) -> None:
        """Nothing to remove: a killed build's transaction was rolled back by the server."""

    # -- writing ----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, wait_s: float = 0.0) -> Iterator[None]:
        """Hold the build lock (a session advisory lock on the build's own connection) for the whole build."""
        psycopg = _psycopg()
        try:
            conn = psycopg.connect(self.__dsn, autocommit=True)
        except psycopg.Error as err:
            raise self._error(err, "connecting") from None
        deadline = time.monotonic() + wait_s
        try:
            while not conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:
                if time.monotonic() >= deadline:
                    raise IndexLockedError(f"another build is running on {self.location}; wait for it to finish "
                                           "and build again, or pass --wait SECONDS")
                time.sleep(0.1)
            self._build.conn = conn
            try:
                yield
            finally:
                self._build.conn = None
        finally:
            conn.close()  # closing releases the lock (and rolls back anything unfinished)

    def write(self, manifest: dict[str, Any], docs: list[Document], sentences: dict[str, list[Span]],
              chunks: list[Chunk], matrix: np.ndarray, texts: list[str], fresh: Sequence[int], index_type: str,
              lap: Lap) -> dict[str, Any]:
        """Bring the tables to this generation in one transaction; return the manifest written."""
        psycopg = _psycopg()
        conn = getattr(self._build, "conn", None)
        if conn is None:
            raise DatabaseError("internal error: write() outside lock()")
        try:
            return self._write(conn, manifest, docs, sentences, chunks, matrix, texts, fresh, index_type, lap)
        except psycopg.Error as err:
            raise self._error(err, "writing the index (the previous index is unchanged)") from None

    def _write(self, conn: Any, manifest: dict[str, Any], docs: list[Document], sentences: dict[str, list[Span]],
               chunks: list[Chunk], matrix: np.ndarray, texts: list[str], fresh: Sequence[int], index_type: str,
               lap: Lap) -> dict[str, Any]:
        import datetime as dt
        import hashlib
        import uuid

        from pgvector.psycopg import register_vector

        from .build import meta_key, vec_key
        from .keyword import tokenize
        from .store import pause

        dim = int(matrix.shape[1])
        fresh_set = set(fresh)
        rows_of: dict[str, list[int]] = {}
        for i, c in enumerate(chunks):
            rows_of.setdefault(c.doc_id, []).append(i)
        vec_type = self.vector_type(index_type, len(chunks))
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            register_vector(conn)
            conn.execute("SET LOCAL maintenance_work_mem = '1GB'")
            self._schema(conn, dim)
            old = {r[0]: (r[1], r[2]) for r in conn.execute(f"SELECT doc_id, vec_key, meta_key FROM {T}documents")}
            old_by_vec = {v: d for d, (v, _m) in old.items()}
            new_ids = {d.doc_id for d in docs}
            gone = [d for d in old if d not in new_ids]
            insert_rows: list[int] = []  # chunk rows written from ``matrix`` (embedded now or kept by an edit)
            copy_from: list[tuple[str, str]] = []  # (new doc, old doc): same title and text, rows copied in SQL
            replace: list[str] = []  # documents whose old chunks go
            restamp: list[str] = []  # same chunks, other source/date
            upsert: list[Document] = []
            for d in docs:
                rows = rows_of.get(d.doc_id, [])
                was = old.get(d.doc_id)
                embedded = bool(rows) and all(r in fresh_set for r in rows)
                if was is not None and was == (vec_key(d), meta_key(d)) and not embedded:
                    continue  # unchanged: rows stay
                upsert.append(d)
                if embedded or not rows:
                    if was is not None:
                        replace.append(d.doc_id)
                    insert_rows += rows
                elif was is not None and was[0] == vec_key(d):
                    restamp.append(d.doc_id)
                elif vec_key(d) in old_by_vec:
                    if was is not None:
                        replace.append(d.doc_id)
                    copy_from.append((d.doc_id, old_by_vec[vec_key(d)]))
                else:  # a bug: neither embedded now nor found in the database
                    raise DatabaseError(f"internal error: no vectors for document {d.path}")
            n_chunks = {d: len(r) for d, r in rows_of.items()}
            # only the rows written now are tokenized; the others keep their terms (the statistics are counted in SQL)
            tokens = dict(zip(insert_rows, tokenize([texts[i] for i in insert_rows]), strict=True))
            with conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {T}documents (doc_id, path, sha256, meta_key, vec_key, title, date, source, url, "
                    "body, sentences, pages, n_chunks) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                    "ON CONFLICT (doc_id) DO UPDATE SET path = excluded.path, sha256 = excluded.sha256, "
                    "meta_key = excluded.meta_key, vec_key = excluded.vec_key, title = excluded.title, "
                    "date = excluded.date, source = excluded.source, url = excluded.url, body = excluded.body, "
                    "sentences = excluded.sentences, pages = excluded.pages, n_chunks = excluded.n_chunks",
                    [(d.doc_id, d.path, d.sha256, meta_key(d), vec_key(d), d.title, d.date, d.source, d.url,
                      d.text, json.dumps(sentences[d.doc_id]), list(d.pages), n_chunks.get(d.doc_id, 0))
                     for d in upsert])
            pause("records written")
            if copy_from:  # staged first: a source document may itself be replaced or deleted below
                conn.execute(f"CREATE TEMP TABLE {T}staged ON COMMIT DROP AS SELECT doc_id AS src, start_char, "
                             "end_char, n_tokens, body, terms, n_terms, embedding "
                             f"FROM {T}chunks WHERE doc_id = ANY(%s)",
                             ([src for _, src in copy_from],))
            if replace:
                conn.execute(f"DELETE FROM {T}chunks WHERE doc_id = ANY(%s)", (replace,))
            for new, src in copy_from:  # chunk_id as Chunker.chunk_id: sha256("doc:start:end")[:16]
                conn.execute(f"INSERT INTO {T}chunks (doc_id, chunk_id, start_char, end_char, n_tokens, body, terms, "
                             "n_terms, source, date, embedding) SELECT d.doc_id, left(encode(sha256(convert_to("
                             "d.doc_id || ':' || s.start_char || ':' || s.end_char, 'UTF8')), 'hex'), 16), "
                             "s.start_char, s.end_char, s.n_tokens, s.body, s.terms, s.n_terms, "
                             "coalesce(d.source, ''), d.date, s.embedding "
                             f"FROM {T}staged s, {T}documents d WHERE s.src = %s AND d.doc_id = %s ORDER BY "
                             "s.start_char", (src, new))
            if restamp:
                conn.execute(f"UPDATE {T}chunks c SET source = coalesce(d.source, ''), date = d.date "
                             f"FROM {T}documents d WHERE d.doc_id = c.doc_id AND c.doc_id = ANY(%s)", (restamp,))
            if gone:
                conn.execute(f"DELETE FROM {T}documents WHERE doc_id = ANY(%s)", (gone,))
            lap("write records")
            empty = conn.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {T}chunks)").fetchone()[0]
            if empty or vec_type == "flat":  # bulk load: build the graph once, after the rows
                conn.execute(f"DROP INDEX IF EXISTS {T}chunks_hnsw")
            by_id = {d.doc_id: d for d in docs}
            with conn.cursor().copy(f"COPY {T}chunks (doc_id, chunk_id, start_char, end_char, n_tokens, body, "
                                    "terms, n_terms, source, date, embedding) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["text", "text", "int4", "int4", "int4", "text", "text[]", "int4", "text", "date",
                                "vector"])
                for i in insert_rows:
                    c, d = chunks[i], by_id[chunks[i].doc_id]
                    day = dt.date.fromisoformat(d.date) if d.date else None
                    copy.write_row((c.doc_id, c.chunk_id, c.start, c.end, c.n_tokens, c.text, tokens[i],
                                    len(tokens[i]), d.source or "", day, matrix[i]))
            pause("vectors written")
            lap("write vectors")
            if vec_type == "hnsw":
                conn.execute(f"CREATE INDEX IF NOT EXISTS {T}chunks_hnsw ON {T}chunks USING hnsw "
                             f"(embedding vector_ip_ops) WITH (m = {HNSW['m']}, "
                             f"ef_construction = {HNSW['ef_construction']})")
            lap("vector index")
            conn.execute(f"DELETE FROM {T}terms")
            conn.execute(f"INSERT INTO {T}terms (term, df) SELECT t, count(*) FROM {T}chunks, "
                         "LATERAL (SELECT DISTINCT unnest(terms) AS t) u GROUP BY t")
            n_terms, total = conn.execute(f"SELECT (SELECT count(*) FROM {T}terms), "
                                          f"(SELECT coalesce(sum(n_terms), 0) FROM {T}chunks)").fetchone()
            lap("keyword statistics")
            n_rows = conn.execute(f"SELECT count(*) FROM {T}chunks").fetchone()[0]
            if n_rows != len(chunks):
                raise DatabaseError(f"internal error: {n_rows} chunk rows written for {len(chunks)} chunks")
            out = {k: v for k, v in manifest.items() if k != "documents"}
            out["vectors"] = {"type": vec_type, "engine": "pgvector", **(HNSW if vec_type == "hnsw" else {})}
            out["keyword"] = {"terms": int(n_terms), "chunks": len(chunks),
                              "avg_terms": int(total) / len(chunks) if chunks else 0.0, "k1": K1, "b": B,
                              "method": "lucene"}
            out["format"], out["format_version"] = FORMAT, FORMAT_VERSION
            out["generation"] = hashlib.sha256(uuid.uuid4().bytes).hexdigest()[:12]
            out["created"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
            pause("manifest staged")
            conn.execute(f"INSERT INTO {T}manifest (id, generation, body) VALUES (1, %s, %s) ON CONFLICT (id) "
                         "DO UPDATE SET generation = excluded.generation, body = excluded.body",
                         (out["generation"], json.dumps(out)))
        lap("commit")
        return {**out, "documents": manifest.get("documents", {})}

    def _schema(self, conn: Any, dim: int) -> None:
        have = conn.execute("SELECT atttypmod FROM pg_attribute WHERE attrelid = to_regclass(%s) AND "
                            "attname = 'embedding'", (f"{T}chunks",)).fetchone()
        if have is not None and have[0] != dim:  # another model: the tables start again (in this transaction)
            conn.execute(f"DROP TABLE IF EXISTS {T}chunks, {T}documents, {T}terms, {T}manifest")
        conn.execute(f"""
            CREATE TABLE IF NOT EXISTS {T}manifest (id int PRIMARY KEY CHECK (id = 1), generation text NOT NULL,
                body jsonb NOT NULL);
            CREATE TABLE IF NOT EXISTS {T}documents (doc_id text PRIMARY KEY, path text NOT NULL,
                sha256 text NOT NULL, meta_key text NOT NULL, vec_key text NOT NULL, title text NOT NULL,
                date date, source text, url text, body text NOT NULL, sentences jsonb NOT NULL,
                pages int[] NOT NULL, n_chunks int NOT NULL);
            CREATE TABLE IF NOT EXISTS {T}chunks (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                doc_id text NOT NULL REFERENCES {T}documents ON DELETE CASCADE, chunk_id text NOT NULL,
                start_char int NOT NULL, end_char int NOT NULL, n_tokens int NOT NULL, body text NOT NULL,
                terms text[] NOT NULL, n_terms int NOT NULL, source text NOT NULL, date date,
                embedding vector({dim}) NOT NULL,
                tsv tsvector GENERATED ALWAYS AS (array_to_tsvector(terms)) STORED);
            -- the keyword search tests tsv once per question term and matching row: kept uncompressed in the row
            -- while text, terms and the vector (read from the HNSW index) go out of line: narrow rows to scan
            ALTER TABLE {T}chunks ALTER COLUMN tsv SET STORAGE PLAIN, ALTER COLUMN body SET STORAGE EXTERNAL,
                ALTER COLUMN terms SET STORAGE EXTERNAL, ALTER COLUMN embedding SET STORAGE EXTERNAL;
            CREATE TABLE IF NOT EXISTS {T}terms (term text PRIMARY KEY, df int NOT NULL);
            CREATE INDEX IF NOT EXISTS {T}chunks_tsv ON {T}chunks USING gin (tsv);
            CREATE INDEX IF NOT EXISTS {T}chunks_source_date ON {T}chunks (source, date);
            CREATE INDEX IF NOT EXISTS {T}chunks_date ON {T}chunks (date);
            CREATE INDEX IF NOT EXISTS {T}chunks_doc ON {T}chunks (doc_id);
        """)


DOC_COLUMNS = "doc_id, body, title, date, source, url, path, sha256, pages"
CHUNK_COLUMNS = "id, chunk_id, doc_id, body, start_char, end_char, n_tokens"


def _document(r: Sequence[Any]) -> Document:
    return Document(doc_id=r[0], text=r[1], title=r[2], date=_date(r[3]), source=r[4], url=r[5], path=r[6],
                    sha256=r[7], pages=tuple(r[8] or ()))


def _chunk(r: Sequence[Any]) -> Chunk:
    return Chunk(chunk_id=r[1], doc_id=r[2], text=r[3], start=r[4], end=r[5], n_tokens=r[6])


# -- a loaded generation ----------------------------------------------------------------------------------------
class _Cache(OrderedDict[Any, Any]):
    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self.lock = threading.Lock()

    def put(self, key: Any, value: Any) -> None:
        with self.lock:
            self[key] = value
            self.move_to_end(key)
            while len(self) > self.size:
                self.popitem(last=False)


class PgDocuments(Mapping[str, Document]):
    """doc_id -> Document, read from the database when asked (recent ones cached); ``values()`` streams."""

    def __init__(self, store: PgStore, ids: list[str]):
        self.store, self.ids, self._known = store, ids, set(ids)
        self.cache = _Cache(2048)

    def record(self, doc_id: str) -> tuple[Document, list[Span]]:
        hit = self.cache.get(doc_id)
        if hit is not None:
            return hit
        with self.store.connection() as conn:  # (also a document that a newer build added: see refresh)
            r = conn.execute(f"SELECT {DOC_COLUMNS}, sentences FROM {T}documents WHERE doc_id = %s",
                             (doc_id,)).fetchone()
        if r is None:
            raise KeyError(doc_id)
        rec = (_document(r), [(int(s), int(e)) for s, e in r[-1]])
        self.cache.put(doc_id, rec)
        return rec

    def __getitem__(self, doc_id: str) -> Document:
        return self.record(doc_id)[0]

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._known

    def values(self) -> list[Document]:  # type: ignore[override]
        with self.store.connection() as conn:
            return [_document(r) for r in conn.execute(f"SELECT {DOC_COLUMNS} FROM {T}documents ORDER BY path")]


class PgSentences(Mapping[str, list[Span]]):
    def __init__(self, documents: PgDocuments):
        self.documents = documents

    def __getitem__(self, doc_id: str) -> list[Span]:
        return self.documents.record(doc_id)[1]

    def __iter__(self) -> Iterator[str]:
        return iter(self.documents)

    def __len__(self) -> int:
        return len(self.documents)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self.documents


class PgChunks(Sequence[Chunk]):
    """Chunk key (the row id) -> Chunk; searches fill the cache with what they return. Iterating reads all."""

    def __init__(self, store: PgStore, n: int):
        self.store, self.n = store, n
        self.cache = _Cache(8192)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key: Any) -> Any:
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        with self.store.connection() as conn:
            r = conn.execute(f"SELECT {CHUNK_COLUMNS} FROM {T}chunks WHERE id = %s", (key,)).fetchone()
        if r is None:
            raise IndexError(key)
        chunk = _chunk(r)
        self.cache.put(key, chunk)
        return chunk

    def __iter__(self) -> Iterator[Chunk]:
        with self.store.connection() as conn:
            rows = conn.execute(f"SELECT {CHUNK_COLUMNS} FROM {T}chunks ORDER BY id").fetchall()
        return iter([_chunk(r) for r in rows])


class PgVectors:
    """What ``Index`` asks of a vector index: its dimension and size."""

    def __init__(self, d: int, ntotal: int):
        self.d, self.ntotal = d, ntotal


class PgKeyword(QueryTerms):
    """BM25 statistics from the ``terms`` table, for the keyword search and the answer's ranker."""

    def __init__(self, vocab: dict[str, int], df: np.ndarray, size: int, avg_terms: float):
        self.vocab, self.df, self.size, self.avg_terms = vocab, df, size, avg_terms

    def document_frequency(self) -> np.ndarray:
        return self.df

    def idf(self, term: str) -> float:
        col = self.vocab.get(term)
        if col is None:
            return 0.0
        df = float(self.df[col])
        return math.log(1 + (self.size - df + 0.5) / (df + 0.5))


class PgGeneration:
    """The generation in the database: documents and chunks read on demand, searches in SQL."""

    def __init__(self, store: PgStore, manifest: dict[str, Any]):
        self.store = store
        self.manifest = manifest
        with store.connection() as conn:
            ids = [r[0] for r in conn.execute(f"SELECT doc_id FROM {T}documents ORDER BY path")]
            self._sources = {r[0] for r in conn.execute(f"SELECT DISTINCT coalesce(source, '') FROM {T}documents")}
            terms = conn.execute(f"SELECT term, df FROM {T}terms").fetchall()
        self.documents = PgDocuments(store, ids)
        self.sentences = PgSentences(self.documents)
        counts = manifest["counts"]
        self.chunks = PgChunks(store, int(counts["chunks"]))
        self.vectors = PgVectors(int(manifest["dimension"]), int(counts["chunks"]))
        kw = manifest.get("keyword") or {}
        self.keyword = PgKeyword({t: i for i, (t, _) in enumerate(terms)},
                                 np.fromiter((n for _, n in terms), dtype=np.int64, count=len(terms)),
                                 int(counts["chunks"]), float(kw.get("avg_terms") or 1.0))
        self.ef_search = int((manifest.get("vectors") or {}).get("ef_search", HNSW["ef_search"]))

    def sources(self) -> set[str]:
        return set(self._sources)

    @staticmethod
    def _where(filters: Filters | None) -> tuple[str, list[Any]]:
        if filters is None:
            return "TRUE", []
        parts: list[str] = []
        args: list[Any] = []
        if filters.sources is not None:
            parts.append("source = ANY(%s)")
            args.append(sorted(filters.sources))
        if filters.date_from or filters.date_to or not filters.keep_undated:
            dated = ["date IS NOT NULL"]
            if filters.date_from:
                dated.append("date >= %s::date")
                args.append(filters.date_from)
            if filters.date_to:
                dated.append("date <= %s::date")
                args.append(filters.date_to)
            cond = " AND ".join(dated)
            parts.append(f"(({cond}) OR date IS NULL)" if filters.keep_undated else f"({cond})")
        return " AND ".join(parts) or "TRUE", args

    def _remember(self, rows: list[Any]) -> None:
        for r in rows:
            self.chunks.cache.put(r[0], _chunk(r))

    def dense(self, vec: np.ndarray, n: int, filters: Filters | None) -> list[tuple[int, float]]:
        where, args = self._where(filters)
        q = "[" + ",".join(repr(float(x)) for x in np.asarray(vec, dtype=np.float32).reshape(-1)) + "]"
        with self.store.connection() as conn, conn.transaction():
            conn.execute(f"SET LOCAL hnsw.ef_search = {max(self.ef_search, n)}")
            conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            rows = conn.execute(f"SELECT {CHUNK_COLUMNS}, -(embedding <#> %s::vector) FROM {T}chunks WHERE {where} "
                                "ORDER BY embedding <#> %s::vector LIMIT %s", [q, *args, q, n]).fetchall()
        self._remember(rows)
        found = [(int(r[0]), float(r[-1])) for r in rows]
        return sorted(found, key=lambda x: (-x[1], x[0]))  # relaxed order: sorted here

    def keyword_top(self, query: str, n: int, filters: Filters | None) -> dict[int, float]:
        """BM25 top ``n``: candidates from the GIN index, scored in Python (see the module's docstring).

        MaxScore: a chunk holding none of the rarer ("essential") question terms scores less than the sum of
        the other terms' weights, so once the n-th best score found reaches that sum, chunks that only hold
        common words (which match much of the archive) need not be read; until then rarer-first terms are
        added to the essential ones and the query runs again."""
        kw = self.keyword
        tokens = kw.query_tokens(query)
        counts = Counter(t for t in tokens if t in kw.vocab)  # a repeated question word counts again, as in bm25s
        if not counts:
            return {}
        weights = {t: kw.idf(t) * c for t, c in counts.items()}
        order = sorted(weights, key=lambda t: (-weights[t], t))
        common = max(1000, self.keyword.size // 50)  # first pass: the less common terms (at least one)
        n_ess = max(1, sum(kw.df[kw.vocab[t]] <= common for t in order))
        while True:
            best = self._keyword_pass(order[:n_ess], weights, n, filters)
            theta = best[n - 1][0] if len(best) >= n else 0.0
            need = n_ess  # the fewest essential terms whose complement's weights sum to at most theta
            while need < len(order) and sum(weights[t] for t in order[need:]) > theta:
                need += 1
            if need == n_ess:
                break
            n_ess = need
        self._remember([x[2] for x in best])
        return {i: float(s) for s, i, _ in best}

    def _keyword_pass(self, essential: list[str], weights: dict[str, float], n: int,
                      filters: Filters | None) -> list[tuple[float, int, Any]]:
        """(BM25, key, row) of the best chunks holding an essential term: a pool ordered in SQL by BM25 with
        every term frequency taken as 1, then scored exactly here."""
        kw = self.keyword
        where, args = self._where(filters)
        terms = list(weights)

        def lexeme(t: str) -> str:
            return "'" + t.replace("'", "''") + "'"

        presence = " + ".join(f"(CASE WHEN tsv @@ %s::tsquery THEN {weights[t]!r}::float8 ELSE 0 END)"
                              for t in terms)
        norm = f"(1 + {K1}::float8 * ({1 - B}::float8 + {B / kw.avg_terms!r}::float8 * n_terms))"
        # the pool is chosen from tsv and n_terms alone (in the row); text and terms are read for the pool only
        sql = (f"SELECT {', '.join('c.' + x for x in CHUNK_COLUMNS.split(', '))}, c.terms FROM {T}chunks c JOIN "
               f"(SELECT id, ({presence}) / {norm} AS approx FROM {T}chunks WHERE tsv @@ %s::tsquery AND {where} "
               "ORDER BY approx DESC, id LIMIT %s) pool USING (id)")
        with self.store.connection() as conn:
            rows = conn.execute(sql, [*(lexeme(t) for t in terms), " | ".join(lexeme(t) for t in essential), *args,
                                      KEYWORD_POOL * n]).fetchall()
        scored = []
        for r in rows:
            tf = Counter(r[-1])
            norm_d = K1 * (1 - B + B * len(r[-1]) / kw.avg_terms)
            score = sum(weights[t] * tf[t] / (tf[t] + norm_d) for t in terms if tf[t])
            scored.append((score, int(r[0]), r))
        scored.sort(key=lambda x: (-x[0], x[1]))
        return [x for x in scored[:n] if x[0] > 0]
