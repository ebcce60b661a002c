"""HTML for the chat page: answers, sources, the document viewer, the index summary.

Every text taken from a document or a question goes through ``esc``: HTML special characters *and*
the characters Markdown or LaTeX would interpret become character references, so a document that
holds ``<script>``, ``<img onerror=...>``, ``**bold**`` or ``$x$`` shows exactly as written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from .records import Answer, Citation, Document, Passage

__all__ = [
    "CITE_JS",
    "DOC_WINDOW",
    "PAGE_CSS",
    "SCROLL_JS",
    "esc",
    "render_answer",
    "render_document",
    "render_evidence",
    "render_index_info",
    "render_question",
]

# Characters that Markdown (marked), Gradio's LaTeX delimiters or HTML would interpret.
_SPECIAL = {c: f"&#{ord(c)};" for c in "&<>\"'`*_[]()#~|\\$!{}+-=:."}
_SPECIAL_RE = re.compile("[" + re.escape("".join(_SPECIAL)) + "]")
DOC_WINDOW = 100_000  # characters of a long document shown around the highlighted span


# -- the page's style and its two small scripts (Gradio's gr.HTML js_on_load) ----------------------------
PAGE_CSS = """
.hr-info { font-size: 0.95em; color: var(--body-text-color-subdued); }
.hr-info b { color: var(--body-text-color); }
.hr-note { margin-left: 0.6em; color: var(--color-accent); }
.hr-answer { line-height: 1.55; }
.hr-abstain { font-weight: 600; }
.hr-span { font-weight: 700; background: var(--color-accent-soft, #fef3c7); border-radius: 3px; padding: 0 0.1em; }
.hr-cites { margin-top: 0.5em; font-size: 0.9em; border-top: 1px solid var(--border-color-primary);
  padding-top: 0.4em; }
.hr-label { color: var(--body-text-color-subdued); margin-bottom: 0.2em; }
.hr-cite-line { margin: 0.15em 0; }
button.hr-cite, button.hr-open { all: unset; cursor: pointer; color: var(--link-text-color, #2563eb); }
button.hr-cite { font-weight: 600; font-size: 0.85em; vertical-align: super; padding: 0 0.1em; }
button.hr-cite:hover, button.hr-open:hover { text-decoration: underline; }
.hr-title { font-weight: 600; }
.hr-meta, .hr-snippet { color: var(--body-text-color-subdued); }
.hr-evidence, .hr-doc { font-size: 0.95em; }
.hr-empty { color: var(--body-text-color-subdued); padding: 1em 0.2em; }
.hr-resolved { font-size: 0.9em; color: var(--body-text-color-subdued); margin-bottom: 0.5em; }
.hr-passage { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 0.6em 0.8em;
  margin-bottom: 0.6em; }
.hr-passage.hr-cited { border-color: var(--color-accent); }
.hr-passage-head { display: flex; gap: 0.5em; align-items: baseline; margin-bottom: 0.3em; }
.hr-passage-head button { flex: 1; }
.hr-badge { font-weight: 700; color: var(--color-accent); }
.hr-score { font-size: 0.85em; color: var(--body-text-color-subdued); white-space: nowrap; }
.hr-passage-text, .hr-doc-text { white-space: pre-wrap; line-height: 1.55; }
mark { background: #fde68a; color: inherit; padding: 0 0.1em; border-radius: 3px; }
mark.hr-cited { background: #fcd34d; box-shadow: 0 0 0 2px #f59e0b; }
.hr-doc-head { padding-bottom: 0.4em; border-bottom: 1px solid var(--border-color-primary); margin-bottom: 0.6em; }
.hr-doc-text { max-height: 560px; overflow-y: auto; padding-right: 0.4em; }
pre.hr-build { white-space: pre-wrap; font-size: 0.85em; }
.hr-doc-title { font-size: 1.15em; font-weight: 700; }
.hr-doc-meta, .hr-doc-label { font-size: 0.9em; color: var(--body-text-color-subdued); }
#hr-header h1 { margin: 0; font-size: 1.6em; }
#hr-chat .hr-question { white-space: pre-wrap; }
footer { display: none !important; }
"""

# Clicks on a citation (chat markers, source lines, passages: class "hr-k-t<turn><c|p><n>") open the
# document viewer. Gradio's chat sanitiser drops data-* attributes, so the key travels in a class.
CITE_JS = """
window.__hrTrigger = trigger;
if (!window.__hrBound) {
  window.__hrBound = true;
  document.addEventListener('click', (e) => {
    const el = e.target && e.target.closest ? e.target.closest('[class*="hr-k-"]') : null;
    if (!el) return;
    const m = el.className.match(/\\bhr-k-(t\\d+[cp]\\d+)\\b/);
    if (!m) return;
    e.preventDefault();
    window.__hrTrigger('click', {cite: m[1]});
  });
}
"""

SCROLL_JS = """
const show = () => setTimeout(() => {
  const m = element.querySelector('#hr-cited');
  if (m) m.scrollIntoView({block: 'center'});
}, 120);
watch('value', show);
show();
"""


def esc(text: object) -> str:
    """Escape ``text`` for HTML and Markdown: it renders as the same characters, never as markup."""
    return _SPECIAL_RE.sub(lambda m: _SPECIAL[m.group(0)], str(text))


def _attr(text: object) -> str:
    """Escape for a double-quoted HTML attribute value."""
    return esc(text)


def _meta(title: str, date: str | None, source: str | None, page: int | None = None) -> str:
    bits = [f'<span class="hr-title">{esc(title or "(untitled)")}</span>']
    bits += [f'<span class="hr-meta">{esc(x)}</span>' for x in (date, source, f"p. {page}" if page else None) if x]
    return " · ".join(bits)


def _safe_url(url: str | None) -> str | None:
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


def render_question(question: str) -> str:
    return f'<div class="hr-question">{esc(question)}</div>'


def _cite_marker(turn: int, n: int) -> str:
    return (f'<button type="button" class="hr-cite hr-k-t{turn}c{n}" '
            f'title="Open source [{n}]">[{n}]</button>')


def _span_in_text(text: str, answer: Answer) -> tuple[int, int] | None:
    """Where ``answer.span`` (the exact answer) stands inside ``text``, or None."""
    span = answer.span
    if span is None:
        return None
    for c in answer.citations:
        if c.doc_id == span.doc_id and c.start <= span.start and span.end <= c.end:
            at = text.find(c.quote)
            if at >= 0:
                return at + span.start - c.start, at + span.end - c.start
    return None


def _esc_part(text: str, lo: int, hi: int, emph: tuple[int, int] | None) -> str:
    """``text[lo:hi]`` escaped, with the part inside ``emph`` in <strong>."""
    if emph is None or emph[1] <= lo or emph[0] >= hi:
        return esc(text[lo:hi])
    s, e = max(lo, emph[0]), min(hi, emph[1])
    return esc(text[lo:s]) + f'<strong class="hr-span">{esc(text[s:e])}</strong>' + esc(text[e:hi])


def _with_markers(text: str, citations: Sequence[Citation], turn: int, emph: tuple[int, int] | None = None) -> str:
    """The answer text, escaped, with a marker [n] after the n-th cited quote and the exact answer in bold."""
    out: list[str] = []
    pos = 0
    unplaced: list[int] = []
    for n, c in enumerate(citations, 1):
        at = text.find(c.quote, pos) if c.quote else -1
        if at < 0:
            unplaced.append(n)
            continue
        end = at + len(c.quote)
        out.append(_esc_part(text, pos, end, emph) + " " + _cite_marker(turn, n))
        pos = end
    out.append(_esc_part(text, pos, len(text), emph))
    out += [" " + _cite_marker(turn, n) for n in unplaced]
    return "".join(out).strip()


def render_answer(answer: Answer, turn: int) -> str:
    """The chat message for ``answer``: the quoted text with markers, then the cited sources.

    When the sources don't answer, say so plainly and list the closest passages instead.
    """
    if answer.abstained or not answer.citations:
        parts = [f'<div class="hr-answer hr-abstain">{esc(answer.text)}</div>']
        if answer.passages:
            parts.append('<div class="hr-cites"><div class="hr-label">Closest passages (they do not answer it):</div>')
            for i, p in enumerate(answer.passages[:3]):
                snippet = " ".join(p.text.split())
                snippet = snippet[:220] + ("…" if len(snippet) > 220 else "")
                parts.append(f'<div class="hr-cite-line"><button type="button" '
                             f'class="hr-open hr-k-t{turn}p{i}">{_meta(p.title, p.date, p.source)}</button> '
                             f'<span class="hr-snippet">{esc(snippet)}</span></div>')
            parts.append("</div>")
        return "".join(parts)
    emph = _span_in_text(answer.text, answer)
    parts = [f'<div class="hr-answer">{_with_markers(answer.text, answer.citations, turn, emph)}</div>',
             '<div class="hr-cites">']
    for n, c in enumerate(answer.citations, 1):
        parts.append(f'<div class="hr-cite-line"><button type="button" class="hr-open hr-k-t{turn}c{n}" '
                     f'title="Show the whole document">[{n}] {_meta(c.title, c.date, c.source, c.page)}</button></div>')
    parts.append("</div>")
    return "".join(parts)


def _highlight(text: str, start: int, end: int, quotes: Sequence[tuple[int, int]]) -> str:
    """Escape ``text[start:end]`` with the ``quotes`` spans (absolute offsets) inside <mark>."""
    out: list[str] = []
    pos = start
    for s, e in sorted(quotes):
        s, e = max(s, pos), min(e, end)
        if s >= e:
            continue
        out.append(esc(text[pos:s]) + f"<mark>{esc(text[s:e])}</mark>")
        pos = e
    out.append(esc(text[pos:end]))
    return "".join(out)


def _score_help(p: Passage) -> str:
    parts = ["retrieval score (higher is better)"]
    if p.dense_score is not None:
        parts.append(f"cosine similarity {p.dense_score:.3f}")
    if p.keyword_score is not None:
        parts.append(f"BM25 {p.keyword_score:.2f}")
    return ", ".join(parts)


def merge_overlapping(passages: Sequence[Passage]) -> list[Passage]:
    """Passages of one document that overlap (neighbouring chunks share a few sentences) shown as one:
    the union of their text, at the place of the first and with the best score of them."""
    out: list[Passage] = []
    for p in passages:
        for j, q in enumerate(out):
            if q.doc_id == p.doc_id and p.start < q.end and q.start < p.end:
                first, last = (q, p) if q.start <= p.start else (p, q)
                text = first.text + last.text[first.end - last.start:] if last.end > first.end else first.text
                out[j] = dataclasses.replace(q, text=text, start=first.start, end=max(first.end, last.end),
                                             score=max(q.score, p.score))
                break
        else:
            out.append(p)
    return out


def render_evidence(answer: Answer | None, turn: int) -> str:
    """The sources panel: each retrieved passage with its score, the quoted sentence highlighted."""
    if answer is None:
        return ('<div class="hr-evidence hr-empty">Ask a question: the passages the answer was drawn from '
                'appear here. Click a citation to read the whole document.</div>')
    if not answer.passages:
        return '<div class="hr-evidence hr-empty">No passage matched (check the filters).</div>'
    parts = ['<div class="hr-evidence">']
    if answer.resolved_question and answer.resolved_question != answer.question:
        parts.append(f'<div class="hr-resolved">Searched for: {esc(answer.resolved_question)}</div>')
    for i, p in enumerate(merge_overlapping(answer.passages)):
        local = [(c.start - p.start, c.end - p.start) for c in answer.citations if c.doc_id == p.doc_id]
        numbers = [n for n, c in enumerate(answer.citations, 1)
                   if c.doc_id == p.doc_id and c.start < p.end and c.end > p.start]
        badge = "".join(f'<span class="hr-badge">[{n}]</span>' for n in numbers)
        parts.append(
            f'<div class="hr-passage{" hr-cited" if numbers else ""}">'
            f'<div class="hr-passage-head">{badge}<button type="button" class="hr-open hr-k-t{turn}p{i}" '
            f'title="Show the whole document">{_meta(p.title, p.date, p.source)}</button>'
            f'<span class="hr-score" title="{_score_help(p)}">score {p.score:.3f}</span></div>'
            f'<div class="hr-passage-text">{_highlight(p.text, 0, len(p.text), local)}</div>'
            "</div>")
    parts.append("</div>")
    return "".join(parts)


def render_document(doc: Document | None, start: int = 0, end: int = 0, label: str = "") -> str:
    """The document with ``text[start:end]`` in <mark id="hr-cited"> (the page scrolls it into view): all of it,
    or for a paged one (PDF) the page(s) holding the span; a very long stretch is cut to a window around it."""
    if doc is None:
        return ('<div class="hr-doc hr-empty">Click a citation or a passage to read the whole document here, '
                'the cited sentence highlighted.</div>')
    text = doc.text
    start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
    lo, hi = 0, len(text)
    pages = ""
    if doc.pages and len(doc.pages) > 1:  # the cited page (or pages, when the span runs over)
        first, last = doc.page_at(start) or 1, doc.page_at(max(start, end - 1)) or 1
        lo, hi = doc.pages[first - 1], doc.pages[last] if last < len(doc.pages) else len(text)
        pages = f"page {first}" if first == last else f"pages {first}–{last}"
        pages = f"Showing {pages} of {len(doc.pages)}"
    if hi - lo > DOC_WINDOW:  # a very long document or page: show a window around the span
        lo = max(lo, start - DOC_WINDOW // 2)
        hi = min(hi, max(end, lo + DOC_WINDOW))
    url = _safe_url(doc.url)
    head = [f'<div class="hr-doc-head"><div class="hr-doc-title">{esc(doc.title or "(untitled)")}</div>',
            '<div class="hr-doc-meta">' + " · ".join(esc(x) for x in (doc.date, doc.source, doc.path) if x)]
    if url:
        head.append(f' · <a href="{_attr(url)}" target="_blank" rel="noopener noreferrer nofollow">{esc(url)}</a>')
    head.append("</div>")
    if label:
        page = f", p. {doc.page_at(start)}" if doc.pages else ""
        head.append(f'<div class="hr-doc-label">{esc(label)}{page}, characters {start:,}–{end:,}</div>')
    head.append("</div>")
    body = [esc(text[lo:start]), f'<mark id="hr-cited" class="hr-cited">{esc(text[start:end])}</mark>',
            esc(text[end:hi])] if end > start else [esc(text[lo:hi])]
    note = ""
    if (lo, hi) != (0, len(text)):
        where = f"{pages}, characters" if pages else "Showing characters"
        note = f'<div class="hr-doc-label">{where} {lo:,}–{hi:,} of {len(text):,}.</div>'
    return f'<div class="hr-doc">{"".join(head)}{note}<div class="hr-doc-text">{"".join(body)}</div></div>'


def _when(created: str | None) -> str:
    if not created:
        return "unknown"
    try:
        t = dt.datetime.fromisoformat(created)
    except ValueError:
        return created
    return t.strftime("%Y-%m-%d %H:%M UTC") if t.utcoffset() == dt.timedelta(0) else t.isoformat()


def render_index_info(manifest: dict[str, Any], documents: int, chunks: int, note: str = "") -> str:
    """One line: what the index holds, its model and when it was built."""
    bits = [f"<b>{documents:,}</b> document{'' if documents == 1 else 's'}",
            f"<b>{chunks:,}</b> chunk{'' if chunks == 1 else 's'}",
            f"model <code>{esc(manifest.get('model', '?'))}</code>",
            f"built {esc(_when(manifest.get('created')))}"]
    extra = f' <span class="hr-note">{esc(note)}</span>' if note else ""
    return f'<div class="hr-info">{" · ".join(bits)}{extra}</div>'


def passage_of(answer: Answer, i: int) -> Passage | None:
    """The ``i``-th passage as the sources panel shows it (overlapping ones merged)."""
    shown = merge_overlapping(answer.passages)
    return shown[i] if 0 <= i < len(shown) else None
