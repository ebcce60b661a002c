"""Stage 4: the index folder on disk, written atomically and checked on load.

Layout of ``index/`` (format version 3)::

    manifest.json          what is in the index (see below); written last, with os.replace
    gen-<id>/              one generation, named by the manifest
        seg-<id>/          a segment: rows of documents and chunks, never changed once written
            vectors.faiss  FAISS IndexFlatIP of the normalised vectors, row i = chunk i (memory-mapped at load)
            graph.faiss    for an HNSW index, its links alone (IndexHNSWFlat written without its vectors)
            *.npy, *.bin   the documents, sentences and chunks as columns, memory-mapped at load (columns.py)
            bm25/          each term's postings (rows, term frequencies) and each row's length (keyword.py)
        removed-<id>.npy   the rows of a segment's documents that later builds removed or replaced
        vocab.json, df.npy the keyword vocabulary and each term's document frequency over the live chunks
        catalog.json       per document: path, sha256 of the text, meta (hash of the other fields), vec (hash of
                           what was embedded), n_chunks: what the next build compares the corpus with
    build.lock             held by a running build

Segments: a full build writes one segment. A build that changes a few documents of a large index (``build.py``)
hard-links the first segment's files into the new generation (nothing rewritten, nothing re-hashed), lists the
removed and edited documents' rows in ``removed-<id>.npy``, and writes a second, small segment holding every
document added since the first (rewritten by each such build, so it holds only live documents). Global row
numbers run through the segments in order. When the second segment grows past ``build.DELTA_MAX`` rows, or
removed rows pass ``build.REMOVED_MAX`` of the first, the next build merges everything into one segment again,
as search engines merge theirs.

``manifest.json`` holds: format, format_version, haitirag_version, generation, previous_generation,
created, model, dimension, precision, vectors (type, HNSW parameters of the first segment), segments (id,
documents, chunks, removed, vectors), keyword (BM25 variant and parameters), extraction (version of the PDF,
Word and HTML extractors), chunking, counts (live documents and chunks), and files (relative path -> bytes,
sha256). It stays small whatever the index's size: the per-document entries are in the generation's
``catalog.json``, read by ``read_manifest(catalog=True)`` (builds, ``status``) and not by ``load_index``.

Checks: every load checks the format version, that every listed file is there with its size, the SHA-256 of
every file under ``CHECKSUM_AT_LOAD`` bytes, and that the arrays fit together; ``verify_files(full=True)``
(``haitirag verify``, and every build before it reuses a generation) checks every file's SHA-256.
A build writes a new ``tmp-*`` folder, renames it to ``gen-*``, then swaps the manifest in with
``os.replace``: a reader sees the old index or the new, never a mix, and a killed build leaves
the previous index untouched. The next build removes what a killed one left (``tmp-*``, orphan
``gen-*``) and keeps the current and the previous generation.

Test-only hook: when the environment variable ``HAITIRAG_TEST_PAUSE`` holds a number of seconds,
a build sleeps that long at each stage boundary (``pause``), so tests can kill it at every stage.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from .errors import HaitiragError, IndexCorruptError, IndexFormatError, IndexLockedError, IndexNotFoundError

log = logging.getLogger(__name__)

__all__ = ["CHECKSUM_AT_LOAD", "FORMAT", "FORMAT_VERSION", "build_lock", "manifest_stamp", "pause", "prune",
           "read_manifest", "segment_dir", "verify_files", "write_generation"]

FORMAT = "haitirag-index"
FORMAT_VERSION = 3  # 1: JSON-lines records, per-document entries in the manifest; 2: one segment, bm25s scores
MANIFEST = "manifest.json"
CATALOG = "catalog.json"
CHECKSUM_AT_LOAD = 16 << 20  # bytes: larger files get their size checked at load, their SHA-256 on verify
LOCK = "build.lock"
FIX = "run `haitirag build` to rebuild it"
PAUSE_ENV = "HAITIRAG_TEST_PAUSE"
Stamp = tuple[int, int, int, int]


def pause(stage: str) -> None:
    """Test-only: sleep ``$HAITIRAG_TEST_PAUSE`` seconds at a build stage (no-op when unset)."""
    delay = os.environ.get(PAUSE_ENV)
    if delay:
        log.debug("pause at %s", stage)
        time.sleep(float(delay))


def manifest_stamp(index_dir: str | Path) -> Stamp | None:
    """(inode, size, mtime, ctime) of the manifest, or None without one: a cheap "has it changed?" check.
    Every build replaces the file (a new inode), so a new build always changes the stamp."""
    try:
        st = os.stat(Path(index_dir) / MANIFEST)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_tree(folder: Path) -> None:
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            with p.open("rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(index_dir: str | Path, catalog: bool = True) -> dict[str, Any]:
    """The manifest, checked for its format; with ``catalog``, with every document's entry (``documents``)."""
    root = Path(index_dir)
    path = root / MANIFEST
    if not path.is_file():
        raise IndexNotFoundError(f"no index at {root}; run `haitirag build --index {root}` first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise IndexCorruptError(f"{path} is unreadable ({err}); {FIX}") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexCorruptError(f"{path} is not a haitirag manifest; {FIX}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexFormatError(
            f"index format {manifest.get('format_version')} at {root}, this haitirag reads {FORMAT_VERSION}; {FIX}")
    if not isinstance(manifest.get("generation"), str):
        raise IndexCorruptError(f"{path} names no generation; {FIX}")
    if catalog:
        path = generation_dir(root, manifest) / CATALOG
        try:
            entries = orjson.loads(path.read_bytes())  # (a million documents: a second with orjson, 4 with json)
        except (OSError, orjson.JSONDecodeError) as err:
            raise IndexCorruptError(f"{path} is missing or unreadable ({err}); {FIX}") from err
        if not isinstance(entries, dict):
            raise IndexCorruptError(f"{path} is not a document catalog; {FIX}")
        manifest["documents"] = entries
    return manifest


def generation_dir(index_dir: str | Path, manifest: dict[str, Any]) -> Path:
    return Path(index_dir) / f"gen-{manifest['generation']}"


def segment_dir(gen: Path, segment: dict[str, Any]) -> Path:
    return gen / f"seg-{segment['id']}"


def verify_files(index_dir: str | Path, manifest: dict[str, Any], full: bool = False) -> Path:
    """Check every file the manifest lists: present, same size, and the same SHA-256 (with ``full`` for every file,
    else for those under ``CHECKSUM_AT_LOAD`` bytes); return the data folder."""
    gen = generation_dir(index_dir, manifest)
    files = manifest.get("files") or {}
    if not files:
        raise IndexCorruptError(f"{Path(index_dir) / MANIFEST} lists no files; {FIX}")
    for rel, meta in files.items():
        p = gen / rel
        if not p.is_file():
            raise IndexCorruptError(f"index file {p} is missing; {FIX}")
        size = p.stat().st_size
        if size != meta["bytes"] or ((full or size < CHECKSUM_AT_LOAD) and _sha256(p) != meta["sha256"]):
            raise IndexCorruptError(f"index file {p} is damaged (size or checksum differs); {FIX}")
    return gen


def _write_catalog(path: Path, entries: dict[str, Any], part: int = 50_000) -> None:
    """``entries`` as one JSON object, encoded ``part`` entries at a time (a million: never all in memory twice)."""
    keys = list(entries)
    with path.open("wb") as f:
        f.write(b"{")
        for at in range(0, len(keys), part):
            block = orjson.dumps({k: entries[k] for k in keys[at:at + part]})
            f.write((b"," if at else b"") + block[1:-1])
        f.write(b"}\n")


def new_tmp_dir(index_dir: str | Path) -> Path:
    root = Path(index_dir)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    return tmp


def write_generation(index_dir: str | Path, tmp: Path, manifest: dict[str, Any],
                     known: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Finish a build: list and hash ``tmp``'s files (those in ``known``, hard links of the previous generation's
    files, keep their recorded SHA-256), rename it to a generation, swap the manifest in."""
    root = Path(index_dir)
    manifest = dict(manifest)
    entries = manifest.pop("documents", {})
    _write_catalog(tmp / CATALOG, entries)
    known = known or {}
    files = {}
    for p in sorted(tmp.rglob("*")):
        if p.is_file():
            rel, size = p.relative_to(tmp).as_posix(), p.stat().st_size
            old = known.get(rel)
            files[rel] = dict(old) if old and old["bytes"] == size else {"bytes": size, "sha256": _sha256(p)}
    manifest["files"] = files
    manifest["format"] = FORMAT
    manifest["format_version"] = FORMAT_VERSION
    manifest["generation"] = hashlib.sha256(
        json.dumps(manifest["files"], sort_keys=True).encode() + uuid.uuid4().bytes).hexdigest()[:12]
    manifest["created"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    _fsync_tree(tmp)
    pause("data written")
    gen = generation_dir(root, manifest)
    os.replace(tmp, gen)
    _fsync_dir(root)
    pause("generation renamed")
    staged = root / f"{MANIFEST}.tmp-{uuid.uuid4().hex[:8]}"
    with staged.open("w", encoding="utf-8") as f:
        f.write(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    pause("manifest staged")
    os.replace(staged, root / MANIFEST)
    _fsync_dir(root)
    return {**manifest, "documents": entries}


def prune(index_dir: str | Path, keep: set[str]) -> None:
    """Remove leftovers: temporary folders of killed builds and generations not in ``keep``
    (keep the previous one too: a reader that read the old manifest may still be loading it).
    Call with the build lock held, so no other build's temporary folder is removed."""
    root = Path(index_dir)
    for p in root.iterdir():
        name = p.name
        old_gen = name.startswith("gen-") and name[4:] not in keep
        if not (old_gen or name.startswith("tmp-") or name.startswith(f"{MANIFEST}.tmp-")):
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


@contextlib.contextmanager
def build_lock(index_dir: str | Path, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the index's build lock; wait up to ``wait_s`` seconds for another build, then refuse."""
    root = Path(index_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise HaitiragError(f"cannot write to the index folder {root} ({err.strerror}); "
                            "choose a writable folder with --index") from err
    deadline = time.monotonic() + wait_s
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise IndexLockedError(
                        f"another build is running on {root}; wait for it to finish and build again, "
                        "or pass --wait SECONDS") from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing releases the lock
