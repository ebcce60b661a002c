"""Stage 1: read a corpus folder (or one file) into ``Document`` records with metadata.

Formats: ``.txt`` (title = first line, a "05, Mar 2024 / 2 min read/ By Source" byline gives
date and source), ``.md`` (optional YAML front matter: title, date, source, url), ``.html``
(the article's text and metadata by trafilatura, else the visible text), ``.jsonl`` (one document a
line: id, title, text, date?, source?, url?), and ``.pdf`` / ``.docx`` (``paged.py``: text with page
offsets, metadata from the file's properties).
Binary and non-UTF-8 files are skipped with a warning that names them.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

from .errors import CorpusError
from .records import Document

__all__ = ["EXTENSIONS", "LoadResult", "load_corpus", "load_file", "parse_date", "text_sha256"]

log = logging.getLogger(__name__)

EXTENSIONS = (".txt", ".md", ".markdown", ".html", ".htm", ".jsonl", ".pdf", ".docx")
EXTRACTED = (".pdf", ".docx", ".html", ".htm")  # types worth not extracting again when unchanged
EXTRACTION = 1  # version of what their extractors give: a change re-extracts every such file
Reuse = Callable[[str], "Document | None"]  # content-derived doc id -> the previous build's document
NBSP_LINE = re.compile(r"^[\s\u00a0\u200b\ufeff]*$")
TRAILING_BOILERPLATE = {"tags", "tags:", "share", "share this", "related", "advertisement"}
MONTHS = {m: i + 1 for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
BYLINE = re.compile(
    r"^\s*(?P<date>[^/|]*?\d{4})\s*(?:[/|].*?)?(?:[/|]\s*By\s+(?P<source>.+?))?\s*$", re.IGNORECASE)


@dataclass
class LoadResult:
    documents: list[Document]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    extracted: list[tuple[str, int, float]] = field(default_factory=list)  # PDF, Word, HTML: (path, pages, s)
    reused: int = 0  # PDF, Word and HTML files taken from the previous build (same path and bytes)

    def extraction(self) -> dict[str, Any]:
        """Extraction counts and time by file type, for the build report."""
        out: dict[str, Any] = {"reused": self.reused}
        for where, pages, seconds in self.extracted:
            kind = {"htm": "html"}.get(Path(where).suffix.lower().lstrip("."), Path(where).suffix.lower().lstrip("."))
            row = out.setdefault(kind, {"files": 0, "pages": 0, "seconds": 0.0})
            row["files"] += 1
            row["pages"] += pages
            row["seconds"] = round(row["seconds"] + seconds, 4)
        return out


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_doc_id(relpath: str, data: bytes) -> str:
    """Content-derived id: the same path and bytes always give the same id."""
    return hashlib.sha256(relpath.encode("utf-8") + b"\0" + data).hexdigest()[:16]


def parse_date(value: Any) -> str | None:
    """Normalise a date to ``YYYY-MM-DD``; None when it cannot be read."""
    if type(value) is str:
        return _parse_date_text(value.strip())
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return _parse_date_text(str(value).strip())


@functools.lru_cache(maxsize=8192)  # an archive's dates repeat: a large JSONL corpus parses each once
def _parse_date_text(s: str) -> str | None:
    m = re.match(r"^(\d{4})-(\d{1,2})-(\d{1,2})", s)
    if m:
        y, mo, d = (int(g) for g in m.groups())
    else:
        m1 = re.search(r"\b(\d{1,2})(?:st|nd|rd|th)?,?\s+([A-Za-z]{3,9})\.?,?\s+(\d{4})\b", s)
        m2 = re.search(r"\b([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b", s)
        if m1 and m1.group(2)[:3].lower() in MONTHS:
            d, mo, y = int(m1.group(1)), MONTHS[m1.group(2)[:3].lower()], int(m1.group(3))
        elif m2 and m2.group(1)[:3].lower() in MONTHS:
            mo, d, y = MONTHS[m2.group(1)[:3].lower()], int(m2.group(2)), int(m2.group(3))
        else:
            return None
    try:
        return dt.date(y, mo, d).isoformat()
    except ValueError:
        return None


def _strip_trailing_boilerplate(text: str) -> str:
    """Drop trailing lines of (non-breaking) spaces and a trailing "Tags"-like label."""
    lines = text.split("\n")
    while lines and (NBSP_LINE.match(lines[-1]) or lines[-1].strip().lower() in TRAILING_BOILERPLATE):
        lines.pop()
    return "\n".join(lines)


def _byline(lines: list[str]) -> tuple[str | None, str | None]:
    """Date and source from a byline such as '05, Mar 2024 / 2 min read/ By Livenow Africa'."""
    for line in lines[:6]:
        if len(line) > 120:
            continue
        date = parse_date(line)
        if date is None:
            continue
        source = None
        m = re.search(r"\bBy\s+(.+?)\s*$", line, re.IGNORECASE)
        if m:
            source = m.group(1).strip(" /|")
        return date, source or None
    return None, None


def _from_text(text: str, relpath: str, data: bytes, meta: dict[str, Any] | None = None) -> Document:
    meta = meta or {}
    text = _strip_trailing_boilerplate(text)
    lines = [ln.strip() for ln in text.split("\n") if ln.strip() and not NBSP_LINE.match(ln)]
    title = str(meta.get("title") or "") or (lines[0].lstrip("# ").strip() if lines else Path(relpath).stem)
    date, source = _byline(lines[1:]) if lines else (None, None)
    return Document(
        doc_id=str(meta.get("id") or file_doc_id(relpath, data)),
        text=text,
        title=title[:300],
        date=parse_date(meta.get("date")) or date,
        source=str(meta["source"]) if meta.get("source") else source,
        url=str(meta["url"]) if meta.get("url") else None,
        path=relpath,
        sha256=text_sha256(text),
    )


def _split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    m = re.match(r"^---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)", text, re.DOTALL)
    if not m:
        return {}, text
    import yaml  # imported here: only Markdown with front matter needs it

    try:
        meta = yaml.safe_load(m.group(1)) or {}
    except yaml.YAMLError as err:
        log.warning("ignoring unreadable YAML front matter: %s", err)
        return {}, text[m.end():]
    return (meta if isinstance(meta, dict) else {}), text[m.end():]


class _HTMLText(HTMLParser):
    SKIP: ClassVar[set[str]] = {"script", "style", "nav", "header", "footer", "aside", "noscript", "form", "template",
            "svg", "iframe", "button", "select", "menu"}
    BLOCK: ClassVar[set[str]] = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "section", "article",
             "blockquote", "pre", "ul", "ol", "table", "main", "figcaption", "dd", "dt", "hr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0
        self.in_title = False
        self.title = ""
        self.meta: dict[str, str] = {}
        self.h1 = ""
        self.in_h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in self.SKIP:
            self.skip_depth += 1
        elif tag == "title":
            self.in_title = True
        elif tag == "meta":
            key = (a.get("property") or a.get("name") or "").lower()
            if key and a.get("content"):
                self.meta[key] = a["content"]
        if tag in self.BLOCK:
            self.parts.append("\n\n")
        if tag == "h1":
            self.in_h1 = True

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:  # a self-closed skip tag has no content to skip
            return
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.skip_depth:
            self.skip_depth -= 1
        elif tag == "title":
            self.in_title = False
        if tag in self.BLOCK:
            self.parts.append("\n\n")
        if tag == "h1":
            self.in_h1 = False

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
        elif not self.skip_depth:
            self.parts.append(data)
            if self.in_h1:
                self.h1 += data

    def text(self) -> str:
        raw = "".join(self.parts)
        blocks = [" ".join(b.split()) for b in re.split(r"\n\s*\n", raw)]
        return "\n\n".join(b for b in blocks if b)


def _main_text(html: str) -> tuple[str, dict[str, Any]] | None:
    """The article of a saved web page (trafilatura: no menus, lists of links, cookie notices or footers),
    one block a paragraph, and its metadata; None when trafilatura finds no main text."""
    import trafilatura

    try:
        doc: Any = trafilatura.bare_extraction(html, with_metadata=True, include_comments=False,
                                               include_tables=True)
        found = doc.as_dict() if hasattr(doc, "as_dict") else doc
    except Exception as err:  # trafilatura/lxml raise many kinds on odd markup: fall back to the plain parser
        log.debug("trafilatura failed (%s); using the plain HTML parser", err)
        return None
    if not isinstance(found, dict) or not (found.get("text") or "").strip():
        return None
    title = " ".join(str(found.get("title") or "").split())
    lines = [ln.strip() for ln in str(found["text"]).split("\n") if ln.strip()]
    if lines and title and lines[0].lower() == title.lower():  # the headline is the title, not a sentence
        lines = lines[1:]
    meta = {"title": title, "date": found.get("date"), "source": found.get("sitename") or found.get("author"),
            "url": found.get("url")}
    return "\n\n".join(lines), meta


def _from_html(text: str, relpath: str, data: bytes) -> Document:
    main = _main_text(text)
    if main is not None and main[0]:
        return _from_text(main[0], relpath, data, main[1])
    p = _HTMLText()
    p.feed(text)
    p.close()
    body = p.text()
    meta: dict[str, Any] = {
        "title": p.meta.get("og:title") or " ".join(p.title.split()) or " ".join(p.h1.split()),
        "date": p.meta.get("article:published_time") or p.meta.get("date") or p.meta.get("pubdate"),
        "source": p.meta.get("og:site_name") or p.meta.get("author"),
        "url": p.meta.get("og:url"),
    }
    return _from_text(body, relpath, data, meta)


def _jsonl_title(raw: str) -> str:
    """A wiki-style slug ("Super_Bowl_50", no spaces) reads as words; any other title is kept as written."""
    return raw.replace("_", " ") if " " not in raw and "_" in raw.strip("_") else raw


def _parse_json(line: str | bytes) -> Any:
    """One JSON value: orjson (several times faster on a large archive), the standard library where orjson refuses
    what it accepts (NaN, very large numbers). A line that is not UTF-8 raises ``UnicodeDecodeError``."""
    import orjson

    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line.decode("utf-8") if isinstance(line, bytes) else line)


def _from_jsonl(lines: Iterable[str | bytes], relpath: str, result: LoadResult, first: int = 1) -> None:
    """The documents of JSON lines (numbered from ``first``) into ``result`` (bad lines into its ``skipped``)."""
    sha256, docs, skipped = hashlib.sha256, result.documents, result.skipped
    same: dict[str, str] = {}  # one string object for each title or source that repeats (memory)
    for lineno, line in enumerate(lines, first):  # (a million lines: kept lean)
        if not line.strip():
            continue
        try:
            obj = _parse_json(line)
        except json.JSONDecodeError as err:
            skipped.append((f"{relpath}:{lineno}", f"not valid JSON ({err.msg}); fix or delete that line"))
            continue
        body = obj.get("text") if isinstance(obj, dict) else None
        if not isinstance(body, str) or not body.strip():
            skipped.append((f"{relpath}:{lineno}", 'needs an object with a non-empty "text" field'))
            continue
        data = body.encode("utf-8")
        doc_id = str(obj.get("id") or file_doc_id(f"{relpath}:{lineno}", data))
        title, date, source, url = obj.get("title"), obj.get("date"), obj.get("source"), obj.get("url")
        doc = object.__new__(Document)  # (the frozen dataclass's fields set at once: a third of the time per line)
        title = (_jsonl_title(str(title)) if title else "") or body.split("\n", 1)[0][:120]
        source = str(source) if source else None
        doc.__dict__.update(doc_id=doc_id, text=body, title=same.setdefault(title, title),
                            date=parse_date(date) if date is not None else None,
                            source=same.setdefault(source, source) if source else None, url=str(url) if url else None,
                            path=f"{relpath}#{doc_id}", sha256=sha256(data).hexdigest(), pages=())
        docs.append(doc)


def _decode(path: Path, data: bytes) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 with a byte-order mark (Windows Notepad's "Unicode")
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as err:
            raise UnicodeError(f"broken UTF-16 (byte {err.start}); save it as UTF-8") from err
    head = data[:8192]
    if b"\0" in head:
        if len(head) >= 4 and (head[1::2].count(0) > len(head) // 4 or head[0::2].count(0) > len(head) // 4):
            raise UnicodeError("UTF-16 text without a byte-order mark; save it as UTF-8, "
                               "e.g. iconv -f UTF-16LE -t UTF-8")
        raise UnicodeError("binary file (it holds NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UnicodeError(f"not UTF-8 (byte {err.start}); convert it, e.g. iconv -t UTF-8") from err


def _import_extractor(suffix: str) -> None:
    import importlib

    name = {".pdf": "pypdf", ".docx": "docx", ".html": "trafilatura", ".htm": "trafilatura"}.get(suffix)
    if name:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # the extractor says what is missing


def load_file(path: Path, root: Path, reuse: Reuse | None = None) -> LoadResult:
    """Load one file; problems go to ``skipped`` instead of raising.

    A PDF, Word or HTML file whose path and bytes ``reuse`` knows (a previous build's document of the same
    content-derived id) is not extracted again; others are extracted and timed (``LoadResult.extracted``).
    """
    import time

    relpath = path.relative_to(root).as_posix() if path != root else path.name
    result = LoadResult([])
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _load_jsonl(path, relpath, result)
    try:
        data = path.read_bytes()
    except OSError as err:
        result.skipped.append((relpath, str(err)))
        return result
    if suffix in EXTRACTED and reuse is not None:
        hit = reuse(file_doc_id(relpath, data))
        if hit is not None and hit.path == relpath:
            result.documents.append(hit)
            result.reused = 1
            return result
    _import_extractor(suffix)  # a library's import (once, up to half a second) is not extraction time
    t0 = time.perf_counter()
    if suffix in (".pdf", ".docx"):
        from .paged import from_docx, from_pdf

        try:
            doc = (from_pdf if suffix == ".pdf" else from_docx)(data, relpath)
        except ValueError as err:
            result.skipped.append((relpath, str(err)))
            return result
    else:
        try:
            text = _decode(path, data)
        except UnicodeError as err:
            result.skipped.append((relpath, str(err)))
            return result
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if suffix in (".html", ".htm"):
            doc = _from_html(text, relpath, data)
        elif suffix in (".md", ".markdown"):
            meta, body = _split_front_matter(text)
            doc = _from_text(body, relpath, data, meta)
        else:
            doc = _from_text(text, relpath, data)
    if suffix in EXTRACTED:
        result.extracted.append((relpath, max(1, len(doc.pages)), time.perf_counter() - t0))
    if not doc.text.strip():
        result.skipped.append((relpath, "no text"))
    else:
        result.documents.append(doc)
    return result


def _load_jsonl(path: Path, relpath: str, result: LoadResult) -> LoadResult:
    """A JSON-lines file read 16 MB at a time (a large archive is never held whole, nor twice, in memory); a UTF-16
    file (with a byte-order mark) is decoded whole."""
    try:
        with path.open("rb") as f:
            head = f.read(8192)
            if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
                text = _decode(path, head + f.read())
                _from_jsonl(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), relpath, result)
                return result
            _decode(path, head[:max(0, head.rfind(b"\n"))] if len(head) == 8192 else head)  # binary? UTF-16?
            f.seek(0)
            rest, lineno = b"", 1
            for block in iter(lambda: f.read(1 << 24), b""):
                if lineno == 1 and not rest and block.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark
                    block = block[3:]
                lines = (rest + block).split(b"\n")
                rest = lines.pop()  # (the last line goes on in the next block)
                if any(b"\r" in line for line in lines):  # Windows or old Mac line ends
                    lines = b"\n".join(lines).replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
                _from_jsonl(lines, relpath, result, lineno)
                lineno += len(lines)
            if rest:
                _from_jsonl(rest.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"), relpath, result, lineno)
    except OSError as err:
        result.skipped.append((relpath, str(err)))
    except UnicodeDecodeError as err:
        result.documents.clear()
        result.skipped.append((relpath, f"not UTF-8 (byte {err.start} of a line); convert it, e.g. iconv -t UTF-8"))
    except UnicodeError as err:
        result.documents.clear()
        result.skipped.append((relpath, str(err)))
    return result


def iter_corpus_files(corpus: Path) -> list[Path]:
    if corpus.is_file():
        return [corpus]
    return sorted(
        p for p in corpus.rglob("*")
        if p.is_file() and p.suffix.lower() in EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(corpus).parts)
    )


def load_corpus(corpus: str | Path, on_file: Callable[[int, int], None] | None = None,
                reuse: Reuse | None = None) -> LoadResult:
    """Load every supported file under ``corpus`` (a folder or one file); ``on_file(done, total)`` is told
    before each file and at the end; ``reuse`` as in ``load_file``.

    Raises ``CorpusError`` when the path is missing or yields no document at all.
    """
    root = Path(corpus)
    if not root.exists():
        raise CorpusError(f"corpus not found: {root}; create it and add .txt, .md, .html, .jsonl, .pdf or .docx files")
    files = iter_corpus_files(root)
    result = LoadResult([])
    seen: dict[str, str] = {}
    for i, path in enumerate(files):
        if on_file:
            on_file(i, len(files))
        part = load_file(path, root.parent if root.is_file() else root, reuse)
        result.extracted.extend(part.extracted)
        result.reused += part.reused
        for where, why in part.skipped:
            log.warning("skipped %s: %s", where, why)
        result.skipped.extend(part.skipped)
        ids = {d.doc_id: d.path for d in part.documents}
        if len(ids) == len(part.documents) and seen.keys().isdisjoint(ids):  # (no duplicate: all at once)
            seen.update(ids)
            result.documents.extend(part.documents)
            continue
        for doc in part.documents:
            if doc.doc_id in seen:
                why = f"duplicate id {doc.doc_id!r} (first in {seen[doc.doc_id]}); give it another id"
                log.warning("skipped %s: %s", doc.path, why)
                result.skipped.append((doc.path, why))
                continue
            seen[doc.doc_id] = doc.path
            result.documents.append(doc)
    if on_file:
        on_file(len(files), len(files))
    if not result.documents:
        hint = f" ({len(result.skipped)} file(s) skipped: {result.skipped[0][0]}: {result.skipped[0][1]})" \
            if result.skipped else ""
        raise CorpusError(
            f"no documents in {root}{hint}; add .txt, .md, .html, .jsonl, .pdf or .docx files (UTF-8) and build again")
    return result
