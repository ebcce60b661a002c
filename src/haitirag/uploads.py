"""Adding files to the corpus folder from the chat page, safely.

Rules: only ``.txt``, ``.md``, ``.html``, ``.jsonl``, ``.pdf`` and ``.docx``; at most ``MAX_UPLOAD_BYTES``
(5 MB) a file; the name is reduced to letters, digits, ``.``, ``-`` and ``_`` (no folders, no hidden files); the
content must load with the corpus loaders (UTF-8 text, not binary, at least one document, every
JSONL line valid). A file is written beside the corpus under a hidden temporary name and linked
into place only if its name is free, so nothing in the corpus is ever overwritten or lost: a
different file with the same name is kept and the upload is saved as ``name-2.ext``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .corpus import load_file

__all__ = ["ALLOWED_EXTENSIONS", "MAX_UPLOAD_BYTES", "UploadResult", "safe_name", "save_upload", "save_uploads"]

log = logging.getLogger(__name__)

ALLOWED_EXTENSIONS = (".txt", ".md", ".html", ".jsonl", ".pdf", ".docx")
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_NAME_CHARS = 100
_lock = threading.Lock()  # one upload at a time picks a name and links it


@dataclass(frozen=True)
class UploadResult:
    """What happened to one uploaded file: ``saved_as`` is None when it was refused or already there."""

    name: str  # the name it was uploaded with
    ok: bool
    message: str
    saved_as: str | None = None


def safe_name(name: str) -> str:
    """A plain file name from an uploaded one: no folders, no hidden file, only [A-Za-z0-9._-].

    Raises ValueError (with the reason) when nothing usable is left or the extension is not allowed.
    """
    base = re.split(r"[\\/]", name)[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    stem, dot, ext = base.rpartition(".")
    ext = f".{ext.lower()}" if dot else ""
    if ext not in ALLOWED_EXTENSIONS:
        raise ValueError(f"only {', '.join(ALLOWED_EXTENSIONS)} files can be added"
                         + (f", not {ext}" if ext else " (the name has no extension)"))
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)
    stem = re.sub(r"\.{2,}", ".", stem).strip("._-")[: MAX_NAME_CHARS - len(ext)].strip("._-") or "upload"
    return stem + ext


def _free_name(folder: Path, name: str) -> Iterable[Path]:
    stem, ext = os.path.splitext(name)
    yield folder / name
    for i in range(2, 10_000):
        yield folder / f"{stem}-{i}{ext}"


def _same_content_in(folder: Path, data: bytes) -> Path | None:
    """A corpus file with exactly these bytes, if any (only files of the same size are read)."""
    digest = hashlib.sha256(data).digest()
    for p in folder.rglob("*"):
        if (p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
                and p.stat().st_size == len(data) and hashlib.sha256(p.read_bytes()).digest() == digest):
            return p
    return None


def _check_content(name: str, data: bytes, known_ids: set[str]) -> str | None:
    """Why the corpus loaders would not take this file, or None when they load it completely."""
    with tempfile.TemporaryDirectory(prefix="haitirag-upload-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        loaded = load_file(path, Path(tmp))
    if loaded.skipped:
        where, why = loaded.skipped[0]
        more = f" (and {len(loaded.skipped) - 1} more problems)" if len(loaded.skipped) > 1 else ""
        where = where.replace(name, "", 1).lstrip(":") or ""
        return f"{'line ' + where + ': ' if where else ''}{why}{more}"
    if not loaded.documents:
        return "no text in it"
    ids = [d.doc_id for d in loaded.documents]
    dup = sorted({i for i in ids if ids.count(i) > 1} | (set(ids) & known_ids))
    if dup:
        return f"document id {dup[0]!r} is already in the corpus; give each JSONL line a new \"id\""
    return None


def save_upload(source: str | Path, corpus: str | Path, original_name: str | None = None,
                known_ids: Iterable[str] = ()) -> UploadResult:
    """Validate the file at ``source`` and copy it into the folder ``corpus``; never raises for bad input.

    ``known_ids``: document ids already indexed (a JSONL line may not reuse one).
    """
    src = Path(source)
    shown = original_name or src.name
    folder = Path(corpus)

    def refuse(why: str) -> UploadResult:
        log.warning("upload %s refused: %s", shown, why)
        return UploadResult(shown, False, f"{shown}: not added: {why}")

    if not folder.is_dir():
        return refuse(f"the corpus {folder} is not a folder; serve a corpus folder to add files")
    try:
        name = safe_name(shown)
    except ValueError as err:
        return refuse(str(err))
    try:
        size = src.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            return refuse(f"it is {size / 1e6:.1f} MB; the limit is {MAX_UPLOAD_BYTES // (1024 * 1024)} MB a file "
                          "(split it, or copy it into the corpus folder and run `haitirag build`)")
        data = src.read_bytes()
    except OSError as err:
        return refuse(f"cannot read the upload ({err.strerror or err})")
    with _lock:
        same = _same_content_in(folder, data)  # first: the same file again is no error (its ids are known)
        if same is not None:
            rel = same.relative_to(folder).as_posix()
            return UploadResult(shown, True, f"{shown}: already in the corpus as {rel}; nothing to add")
        problem = _check_content(name, data, set(known_ids))
        if problem:
            return refuse(problem)
        tmp = folder / f".upload-{uuid.uuid4().hex}.tmp"  # hidden: the corpus loader ignores it
        try:
            with tmp.open("xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            for dest in _free_name(folder, name):
                try:
                    os.link(tmp, dest)  # fails if the name is taken: never overwrites
                except FileExistsError:
                    continue
                break
            else:
                return refuse("no free file name left for it")
        except OSError as err:
            return refuse(f"cannot write to the corpus folder ({err.strerror or err})")
        finally:
            tmp.unlink(missing_ok=True)
    note = "" if dest.name == name else f" (a different {name} is already there)"
    if dest.name != shown and not note:
        note = " (name cleaned up)"
    log.info("upload %s saved as %s", shown, dest)
    return UploadResult(shown, True, f"{shown}: added as {dest.name}{note}", dest.name)


def save_uploads(files: Iterable[tuple[str | Path, str | None]], corpus: str | Path,
                 known_ids: Iterable[str] = ()) -> list[UploadResult]:
    """``save_upload`` for each (path, original name); JSONL ids must also differ between the files."""
    ids = set(known_ids)
    results = []
    for path, name in files:
        result = save_upload(path, corpus, name, ids)
        if result.saved_as:
            loaded = load_file(Path(corpus) / result.saved_as, Path(corpus))
            ids.update(d.doc_id for d in loaded.documents)
        results.append(result)
    return results
