"""PDF and Word files: text, page offsets, metadata, page-level citations, and bad files skipped with the reason."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import haitirag
from haitirag.corpus import load_corpus
from haitirag.uploads import save_upload

from .conftest import HASH_MODEL
from .pdfgen import make_pdf

TWO_PAGES = ["Port of Mombasa report\nThe port authority opened a new container terminal on Tuesday.",
             "The new terminal can handle 450,000 containers a year, officials said.\nCranes arrived in March."]


def _docx(path: Path) -> None:
    import docx

    d = docx.Document()
    d.core_properties.title = "Harbour cranes briefing"
    d.core_properties.author = "Port Desk"
    d.add_heading("Harbour cranes", level=1)
    d.add_paragraph("Four new cranes were installed at the quay in May.")
    table = d.add_table(rows=2, cols=2)
    for r, (a, b) in enumerate([("Crane", "Tonnes"), ("North", "45")]):
        table.cell(r, 0).text, table.cell(r, 1).text = a, b
    d.add_paragraph("The cranes were built in Finland.")
    d.save(str(path))


def test_a_two_page_pdf_keeps_its_pages_and_metadata(tmp_path: Path):
    (tmp_path / "port.pdf").write_bytes(make_pdf(TWO_PAGES, title="Port of Mombasa opens a new terminal"))
    doc = load_corpus(tmp_path).documents[0]
    assert (doc.title, doc.date, doc.source) == ("Port of Mombasa opens a new terminal", "2024-04-02", "Coast Herald")
    assert len(doc.pages) == 2 and doc.pages[0] == 0
    at = doc.text.index("450,000 containers")
    assert doc.page_at(at) == 2 and doc.page_at(doc.text.index("container terminal")) == 1
    assert doc.text[doc.pages[1]:].startswith("The new terminal")


@pytest.mark.parametrize(("data", "why"), [
    (make_pdf([""]), "no text layer \\(scanned\\?\\)"),
    (make_pdf(TWO_PAGES)[:180], "damaged PDF"),
    (b"%PDF-1.4 not really a pdf", "damaged PDF"),
    (b"PK\x03\x04 not a zip", "damaged Word file"),
])
def test_bad_pdf_and_word_files_are_skipped_with_the_reason(tmp_path: Path, data: bytes, why: str):
    import re

    name = "bad.docx" if data.startswith(b"PK") else "bad.pdf"
    (tmp_path / "ok.txt").write_text("Good report\n\nA fine sentence.\n", encoding="utf-8")
    (tmp_path / name).write_bytes(data)
    loaded = load_corpus(tmp_path)
    assert [d.path for d in loaded.documents] == ["ok.txt"]  # nothing else lost
    assert [p for p, _ in loaded.skipped] == [name] and re.search(why, loaded.skipped[0][1]), loaded.skipped


def test_a_word_file_reads_headings_paragraphs_and_tables_in_order(tmp_path: Path):
    _docx(tmp_path / "cranes.docx")
    doc = load_corpus(tmp_path).documents[0]
    assert (doc.title, doc.source) == ("Harbour cranes briefing", "Port Desk") and doc.date
    order = ["Harbour cranes", "Four new cranes", "Crane | Tonnes", "North | 45", "built in Finland"]
    positions = [doc.text.index(s) for s in order]
    assert positions == sorted(positions) and not doc.pages


def test_a_pdf_answer_cites_its_page(tmp_path: Path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "port.pdf").write_bytes(make_pdf(TWO_PAGES, title="Port of Mombasa opens a new terminal"))
    index = haitirag.build_index(corpus, tmp_path / "index", model=HASH_MODEL)
    again = haitirag.load_index(tmp_path / "index")  # the pages survive the index format
    assert again.documents == index.documents and next(iter(again.documents.values())).pages
    answer = again.ask("How many containers a year can the new terminal handle?")
    assert not answer.abstained and "450,000" in answer.text
    c = answer.citations[0]
    doc = again.document(c.doc_id)
    assert c.page == 2 and doc.text[c.start:c.end] == c.quote
    assert answer.span is not None and answer.span.page == 2
    import html

    from haitirag import render

    assert "p. 2" in html.unescape(render.render_answer(answer, 0))


def test_pdf_and_word_uploads_are_checked_like_the_others(tmp_path: Path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    good = tmp_path / "port.pdf"
    good.write_bytes(make_pdf(TWO_PAGES))
    scanned = tmp_path / "scan.pdf"
    scanned.write_bytes(make_pdf([""]))
    word = tmp_path / "cranes.docx"
    _docx(word)
    assert save_upload(good, corpus, "port.pdf").saved_as == "port.pdf"
    assert save_upload(word, corpus, "cranes.docx").saved_as == "cranes.docx"
    refused = save_upload(scanned, corpus, "scan.pdf")
    assert not refused.ok and "no text layer" in refused.message and not (corpus / "scan.pdf").exists()
    assert io.BytesIO((corpus / "port.pdf").read_bytes()).read() == good.read_bytes()


HTML_PAGE = ("<html><head><title>Harbour dredging | Coast Herald</title>"
             "<meta property='article:published_time' content='2024-05-02'></head><body><nav>Home News Sport</nav>"
             "<article><h1>Harbour dredging</h1><p>Dredgers deepened the harbour channel to fifteen metres last "
             "month, the port authority said on Thursday.</p><p>Larger ships can now dock at the container "
             "terminal.</p></article><footer>Contact us</footer></body></html>")


def _mixed_corpus(root: Path) -> Path:
    root.mkdir()
    (root / "port.pdf").write_bytes(make_pdf(TWO_PAGES, title="Port of Mombasa opens a new terminal"))
    _docx(root / "cranes.docx")
    (root / "dredging.html").write_text(HTML_PAGE, encoding="utf-8")
    (root / "note.txt").write_text("Harbour note\n\nThe ferry timetable changes in June.\n", encoding="utf-8")
    return root


def test_unchanged_pdf_word_and_html_files_are_not_extracted_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from haitirag import corpus as corpus_mod
    from haitirag import paged

    root = _mixed_corpus(tmp_path / "corpus")
    first = haitirag.build_index(root, tmp_path / "index", model=HASH_MODEL).report
    assert first is not None
    ex = first.extraction
    assert (ex["pdf"]["files"], ex["pdf"]["pages"], ex["docx"]["files"], ex["html"]["files"], ex["reused"]) == \
        (1, 2, 1, 1, 0)
    assert "1 PDF (2 pages" in first.summary() and "1 DOCX" in first.summary() and "1 HTML" in first.summary()

    def refuse(*args: object) -> None:
        raise AssertionError("extracted again")

    for mod, name in ((paged, "from_pdf"), (paged, "from_docx"), (corpus_mod, "_from_html")):
        monkeypatch.setattr(mod, name, refuse)
    (root / "note.txt").write_text("Harbour note\n\nThe ferry timetable changes in July.\n", encoding="utf-8")
    second = haitirag.build_index(root, tmp_path / "index", model=HASH_MODEL)
    assert second.report is not None and second.report.extraction == {"reused": 3}
    assert "3 unchanged not extracted again" in second.report.summary()
    assert second.report.modified == ["note.txt"] and not second.report.added
    pdf = next(d for d in second.documents.values() if d.path == "port.pdf")
    assert len(pdf.pages) == 2 and pdf.page_at(pdf.text.index("450,000")) == 2  # the pages came along
    from haitirag.build import index_status

    status = index_status(root, tmp_path / "index", model=HASH_MODEL)  # status reads no PDF either
    assert not status.changed


def test_a_changed_file_or_another_extractor_version_is_extracted_again(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch):
    from haitirag import build, paged

    root = _mixed_corpus(tmp_path / "corpus")
    haitirag.build_index(root, tmp_path / "index", model=HASH_MODEL)
    calls: list[str] = []
    real = paged.from_pdf

    def counting(data: bytes, relpath: str) -> object:
        calls.append(relpath)
        return real(data, relpath)

    monkeypatch.setattr(paged, "from_pdf", counting)
    (root / "port.pdf").write_bytes(make_pdf([TWO_PAGES[0], TWO_PAGES[1] + "\nMore cranes come in June."]))
    report = haitirag.build_index(root, tmp_path / "index", model=HASH_MODEL).report
    assert calls == ["port.pdf"] and report is not None and report.modified == ["port.pdf"]
    assert report.extraction["reused"] == 2
    monkeypatch.setattr(build, "EXTRACTION", build.EXTRACTION + 1)  # what a new extractor release does
    report = haitirag.build_index(root, tmp_path / "index", model=HASH_MODEL).report
    assert calls == ["port.pdf"] * 2 and report is not None and report.extraction["reused"] == 0
    report = haitirag.build_index(root, tmp_path / "index", model=HASH_MODEL, full=True).report
    assert calls == ["port.pdf"] * 3 and report is not None and report.extraction["reused"] == 0
    # after that one re-extraction the index records the new version, so the next build reuses again
    report = haitirag.build_index(root, tmp_path / "index", model=HASH_MODEL).report
    assert calls == ["port.pdf"] * 3 and report is not None and report.extraction["reused"] == 3


def test_the_document_view_shows_the_cited_page():
    from haitirag import render

    pages = ["Page one is about the harbour.\n\n", "Page two says cranes arrived in March.\n\n",
             "Page three lists the ferry times."]
    text = "".join(pages)
    starts = (0, len(pages[0]), len(pages[0]) + len(pages[1]))
    doc = haitirag.Document("d1", text, "Port report", pages=starts)
    at = text.index("cranes arrived")
    view = render.render_document(doc, at, at + len("cranes arrived in March."), "Cited sentence [1]")
    assert "<mark id=\"hr-cited\" class=\"hr-cited\">cranes arrived in March&#46;</mark>" in view
    assert "Page two" in view and "Page one" not in view and "Page three" not in view
    assert "Showing page 2 of 3" in view and "p. 2" in view
    across = render.render_document(doc, at, text.index("ferry"), "Cited sentence [1]")  # runs onto page 3
    assert "Showing pages 2–3 of 3" in across and "Page three" in across and "Page one" not in across
    assert "Page one" in render.render_document(haitirag.Document("d2", text, "No pages"), at, at + 5)
