"""Building an index: load the corpus, chunk, embed what changed, write a new generation atomically.

Change detection is by content, never by modification time: the manifest keeps each document's
path, the SHA-256 of its text (``sha256``), a hash of its other fields (``meta``: id, title, date,
source, url) and a hash of what was embedded (``vec``: title and text). A build

* reuses the sentences, chunks and vectors of every document whose ``vec`` is already in the
  previous index (also after a rename or a metadata-only edit), and chunks only the others;
* embeds, of a changed document, only the chunks that changed: the document's previous version (the one with
  its id, else the one at its path: a file's id follows its bytes) lends the vector of each of its chunks whose
  embedding input (``index.embed_text``: title and chunk text) is the input of a new chunk, so one sentence fixed
  in a long report usually costs the chunk or two that hold it (more when a length change moves the later chunk
  boundaries). Only the changed documents' previous chunks are looked up (memory as the edit, not as the index); a
  store that keeps the vectors itself (PostgreSQL) re-embeds the whole document. ``chunks_reused`` counts these
  chunks too, ``chunks_kept`` only them;
* drops deleted documents, and rebuilds the keyword index and the chunk records from the same rows
  as the vectors, so the three never disagree;
* is full when the model or the chunking settings changed (or ``full=True``, or the previous index
  is unusable); the report says why;
* writes nothing when nothing changed (every document's path, text and metadata equal the manifest's,
  none deleted, same model and settings, and the current generation's files check out): then the
  report lists every document as unchanged and ``report.wrote`` is False.

``update_index`` does the work and returns the ``BuildReport`` (the CLI uses it: no index loading);
``build_index`` does the same and returns the loaded ``Index`` with ``index.report``. ``index`` is an index
folder or a ``postgresql://`` database (``backend.open_store``); the store writes the generation.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .backend import Store, chunk_rows, open_store
from .chunking import ChunkSettings
from .corpus import EXTRACTION, LoadResult, Reuse, load_corpus
from .embedding import DEFAULT_MODEL, Embedder, build_embedder
from .errors import HaitiragError
from .records import Chunk, Document
from .store import pause

if TYPE_CHECKING:
    import numpy as np

    from .index import Index

__all__ = ["BuildReport", "Progress", "build_index", "index_status", "plan_changes", "unchanged_ids", "update_index"]

log = logging.getLogger(__name__)
Span = tuple[int, int]
Progress = Callable[[str, int, int], None]  # (stage, done, total): "reading" files, "chunking" characters,
# "embedding" chunks, "writing" (0 of 1, then 1 of 1); called as the work advances
EMBED_STEP = 32  # chunks per progress update while embedding
LISTED = 5  # names per kind of change in the summary
APPEND_FROM = 1_000  # chunks in the first segment from which a build appends a segment (store.py), not rewriting
DELTA_MAX = 20_000  # chunks the appended segment may hold (searched exactly) before the next build merges all
REMOVED_MAX = 0.1  # share of the first segment's chunks removed or replaced from which the next build merges all


@dataclass
class BuildReport:
    """What a build did (or, from ``index_status``, would do). Lists hold document paths."""

    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)  # text or metadata changed at the same path
    deleted: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)  # "old -> new", same text: vectors reused
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    full: bool = True
    reason: str = ""  # why the build is full
    documents: int = 0
    chunks: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0  # every chunk not embedded, also ``chunks_kept``
    chunks_kept: int = 0  # chunks of changed documents whose embedding input was unchanged: vector reused
    documents_to_embed: int = 0  # documents whose title and text are not in the previous index
    seconds: float = 0.0
    embed_seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, in order
    extraction: dict[str, Any] = field(default_factory=dict)  # PDF/Word/HTML: per type files, pages, s; reused
    wrote: bool = False  # False: nothing changed, the index was left as it was
    generation: str = ""
    previous_generation: str = ""
    index: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.added or self.modified or self.deleted or self.renamed)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "changed": self.changed}

    def changes(self, limit: int = LISTED) -> list[str]:
        """One line per changed document (at most ``limit`` per kind, then a count)."""
        lines = []
        for mark, kind, paths in (("+", "added", self.added), ("~", "modified", self.modified),
                                  ("-", "deleted", self.deleted), (">", "renamed", self.renamed)):
            lines += [f"  {mark} {kind:8s} {p}" for p in paths[:limit]]
            if len(paths) > limit:
                lines.append(f"  {mark} {kind:8s} ... and {len(paths) - limit} more")
        return lines

    def counts(self) -> str:
        return (f"added {len(self.added)}, modified {len(self.modified)}, deleted {len(self.deleted)}, "
                f"renamed {len(self.renamed)}, unchanged {len(self.unchanged)}, skipped {len(self.skipped)}")

    def summary(self) -> str:
        """The one-screen summary printed at the end of ``haitirag build``."""
        where = f"{self.index}: " if self.index else ""
        if not self.wrote:
            head = (f"{where}up to date: {_n(self.documents, 'document')}, {_n(self.chunks, 'chunk')} "
                    f"(generation {self.generation}); nothing embedded, nothing written, {self.seconds:.2f} s")
        else:
            was = f", was {self.previous_generation}" if self.previous_generation else ""
            full = f"; full build: {self.reason}" if self.full and self.reason else ""
            head = (f"{where}indexed {_n(self.documents, 'document')} in {_n(self.chunks, 'chunk')} in "
                    f"{self.seconds:.1f} s "
                    f"(generation {self.generation}{was}{full})")
        rate = self.chunks_embedded / self.embed_seconds if self.embed_seconds > 0 else 0.0
        lines = [head, "  " + self.counts(),
                 f"  chunks embedded {self.chunks_embedded} in {self.embed_seconds:.1f} s ({rate:.0f}/s), "
                 f"reused {self.chunks_reused}" + (f" ({self.chunks_kept} of them in changed documents)"
                                                   if self.chunks_kept else "")]
        read = self.extraction_line()
        if read:
            lines.append(read)
        lines += self.changes()
        lines += [f"  ! skipped  {path}: {why}" for path, why in self.skipped[:LISTED]]
        if len(self.skipped) > LISTED:
            lines.append(f"  ! skipped  ... and {len(self.skipped) - LISTED} more")
        return "\n".join(lines)


    def extraction_line(self) -> str:
        """ "  extracted 3 PDF (42 pages, 11 ms a page), 1 DOCX (30 ms a file); 5 unchanged not re-read" """
        parts = []
        for kind, row in self.extraction.items():
            if kind == "reused" or not isinstance(row, dict):
                continue
            per = f"{1000 * row['seconds'] / row['pages']:.0f} ms a page" if kind == "pdf" else \
                f"{1000 * row['seconds'] / row['files']:.0f} ms a file"
            pages = f"{_n(row['pages'], 'page')}, " if kind == "pdf" else ""
            parts.append(f"{row['files']} {kind.upper()} ({pages}{per})")
        reused = int(self.extraction.get("reused", 0))
        if not parts and not reused:
            return ""
        line = "  extracted " + (", ".join(parts) if parts else "nothing")
        return line + (f"; {reused} unchanged not extracted again" if reused else "")


def _n(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def meta_key(doc: Document) -> str:
    """Hash of everything about a document but its text (a metadata-only edit changes it); ``_h`` of the same
    fields, written out (every document's, every build)."""
    return hashlib.sha256(f"{doc.doc_id}\0{doc.title}\0{doc.date or ''}\0{doc.source or ''}\0{doc.url or ''}"
                          .encode()).hexdigest()[:16]


def vec_key(doc: Document) -> str:
    """Hash of what the retrievers see (title and text): equal keys, equal chunks and vectors."""
    return hashlib.sha256(f"{doc.title}\0{doc.sha256}".encode()).hexdigest()[:16]


def _settings_reason(manifest: dict[str, Any], model: str, settings: ChunkSettings) -> str:
    """Why the index in ``manifest`` cannot be reused for ``model`` and ``settings`` ("" when it can)."""
    if manifest.get("model") != model:
        return f"model changed ({manifest.get('model')} -> {model})"
    old, new = manifest.get("chunking") or {}, settings.to_json()
    diffs = [f"{k} {old.get(k)} -> {v}" for k, v in new.items() if old.get(k) != v]
    return f"chunking settings changed ({', '.join(diffs)})" if diffs else ""


def unchanged_ids(documents: list[Document], manifest: dict[str, Any] | None) -> set[str]:
    """The ids of the documents whose path, text and metadata equal the manifest's entry for their id."""
    entries = (manifest or {}).get("documents") or {}
    same = set()
    for d in documents:
        m = entries.get(d.doc_id)
        if m is not None and m.get("path") == d.path and m.get("sha256") == d.sha256 and m.get("meta") == meta_key(d):
            same.add(d.doc_id)
    return same


def plan_changes(documents: list[Document], manifest: dict[str, Any] | None,
                 same: set[str] | None = None) -> BuildReport:
    """Compare the corpus with a manifest's per-document hashes (no embedding, no model).

    Same path: unchanged, or modified when the text or (where the manifest records it) the metadata
    differs. New path with the text of a path that is gone: renamed. Otherwise added; old paths
    not accounted for: deleted. ``same``: ``unchanged_ids`` when already known (only the other documents
    and entries are then compared).
    """
    report = BuildReport(full=False)
    entries = (manifest or {}).get("documents", {})
    if same is None:
        same = unchanged_ids(documents, manifest)
    report.unchanged = [d.path for d in documents if d.doc_id in same]
    rest = [d for d in documents if d.doc_id not in same]
    if not rest and len(same) == len(entries):
        return report
    old = [m for doc_id, m in entries.items() if doc_id not in same]
    old_by_path = {m["path"]: m for m in old}
    seen_paths = {d.path for d in documents}
    gone_by_sha: dict[str, list[str]] = {}
    for m in old:
        if m["path"] not in seen_paths:
            gone_by_sha.setdefault(m["sha256"], []).append(m["path"])
    renamed_from: set[str] = set()
    old_vecs = {m.get("vec") or m["sha256"] for m in entries.values()} if rest else set()
    for d in rest:
        m = old_by_path.get(d.path)
        if m is not None:
            report.modified.append(d.path)
        elif gone_by_sha.get(d.sha256):
            src = gone_by_sha[d.sha256].pop(0)
            renamed_from.add(src)
            report.renamed.append(f"{src} -> {d.path}")
        else:
            report.added.append(d.path)
        if vec_key(d) not in old_vecs and d.sha256 not in old_vecs:
            report.documents_to_embed += 1
    report.deleted = sorted(p for p in old_by_path if p not in seen_paths and p not in renamed_from)
    return report


def _manifest_or_none(store: Store) -> dict[str, Any] | None:
    try:
        return store.read_manifest()
    except HaitiragError:
        return None


def previous_documents(store: Store, manifest: dict[str, Any] | None) -> Reuse | None:
    """A lookup of the previous build's documents by id, so unchanged PDF, Word and HTML files are not
    extracted again; None when there is no usable previous build or its extractors were another version.
    Each document found is checked against the manifest (text SHA-256, metadata, path) before it is reused."""
    if not manifest or manifest.get("extraction") != EXTRACTION:
        return None
    entries = manifest.get("documents") or {}
    known: dict[str, Document] | None = None

    def lookup(doc_id: str) -> Document | None:
        nonlocal known
        if doc_id not in entries:
            return None
        if known is None:
            known = {}
            try:
                for rec in store.stored_documents(manifest):
                    known[rec.doc_id] = rec
            except (OSError, ValueError, KeyError, TypeError, HaitiragError) as err:
                log.info("not reusing the previous build's documents (%s)", err)
        doc = known.get(doc_id)
        entry = entries[doc_id]
        if doc is None or (doc.path, doc.sha256, meta_key(doc)) != (entry.get("path"), entry.get("sha256"),
                                                                     entry.get("meta")):
            return None
        return doc

    return lookup


def index_status(corpus: str | Path = "corpus", index: str | Path = "index", model: str = DEFAULT_MODEL,
                 settings: ChunkSettings | None = None) -> BuildReport:
    """What ``build_index`` with these arguments would do now, without loading a model or embedding.

    ``report.full`` and ``report.reason`` say when a full rebuild is forced (no index, an unusable one,
    another model or other chunking settings); the lists say what changed since the last build.
    """
    t0 = time.perf_counter()
    settings = settings or ChunkSettings()
    store = open_store(index)
    loaded = load_corpus(corpus, reuse=previous_documents(store, _manifest_or_none(store)))
    manifest: dict[str, Any] | None = None
    try:
        manifest = store.read_manifest()
        reason = _settings_reason(manifest, model, settings)
        if not reason:
            store.check(manifest)
    except HaitiragError as err:
        reason = f"no index at {store.location}" if manifest is None and not store.exists() \
            else f"index unusable: {err}"
    report = plan_changes(loaded.documents, manifest)
    report.skipped = loaded.skipped
    report.full, report.reason = bool(reason), reason
    if reason:
        report.documents_to_embed = len(loaded.documents)
    report.documents = len(loaded.documents)
    report.index = store.location
    if manifest:
        report.generation = str(manifest.get("generation", ""))
        report.chunks = int(manifest.get("counts", {}).get("chunks", 0))
    report.seconds = time.perf_counter() - t0
    return report


@dataclass(frozen=True)
class Version:
    """A changed document's previous version: its unchanged paragraphs keep their sentences (``Chunker.split``),
    its chunks of the same embedding input lend their vectors (``_kept``)."""
    document: Document
    sentences: list[Span]
    chunks: list[Chunk]
    vectors: np.ndarray

    @cached_property
    def inputs(self) -> dict[str, int]:
        """Each chunk's embedding input (title and text) -> its position: such a chunk fits the model (same
        model) and its vector is known."""
        from .index import embed_text

        return {embed_text(self.document.title, c.text): j for j, c in enumerate(self.chunks)}


@dataclass
class _Previous:
    by_vec: dict[str, tuple[list[Span], list[Chunk], np.ndarray | None]]  # vec_key -> sentences, chunks, vectors
    # (vectors None: the store copies them itself)
    versions: dict[str, Version] = field(default_factory=dict)  # doc_id of a changed document -> its previous
    # version, whose chunks of the same embedding input lend their vectors (``_kept``)


def _load_previous(store: Store, manifest: dict[str, Any] | None, model: str, settings: ChunkSettings,
                   docs: list[Document]) -> tuple[_Previous | None, str]:
    """The previous index's reusable parts for ``docs``, or None and the reason a full build is needed."""
    if manifest is None:
        if store.exists():
            try:
                store.read_manifest()
            except HaitiragError as err:
                return None, f"previous index unusable: {err}"
        return None, "no previous index"
    reason = _settings_reason(manifest, model, settings)
    if reason:
        return None, reason
    try:
        old = store.previous(manifest)
    except HaitiragError as err:
        return None, f"previous index unusable: {err}"
    by_vec = {vec_key(p.document): (p.sentences, p.chunks, p.vectors) for p in old}
    was = _previous_ids([d for d in docs if vec_key(d) not in by_vec], manifest.get("documents") or {})
    wanted = set(was.values())
    olds = {p.document.doc_id: p for p in old if p.document.doc_id in wanted}
    fetched = store.chunk_vectors([w for w, p in olds.items() if p.vectors is None and p.chunks])  # (a database)
    versions: dict[str, Version] = {}
    for doc_id, w in was.items():
        p = olds.get(w)
        vectors = None if p is None else p.vectors if p.vectors is not None else fetched.get(w)
        if p is not None and vectors is not None and len(vectors) == len(p.chunks) and p.chunks:
            versions[doc_id] = Version(p.document, p.sentences, p.chunks, vectors)
    return _Previous(by_vec, versions), ""


def _previous_ids(changed: list[Document], entries: dict[str, Any]) -> dict[str, str]:
    """Each changed document's previous version among ``entries`` (the manifest's documents): the one with its id,
    else one that was at its path (a file's id follows its bytes). Only vectors of identical embedding inputs are
    taken from it (``_kept``), so a wrong guess costs an embedding, never a wrong vector."""
    paths = {d.path for d in changed if d.doc_id not in entries}
    at_path = {e.get("path"): i for i, e in entries.items() if e.get("path") in paths}
    found = {d.doc_id: d.doc_id if d.doc_id in entries else at_path.get(d.path) for d in changed}
    return {d: w for d, w in found.items() if w is not None}


def _up_to_date(docs: list[Document], manifest: dict[str, Any], model: str, settings: ChunkSettings, store: Store,
                index_type: str, same: set[str]) -> bool:
    """True when a build would change nothing: same model, settings, documents (``same``: ``unchanged_ids``) and
    vector index type, sound files."""
    if _settings_reason(manifest, model, settings) or manifest.get("extraction") != EXTRACTION:
        return False  # (another extraction version: written once more, so the next build can reuse again)
    chunks = int(manifest.get("counts", {}).get("chunks", 0))
    if store.vector_type(index_type, chunks) != (manifest.get("vectors") or {"type": "flat"}).get("type"):
        return False
    if not len(same) == len(docs) == len(manifest.get("documents", {})):
        return False
    try:
        store.check(manifest)
    except HaitiragError as err:
        log.warning("the current index fails its checks (%s); rebuilding it", err)
        return False
    return True


def update_index(corpus: str | Path = "corpus", index: str | Path | Store = "index", *, model: str = DEFAULT_MODEL,
                 settings: ChunkSettings | None = None, full: bool = False, progress: bool = False,
                 embedder: Embedder | None = None, batch_size: int = 64, wait_s: float = 0.0,
                 on_progress: Progress | None = None, index_type: str = "auto") -> BuildReport:
    """Bring the index ``index`` (a folder or a ``postgresql://`` database) up to date with ``corpus``; return
    what was done.

    The model is loaded only when something needs embedding. Holds the build lock throughout:
    another build waits up to ``wait_s`` seconds, then gets ``IndexLockedError``. ``progress`` shows
    progress bars on stderr; ``on_progress(stage, done, total)`` is told the same counts.
    """
    from .vectors import KINDS

    tell: Progress = on_progress or (lambda stage, done, total: None)
    t0 = time.perf_counter()
    if index_type not in KINDS:
        raise HaitiragError(f"index type must be one of {', '.join(KINDS)}, not {index_type!r}; "
                            "e.g. --index-type auto")
    settings = settings or ChunkSettings()
    store = open_store(index)
    emb = embedder or build_embedder(model)
    model = emb.name
    timings: dict[str, float] = {}
    mark = [t0]

    def lap(stage: str) -> None:
        now = time.perf_counter()
        timings[stage] = timings.get(stage, 0.0) + now - mark[0]
        mark[0] = now

    with store.lock(wait_s=wait_s):
        lap("lock")
        manifest = _manifest_or_none(store)
        loaded = _read(corpus, progress, tell, None if full else previous_documents(store, manifest))
        docs = loaded.documents
        old_gen = str((manifest or {}).get("generation", ""))
        lap("load corpus")
        same = unchanged_ids(docs, manifest) if manifest is not None else set()
        if not full and manifest is not None and _up_to_date(docs, manifest, model, settings, store, index_type,
                                                             same):
            lap("check index")
            store.prune(keep={old_gen, str(manifest.get("previous_generation", ""))})
            report = plan_changes(docs, manifest, same)
            report.timings, report.extraction = timings, loaded.extraction()
            report.skipped, report.wrote, report.index = loaded.skipped, False, store.location
            report.documents, report.chunks = len(docs), int(manifest["counts"]["chunks"])
            report.chunks_reused, report.generation = report.chunks, old_gen
            report.previous_generation = str(manifest.get("previous_generation", ""))
            report.seconds = time.perf_counter() - t0
            log.info("%s", report.summary())
            return report
        lap("check index")
        pause("corpus loaded")
        fresh_reuse: dict[str, tuple[list[Span], list[Chunk], np.ndarray | None]] = {}
        spent = [0, 0.0, 0, 0]  # chunks embedded, seconds, documents embedded and chunks kept by an append that had
        # to merge instead
        if not full and manifest is not None and _can_append(store, manifest, model, settings, index_type):
            appended = _append(store, manifest, docs, same, settings, emb, batch_size, progress, tell, lap,
                               fresh_reuse, spent)
            if appended is not None:
                appended.skipped, appended.timings = loaded.skipped, timings
                appended.extraction = loaded.extraction()
                appended.seconds = time.perf_counter() - t0
                log.info("%s", appended.summary())
                return appended
        previous, reason = (None, "--full requested") if full else _load_previous(store, manifest, model, settings,
                                                                                 docs)
        if previous is not None:
            previous.by_vec.update(fresh_reuse)  # chunked and embedded by an append that had to merge instead
        report = plan_changes(docs, manifest, same)
        report.skipped, report.timings, report.extraction = loaded.skipped, timings, loaded.extraction()
        report.full, report.reason = previous is None, reason
        report.index, report.previous_generation = store.location, old_gen
        lap("load previous index")
        if previous is None or report.documents_to_embed:
            emb.dimension  # noqa: B018 -- load the model now, so its cost shows as its own stage
            lap("load model")
        all_sentences, all_chunks, todo, reused, kept = _chunk_all(docs, previous, settings, emb, progress, tell)
        lap("chunk")
        report.documents_to_embed = len({all_chunks[i].doc_id for i in todo}) + int(spent[2])
        report.chunks_embedded = len(todo) + int(spent[0])
        report.chunks_reused = len(all_chunks) - report.chunks_embedded
        report.chunks_kept = len(kept) + int(spent[3])
        from .index import embed_text

        titles = {d.doc_id: d.title for d in docs}
        texts = [embed_text(titles[c.doc_id], c.text) for c in all_chunks]
        t_embed = time.perf_counter()
        if todo:
            log.info("embedding %d chunks of %d documents", len(todo), report.documents_to_embed)
        fresh = _embed(emb, [texts[i] for i in todo], batch_size, progress, tell)
        report.embed_seconds = time.perf_counter() - t_embed + spent[1]
        lap("embed")
        pause("embedded")
        if todo:
            dim, precision = int(fresh.shape[1]), emb.precision
        elif manifest and previous is not None:
            dim, precision = int(manifest["dimension"]), str(manifest.get("precision", "fp32"))
        else:
            dim, precision = emb.dimension, emb.precision
        import numpy as np

        matrix = np.zeros((len(all_chunks), dim), dtype=np.float32)
        if todo:
            matrix[todo] = fresh
        del fresh  # (the same vectors, now in ``matrix``: a million chunks' are 1.5 GB)
        for row, vec in reused.items():
            matrix[row] = vec
        tell("writing", 0, 1)
        if not (len(all_chunks) == len(matrix) == len(texts)):  # a bug, not bad input: refuse to write it
            raise HaitiragError(f"internal error: {len(all_chunks)} chunks, {len(matrix)} vectors, "
                                f"{len(texts)} texts")
        fields = _manifest_fields(docs, all_chunks, int(matrix.shape[1]), model, precision, settings, old_gen)
        try:
            new = store.write(fields, docs, all_sentences, all_chunks, matrix, texts, sorted(todo + kept),
                              index_type, lap)
        except OSError as err:
            raise HaitiragError(f"could not write the new index in {store.location} ({err}); the previous index is "
                                "unchanged: free disk space or fix the folder's permissions, then build again"
                                ) from err
        store.prune(keep={new["generation"], old_gen})
        tell("writing", 1, 1)
        lap("prune")
        report.wrote, report.generation = True, str(new["generation"])
        report.documents, report.chunks = len(docs), len(all_chunks)
        report.seconds = time.perf_counter() - t0
        log.info("%s", report.summary())
        return report


def _can_append(store: Store, manifest: dict[str, Any], model: str, settings: ChunkSettings, index_type: str) -> bool:
    """Whether a build may append a segment to this index: a folder, the same model, settings and vector index
    type, and a first segment large enough that rewriting it would cost more than appending."""
    segments = manifest.get("segments") or []
    if not hasattr(store, "append") or not segments or _settings_reason(manifest, model, settings):
        return False
    first = segments[0]
    kind = store.vector_type(index_type, int(manifest["counts"]["chunks"]))
    return int(first["chunks"]) >= APPEND_FROM and kind == (first.get("vectors") or {}).get("type")


def _append(store: Any, manifest: dict[str, Any], docs: list[Document], keep: set[str], settings: ChunkSettings,
            emb: Embedder, batch_size: int, progress: bool, tell: Progress, lap: Callable[[str], None],
            fresh_reuse: dict[str, tuple[list[Span], list[Chunk], np.ndarray | None]],
            spent: list[Any]) -> BuildReport | None:
    """Bring the index up to date by appending (``store.py``, segments): only the new and changed documents are
    chunked, embedded and written; the rest stays where it is. None when the appended segment or the removed rows
    would pass ``DELTA_MAX`` / ``REMOVED_MAX`` (the caller merges everything, reusing what was done here through
    ``fresh_reuse``, and what the embedding cost through ``spent``)."""
    import numpy as np

    from .index import embed_text
    from .vectors import take

    entries: dict[str, Any] = manifest.get("documents") or {}
    add = [d for d in docs if d.doc_id not in keep]  # (``keep``: ``unchanged_ids``)
    removed = [doc_id for doc_id in entries if doc_id not in keep]
    lap("compare with the catalog")
    try:
        old = store.load(manifest, search=False)
    except HaitiragError as err:
        log.warning("not appending to the index (%s)", err)
        return None
    first = manifest["segments"][0]
    gone_rows = sum(int(entries[i].get("n_chunks", 0)) for i in removed)
    by_vec = {entries[i]["vec"]: i for i in removed if entries[i].get("vec")}  # renamed or re-dated: same vectors
    wanted = {vec_key(d) for d in add}
    if wanted - set(by_vec):
        by_vec.update({e["vec"]: i for i, e in entries.items() if e.get("vec") in wanted and i in keep})

    def rows_of(doc_id: str) -> list[int] | None:
        """The chunk rows of a document of the previous index (None: not there)."""
        row = old.documents.row(doc_id)
        if row is None:
            return None
        part, local = old.documents.part(row)
        return (part.chunk_rows(local) + part.chunk_at).tolist()

    reuse: dict[str, tuple[list[Span], list[Chunk], np.ndarray | None]] = {}
    for key in wanted & set(by_vec):
        rows = rows_of(by_vec[key])
        if rows is not None:
            reuse[key] = (old.sentences[by_vec[key]], [old.chunks[r] for r in rows], take(old.vectors, rows))
    versions: dict[str, Version] = {}
    for doc_id, was in _previous_ids([d for d in add if vec_key(d) not in reuse], entries).items():
        rows = rows_of(was)
        if rows:
            versions[doc_id] = Version(old.documents[was], old.sentences[was], [old.chunks[r] for r in rows],
                                       take(old.vectors, rows))
    lap("load previous index")
    if add and len(reuse) < len(wanted):
        emb.dimension  # noqa: B018 -- load the model now, so its cost shows as its own stage
        lap("load model")
    sentences, chunks, todo, reused, kept = _chunk_all(add, _Previous(reuse, versions), settings, emb, progress,
                                                       tell)
    lap("chunk")
    titles = {d.doc_id: d.title for d in add}
    texts = [embed_text(titles[c.doc_id], c.text) for c in chunks]
    t_embed = time.perf_counter()
    fresh = _embed(emb, [texts[i] for i in todo], batch_size, progress, tell)
    embed_seconds = time.perf_counter() - t_embed
    lap("embed")
    pause("embedded")
    dim = int(manifest["dimension"])
    if todo and int(fresh.shape[1]) != dim:
        raise HaitiragError(f"the model gives vectors of {fresh.shape[1]} dimensions, the index holds {dim}; "
                            "run `haitirag build --full`")
    matrix = np.zeros((len(chunks), dim), dtype=np.float32)
    if todo:
        matrix[todo] = fresh
    for row, vec in reused.items():
        matrix[row] = vec
    spent[:] = [len(todo), embed_seconds, len({chunks[i].doc_id for i in todo}), len(kept)]
    at, per_doc = 0, chunk_rows(chunks)
    for d in add:  # what was done here serves a merge too (chunks are in document order)
        n = per_doc.get(d.doc_id, 0)
        fresh_reuse[vec_key(d)] = (sentences[d.doc_id], chunks[at:at + n], matrix[at:at + n])
        at += n
    first_rows = int(first["chunks"])
    mask = old.chunks.live
    first_live = first_rows if mask is None else int(np.count_nonzero(mask[:first_rows]))
    in_first = sum(int(entries[i].get("n_chunks", 0)) for i in removed if old.documents.parts[0].find(i) is not None)
    later_after = int(manifest["counts"]["chunks"]) - first_live - (gone_rows - in_first) + len(chunks)
    if later_after > DELTA_MAX or first_rows - first_live + in_first > REMOVED_MAX * first_rows:
        log.info("merging the index's segments into one")
        return None
    report = plan_changes(docs, manifest, keep)
    report.full, report.index, report.previous_generation = False, store.location, str(manifest["generation"])
    tell("writing", 0, 1)
    fields = _manifest_fields(add, chunks, dim, str(manifest["model"]), str(manifest.get("precision", "fp32")),
                              settings, str(manifest["generation"]))
    new_entries = dict(entries)  # (a copy, then the removed ones taken out: a million entries in milliseconds)
    for i in removed:
        del new_entries[i]
    new_entries.update(fields["documents"])
    fields["documents"] = new_entries
    live_chunks = int(manifest["counts"]["chunks"]) - gone_rows + len(chunks)
    fields["counts"] = {"documents": len(docs), "chunks": live_chunks}
    try:
        new = store.append(manifest, fields, add, sentences, chunks, matrix, texts, removed, lap, old)
    except OSError as err:
        raise HaitiragError(f"could not write the new index in {store.location} ({err}); the previous index is "
                            "unchanged: free disk space or fix the folder's permissions, then build again") from err
    store.prune(keep={new["generation"], str(manifest["generation"])})
    tell("writing", 1, 1)
    lap("prune")
    report.wrote, report.generation = True, str(new["generation"])
    report.documents, report.chunks = len(docs), live_chunks
    report.documents_to_embed = int(spent[2])
    report.chunks_embedded, report.chunks_reused, report.chunks_kept = len(todo), live_chunks - len(todo), len(kept)
    report.embed_seconds = embed_seconds
    return report


def build_index(corpus: str | Path = "corpus", index: str | Path | Store = "index", *, model: str = DEFAULT_MODEL,
                settings: ChunkSettings | None = None, full: bool = False, progress: bool = False,
                embedder: Embedder | None = None, batch_size: int = 64, wait_s: float = 0.0,
                on_progress: Progress | None = None, index_type: str = "auto") -> Index:
    """Index ``corpus`` (a folder or one file) into ``index`` (a folder, or a ``postgresql://user@host/db``
    database: ``pgstore.py``); return the loaded Index.

    Only documents whose title or text is new are embedded unless ``full``; ``index.report`` says
    what changed (see ``update_index``). ``index_type``: "auto" (exact search, an HNSW graph from
    ``vectors.AUTO_HNSW`` chunks), "flat" or "hnsw".
    """
    from .index import Index

    emb = embedder or build_embedder(model)
    store = open_store(index)
    report = update_index(corpus, store, model=model, settings=settings, full=full, progress=progress,
                          embedder=emb, batch_size=batch_size, wait_s=wait_s, on_progress=on_progress,
                          index_type=index_type)
    result = Index.load(store, embedder=emb)
    result.report = report
    return result


def _read(corpus: str | Path, progress: bool, tell: Progress, reuse: Reuse | None = None) -> LoadResult:
    """``load_corpus`` with a progress bar over the files (and ``tell`` told of each)."""
    from tqdm import tqdm

    with tqdm(desc="reading", unit="file", disable=not progress) as bar:
        def on_file(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)
            tell("reading", done, total)

        return load_corpus(corpus, on_file=on_file, reuse=reuse)


def _chunk_all(docs: list[Document], previous: _Previous | None, settings: ChunkSettings, emb: Embedder,
               progress: bool = False, tell: Progress | None = None,
               ) -> tuple[dict[str, list[Span]], list[Chunk], list[int], dict[int, np.ndarray], list[int]]:
    """Sentences and chunks of every document (reused where possible), rows to embed, reused vectors, and the rows
    of those that are chunks of changed documents (``_kept``)."""
    from tqdm import tqdm

    from .chunking import Chunker
    from .index import embed_text

    fresh = [d for d in docs if not (previous and vec_key(d) in previous.by_vec)]
    total = sum(len(d.text) for d in fresh)  # progress in characters: one huge document moves the bar too
    bar = tqdm(total=total, desc="chunking", unit="char", unit_scale=True, disable=not progress or not fresh)
    done = 0

    def at(chars: int) -> None:
        bar.update(done + chars - bar.n)
        if tell:
            tell("chunking", done + chars, total)

    known: dict[str, int] = {}  # the embedding inputs of the document's previous version (``Version.inputs``)

    def fits(doc: Document, text: str) -> bool:
        full = embed_text(doc.title, text)
        return full in known or emb.fits(full)

    chunker = Chunker(settings, fits=fits)
    all_sentences: dict[str, list[Span]] = {}
    all_chunks: list[Chunk] = []
    todo: list[int] = []
    reused: dict[int, np.ndarray] = {}
    kept: list[int] = []
    for doc in docs:
        reuse = previous.by_vec.get(vec_key(doc)) if previous else None
        if reuse is not None:
            sents, old_chunks, old_vecs = reuse
            chunks = [Chunk(Chunker.chunk_id(doc.doc_id, c.start, c.end), doc.doc_id, c.text, c.start, c.end,
                            c.n_tokens) for c in old_chunks]
            for j, vec in enumerate(old_vecs if old_vecs is not None else ()):
                reused[len(all_chunks) + j] = vec
        else:
            at(0)
            version = previous.versions.get(doc.doc_id) if previous else None
            known = version.inputs if version is not None else {}
            sents, chunks = chunker.split(doc, on_progress=at,
                                          previous=(version.document.text, version.sentences) if version else None)
            same = _kept(doc, chunks, version)
            for j in range(len(chunks)):
                if j in same:
                    reused[len(all_chunks) + j] = same[j]
                else:
                    todo.append(len(all_chunks) + j)
            kept += [len(all_chunks) + j for j in same]
            done += len(doc.text)
            at(0)
        all_sentences[doc.doc_id] = sents
        all_chunks.extend(chunks)
    bar.close()
    return all_sentences, all_chunks, todo, reused, kept


def _kept(doc: Document, chunks: list[Chunk], version: Version | None) -> dict[int, np.ndarray]:
    """The vectors ``doc``'s new ``chunks`` can take from its previous ``version``, by
    position: those whose embedding input (title and text) is the input of a chunk of that version."""
    if version is None:
        return {}
    from .index import embed_text

    same = {}
    for j, c in enumerate(chunks):
        k = version.inputs.get(embed_text(doc.title, c.text))
        if k is not None:
            same[j] = version.vectors[k]
    return same


def _embed(emb: Embedder, texts: list[str], batch_size: int, progress: bool,
           tell: Progress | None = None) -> np.ndarray:
    """Vectors of ``texts`` (in their order). They are encoded longest first, ``EMBED_STEP`` at a time, so a
    batch holds texts of similar length (little padding, as the bare encoder sorts them) and progress moves."""
    import numpy as np

    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    from tqdm import tqdm

    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    step = EMBED_STEP
    parts = []
    with tqdm(total=len(texts), desc="embedding", unit="chunk", disable=not progress) as bar:
        for i in range(0, len(texts), step):
            if tell:
                tell("embedding", i, len(texts))
            part = [texts[j] for j in order[i:i + step]]
            parts.append(emb.encode(part, batch_size=batch_size))
            bar.update(len(part))
    if tell:
        tell("embedding", len(texts), len(texts))
    vectors = np.concatenate(parts)
    out = np.empty_like(vectors)
    out[np.asarray(order)] = vectors
    return out


def _manifest_fields(docs: list[Document], chunks: list[Chunk], dimension: int, model: str, precision: str,
                     settings: ChunkSettings, previous_generation: str) -> dict[str, Any]:
    """What every store records about a generation (the store adds vectors, generation, created, files)."""
    n_chunks = chunk_rows(chunks)
    return {
        "haitirag_version": __version__,
        "previous_generation": previous_generation,
        "model": model,
        "dimension": dimension,
        "precision": precision,
        "vectors": {},
        "metric": "inner product of L2-normalised vectors (cosine)",
        "chunking": settings.to_json(),
        "extraction": EXTRACTION,
        "counts": {"documents": len(docs), "chunks": len(chunks)},
        "documents": {d.doc_id: {"path": d.path, "sha256": d.sha256, "meta": meta_key(d), "vec": vec_key(d),
                                 "n_chunks": n_chunks.get(d.doc_id, 0)} for d in docs},
    }
