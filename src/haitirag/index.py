"""Stage 5: the loaded index: hybrid search (dense + BM25 keyword, fused) and ``ask``.

The data come from a store (``backend.py``): the index folder (FAISS + BM25 files) or PostgreSQL with pgvector
(``pgstore.py``); ``Index`` validates questions and filters, fuses the two retrievers and cites, the same way
for both."""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .backend import Filters, Generation, Store, open_store
from .embedding import Embedder, make_embedder
from .errors import HaitiragError, IndexCorruptError, IndexMismatchError, QueryError
from .records import Answer, Chunk, Document, Passage

if TYPE_CHECKING:
    from .build import BuildReport

__all__ = ["MAX_QUERY_CHARS", "Index", "clean_query", "fuse", "load_index", "verify_index"]

log = logging.getLogger(__name__)

MAX_QUERY_CHARS = 2000
DENSE_WEIGHT = 0.5  # hybrid: weight of the normalised cosine (BM25 gets the rest); see README, fusion ablation
MODES = ("hybrid", "dense", "keyword")
Span = tuple[int, int]


def clean_query(query: object) -> str:
    """Validate a question: control characters become spaces; empty or over-long ones raise QueryError."""
    if not isinstance(query, str):
        raise QueryError(f"the question must be text, not {type(query).__name__}")
    text = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in query)
    text = " ".join(text.split())
    if not text:
        raise QueryError("the question is empty; type a question")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"the question is too long ({len(text):,} characters); "
                         f"shorten it to {MAX_QUERY_CHARS:,} characters or fewer")
    return text


def _iso_date(name: str, value: object) -> None:
    import datetime as dt

    if value is None:
        return
    if not isinstance(value, str):
        raise QueryError(f"{name} must be a date as text, YYYY-MM-DD, not {type(value).__name__}")
    try:
        dt.date.fromisoformat(value)
        ok = len(value) == 10
    except ValueError:
        ok = False
    if not ok:
        raise QueryError(f"{name} must be a date written YYYY-MM-DD (e.g. 2024-03-05), not {value!r}")


def check_filters(sources: object, date_from: object, date_to: object) -> list[str] | None:
    """``sources`` as a list; QueryError for filters that would silently match nothing (a bad date, a reversed
    range, a single string for ``sources``)."""
    names: list[str] | None = None
    if sources is not None:
        if isinstance(sources, str):
            raise QueryError(f"sources must be a list of source names, e.g. [{sources!r}], not a string")
        if not isinstance(sources, Iterable) or isinstance(sources, bytes):
            raise QueryError(f"sources must be a list of source names, not {type(sources).__name__}")
        names = list(sources)
        if not all(isinstance(x, str) for x in names):
            raise QueryError("sources must be a list of source names (text)")
    _iso_date("date_from", date_from)
    _iso_date("date_to", date_to)
    if isinstance(date_from, str) and isinstance(date_to, str) and date_from > date_to:
        raise QueryError(f"date_from {date_from} is after date_to {date_to}; swap them")
    return names


def embed_text(title: str, text: str) -> str:
    """What the retrievers see for a chunk: its document's title, then its text."""
    return text if not title or text.startswith(title) else f"{title}\n{text}"


def fuse(dense: dict[int, float], keyword: dict[int, float], w: float = DENSE_WEIGHT) -> dict[int, float]:
    """Convex combination of min-max-normalised scores: ``w * cosine + (1 - w) * BM25`` (a retriever that
    did not return a row adds 0). Beat reciprocal-rank fusion on SQuAD v1.1 dev (README, fusion ablation)."""
    norm: list[dict[int, float]] = []
    for scores in (dense, keyword):
        if not scores:
            norm.append({})
            continue
        lo, hi = min(scores.values()), max(scores.values())
        norm.append({i: (v - lo) / (hi - lo) if hi > lo else 1.0 for i, v in scores.items()})
    return {i: w * norm[0].get(i, 0.0) + (1 - w) * norm[1].get(i, 0.0) for i in {*norm[0], *norm[1]}}


class Index:
    """A loaded index. Build one with ``build_index``, open one with ``load_index``."""

    def __init__(self, path: str | Path | Store, manifest: dict[str, Any], generation: Generation,
                 embedder: Embedder | None = None):
        self.store: Store = open_store(path)
        self.location = self.store.location  # where it lives, safe to show (a database password is masked)
        self.path: Any = getattr(self.store, "path", self.location)  # the folder's Path; the location otherwise
        self.manifest = manifest
        self.generation = generation  # what the store loaded: records, vectors, keyword index
        self._embedder = embedder
        self.report: BuildReport | None = None
        self._answerer: Any = None
        self._query_vecs: dict[str, np.ndarray] = {}  # question -> vector, when the answerer encoded it already
        self._stamp: Hashable | None = None  # the store's stamp when loaded (see refresh)
        self._refresh_lock = threading.Lock()

    # -- loading ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path | Store = "index", model: str | None = None,
             embedder: Embedder | None = None, known: tuple[Hashable, dict[str, Any]] | None = None) -> Index:
        """Open the index at ``path`` (a folder, or a ``postgresql://`` database): the manifest's generation,
        checked (every file's checksum; the database's counts).

        Should a build swap in a new generation (and prune the one being read) while this reads,
        the read starts again with the new manifest. ``known``: a (stamp, manifest) pair the caller has just
        read, used while the store's stamp is still the same (the manifest is not parsed twice).
        """
        store = open_store(path)
        for attempt in range(3):
            stamp = store.stamp()
            if attempt == 0 and known is not None and known[0] == stamp:
                manifest = known[1]
            else:
                manifest = store.read_manifest(catalog=False)
            try:
                index = cls._load_generation(store, manifest, model, embedder)
            except IndexCorruptError:
                if attempt == 2 or store.stamp() == stamp:
                    raise  # the data are damaged, not replaced under us
                log.info("index %s changed while loading; loading the new build", store.location)
                continue
            index._stamp = stamp
            return index
        raise AssertionError("unreachable")

    @classmethod
    def _load_generation(cls, store: Store, manifest: dict[str, Any], model: str | None,
                         embedder: Embedder | None) -> Index:
        built_with = manifest["model"]
        asked = model or (embedder.name if embedder is not None else None)
        if asked and asked != built_with:
            raise IndexMismatchError(
                f"index {store.location} was built with model {built_with!r}, not {asked!r}; "
                f"run `haitirag build --model {asked}` to rebuild it with that model")
        store.check(manifest)
        return cls(store, manifest, store.load(manifest), embedder)

    def refresh(self) -> bool:
        """Switch to a newer build of the same folder if one was swapped in; True when it did.

        Cheap when nothing changed (one ``stat`` of the manifest), so call it before each question.
        A missing, broken or half-readable new build is ignored (with a warning, once) and the loaded
        one keeps serving. Concurrent calls load the new build once and the whole state is swapped in
        one step; call it between questions, not while another thread is in the middle of one (a
        server answering questions in parallel should rather swap whole ``Index`` objects).
        """
        stamp = self.store.stamp()
        if stamp is None or stamp == self._stamp:
            return False
        with self._refresh_lock:
            if stamp == self._stamp:
                return False
            try:
                manifest = self.store.read_manifest(catalog=False)
            except HaitiragError as err:
                log.warning("not switching to the new index at %s: %s", self.path, err)
                self._stamp = stamp  # retry when the manifest changes again
                return False
            if manifest.get("generation") == self.manifest.get("generation"):
                self._stamp = stamp
                return False
            same_model = manifest.get("model") == self.manifest.get("model")
            try:
                fresh = Index.load(self.store, embedder=self._embedder if same_model else None)
            except HaitiragError as err:
                log.warning("not switching to the new index at %s: %s", self.path, err)
                self._stamp = stamp
                return False
            state = {k: v for k, v in fresh.__dict__.items() if k not in ("_refresh_lock", "report")}
            state["_embedder"] = self._embedder if same_model else fresh._embedder
            state["_answerer"] = None  # it may hold per-index data
            self.__dict__.update(state)
            log.info("switched to index generation %s", manifest.get("generation"))
            return True

    # -- properties --------------------------------------------------------------------------------
    @property
    def documents(self) -> Mapping[str, Document]:
        return self.generation.documents

    @property
    def sentences(self) -> Mapping[str, list[Span]]:
        return self.generation.sentences

    @property
    def chunks(self) -> Sequence[Chunk]:
        return self.generation.chunks

    @property
    def vectors(self) -> Any:  # faiss.IndexFlatIP or IndexHNSWFlat (vectors.py), or pgstore's stand-in
        return self.generation.vectors

    @property
    def keyword(self) -> Any:  # KeywordIndex (keyword.py), or pgstore's
        return self.generation.keyword

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = make_embedder(self.manifest["model"], precision=self.manifest.get("precision", "auto"),
                                           onnx=True)
        return self._embedder

    @property
    def model(self) -> str:
        return str(self.manifest["model"])

    def __len__(self) -> int:
        """The number of chunks searched (a folder's rows of removed documents not counted)."""
        return int(self.manifest["counts"]["chunks"])

    def __repr__(self) -> str:
        return (f"Index({self.location!r}, documents={len(self.documents)}, chunks={len(self)}, "
                f"model={self.model!r})")

    def document(self, doc_id: str) -> Document:
        return self.documents[doc_id]

    # -- search --------------------------------------------------------------------------------
    def embed_query(self, query: str) -> np.ndarray:
        vec = self._query_vecs.get(query)
        if vec is None:
            vec = self.embedder.encode([query])
        if vec.shape[1] != self.vectors.d:
            raise IndexMismatchError(
                f"model {self.model!r} gives {vec.shape[1]}-dimensional vectors but the index holds "
                f"{self.vectors.d}; run `haitirag build` to rebuild it")
        return vec

    def remember_query(self, query: str, vec: np.ndarray) -> None:
        """Keep a question's vector (computed with its token vectors, one model pass) for ``search``."""
        if len(self._query_vecs) >= 256:
            self._query_vecs.clear()
        self._query_vecs[query] = np.asarray(vec, dtype=np.float32).reshape(1, -1)

    def _filters(self, sources: Iterable[str] | None, date_from: str | None, date_to: str | None,
                 keep_undated: bool) -> Filters | None:
        """The checked filters (None: everything allowed); QueryError names an unknown source."""
        names = check_filters(sources, date_from, date_to)
        if not isinstance(keep_undated, bool):
            raise QueryError(f"keep_undated must be True or False, not {keep_undated!r}")
        if names is None and date_from is None and date_to is None and keep_undated:
            return None
        wanted = frozenset(names) if names is not None else None
        known = self.generation.sources()
        unknown = sorted(wanted - known) if wanted is not None else []
        if unknown:
            have = ", ".join(repr(s) for s in sorted(known) if s) or "none"
            raise QueryError(f"unknown source {unknown[0]!r}; the index's sources are {have} (\"\" for documents "
                             "without one); check the spelling, or leave sources out to search them all")
        return Filters(wanted, date_from, date_to, keep_undated)

    def search(self, query: str, k: int = 5, *, mode: str = "hybrid", sources: Iterable[str] | None = None,
               date_from: str | None = None, date_to: str | None = None, keep_undated: bool = True,
               candidates: int = 50) -> list[Passage]:
        """The ``k`` passages that best match ``query``, best first.

        ``mode``: "hybrid" (default: dense and BM25 fused, see ``fuse``), "dense" or "keyword".
        ``sources`` / ``date_from`` / ``date_to`` (YYYY-MM-DD) restrict the documents searched;
        documents without a date stay unless ``keep_undated`` is False.
        """
        query = clean_query(query)
        if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
            raise QueryError(f"k must be a positive whole number, not {k!r}")
        if mode not in MODES:
            raise QueryError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if not isinstance(candidates, int) or isinstance(candidates, bool) or candidates <= 0:
            raise QueryError(f"candidates must be a positive whole number, not {candidates!r}")
        filters = self._filters(sources, date_from, date_to, keep_undated)
        n = max(candidates, k)
        dense: dict[int, float] = {}
        kw: dict[int, float] = {}
        if mode in ("hybrid", "dense") and len(self):
            sims = self.dense_scores(query, n, filters)
            dense = dict(sims)
        if mode in ("hybrid", "keyword") and len(self):
            kw = self.generation.keyword_top(query, n, filters)
        fused = fuse(dense, kw)
        best = sorted(fused, key=lambda i: (-fused[i], i))[:k]
        return [self._passage(i, fused[i] if mode == "hybrid" else (dense.get(i) if mode == "dense" else kw[i]),
                              dense.get(i), kw.get(i)) for i in best]

    def dense_scores(self, query: str, n: int, filters: Filters | None = None) -> list[tuple[int, float]]:
        """(chunk key, cosine) of the ``n`` nearest chunks, best first (FAISS, ``vectors.py``; or pgvector)."""
        return self.generation.dense(self.embed_query(query), n, filters)

    def _passage(self, row: int, score: float | None, dense: float | None, kw: float | None) -> Passage:
        c = self.chunks[row]
        d = self.documents[c.doc_id]
        return Passage(chunk_id=c.chunk_id, doc_id=c.doc_id, title=d.title, date=d.date, source=d.source,
                       text=c.text, start=c.start, end=c.end, score=float(score or 0.0), url=d.url,
                       dense_score=dense, keyword_score=kw)

    # -- answers --------------------------------------------------------------------------------
    def ask(self, question: str, history: Sequence[str] | None = (), *, k: int | None = None,
            mode: str = "hybrid", sources: Iterable[str] | None = None, date_from: str | None = None,
            date_to: str | None = None, keep_undated: bool = True) -> Answer:
        """An extractive answer to ``question`` (earlier questions of the conversation in ``history``, oldest
        first) from the ``k`` best passages (default 5) of ``search`` with the same filters."""
        from .answer import Answerer

        if self._answerer is None:
            self._answerer = Answerer(self)
        answer: Answer = self._answerer.ask(question, history=history, k=k, mode=mode, sources=sources,
                                            date_from=date_from, date_to=date_to, keep_undated=keep_undated)
        return answer


def load_index(path: str | Path | Store = "index", model: str | None = None, *, preload: bool = False) -> Index:
    """Open an index written by ``build_index``: a folder (checks the manifest and every file) or a
    ``postgresql://`` database (checks the manifest row and the counts).

    With ``preload`` the embedding model starts loading in the background while the index files are read
    (a new process about to answer: the command line, a server starting).
    """
    embedder, known = None, None
    store = open_store(path)
    if preload:
        try:
            stamp = store.stamp()
            manifest = store.read_manifest(catalog=False)
            known = (stamp, manifest)
        except HaitiragError:
            manifest = None  # Index.load says what is wrong
        if manifest is not None and isinstance(manifest.get("model"), str) and (model is None or
                                                                                 model == manifest["model"]):
            embedder = make_embedder(manifest["model"], precision=str(manifest.get("precision", "auto")), onnx=True)
            getattr(embedder, "preload", lambda: None)()
    return Index.load(store, model=model, embedder=embedder, known=known)


def verify_index(path: str | Path | Store = "index") -> dict[str, Any]:
    """Check everything (``haitirag verify``): a folder's every file against its SHA-256 in the manifest, the
    catalog, the records, every chunk's offsets in its document; a database's rows against the manifest.
    Returns what was checked; raises IndexCorruptError (with the fix) at the first problem."""
    import time

    t0 = time.perf_counter()
    store = open_store(path)
    manifest = store.read_manifest()
    store.verify(manifest)
    files = manifest.get("files") or {}
    return {"index": store.location, "generation": manifest.get("generation"), "ok": True,
            "documents": manifest["counts"]["documents"], "chunks": manifest["counts"]["chunks"],
            "files": len(files), "bytes": sum(int(f["bytes"]) for f in files.values()),
            "seconds": round(time.perf_counter() - t0, 3)}

