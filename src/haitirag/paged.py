"""Stage 1, binary formats: PDF (pypdf) and Word ``.docx`` (python-docx) read into ``Document`` records.

A PDF's text is its pages' text joined by a blank line; ``Document.pages`` keeps each page's start offset,
so a citation's page is ``document.page_at(start)`` and ``document.text[start:end] == quote`` still holds.
Metadata come from the file's properties (title, author as source, creation date) when present, else the
title is the first line. Problems raise ``ValueError`` with the reason; the loader skips the file with it.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from pathlib import Path
from typing import Any

from .records import Document

__all__ = ["from_docx", "from_pdf"]

log = logging.getLogger(__name__)
PAGE_BREAK = "\n\n"


def _iso(value: Any) -> str | None:
    return value.date().isoformat() if isinstance(value, dt.datetime) else None


def _title(meta_title: Any, text: str, relpath: str) -> str:
    title = " ".join(str(meta_title or "").split())
    if title:
        return title[:300]
    first = next((line.strip() for line in text.split("\n") if line.strip()), "")
    return (first or Path(relpath).stem)[:300]


def _document(text: str, relpath: str, data: bytes, title: Any, date: str | None, source: Any,
              pages: tuple[int, ...] = ()) -> Document:
    from .corpus import file_doc_id, text_sha256

    return Document(doc_id=file_doc_id(relpath, data), text=text, title=_title(title, text, relpath), date=date,
                    source=" ".join(str(source).split()) or None if source else None, path=relpath,
                    sha256=text_sha256(text), pages=pages)


def from_pdf(data: bytes, relpath: str) -> Document:
    """The pages' text in order (page starts kept); ValueError for a damaged or text-less (scanned) PDF."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        texts = [(page.extract_text() or "").replace("\r\n", "\n").replace("\r", "\n").strip()
                 for page in reader.pages]
        info: Any = reader.metadata
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as err:
        raise ValueError(f"damaged PDF ({type(err).__name__}: {err}); re-save or re-export it") from err
    if not any(texts):
        raise ValueError("no text layer (scanned?); run OCR on it (e.g. ocrmypdf) and add the result")
    starts, parts, at = [], [], 0
    for t in texts:
        starts.append(at)
        parts.append(t)
        at += len(t) + len(PAGE_BREAK)
    text = PAGE_BREAK.join(parts)
    created = getattr(info, "creation_date", None)
    return _document(text, relpath, data, getattr(info, "title", None), _iso(created),
                     getattr(info, "author", None), tuple(starts))


def from_docx(data: bytes, relpath: str) -> Document:
    """Paragraphs, headings and table cells in reading order, one block a paragraph; ValueError if unreadable."""
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        d = docx.Document(io.BytesIO(data))
    except Exception as err:  # python-docx raises zipfile, KeyError or its own errors on damaged files
        raise ValueError(f"damaged Word file ({type(err).__name__}); re-save it as .docx") from err
    blocks: list[str] = []
    for item in d.iter_inner_content():
        if isinstance(item, Paragraph):
            blocks.append(item.text.strip())
        elif isinstance(item, Table):
            for row in item.rows:
                cells = list(dict.fromkeys(c.text.strip() for c in row.cells))  # merged cells repeat
                blocks.append(" | ".join(c for c in cells if c))
    text = "\n\n".join(b for b in blocks if b)
    props = d.core_properties
    return _document(text, relpath, data, props.title, _iso(props.created), props.author)
