"""End to end in a real browser (Debian chromium driven by playwright), against `python app.py`.

Asks about the seed report, opens the cited source, uploads a document (holding HTML and JS that
must show as text), rebuilds from the page, and gets an answer from the new document. Screenshots
go to tests/artifacts/ (PNG); with HAITIRAG_SCREENSHOTS=1 they also replace docs/screenshots/.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import SEED_CORPUS
from .pdfgen import make_pdf

pytestmark = [pytest.mark.browser, pytest.mark.model, pytest.mark.slow]

ROOT = Path(__file__).parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"
DOCS_SHOTS = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
NEW_DOC = """---
title: Port of Mombasa opens a new terminal
date: 2024-04-02
source: Coast Herald
---
# Port of Mombasa opens a new terminal

The port authority opened a new container terminal in Mombasa on Tuesday.

The new terminal can handle 450,000 containers a year, officials said.

A reader pasted this markup into the story: <img src=x onerror="window.__pwned=1">
<script>window.__pwned=2</script> <b>not bold</b>.
"""

LEDGER = "Harbour ledger\n\n" + "\n".join(
    f"Entry {i}: berth {i % 17} of the old harbour took {i * 37 % 1000} tonnes of cargo from ship number {i}, "
    f"and the clerk noted {i % 7 + 2} cranes at work." for i in range(1600)) + "\n"

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing on CI: `make test` installs it (apt-get install -y chromium)")
    pytest.skip(f"{CHROMIUM} is not installed (run `make browser` or apt-get install -y chromium)",
                allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"app.py did not listen on {port} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("browser")
    corpus = tmp / "corpus"
    shutil.copytree(SEED_CORPUS, corpus)
    port = _free_port()
    log = tmp / "server.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "GRADIO_TEMP_DIR": str(tmp / "gradio")}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--corpus", str(corpus), "--index",
                                 str(tmp / "index"), "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=tmp)
    try:
        _wait_for_port(port, proc, log)
        yield f"http://127.0.0.1:{port}", tmp
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
    left = [p for p in (tmp / "gradio").rglob("*") if p.is_file()]
    assert not left, f"uploads left behind after the server stopped: {left}"


def _shot(page, name: str, docs: bool = False) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(800)  # let Gradio's "pending" fades finish
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    if docs and os.environ.get("HAITIRAG_SCREENSHOTS"):  # small JPEGs for the README
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_SHOTS / f"{name}.jpg"), type="jpeg", quality=60)


def _ask(page, question: str, n_answers: int) -> str:  # type: ignore[no-untyped-def]
    page.fill("#hr-question textarea", question)
    page.click("#hr-ask")
    answers = page.locator("#hr-chat .hr-answer")
    answers.nth(n_answers - 1).wait_for(timeout=60_000)
    return str(answers.nth(n_answers - 1).inner_text())


def test_ask_read_upload_rebuild_in_a_browser(app_url: tuple[str, Path]):
    from playwright.sync_api import sync_playwright

    url, tmp = app_url
    outside: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(60_000)

            def offline(route):  # type: ignore[no-untyped-def]
                if route.request.url.startswith((url, "data:", "blob:")):
                    route.continue_()
                else:  # the page must work with the network closed
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", offline)
            page.goto(url, wait_until="domcontentloaded")
            page.wait_for_selector("#hr-question textarea")
            page.wait_for_function("document.querySelector('#hr-info')?.innerText.includes('document')")
            assert "1 document " in page.inner_text("#hr-info") and "all-MiniLM-L6-v2" in page.inner_text("#hr-info")
            examples = page.inner_text("#hr-examples")
            assert "Which court blocked Kenya's deployment?" in examples

            # ask about the seed report: the answer, its marker and its cited source
            answer = _ask(page, "Which court blocked Kenya's deployment?", 1)
            assert "High Court" in answer and "[1]" in answer
            cites = page.inner_text("#hr-chat .hr-cites")
            assert "US Declines to Deploy Troops to Haiti" in cites and "2024-03-05" in cites
            assert "Livenow Africa" in cites
            page.wait_for_selector("#hr-evidence mark")
            assert "High Court" in page.inner_text("#hr-evidence mark")
            assert "score" in page.inner_text("#hr-evidence")
            assert "2,000 troops" in _ask(page, "How many troops did Benin pledge to send?", 2)
            _shot(page, "chat", docs=True)

            # open the cited source: the whole document, the cited sentence highlighted and in view
            page.locator("#hr-chat button.hr-cite").first.click()  # the first answer's marker
            mark = page.locator("#hr-document mark#hr-cited")
            mark.wait_for(state="visible")
            assert mark.inner_text().startswith("However, Kenya's deployment was blocked by its High Court")
            assert "Ruto affirmed" in page.inner_text("#hr-document")  # the whole text, not just the passage
            page.wait_for_timeout(600)
            assert page.evaluate("""() => {  // scrolled into view: inside the text's scroll box and the window
                const m = document.querySelector('#hr-document mark#hr-cited'), box = m.closest('.hr-doc-text');
                const r = m.getBoundingClientRect(), b = box.getBoundingClientRect();
                return box.scrollHeight > box.clientHeight && r.top >= b.top && r.bottom <= b.bottom
                    && r.top >= 0 && r.bottom <= window.innerHeight; }""")
            _shot(page, "source", docs=True)

            # a second tab, opened before the upload: it lists only the seed report's source
            stale = browser.new_page(viewport={"width": 1400, "height": 900})
            stale.set_default_timeout(60_000)
            stale.route("**/*", offline)
            stale.goto(url, wait_until="domcontentloaded")
            stale.wait_for_selector("#hr-question textarea")
            stale.wait_for_function("document.querySelector('#hr-info')?.innerText.includes('document')")

            # upload a new document holding markup and a long one (a few hundred chunks), rebuild from the page
            new_doc = tmp / "mombasa port.md"
            new_doc.write_text(NEW_DOC, encoding="utf-8")
            ledger = tmp / "ledger.txt"
            ledger.write_text(LEDGER, encoding="utf-8")
            page.get_by_role("tab", name="Add documents").click()
            pdf = tmp / "harbour.pdf"
            pdf.write_bytes(make_pdf(["Harbour works\nThe harbour works began in January with a new quay.",
                                      "In March the dredger Ocean Pearl deepened the channel to 15 metres."],
                                     title="Harbour works report"))
            binary = tmp / "photo.txt"
            binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)))
            files = [str(new_doc), str(ledger), str(pdf), str(binary)]
            page.locator("#hr-upload input[type=file]").set_input_files(files)
            page.wait_for_function(
                "document.querySelector('#hr-upload-status')?.innerText.includes('added as ledger.txt')")
            assert "photo.txt: not added: binary file" in page.inner_text("#hr-upload-status")
            assert not (tmp / "corpus" / "photo.txt").exists()
            assert (tmp / "corpus" / "mombasa_port.md").read_text(encoding="utf-8") == NEW_DOC
            kept = [p.name for p in (tmp / "gradio").rglob("*") if p.is_file() and p.suffix in (".md", ".txt")]
            assert kept == [], f"Gradio's copies of the uploads were kept: {kept}"
            page.evaluate("""() => { window.__progress = new Set();  // what the bar shows, every 50 ms
                window.__poll = setInterval(() => { const t = document.querySelector('#hr-build-status');
                    if (t) window.__progress.add(t.innerText); }, 50); }""")
            page.click("#hr-rebuild")
            page.wait_for_function("document.querySelector('#hr-build-status')?.innerText.includes('indexed')",
                                   timeout=240_000)
            shown = page.evaluate("() => { clearInterval(window.__poll); return [...window.__progress]; }")
            percents = {m for t in shown for m in re.findall(r"(\d+(?:\.\d+)?)%", t)}
            assert len(percents) >= 3, shown  # the bar moves during one rebuild
            assert any(re.search(r"embedding: [\d,]+ of [\d,]+ chunks", t) for t in shown), shown
            assert "✓" in page.inner_text("#hr-build-status")
            page.wait_for_function("document.querySelector('#hr-info')?.innerText.includes('4 documents')")
            _shot(page, "rebuilt")

            # the tab opened before the rebuild finds the new document (a new source) without a reload
            stale_answer = _ask(stale, "How many containers a year can the new terminal in Mombasa handle?", 1)
            assert "450,000 containers" in stale_answer
            stale.get_by_text("Filters", exact=True).click()
            stale.wait_for_function("document.querySelector('#hr-sources')?.innerText.includes('Coast Herald')")
            stale.close()

            # an answer from the new document, without a restart
            answer = _ask(page, "How many containers a year can the new terminal in Mombasa handle?", 3)
            assert "450,000 containers" in answer
            assert "Port of Mombasa opens a new terminal" in page.locator("#hr-chat .hr-cites").nth(2).inner_text()

            # a PDF's answer cites its page
            pdf_answer = _ask(page, "To what depth did the dredger Ocean Pearl deepen the channel?", 4)
            assert "15 metres" in pdf_answer
            assert "p. 2" in page.locator("#hr-chat .hr-cites").nth(3).inner_text()

            # markup in a document and in a question shows as text and never runs
            page.locator("#hr-chat .hr-cites").nth(2).locator("button.hr-open").first.click()
            page.locator("#hr-document mark#hr-cited").wait_for(state="visible")
            doc_text = page.inner_text("#hr-document")
            assert '<img src=x onerror="window.__pwned=1">' in doc_text and "<script>" in doc_text
            assert "<b>not bold</b>" in doc_text
            hostile_q = 'What about <img src=x onerror="window.__pwned=3"> and <script>window.__pwned=4</script>?'
            _ask(page, hostile_q, 5)
            assert hostile_q in page.inner_text("#hr-chat")
            assert page.locator("#hr-document img, #hr-document script, #hr-chat .hr-question img").count() == 0
            assert page.evaluate("() => window.__pwned") is None
            # scrolled, the first message stays readable: no label floats over the conversation
            page.evaluate("() => { const c = document.querySelector('#hr-chat [role=log]') || "
                          "document.querySelector('#hr-chat .bubble-wrap'); if (c) c.scrollTop = 60; }")
            assert page.evaluate("""() => [...document.querySelectorAll('#hr-chat [data-testid=block-label]')]
                .filter(l => l.offsetParent !== null && getComputedStyle(l).visibility !== 'hidden').length""") == 0
        finally:
            browser.close()
    assert outside == [], f"the page requested outside addresses: {outside}"
