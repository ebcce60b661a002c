"""Extraction speed of PDF, Word and saved web pages, and what an unchanged rebuild saves.

    python bench/ingest.py [--pdfs 10 --pages 40 --docx 10 --html 20]

Writes a corpus of generated files into a temporary folder (PDFs written byte by byte with the tests' own
writer, Word files with python-docx, web pages with navigation and a footer around the article; the text
is the seed report's sentences), builds an index of it with the test embedder (``hash:64``, so the time is
extraction, chunking and writing, not the model), then builds again with nothing changed. Prints the
build report's extraction figures per type and the "load corpus" stage of both builds; then splits one
paragraph of ``--paragraph`` characters into sentences whole and in pieces (``chunking.SLICE``).
"""

from __future__ import annotations

import argparse
import html
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/pdfgen.py: the PDF writer


def sentences() -> list[str]:
    text = next((ROOT / "corpus").glob("*.txt")).read_text(encoding="utf-8")
    out = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.strip()) > 40]
    return [s.encode("latin-1", "replace").decode("latin-1").replace("(", "").replace(")", "") for s in out]


def make_corpus(folder: Path, pdfs: int, pages: int, docx_files: int, html_files: int) -> int:
    import docx

    from tests.pdfgen import make_pdf

    pool = sentences()
    chars = 0
    for i in range(pdfs):
        page_texts = []
        for p in range(pages):
            lines = [pool[(i * 7 + p * 5 + j) % len(pool)][:90] for j in range(40)]  # about 3,600 characters
            page_texts.append("\n".join(lines))
        chars += sum(map(len, page_texts))
        (folder / f"report-{i:03d}.pdf").write_bytes(make_pdf(page_texts, title=f"Report {i}"))
    for i in range(docx_files):
        d = docx.Document()
        d.core_properties.title = f"Briefing {i}"
        d.add_heading(f"Briefing {i}", level=1)
        for j in range(50):
            d.add_paragraph(pool[(i + j) % len(pool)])
        table = d.add_table(rows=5, cols=3)
        for r in range(5):
            for c in range(3):
                table.cell(r, c).text = f"cell {r}.{c}"
        d.save(str(folder / f"briefing-{i:03d}.docx"))
    for i in range(html_files):
        body = "".join(f"<p>{html.escape(pool[(i + j) % len(pool)])}</p>" for j in range(30))
        page = (f"<html><head><title>Story {i} | Coast Herald</title><meta property='article:published_time' "
                f"content='2024-03-05'></head><body><nav><a href='/'>Home</a> <a href='/news'>News</a></nav>"
                f"<article><h1>Story {i}</h1>{body}</article><aside>Most read: ...</aside>"
                f"<footer>Contact us. Cookie settings.</footer></body></html>")
        (folder / f"story-{i:03d}.html").write_text(page, encoding="utf-8")
    return chars


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pdfs", type=int, default=10)
    ap.add_argument("--pages", type=int, default=40, help="pages per PDF (default: 40)")
    ap.add_argument("--docx", type=int, default=10)
    ap.add_argument("--html", type=int, default=20)
    ap.add_argument("--paragraph", type=int, default=200_000,
                    help="characters of one blank-line-free paragraph to split whole and in pieces (0: skip)")
    args = ap.parse_args()

    import haitirag

    with tempfile.TemporaryDirectory() as tmp:
        corpus, index = Path(tmp) / "corpus", Path(tmp) / "index"
        corpus.mkdir()
        chars = make_corpus(corpus, args.pdfs, args.pages, args.docx, args.html)
        first = haitirag.build_index(corpus, index, model="hash:64").report
        again = haitirag.build_index(corpus, index, model="hash:64").report
        assert first is not None and again is not None
        print(f"{args.pdfs} PDFs of {args.pages} pages ({chars:,} characters), {args.docx} Word files, "
              f"{args.html} web pages\n")
        print("| type | files | pages | seconds | ms a page | ms a file |")
        print("|---|---:|---:|---:|---:|---:|")
        for kind, row in first.extraction.items():
            if isinstance(row, dict):
                print(f"| {kind} | {row['files']} | {row['pages']} | {row['seconds']:.2f} "
                      f"| {1000 * row['seconds'] / row['pages']:.1f} | {1000 * row['seconds'] / row['files']:.1f} |")
        print(f"\nload corpus stage: first build {first.timings['load corpus']:.2f} s, rebuild with nothing changed "
              f"{again.timings['load corpus']:.2f} s ({again.extraction.get('reused', 0)} files not extracted "
              f"again); whole builds {first.seconds:.1f} s and {again.seconds:.1f} s")
    if args.paragraph:
        paragraph(args.paragraph)


def paragraph(n: int) -> None:
    """Sentence splitting of one huge paragraph: all of it at once against pieces of ``SLICE`` characters."""
    import time

    from haitirag import chunking

    report = " ".join(next((ROOT / "corpus").glob("*.txt")).read_text(encoding="utf-8").split())
    text = " ".join([report] * (n // len(report) + 1))[:n]  # the seed report, again and again, no blank line
    times, spans = [], []
    for size in (10**12, chunking.SLICE):
        chunking.SLICE = size
        t = time.perf_counter()
        spans.append(chunking.split_sentences(text))
        times.append(time.perf_counter() - t)
    print(f"\none paragraph of {n:,} characters: split whole {times[0]:.1f} s, in pieces of "
          f"{chunking.SLICE:,} characters {times[1]:.1f} s; same {len(spans[0]):,} sentences: {spans[0] == spans[1]}")


if __name__ == "__main__":
    main()
