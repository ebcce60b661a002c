from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from haitirag.corpus import load_corpus, parse_date
from haitirag.errors import CorpusError

from .conftest import FIXTURE_CORPUS, SEED_CORPUS


def by_path(docs):
    return {d.path: d for d in docs}


def test_seed_report_metadata():
    (doc,) = load_corpus(SEED_CORPUS).documents
    assert doc.title == "US Declines to Deploy Troops to Haiti Despite Kenya's Lead in Mission"
    assert doc.date == "2024-03-05"
    assert doc.source == "Livenow Africa"
    assert doc.text.rstrip().endswith('as guided by our courts," Ruto affirmed.')
    assert "Tags" not in doc.text and "\u00a0" not in doc.text


def test_formats_and_metadata():
    docs = by_path(load_corpus(FIXTURE_CORPUS).documents)
    assert set(docs) == {"haiti_report.txt", "court.md", "sub/fisheries.html", "briefs.jsonl#brief-1",
                         "briefs.jsonl#brief-2"}
    md = docs["court.md"]
    assert (md.title, md.date, md.source, md.url) == (
        "Court ruling on police deployment", "2024-01-26", "Example Wire", "https://example.org/court")
    assert not md.text.startswith("---")
    html = docs["sub/fisheries.html"]
    assert (html.title, html.date, html.source) == ("Lake Victoria fisheries recover", "2023-11-02", "Lake News")
    assert "Nile perch" in html.text
    for junk in ("tracking", "color: red", "Home", "Sport", "Copyright"):
        assert junk not in html.text
    brief = docs["briefs.jsonl#brief-1"]
    assert (brief.doc_id, brief.title, brief.date, brief.source) == ("brief-1", "Rainfall outlook", "2024-03-10",
                                                                     "Met Desk")
    assert docs["briefs.jsonl#brief-2"].date is None


def test_ids_are_content_derived(tmp_path: Path):
    a = load_corpus(FIXTURE_CORPUS).documents
    b = load_corpus(FIXTURE_CORPUS).documents
    assert [d.doc_id for d in a] == [d.doc_id for d in b]
    (tmp_path / "x.txt").write_text("Title\n\nOne sentence here.", encoding="utf-8")
    first = load_corpus(tmp_path).documents[0].doc_id
    (tmp_path / "x.txt").write_text("Title\n\nAnother sentence here.", encoding="utf-8")
    assert load_corpus(tmp_path).documents[0].doc_id != first


def test_bad_files_are_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    (tmp_path / "good.txt").write_text("Good title\n\nA fine sentence.", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 au lait".encode("latin-1"))
    (tmp_path / "bad.jsonl").write_text('{"id": "a", "text": "ok text"}\nnot json\n{"id": "b"}\n', encoding="utf-8")
    (tmp_path / "ignored.pages").write_bytes(b"not a format we read")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4")
    with caplog.at_level(logging.WARNING):
        result = load_corpus(tmp_path)
    assert sorted(d.path for d in result.documents) == ["bad.jsonl#a", "good.txt"]
    skipped = dict(result.skipped)
    assert "binary" in skipped["binary.txt"]
    assert "UTF-8" in skipped["latin1.txt"]
    assert "bad.jsonl:2" in skipped and "bad.jsonl:3" in skipped
    assert "damaged PDF" in skipped["broken.pdf"] and "ignored.pages" not in skipped
    assert "binary.txt" in caplog.text and "latin1.txt" in caplog.text


def test_empty_or_missing_corpus_raises(tmp_path: Path):
    with pytest.raises(CorpusError, match="no documents"):
        load_corpus(tmp_path)
    with pytest.raises(CorpusError, match="not found"):
        load_corpus(tmp_path / "nope")


@pytest.mark.parametrize("text, iso", [
    ("05, Mar 2024 / 2 min read/ By Livenow Africa", "2024-03-05"),
    ("March 5, 2024", "2024-03-05"),
    ("2024-03-05T10:00:00Z", "2024-03-05"),
    ("5 March 2024", "2024-03-05"),
    ("31 Feb 2024", None),
    ("no date here", None),
])
def test_parse_date(text: str, iso: str | None):
    assert parse_date(text) == iso


def test_jsonl_titles_keep_their_underscores_unless_they_are_a_slug(tmp_path: Path):
    lines = [{"id": "a", "title": "Super_Bowl_50", "text": "The game was played in 2016."},
             {"id": "b", "title": "Notes on __init__ and snake_case", "text": "Python names."},
             {"id": "c", "title": "_private_", "text": "An odd title."}]
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    titles = {d.doc_id: d.title for d in load_corpus(tmp_path).documents}
    assert titles == {"a": "Super Bowl 50", "b": "Notes on __init__ and snake_case", "c": "_private_"}


NEWS_PAGE = """<!doctype html><html><head><title>Dredger deepens Port Lune channel | Harbour Times</title>
<meta property="og:title" content="Dredger deepens Port Lune channel">
<meta property="og:site_name" content="Harbour Times">
<meta property="article:published_time" content="2024-05-03T09:00:00Z"></head><body>
<div class="top-bar"><a href="/">Home</a> <a href="/news">News</a> <a href="/sport">Sport</a>
<a href="/login">Log in</a></div>
<div class="cookie-banner">We use cookies to improve your experience. Accept all cookies?</div>
<div class="content"><div class="story"><h1>Dredger deepens Port Lune channel</h1>
<p>The dredger Ocean Pearl finished deepening the main channel of Port Lune to fifteen metres on Friday, the
harbour authority said, allowing larger container ships to dock without waiting for the tide.</p>
<p>Work on the channel began in January and cost about 40 million euros, paid by the regional government and
the port's operators, according to figures published by the authority this week.</p>
<p>Shipping lines said the deeper channel would cut waiting times at the outer anchorage, where vessels now
queue for up to two days during neap tides, and could bring new routes to the port next year.</p></div>
<div class="most-read"><h3>Most read</h3><ul><li><a href="/a">Mayor opens new bridge</a></li>
<li><a href="/b">Storm closes ferry routes</a></li><li><a href="/c">Fish prices rise again</a></li></ul></div></div>
<div class="site-footer">Copyright 2024 Harbour Times. All rights reserved. Terms | Privacy | Contact us</div>
</body></html>"""


def test_a_saved_news_page_keeps_only_the_article(tmp_path: Path):
    (tmp_path / "page.html").write_text(NEWS_PAGE, encoding="utf-8")
    doc = load_corpus(tmp_path).documents[0]
    assert (doc.title, doc.date, doc.source) == ("Dredger deepens Port Lune channel", "2024-05-03", "Harbour Times")
    assert "deepening the main channel of Port Lune to fifteen metres" in doc.text and "neap tides" in doc.text
    for junk in ("Log in", "cookies", "Most read", "Storm closes ferry routes", "Copyright", "Privacy"):
        assert junk not in doc.text, junk
    assert not doc.text.startswith("Dredger deepens")  # the headline is the title, not a sentence to quote


def test_jsonl_line_ends_marks_and_encodings(tmp_path: Path):
    """A JSON-lines file is read a line at a time: Windows and old Mac line ends, a UTF-8 byte-order mark, values
    only the standard library's parser takes (NaN), UTF-16 with a mark; a line that is not UTF-8 skips the file
    with the fix, as a whole non-UTF-8 file does."""
    rec = [{"id": f"r{i}", "title": f"Report {i}", "text": f"Text number {i} \u2028 with a line separator."}
           for i in range(3)]
    lines = [json.dumps(r, ensure_ascii=False) for r in rec]
    (tmp_path / "crlf.jsonl").write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf-8") + b"\r\n")
    (tmp_path / "mac.jsonl").write_bytes("\r".join(lines).replace('"r', '"m').encode("utf-8"))
    (tmp_path / "nan.jsonl").write_text('{"id": "n1", "text": "A score of NaN.", "score": NaN}\n', encoding="utf-8")
    (tmp_path / "wide.jsonl").write_bytes("\n".join(lines).replace('"r', '"w').encode("utf-16"))
    (tmp_path / "latin.jsonl").write_bytes(lines[0].encode("utf-8") + b'\n{"id": "x", "text": "caf\xe9"}\n')
    result = load_corpus(tmp_path)
    got = {d.path: d for d in result.documents}
    for name, prefix in (("crlf", "r"), ("mac", "m"), ("wide", "w")):
        assert [got[f"{name}.jsonl#{prefix}{i}"].text for i in range(3)] == [r["text"] for r in rec], name
        assert got[f"{name}.jsonl#{prefix}0"].title == "Report 0"
    assert got["nan.jsonl#n1"].text == "A score of NaN."
    skipped = dict(result.skipped)
    assert not any(p.startswith("latin.jsonl") for p in got) and "not UTF-8" in skipped["latin.jsonl"]
    assert "iconv" in skipped["latin.jsonl"] and len(result.skipped) == 1
