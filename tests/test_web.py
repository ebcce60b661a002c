"""The chat page's parts, called directly: escaping, rendering, uploads, filters, examples, rebuilds."""

from __future__ import annotations

import hashlib
import html
import re
import threading
import time
from pathlib import Path

import pytest

import haitirag
from haitirag import render, web
from haitirag.records import Answer, Citation
from haitirag.uploads import MAX_UPLOAD_BYTES, safe_name, save_upload, save_uploads

from .conftest import HASH_MODEL

HOSTILE = ('Breaking: <script>window.__pwned = 1</script> and <img src=x onerror="window.__pwned=2"> '
           'with **bold**, `code`, $x^2$, [a link](javascript:alert(1)) & "quotes".')


def _tags(s: str) -> set[str]:
    return {t.lower() for t in re.findall(r"<\s*([a-zA-Z][\w-]*)", s)}


SAFE_TAGS = {"div", "span", "button", "mark", "b", "code", "a", "pre"}


def test_esc_leaves_no_markup_and_round_trips():
    out = render.esc(HOSTILE)
    assert _tags(out) == set()
    assert not re.search(r"[<>\"'`*_\[\]$]", out)
    assert html.unescape(out) == HOSTILE


@pytest.fixture()
def hostile_index(corpus: Path, tmp_path: Path) -> haitirag.Index:
    (corpus / "hostile.txt").write_text(f"Hostile page\n\n{HOSTILE}\n\nThe mayor of Lakeside is Ada Brown.\n",
                                        encoding="utf-8")
    return haitirag.build_index(corpus, tmp_path / "index", model=HASH_MODEL)


def test_document_with_html_and_js_renders_as_text(hostile_index: haitirag.Index):
    doc = next(d for d in hostile_index.documents.values() if d.title == "Hostile page")
    start = doc.text.index("<script>")
    end = doc.text.index("quotes") + len("quotes")
    page = render.render_document(doc, start, end, "Cited sentence [1]")
    assert _tags(page) <= SAFE_TAGS and "script" not in _tags(page) and "img" not in _tags(page)
    marked = re.search(r'<mark id="hr-cited" class="hr-cited">(.*?)</mark>', page, re.S)
    assert marked and html.unescape(marked.group(1)) == doc.text[start:end]

    passages = hostile_index.search("Hostile page script onerror", k=3)
    cit = Citation(doc.doc_id, doc.title, doc.date, doc.source, start, end, doc.text[start:end])
    answer = Answer(HOSTILE, doc.text[start:end], (cit,), False, tuple(passages), 0.9, HOSTILE)
    for out in (render.render_answer(answer, 0), render.render_evidence(answer, 0), render.render_question(HOSTILE)):
        assert _tags(out) <= SAFE_TAGS, out
        assert "onerror=" not in out and "<script" not in out and "javascript:" not in out
        assert "window.__pwned" in html.unescape(out)


def test_answer_markers_follow_their_quotes():
    c1 = Citation("d1", "One", "2024-01-02", "Wire", 0, 9, "First one.")
    c2 = Citation("d2", "Two", None, None, 5, 16, "Second one.")
    out = render.render_answer(Answer("q", "First one. Second one.", (c1, c2), False, (), 0.8), 3)
    text = html.unescape(re.sub(r"<[^>]+>", "", out))
    assert text.startswith("First one. [1] Second one. [2]")
    assert "hr-k-t3c1" in out and "hr-k-t3c2" in out  # the keys the page's click handler reads
    assert "2024-01-02" in html.unescape(out) and "Wire" in out


def test_exact_answer_is_bold_inside_its_quote_and_escaped():
    quote = "The <b>High Court</b> blocked it."
    c1 = Citation("d1", "One", None, None, 100, 100 + len(quote), quote)
    c2 = Citation("d1", "One", None, None, 10, 21, "Second one.")
    at = quote.index("High")
    span = Citation("d1", "One", None, None, 100 + at, 100 + at + len("High Court</b>"), "High Court</b>")
    out = render.render_answer(Answer("q", f"{quote} Second one.", (c1, c2), False, (), 0.8, "q", span), 0)
    strong = re.findall(r'<strong class="hr-span">(.*?)</strong>', out)
    assert [html.unescape(x) for x in strong] == ["High Court</b>"]
    assert "<b>" not in out and _tags(out) <= SAFE_TAGS | {"strong"}
    assert html.unescape(re.sub(r"<[^>]+>", "", out)).startswith(f"{quote} [1] Second one. [2]")
    plain = render.render_answer(Answer("q", f"{quote} Second one.", (c1, c2), False, (), 0.8), 0)
    assert "hr-span" not in plain


def test_abstention_says_so_and_offers_closest_passages(hash_index: haitirag.Index):
    passages = tuple(hash_index.search("Nile perch", k=3))
    out = render.render_answer(Answer("q", "The sources don't say.", (), True, passages, 0.1), 0)
    assert "The sources don&#39;t say&#46;" in out
    assert "Closest passages" in out and "hr-k-t0p0" in out


def test_evidence_shows_scores_and_highlights_the_quote(hash_index: haitirag.Index):
    p = hash_index.search("Nile perch catches", k=2)[0]
    doc = hash_index.document(p.doc_id)
    s, e = hash_index.sentences[p.doc_id][0]
    s, e = max(s, p.start), min(e, p.end)
    cit = Citation(doc.doc_id, doc.title, doc.date, doc.source, s, e, doc.text[s:e])
    out = render.render_evidence(Answer("q", cit.quote, (cit,), False, (p,), 0.9), 0)
    assert f"score {p.score:.3f}" in out
    mark = re.search(r"<mark>(.*?)</mark>", out, re.S)
    assert mark and html.unescape(mark.group(1)) == doc.text[s:e]


def test_unsafe_urls_are_not_links():
    doc = haitirag.Document("d", "text", "T", url="javascript:alert(1)")
    assert "<a " not in render.render_document(doc)
    doc = haitirag.Document("d", "text", "T", url="https://example.org/a?b=1&c=2")
    assert '<a href="https&#58;//example&#46;org/a?b&#61;1&amp;c&#61;2"' in render.render_document(doc) \
        or "<a href=" in render.render_document(doc)


def test_long_documents_show_a_window_around_the_span():
    text = "x" * 300_000
    page = render.render_document(haitirag.Document("d", text, "Long"), 200_000, 200_010)
    assert len(page) < 2 * render.DOC_WINDOW and "Showing characters" in page and 'id="hr-cited"' in page


# -- uploads -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,expected", [
    ("report.txt", "report.txt"),
    ("../../etc/passwd.txt", "passwd.txt"),
    ("..\\..\\windows\\evil.md", "evil.md"),
    (".hidden.md", "hidden.md"),
    ("Été à Port-au-Prince (2024).HTML", "Ete_a_Port-au-Prince_2024.html"),
    ("a..b.jsonl", "a.b.jsonl"),
    ("....txt", "upload.txt"),
])
def test_safe_name(name: str, expected: str):
    assert safe_name(name) == expected


@pytest.mark.parametrize("name", ["evil.exe", "archive.tar.gz", "noext", "report.txt.sh", "x.pdf.exe", "x.doc"])
def test_safe_name_refuses_other_extensions(name: str):
    with pytest.raises(ValueError, match=r"only \.txt"):
        safe_name(name)


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_bad_uploads_are_refused_and_lose_nothing(corpus: Path, tmp_path: Path):
    before = _snapshot(corpus)
    up = tmp_path / "up"
    up.mkdir()
    cases = {
        "binary.txt": (b"\x00\x01\x02binary" * 10, "binary"),
        "latin1.txt": ("Caf\u00e9 au lait".encode("latin-1"), "not UTF-8"),
        "empty.md": (b"   \n\n", "no text"),
        "bad.jsonl": (b'{"id": "n1", "text": "fine"}\nnot json\n', "line 2"),
        "dup.jsonl": (b'{"id": "brief-1", "text": "another text"}\n', "already in the corpus"),
        "big.txt": (b"a" * (MAX_UPLOAD_BYTES + 1), "limit is 5 MB"),
        "court.exe": (b"text", "only .txt"),
    }
    for name, (data, why) in cases.items():
        (up / name).write_bytes(data)
        r = save_upload(up / name, corpus, name, known_ids={"brief-1", "brief-2"})
        assert not r.ok and r.saved_as is None and why in r.message and name in r.message, (name, r)
    assert _snapshot(corpus) == before
    assert not list(corpus.glob(".upload-*"))


def test_uploads_never_overwrite(corpus: Path, tmp_path: Path):
    before = _snapshot(corpus)
    src = tmp_path / "court.md"
    src.write_text("# Another court story\n\nA different court ruled on a different case.\n", encoding="utf-8")
    r = save_upload(src, corpus, "court.md")
    assert r.ok and r.saved_as == "court-2.md" and "different court.md" in r.message
    assert _snapshot(corpus)["court.md"] == before["court.md"]
    again = save_upload(src, corpus, "court.md")  # the same bytes again: nothing new
    assert again.ok and again.saved_as is None and "already in the corpus as court-2.md" in again.message
    traversal = save_upload(src, corpus, "../../outside.md")
    assert traversal.ok is True and traversal.saved_as is None  # same content: already there
    other = tmp_path / "x.md"
    other.write_text("# Outside\n\nThis one goes nowhere else.\n", encoding="utf-8")
    r = save_upload(other, corpus, "../../outside.md")
    assert r.saved_as == "outside.md" and (corpus / "outside.md").is_file()
    assert not (tmp_path / "outside.md").exists()


def test_save_uploads_loads_and_builds(corpus: Path, tmp_path: Path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text('{"id": "n-1", "title": "New one", "text": "The harbour reopened in May."}\n', encoding="utf-8")
    b.write_text('{"id": "n-1", "title": "Clash", "text": "Same id, other text."}\n', encoding="utf-8")
    results = save_uploads([(a, "a.jsonl"), (b, "b.jsonl")], corpus, known_ids=())
    assert [r.ok for r in results] == [True, False] and "already in the corpus" in results[1].message
    index = haitirag.build_index(corpus, tmp_path / "index", model=HASH_MODEL)
    assert "n-1" in index.documents and index.documents["n-1"].title == "New one"


def test_upload_into_a_single_file_corpus_is_refused(corpus: Path, tmp_path: Path):
    src = tmp_path / "n.txt"
    src.write_text("Title\n\nBody text.\n", encoding="utf-8")
    r = save_upload(src, corpus / "briefs.jsonl", "n.txt")
    assert not r.ok and "not a folder" in r.message


# -- filters and examples ----------------------------------------------------------------------------
def test_filters():
    srcs = ["Met Desk", "Wire", web.NO_SOURCE]
    assert web._filters("", "", srcs, srcs, srcs, True) == {}
    assert web._filters("2024-01-01", " 2024-12-31 ", srcs, srcs, srcs, True) == {
        "date_from": "2024-01-01", "date_to": "2024-12-31"}
    assert web._filters("", "", ["Wire", web.NO_SOURCE], srcs, srcs, True) == {"sources": ["Wire", ""]}
    assert web._filters("", "", srcs, srcs, srcs, False) == {"keep_undated": False}
    for args, why in [(("2024-13-01", ""), "YYYY-MM-DD"), (("05/03/2024", ""), "YYYY-MM-DD"),
                      (("2024-05-01", "2024-01-01"), "after")]:
        with pytest.raises(ValueError, match=why):
            web._filters(*args, srcs, srcs, srcs, True)
    with pytest.raises(ValueError, match="tick at least one"):
        web._filters("", "", [], srcs, srcs, True)


def test_filters_follow_a_rebuild_that_added_or_removed_sources():
    shown = ["Met Desk", "Wire"]
    now = ["Met Desk", "New Desk", "Wire"]
    # everything ticked on a page drawn before the rebuild: no filter, the new source is searched
    assert web._filters("", "", shown, shown, now, True) == {}
    # one unticked: every other current source, the new one included
    assert web._filters("", "", ["Met Desk"], shown, now, True) == {"sources": ["Met Desk", "New Desk"]}
    # the only ticked source was removed by the rebuild
    with pytest.raises(ValueError, match=r"no longer in the index.*reload the page"):
        web._filters("", "", ["Met Desk"], shown, ["Wire"], True)


def test_api_ask_takes_any_current_source_and_names_unknown_ones(hash_index: haitirag.Index):
    every = web._source_choices(hash_index)
    a = web.ask_api(hash_index, "rainfall railway court perch", sources=["Met Desk"])
    assert a["passages"] and {p["source"] for p in a["passages"]} == {"Met Desk"}
    b = web.ask_api(hash_index, "rainfall railway court perch", sources=None)
    assert {p["source"] for p in b["passages"]} > {"Met Desk"}
    assert web.ask_api(hash_index, "rainfall railway court perch", sources=[]) == b
    with pytest.raises(haitirag.QueryError, match="unknown source.*'Nope'.*" + re.escape(repr(every[0]))):
        web.ask_api(hash_index, "rainfall", sources=["Nope"])
    with pytest.raises(haitirag.QueryError, match="list of source names"):
        web.ask_api(hash_index, "rainfall", sources="Met Desk")  # type: ignore[arg-type]
    with pytest.raises(haitirag.QueryError, match="YYYY-MM-DD"):
        web.ask_api(hash_index, "rainfall", date_from="March 2024")


def test_filters_reach_the_search(hash_index: haitirag.Index):
    every = web._source_choices(hash_index)
    kw = web._filters("2024-03-01", "", ["Met Desk"], every, every, False)
    answer = hash_index.ask("rainfall railway court perch", **kw)
    assert answer.passages and {p.source for p in answer.passages} == {"Met Desk"}
    assert all(p.date and p.date >= "2024-03-01" for p in answer.passages)


def test_example_questions_come_from_the_corpus(hash_index: haitirag.Index):
    qs = web.example_questions(hash_index, n=5)
    titles = {d.title for d in hash_index.documents.values()}
    assert len(qs) == 5 and len(set(qs)) == 5
    assert set(web.SEED_QUESTIONS) <= set(qs)  # the fixture corpus holds the seed report
    assert any(t in q for q in qs for t in titles if t.lower() != web.SEED_TITLE)


# -- the served index and background rebuilds -----------------------------------------------------------
class SlowEmbedder:
    """The hash embedder, slowed down so a rebuild is still running while questions are asked."""

    def __init__(self, delay: float):
        from haitirag.embedding import make_embedder

        self.inner, self.delay = make_embedder(HASH_MODEL), delay
        self.release = threading.Event()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def encode(self, texts, batch_size=64, show_progress=False):
        if threading.current_thread().name == "haitirag-rebuild":  # the page's rebuild, not a question
            self.release.wait(self.delay)
        return self.inner.encode(texts, batch_size=batch_size, show_progress=show_progress)


def test_questions_are_answered_from_the_old_index_during_a_rebuild(corpus: Path, tmp_path: Path):
    emb = SlowEmbedder(delay=30)
    index = haitirag.build_index(corpus, tmp_path / "index", model=HASH_MODEL, embedder=emb)
    served = web.ServedIndex(corpus, tmp_path / "index", index)
    (corpus / "harbour.md").write_text("---\ntitle: Harbour news\n---\nThe harbour of Port Lune reopened "
                                       "on 3 May after repairs.\nA second sentence about harbour cranes.\n",
                                       encoding="utf-8")
    job = served.start_rebuild()
    assert served.start_rebuild() is job  # a second click joins the running build
    deadline = time.monotonic() + 20
    while not job.stage.startswith("embedding") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.stage.startswith("embedding") and not job.done.is_set()
    assert job.fraction() is not None and 0 < job.fraction() < 1
    during = served.current()
    assert during is index and len(during.documents) == 5
    assert during.ask("When did the harbour of Port Lune reopen?").passages  # answered meanwhile
    emb.release.set()
    assert job.done.wait(30) and job.ok, job.message
    after = served.current()
    assert after is not index and len(after.documents) == 6
    assert "indexed 6 documents" in job.message
    assert any(p.title == "Harbour news" for p in after.search("Port Lune harbour reopened", k=3))


def test_a_build_on_disk_is_picked_up_between_questions(corpus: Path, tmp_path: Path):
    index = haitirag.build_index(corpus, tmp_path / "index", model=HASH_MODEL)
    served = web.ServedIndex(corpus, tmp_path / "index", index)
    assert served.current() is index
    (corpus / "extra.txt").write_text("Extra\n\nA brand new report.\n", encoding="utf-8")
    haitirag.build_index(corpus, tmp_path / "index", model=HASH_MODEL)  # e.g. `haitirag build` meanwhile
    fresh = served.current()
    assert fresh is not index and len(fresh.documents) == 6


def test_a_failed_rebuild_keeps_the_old_index(corpus: Path, tmp_path: Path):
    index = haitirag.build_index(corpus, tmp_path / "index", model=HASH_MODEL)
    served = web.ServedIndex(corpus, tmp_path / "index", index)
    for p in corpus.rglob("*"):
        if p.is_file():
            p.unlink()
    job = served.start_rebuild()
    assert job.done.wait(30) and not job.ok
    assert "still answering from the previous index" in job.message and "no documents" in job.message
    assert served.current() is index


def test_serve_refuses_a_busy_port_in_one_line(tmp_path: Path):
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "haitirag", "serve", "--index", str(tmp_path / "none"),
                            "--port", str(port)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: cannot listen on 127.0.0.1") and "--port" in r.stderr


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:.*(no_silent_downcasting|copy keyword).*")
def test_the_page_sends_the_conversation_and_the_filters_to_ask(hash_index: haitirag.Index, corpus: Path):
    import socket

    from gradio_client import Client

    calls: list[tuple[str, list[str], dict]] = []
    real_ask = hash_index.ask

    def recording_ask(question, history=(), **filters):  # type: ignore[no-untyped-def]
        calls.append((question, list(history), filters))
        return real_ask(question, history=history, **filters)

    hash_index.ask = recording_ask  # type: ignore[method-assign]
    app = web.make_app(hash_index, corpus=corpus)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    web.launch(app, port=port, block=False)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        every = web._source_choices(hash_index)
        first = client.predict("Which court ruled?", [], "", "", every, True, api_name="/chat")
        client.predict("When was that?", first[0], "2024-01-01", "2024-06-30", ["Example Wire"], False,
                       api_name="/chat")
        as_json = client.predict("Which court ruled?", ["Earlier question?"], ["Example Wire"], "", "", True,
                                 api_name="/ask")
    finally:
        app.close()
    assert calls == [
        ("Which court ruled?", [], {}),
        ("When was that?", ["Which court ruled?"],
         {"date_from": "2024-01-01", "date_to": "2024-06-30", "sources": ["Example Wire"], "keep_undated": False}),
        ("Which court ruled?", ["Earlier question?"], {"sources": ["Example Wire"]}),
    ]
    assert as_json["question"] == "Which court ruled?"
    assert {p["source"] for p in as_json["passages"]} == {"Example Wire"}


# -- progress of a rebuild ---------------------------------------------------------------------------
def test_a_build_reports_progress_as_it_goes(tmp_path: Path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(12):  # 12 documents, ~10 chunks each: the embedding stage reports several times
        body = " ".join(f"Sentence {j} of report {i} tells of harbour number {i * 100 + j} and its cranes."
                        for j in range(90))
        (corpus / f"r{i:02d}.txt").write_text(f"Report {i}\n\n{body}\n", encoding="utf-8")
    calls: list[tuple[str, int, int]] = []
    index = haitirag.build_index(corpus, tmp_path / "index", model=HASH_MODEL, on_progress=lambda *a: calls.append(a))
    stages = [c[0] for c in calls]
    assert stages.index("reading") < stages.index("chunking") < stages.index("embedding") < stages.index("writing")
    embedding = [(d, t) for s, d, t in calls if s == "embedding"]
    total = len(index.chunks)
    assert total > 3 * 32 and {t for _, t in embedding} == {total}
    done = [d for d, _ in embedding]
    assert done == sorted(done) and len(set(done)) >= 4 and done[-1] == total
    chars = sum(len(d.text) for d in index.documents.values())
    chunking = [d for s, d, t in calls if s == "chunking" and t == chars]
    assert len(chunking) == len([c for c in calls if c[0] == "chunking"]) and chunking == sorted(chunking)
    assert chunking[-1] == chars and len(set(chunking)) >= 12  # characters of text, document by document
    assert ("reading", 12, 12) in calls and calls[-1] == ("writing", 1, 1)


def test_one_long_document_moves_the_chunking_bar(tmp_path: Path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    paragraphs = [f"Paragraph {i} says the harbour moved {i} crates. It rained on day {i}." for i in range(400)]
    (corpus / "long.txt").write_text("Long report\n\n" + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
    calls: list[tuple[str, int, int]] = []
    haitirag.build_index(corpus, tmp_path / "index", model=HASH_MODEL, on_progress=lambda *a: calls.append(a))
    done = [d for s, d, _ in calls if s == "chunking"]
    assert len(set(done)) > 100 and done == sorted(done)  # inside the one document, paragraph by paragraph


def test_the_page_progress_bar_moves_with_the_build():
    job = web.BuildJob()
    seen = []
    for stage, done, total in [("reading", 0, 2), ("reading", 2, 2), ("chunking", 1, 2), ("embedding", 0, 300),
                               ("embedding", 96, 300), ("embedding", 300, 300), ("writing", 0, 1)]:
        job.update(stage, done, total)
        seen.append(job.fraction())
    assert seen == sorted(seen) and len(set(seen)) >= 6 and 0 <= seen[0] and seen[-1] < 1
    job.update("embedding", 0, 300)
    job.stage_started -= 10  # 10 s in, 100 of 300 chunks done: about 20 s left
    job.update("embedding", 100, 300)
    assert job.describe() == "embedding: 100 of 300 chunks, about 20 s left"
    job.update("writing", 0, 1)
    assert job.describe() == "writing the index"


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:.*(no_silent_downcasting|copy keyword).*")
def test_the_api_searches_a_source_added_by_a_rebuild(corpus: Path, tmp_path: Path):
    import socket

    from gradio_client import Client

    index = haitirag.build_index(corpus, tmp_path / "index", model=HASH_MODEL)
    served = web.ServedIndex(corpus, tmp_path / "index", index)
    app = web.make_app(served)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    web.launch(app, port=port, block=False)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)  # connected before the rebuild
        old = web._source_choices(index)
        (corpus / "quay.md").write_text("---\ntitle: Quay cranes\nsource: Harbour Gazette\ndate: 2024-04-01\n---\n"
                                        "The quay of Port Lune got four new cranes.\n", encoding="utf-8")
        job = served.start_rebuild()
        assert job.done.wait(60) and job.ok, job.message
        question = "How many new cranes did the quay of Port Lune get?"
        narrowed = client.predict(question, [], ["Harbour Gazette"], "", "", True, api_name="/ask")
        everything = client.predict(question, [], None, "", "", True, api_name="/ask")
        chat = client.predict(question, [], "", "", old, True, api_name="/chat")  # every source it knew ticked
        with pytest.raises(Exception, match=r"unknown source.*'Gone Desk'"):
            client.predict(question, [], ["Gone Desk"], "", "", True, api_name="/ask")
    finally:
        app.close()
    assert {p["source"] for p in narrowed["passages"]} == {"Harbour Gazette"}
    assert "Harbour Gazette" in {p["source"] for p in everything["passages"]}
    assert "four new cranes" in html.unescape(re.sub(r"<[^>]+>", " ", chat[1]))  # the Sources panel


def test_overlapping_passages_are_shown_once(hash_index: haitirag.Index):
    by_doc: dict[str, list] = {}
    for c in hash_index.chunks:
        by_doc.setdefault(c.doc_id, []).append(c)
    chunks = max(by_doc.values(), key=len)
    assert len(chunks) >= 2 and chunks[1].start < chunks[0].end  # neighbouring chunks overlap
    passages = [hash_index._passage(hash_index.chunks.index(c), 1.0 - i / 10, None, None)
                for i, c in enumerate(chunks[:2])]
    other = hash_index._passage(next(i for i, c in enumerate(hash_index.chunks) if c.doc_id != chunks[0].doc_id),
                                0.5, None, None)
    merged = render.merge_overlapping([passages[1], other, passages[0]])
    assert len(merged) == 2 and merged[1] == other
    doc = hash_index.document(chunks[0].doc_id)
    assert merged[0].start == chunks[0].start and merged[0].end == chunks[1].end
    assert merged[0].text == doc.text[merged[0].start:merged[0].end] and merged[0].score == passages[0].score
    answer = haitirag.Answer("q", "t", passages=(passages[0], passages[1], other))
    assert render.render_evidence(answer, 0).count("hr-passage-text") == 2
    assert render.passage_of(answer, 1) == other and render.passage_of(answer, 2) is None


def test_a_rebuild_while_another_build_holds_the_lock_says_what_to_do_on_the_page(hash_index: haitirag.Index,
                                                                                   corpus: Path):
    from haitirag.store import build_lock

    served = web.ServedIndex(corpus, hash_index.path, hash_index)
    with build_lock(hash_index.path):
        job = served.start_rebuild()
        assert job.done.wait(30)
    assert not job.ok and "Rebuild index" in job.message and "--wait" not in job.message
    assert served.current() is hash_index
