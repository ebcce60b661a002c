"""Building an index: load the corpus, chunk, embed what changed, write a new generation atomically.

Vectors are reused for every document whose text hash is already in the previous index (also
after a rename), as long as the model and the chunking settings are the same; otherwise the build
is full and the report says why.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .chunking import Chunker, ChunkSettings
from .corpus import load_corpus
from .embedding import DEFAULT_MODEL, Embedder, make_embedder
from .errors import HaitiragError
from .index import Index, embed_text
from .keyword import KeywordIndex
from .records import Chunk, Document
from .store import build_lock, new_tmp_dir, prune, read_manifest, write_generation

__all__ = ["BuildReport", "build_index", "plan_changes"]

log = logging.getLogger(__name__)
Span = tuple[int, int]


@dataclass
class BuildReport:
    """What a build did. Lists hold document paths."""

    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)  # "old -> new", vectors reused
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    full: bool = True
    reason: str = ""  # why the build was full
    documents: int = 0
    chunks: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        rate = self.chunks_embedded / self.embed_seconds if self.embed_seconds > 0 else 0.0
        lines = [
            f"indexed {self.documents} documents in {self.chunks} chunks in {self.seconds:.1f} s"
            + (f" ({self.reason})" if self.full and self.reason else ""),
            f"  added {len(self.added)}, modified {len(self.modified)}, deleted {len(self.deleted)}, "
            f"renamed {len(self.renamed)}, unchanged {len(self.unchanged)}, skipped {len(self.skipped)}",
            f"  chunks embedded {self.chunks_embedded} ({rate:.0f}/s), reused {self.chunks_reused}",
        ]
        lines += [f"  skipped {path}: {why}" for path, why in self.skipped[:10]]
        return "\n".join(lines)


@dataclass
class _Previous:
    manifest: dict[str, Any]
    by_sha: dict[str, tuple[Document, list[Span], list[Chunk], np.ndarray]]


def _settings_key(model: str, settings: ChunkSettings) -> dict[str, Any]:
    return {"model": model, "chunking": settings.to_json()}


def _load_previous(index_dir: Path, model: str, settings: ChunkSettings) -> tuple[_Previous | None, str]:
    """The previous index's reusable parts, or None and the reason a full build is needed."""
    try:
        old = Index.load(index_dir)
    except HaitiragError as err:
        if not (index_dir / "manifest.json").exists():
            return None, "no previous index"
        return None, f"previous index unusable: {err}"
    old_key = _settings_key(old.manifest["model"], ChunkSettings(**old.manifest["chunking"]))
    if old_key != _settings_key(model, settings):
        why = "model changed" if old.manifest["model"] != model else "chunking settings changed"
        return None, why
    vectors = old.vectors.reconstruct_n(0, old.vectors.ntotal) if old.vectors.ntotal else np.zeros((0, 1))
    rows: dict[str, list[int]] = {}
    for i, c in enumerate(old.chunks):
        rows.setdefault(c.doc_id, []).append(i)
    by_sha = {}
    for doc_id, doc in old.documents.items():
        r = rows.get(doc_id, [])
        by_sha[doc.sha256] = (doc, old.sentences[doc_id], [old.chunks[i] for i in r], vectors[r])
    return _Previous(old.manifest, by_sha), ""


def plan_changes(documents: list[Document], manifest: dict[str, Any] | None) -> BuildReport:
    """Compare the corpus with a manifest's per-document hashes (no embedding, no model)."""
    report = BuildReport()
    old = (manifest or {}).get("documents", {})
    old_by_path = {m["path"]: m["sha256"] for m in old.values()}
    old_paths_by_sha: dict[str, list[str]] = {}
    for m in old.values():
        old_paths_by_sha.setdefault(m["sha256"], []).append(m["path"])
    seen_paths = {d.path for d in documents}
    for d in documents:
        if d.path in old_by_path:
            (report.unchanged if old_by_path[d.path] == d.sha256 else report.modified).append(d.path)
        else:
            gone = [p for p in old_paths_by_sha.get(d.sha256, []) if p not in seen_paths]
            if gone:
                report.renamed.append(f"{gone[0]} -> {d.path}")
            else:
                report.added.append(d.path)
    report.deleted = sorted(p for p in old_by_path if p not in seen_paths)
    return report


def build_index(corpus: str | Path = "corpus", index: str | Path = "index", *, model: str = DEFAULT_MODEL,
                settings: ChunkSettings | None = None, full: bool = False, progress: bool = False,
                embedder: Embedder | None = None, batch_size: int = 64, wait_s: float = 0.0) -> Index:
    """Index ``corpus`` (a folder or one file) into the folder ``index``; return the loaded Index.

    Only documents whose text is new are embedded unless ``full``; ``index.report`` says what changed.
    """
    t0 = time.perf_counter()
    settings = settings or ChunkSettings()
    index_dir = Path(index)
    emb = embedder or make_embedder(model)
    model = emb.name
    with build_lock(index_dir, wait_s=wait_s):
        loaded = load_corpus(corpus)
        docs = loaded.documents
        previous, reason = (None, "--full") if full else _load_previous(index_dir, model, settings)
        report = plan_changes(docs, previous.manifest if previous else _manifest_or_none(index_dir))
        report.skipped = loaded.skipped
        report.full, report.reason = previous is None, reason
        chunker = Chunker(settings, fits=lambda doc, text: emb.fits(embed_text(doc.title, text)))

        all_sentences: dict[str, list[Span]] = {}
        all_chunks: list[Chunk] = []
        vectors: list[np.ndarray | None] = []  # per chunk row: reused vector or None
        for doc in docs:
            reuse = previous.by_sha.get(doc.sha256) if previous else None
            if reuse is not None:
                _, sents, old_chunks, old_vecs = reuse
                chunks = [Chunk(Chunker.chunk_id(doc.doc_id, c.start, c.end), doc.doc_id, c.text, c.start, c.end,
                                c.n_tokens) for c in old_chunks]
                vectors.extend(old_vecs)
            else:
                sents = chunker.sentences(doc)
                chunks = chunker.chunk(doc, sents)
                vectors.extend([None] * len(chunks))
            all_sentences[doc.doc_id] = sents
            all_chunks.extend(chunks)

        todo = [i for i, v in enumerate(vectors) if v is None]
        report.chunks_embedded, report.chunks_reused = len(todo), len(all_chunks) - len(todo)
        titles = {d.doc_id: d.title for d in docs}
        texts = [embed_text(titles[c.doc_id], c.text) for c in all_chunks]
        t_embed = time.perf_counter()
        fresh = _embed(emb, [texts[i] for i in todo], batch_size, progress)
        report.embed_seconds = time.perf_counter() - t_embed
        dim = emb.dimension if todo or not all_chunks else len(vectors[0])  # type: ignore[arg-type]
        matrix = np.zeros((len(all_chunks), dim), dtype=np.float32)
        for row, vec in zip(todo, fresh, strict=True):
            matrix[row] = vec
        for row, v in enumerate(vectors):
            if v is not None:
                matrix[row] = v

        manifest = _write(index_dir, docs, all_sentences, all_chunks, matrix, texts, emb, model, settings)
        prune(index_dir, keep={manifest["generation"], (previous.manifest if previous else {}).get("generation", "")})
        report.documents, report.chunks = len(docs), len(all_chunks)
        report.seconds = time.perf_counter() - t0
        result = Index.load(index_dir, embedder=emb)
        result.report = report
        log.info("%s", report.summary())
        return result


def _manifest_or_none(index_dir: Path) -> dict[str, Any] | None:
    try:
        return read_manifest(index_dir)
    except HaitiragError:
        return None


def _embed(emb: Embedder, texts: list[str], batch_size: int, progress: bool) -> np.ndarray:
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    from tqdm import tqdm

    step = max(batch_size * 4, 256)
    parts = []
    with tqdm(total=len(texts), desc="embedding", unit="chunk", disable=not progress) as bar:
        for i in range(0, len(texts), step):
            parts.append(emb.encode(texts[i:i + step], batch_size=batch_size))
            bar.update(len(texts[i:i + step]))
    return np.concatenate(parts)


def _write(index_dir: Path, docs: list[Document], sentences: dict[str, list[Span]], chunks: list[Chunk],
           matrix: np.ndarray, texts: list[str], emb: Embedder, model: str, settings: ChunkSettings) -> dict[str, Any]:
    import faiss

    tmp = new_tmp_dir(index_dir)
    flat = faiss.IndexFlatIP(matrix.shape[1])
    if len(matrix):
        flat.add(matrix)
    faiss.write_index(flat, str(tmp / "vectors.faiss"))
    with (tmp / "chunks.jsonl").open("w", encoding="utf-8") as f:
        for c in chunks:
            f.write(json.dumps(c.to_json(), ensure_ascii=False) + "\n")
    n_chunks: dict[str, int] = {}
    for c in chunks:
        n_chunks[c.doc_id] = n_chunks.get(c.doc_id, 0) + 1
    with (tmp / "documents.jsonl").open("w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({**d.to_json(), "sentences": sentences[d.doc_id]}, ensure_ascii=False) + "\n")
    (tmp / "bm25").mkdir()
    KeywordIndex.build(texts).save(tmp / "bm25")
    manifest = {
        "haitirag_version": __version__,
        "model": model,
        "dimension": int(matrix.shape[1]),
        "precision": emb.precision,
        "metric": "inner product of L2-normalised vectors (cosine)",
        "chunking": settings.to_json(),
        "counts": {"documents": len(docs), "chunks": len(chunks)},
        "documents": {d.doc_id: {"path": d.path, "sha256": d.sha256, "n_chunks": n_chunks.get(d.doc_id, 0)}
                      for d in docs},
    }
    return write_generation(index_dir, tmp, manifest)


def index_status(corpus: str | Path = "corpus", index: str | Path = "index", model: str | None = None,
                 settings: ChunkSettings | None = None) -> BuildReport:
    """What a build would do now, without embedding anything."""
    docs = load_corpus(corpus)
    try:
        manifest = read_manifest(index)
    except HaitiragError as err:
        report = plan_changes(docs.documents, None)
        report.reason = str(err)
        return report
    report = plan_changes(docs.documents, manifest)
    report.skipped = docs.skipped
    report.full = False
    if model and model != manifest["model"]:
        report.full, report.reason = True, f"model changed ({manifest['model']} -> {model})"
    elif settings and settings.to_json() != manifest["chunking"]:
        report.full, report.reason = True, "chunking settings changed"
    return report
