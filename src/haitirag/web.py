"""The chat page (Gradio): ask, read the cited sources, add documents, rebuild the index.

``ServedIndex`` holds the index being served. Each question takes one reference to it and uses only
that, so a rebuild (in a background thread) or a build from the command line swaps in the new index
between questions, never inside one. HTML comes from ``render`` (everything escaped), uploads go
through ``uploads`` (validated, never overwriting).
"""

# No `from __future__ import annotations` here: Gradio reads the handlers' annotations (gr.EventData,
# gr.Progress) at run time, and `gr` is imported lazily inside make_app.
import logging
import os
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from . import render
from .embedding import DEFAULT_MODEL
from .errors import HaitiragError
from .uploads import ALLOWED_EXTENSIONS, MAX_UPLOAD_BYTES, save_uploads

__all__ = ["BuildJob", "ServeError", "ServedIndex", "ask_api", "example_questions", "launch", "make_app",
           "open_or_build", "serve"]

log = logging.getLogger(__name__)

NO_SOURCE = "(no source)"
HISTORY_TURNS = 5  # earlier questions passed to ask() for follow-ups
ASK_CONCURRENCY = 2  # questions answered at once (each model call uses 2 threads): measured, docs/latency.md
SYSTEM_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "monospace"]
# Questions checked against the seed report; shown when it is in the corpus.
SEED_TITLE = "us declines to deploy troops to haiti despite kenya's lead in mission"
SEED_QUESTIONS = ("Which court blocked Kenya's deployment?",
                  "How many troops did Benin pledge to send?",
                  "Which prime minister signed an agreement with Ruto?")


class ServeError(HaitiragError):
    """The page cannot be served (the address or port is unusable)."""


_UPLOAD_PARENT: str | None = None


def _own_upload_folder() -> Path:
    """A temporary folder this server owns for Gradio's uploads (under ``GRADIO_TEMP_DIR`` when it is set),
    removed when the process exits: nothing uploaded stays behind in the system's temp folder."""
    import atexit
    import shutil
    import tempfile

    global _UPLOAD_PARENT
    if _UPLOAD_PARENT is None:  # the user's GRADIO_TEMP_DIR, as it was before the first page was made
        _UPLOAD_PARENT = os.environ.get("GRADIO_TEMP_DIR") or tempfile.gettempdir()
    Path(_UPLOAD_PARENT).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="haitirag-uploads-", dir=_UPLOAD_PARENT))
    os.environ["GRADIO_TEMP_DIR"] = str(folder)  # read by Gradio when the components and the app are made
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _discard(paths: Sequence[str]) -> None:
    """Delete Gradio's copies of uploaded files (and their per-file folders) once they were handled."""
    for p in paths:
        path = Path(p)
        path.unlink(missing_ok=True)
        try:
            path.parent.rmdir()  # Gradio keeps each upload in a folder of its own; only removed when empty
        except OSError:
            pass


def _quiet_environment() -> None:
    """No analytics, telemetry or update checks: the page works with the network closed."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def open_or_build(corpus: str | Path, index: str | Path, model: str = DEFAULT_MODEL) -> Any:
    """Load the index, building it first when there is none or when an older haitirag wrote it in another format."""
    from .backend import open_store
    from .build import build_index
    from .errors import IndexFormatError
    from .index import load_index

    store = open_store(index)
    if not store.exists():
        log.warning("no index at %s: building it from %s", store.location, corpus)
        return build_index(corpus, store, model=model, progress=True)
    try:
        return load_index(store)
    except IndexFormatError as err:
        log.warning("the index at %s was written in another format (%s): building it again from %s", store.location,
                    str(err).split(";")[0], corpus)
        return build_index(corpus, store, model=model, progress=True)


# -- the served index and rebuilds ------------------------------------------------------------------
@dataclass
class BuildJob:
    """One rebuild from the page; ``update`` is the build's progress callback, read by every waiting page."""

    started: float = field(default_factory=time.time)
    stage: str = "reading"  # reading, chunking, embedding, writing, loading
    done_n: int = 0
    total_n: int = 0
    stage_started: float = field(default_factory=time.time)
    done: threading.Event = field(default_factory=threading.Event)
    message: str = ""
    ok: bool = False

    SPANS: ClassVar[dict[str, tuple[float, float]]] = {  # each stage's share of the bar
        "reading": (0.0, 0.05), "chunking": (0.05, 0.15), "embedding": (0.15, 0.95), "writing": (0.95, 0.98),
        "loading": (0.98, 0.99)}

    def update(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.stage_started = time.time()
        self.stage, self.done_n, self.total_n = stage, done, total

    def fraction(self) -> float:
        lo, hi = self.SPANS.get(self.stage, (0.0, 0.99))
        share = self.done_n / self.total_n if self.total_n else 0.0
        return round(lo + (hi - lo) * min(1.0, share), 3)

    def describe(self) -> str:
        """E.g. "embedding: 96 of 300 chunks, about 20 s left"."""
        unit = {"reading": "files", "chunking": "characters", "embedding": "chunks"}.get(self.stage)
        if unit is None or not self.total_n:
            return {"writing": "writing the index", "loading": "loading the new index"}.get(self.stage, self.stage)
        text = f"{self.stage}: {self.done_n:,} of {self.total_n:,} {unit}"
        elapsed = time.time() - self.stage_started
        if 0 < self.done_n < self.total_n and elapsed > 1:
            left = elapsed / self.done_n * (self.total_n - self.done_n)
            text += f", about {left:.0f} s left" if left < 120 else f", about {left / 60:.0f} min left"
        return text


class ServedIndex:
    """The index a page answers from, swapped atomically after a rebuild or a build on disk."""

    def __init__(self, corpus: str | Path, index_dir: Any, index: Any):
        from .backend import open_store

        self.corpus = Path(corpus)
        self.store = open_store(index_dir)  # a folder, or a database (backend.py)
        self.path = getattr(self.store, "path", self.store.location)
        self._index = index
        self._embedder = index.embedder
        self._lock = threading.Lock()
        self._stamp = self._manifest_stamp()
        self.job: BuildJob | None = None

    def _manifest_stamp(self) -> Any:
        return self.store.stamp()

    def current(self) -> Any:
        """The index to answer from; loads a newer build of the folder first if one appeared."""
        building = self.job is not None and not self.job.done.is_set()
        stamp = self._manifest_stamp()
        if building or stamp is None or stamp == self._stamp:
            return self._index
        with self._lock:
            if stamp != self._stamp:
                self._reload()
        return self._index

    def _reload(self) -> None:
        from .errors import HaitiragError
        from .index import Index

        stamp = self._manifest_stamp()
        try:
            if self.store.read_manifest(catalog=False).get("generation") != self._index.manifest.get("generation"):
                fresh = Index.load(self.store, embedder=self._embedder)
                self._index = fresh
                log.info("serving index generation %s", fresh.manifest.get("generation"))
        except HaitiragError as err:  # a half-written or other-model index: keep serving the loaded one
            log.warning("keeping the loaded index: %s", err)
        self._stamp = stamp

    def start_rebuild(self) -> BuildJob:
        """Start a rebuild in a background thread, or return the one already running."""
        with self._lock:
            if self.job is not None and not self.job.done.is_set():
                return self.job
            job = self.job = BuildJob()
        threading.Thread(target=self._rebuild, args=(job,), name="haitirag-rebuild", daemon=True).start()
        return job

    def _rebuild(self, job: BuildJob) -> None:
        from .build import build_index
        from .errors import HaitiragError, IndexLockedError
        from .index import Index

        try:
            built = build_index(self.corpus, self.store, model=self._index.model, embedder=self._embedder,
                                on_progress=job.update)
            report = getattr(built, "report", None)
            summary = report.summary() if report is not None else "index rebuilt"
            job.update("loading", 0, 1)
            fresh = Index.load(self.store, embedder=self._embedder)
            with self._lock:
                self._index = fresh
                self._stamp = self._manifest_stamp()
            job.ok, job.message = True, summary
        except IndexLockedError:
            job.message = ("Another build (from the command line or `haitirag watch`) is running on this index; "
                           "still answering from the previous index. Click “Rebuild index” again when it is done.")
        except HaitiragError as err:
            job.message = f"The rebuild failed; still answering from the previous index. {err}"
        except Exception as err:  # never kill the server: report it and keep the old index
            log.exception("rebuild failed")
            job.message = f"The rebuild failed ({type(err).__name__}: {err}); still answering from the previous index."
        finally:
            job.done.set()


def example_questions(index: Any, n: int = 5) -> list[str]:
    """Starter questions from the corpus: checked ones for the seed report, then questions on titles.
    Kept per index generation (the page asks at every visit; titles of a large index take a while to read)."""
    key = (index.location, str(index.manifest.get("generation")), n)
    if key not in _EXAMPLES:
        if len(_EXAMPLES) >= 8:
            _EXAMPLES.clear()
        _EXAMPLES[key] = _examples(index.documents, n)
    return list(_EXAMPLES[key])


_EXAMPLES: dict[tuple[str, str, int], tuple[str, ...]] = {}


def _examples(documents: Any, n: int) -> tuple[str, ...]:
    from .columns import Documents

    out: list[str] = []
    titles: Any
    if isinstance(documents, Documents):  # a large index: no pass over every document's metadata
        seed = documents.has_title(SEED_TITLE)
        titles = documents.newest_titles()
    else:
        titles = [(d.title, d.date) for d in documents.values()]
        seed = any((title or "").strip().lower() == SEED_TITLE for title, _ in titles)
        titles.sort(key=lambda t: t[1] or "", reverse=True)  # newest first, undated last
    if seed:
        out.extend(SEED_QUESTIONS)
    seen = {SEED_TITLE}
    for raw, _ in titles:
        title = " ".join((raw or "").split())
        if len(out) >= n:
            break
        if not title or len(title) > 90 or title.lower() in seen:
            continue
        seen.add(title.lower())
        out.append(f"What do the sources say about “{title}”?")
    return tuple(out[:n])


def _source_choices(index: Any) -> list[str]:
    return sorted({s or NO_SOURCE for s in index.generation.sources()}, key=lambda s: (s == NO_SOURCE, s))


def _dates(date_from: object, date_to: object) -> dict[str, Any]:
    """The date filters given (blank ones left out), checked by the index's own rules; ValueError says why."""
    from .errors import QueryError
    from .index import check_filters

    dates = {k: (v.strip() if isinstance(v, str) else v) or None for k, v in
             (("date_from", date_from), ("date_to", date_to))}
    try:
        check_filters(None, dates["date_from"], dates["date_to"])
    except QueryError as err:
        raise ValueError(str(err)) from None
    return {k: v for k, v in dates.items() if v}


def _filters(date_from: str, date_to: str, sources: Sequence[str] | None, shown: Sequence[str],
             current: Sequence[str], keep_undated: bool) -> dict[str, Any]:
    """Keyword arguments for ``Index.ask`` from the filter widgets; ValueError says what to fix.

    ``shown`` are the sources the page listed, ``current`` those of the index now: a filter is what the
    user unticked, so a source added by a rebuild since the page was drawn is searched too."""
    out = _dates(date_from, date_to)
    chosen = list(sources or [])
    if current and not chosen:
        raise ValueError("no source is ticked; tick at least one source")
    unticked = set(shown) - set(chosen)
    allowed = [s for s in current if s not in unticked]
    if current and not allowed:
        gone = ", ".join(sorted(set(chosen) - set(current)))
        raise ValueError(f"the ticked sources ({gone}) are no longer in the index (a rebuild removed them); "
                         "reload the page and tick a current source")
    if unticked & set(current):
        out["sources"] = ["" if s == NO_SOURCE else s for s in allowed]
    if not keep_undated:
        out["keep_undated"] = False
    return out


def _source_update(gr: Any, shown: Sequence[str], chosen: Sequence[str] | None, current: Sequence[str]) -> Any:
    """The source checkboxes redrawn for the current index, keeping what the user unticked unticked."""
    unticked = set(shown) - set(chosen or [])
    return gr.CheckboxGroup(choices=list(current), value=[s for s in current if s not in unticked])


def ask_api(index: Any, question: str, history: Sequence[str] | None = None, sources: Sequence[str] | None = None,
            date_from: str = "", date_to: str = "", keep_undated: bool = True) -> dict[str, Any]:
    """The page's ``/ask`` endpoint: ``Index.ask`` with JSON in and out; ``sources`` None or empty: all.
    Bad input gets the index's own ``QueryError``."""
    from .errors import QueryError

    if isinstance(sources, (list, tuple)):
        sources = ["" if s == NO_SOURCE else s for s in sources] or None
    try:
        dates = _dates(date_from, date_to)
    except ValueError as err:
        raise QueryError(str(err)) from None
    if keep_undated is not True:
        dates["keep_undated"] = keep_undated  # False, or a wrong type the index names
    return dict(index.ask(question, history=history, sources=sources, **dates).to_json())


# -- the page ---------------------------------------------------------------------------------------
def _theme() -> Any:
    import gradio as gr

    return gr.themes.Default(primary_hue="blue", font=SYSTEM_FONTS, font_mono=MONO_FONTS)


def make_app(served: Any, corpus: str | Path | None = None) -> Any:
    """The Blocks app over ``served`` (a ServedIndex, or a plain Index with ``corpus`` given)."""
    _quiet_environment()
    import gradio as gr

    from .errors import HaitiragError, QueryError

    if not isinstance(served, ServedIndex):
        served = ServedIndex(corpus or "corpus", served.store, served)
    uploads_dir = _own_upload_folder()
    from .answer import default_reader

    default_reader().preload()  # the reader loads while the page is set up, not in ten first questions at once
    served.current().embedder.encode(["warm up"])

    def info(note: str = "") -> str:
        idx = served.current()
        job = served.job
        if job is not None and not job.done.is_set():
            note = note or "rebuilding… answers come from this index until the new one is ready"
        return render.render_index_info(idx.manifest, len(idx.documents), len(idx.chunks), note)

    def page_state() -> tuple[Any, ...]:
        idx = served.current()
        choices = _source_choices(idx)
        return (info(), gr.CheckboxGroup(choices=choices, value=choices),
                gr.Dataset(samples=[[q] for q in example_questions(idx)]), choices)

    def ask(question: str, chat: list[dict[str, Any]] | None, session: dict[str, Any] | None, date_from: str,
            date_to: str, sources: list[str] | None, keep_undated: bool, shown: list[str] | None) -> tuple[Any, ...]:
        session = session or {"questions": [], "answers": []}
        chat = list(chat or [])
        skip = gr.skip()
        if not (question or "").strip():
            gr.Warning("Type a question first.")
            return chat, skip, session, question, skip, skip, skip, skip
        idx = served.current()
        current = _source_choices(idx)
        shown = list(shown if shown is not None else current)
        redrawn = (_source_update(gr, shown, sources, current), current) if shown != current else (skip, skip)
        try:
            filters = _filters(date_from, date_to, sources, shown, current, keep_undated)
        except ValueError as err:
            gr.Warning(f"Filters: {err}")
            return chat, skip, session, question, info(), skip, *redrawn
        turn = len(session["answers"])
        try:
            answer = idx.ask(question, history=list(session["questions"][-HISTORY_TURNS:]), **filters)
        except QueryError as err:
            gr.Warning(str(err))
            return chat, skip, session, question, skip, skip, *redrawn
        except HaitiragError as err:
            chat += [{"role": "user", "content": render.render_question(question)},
                     {"role": "assistant", "content": f'<div class="hr-abstain">{render.esc(err)}</div>'}]
            return chat, skip, session, "", info(), skip, *redrawn
        chat += [{"role": "user", "content": render.render_question(question)},
                 {"role": "assistant", "content": render.render_answer(answer, turn)}]
        session = {"questions": [*session["questions"], question.strip()],
                   "answers": [*session["answers"], answer]}
        return (chat, render.render_evidence(answer, turn), session, "", info(), gr.Tabs(selected="sources"),
                *redrawn)

    def api_ask(question: str, history: list[str] | None = None, sources: list[str] | None = None,
                date_from: str = "", date_to: str = "", keep_undated: bool = True) -> dict:
        """An answer as JSON (as `haitirag ask --json`). sources: null or [] searches every source."""
        try:
            return ask_api(served.current(), question, history, sources, date_from, date_to, keep_undated)
        except HaitiragError as err:
            raise gr.Error(str(err)) from None

    def open_cite(session: dict[str, Any] | None, evt: gr.EventData) -> tuple[Any, Any]:
        key = str((getattr(evt, "_data", None) or {}).get("cite", ""))
        m = re.fullmatch(r"t(\d{1,6})([cp])(\d{1,3})", key)
        answers = (session or {}).get("answers", [])
        if not m or int(m.group(1)) >= len(answers):
            return gr.skip(), gr.skip()
        answer = answers[int(m.group(1))]
        i = int(m.group(3))
        if m.group(2) == "c":
            if not 1 <= i <= len(answer.citations):
                return gr.skip(), gr.skip()
            c = answer.citations[i - 1]
            doc_id, start, end, label = c.doc_id, c.start, c.end, f"Cited sentence [{i}]"
        else:
            p = render.passage_of(answer, i)
            if p is None:
                return gr.skip(), gr.skip()
            doc_id, start, end, label = p.doc_id, p.start, p.end, f"Retrieved passage {i + 1}"
            inside = [c for c in answer.citations if c.doc_id == doc_id and p.start <= c.start and c.end <= p.end]
            if inside:  # highlight the quoted sentence rather than the whole passage
                n = answer.citations.index(inside[0]) + 1
                start, end, label = inside[0].start, inside[0].end, f"Cited sentence [{n}]"
        doc = served.current().documents.get(doc_id)
        if doc is None:
            html = ('<div class="hr-doc hr-empty">That document is no longer in the index '
                    '(a rebuild removed or changed it); ask again to cite the current sources.</div>')
        else:
            html = render.render_document(doc, start, end, label)
        return html, gr.Tabs(selected="document")

    def clear() -> tuple[Any, ...]:
        return [], render.render_evidence(None, 0), {"questions": [], "answers": []}, render.render_document(None)

    def upload(files: list[str] | None) -> tuple[str, Any]:
        if not files:
            return gr.skip(), None
        try:
            results = save_uploads([(f, Path(f).name) for f in files], served.corpus,
                                   known_ids=served.current().documents.keys())
        finally:
            _discard([f for f in files if Path(f).is_relative_to(uploads_dir)])  # copied or refused: not kept
        lines = [("✓ " if r.ok else "✗ ") + r.message for r in results]
        if any(r.saved_as for r in results):
            lines.append("Click “Rebuild index” to search the new documents.")
        return "\n".join(f"- {render.esc(line)}" for line in lines), None

    def rebuild(chosen: list[str] | None, shown: list[str] | None,
                progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008 (Gradio's idiom)
        job = served.start_rebuild()
        while not job.done.wait(0.25):
            progress(job.fraction(), desc=job.describe())
        progress(1.0, desc="done")
        status = ("✓ " if job.ok else "✗ ") + job.message
        state = page_state()
        current = state[3]
        return (f"<pre class='hr-build'>{render.esc(status)}</pre>", state[0],
                _source_update(gr, shown or current, chosen, current), state[2], current)

    with gr.Blocks(title="haitirag: sourced answers", analytics_enabled=False, fill_width=True,
                   delete_cache=(600, 600)) as app:
        session = gr.State({"questions": [], "answers": []})
        shown = gr.State(_source_choices(served.current()))  # the sources this page lists
        with gr.Row(elem_id="hr-header", equal_height=True):
            gr.HTML("<h1>haitirag</h1><div class='hr-meta'>Answers quoted from your sources, with citations. "
                    "Nothing is generated; nothing leaves this machine.</div>", scale=2)
            info_html = gr.HTML(info(), elem_id="hr-info", scale=3)
        with gr.Row():
            with gr.Column(scale=3, min_width=420):
                chatbot = gr.Chatbot(elem_id="hr-chat", label="Conversation", show_label=False, height=520,
                                     sanitize_html=True, render_markdown=True, latex_delimiters=[],
                                     feedback_options=None, buttons=["copy"],
                                     placeholder="Ask a question about the documents in the corpus. Answers are "
                                     "sentences copied from the sources, with citations.")
                with gr.Row(equal_height=True):
                    question = gr.Textbox(elem_id="hr-question", show_label=False, scale=5, lines=1, max_lines=4,
                                          placeholder="Ask a question, e.g. Which court blocked Kenya's deployment?",
                                          submit_btn=False, autofocus=True)
                    ask_btn = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="hr-ask")
                    clear_btn = gr.Button("New chat", scale=1, min_width=90)
                examples = gr.Dataset(components=[question], samples=[[q] for q in example_questions(served.current())],
                                      label="Examples from the corpus",
                                      elem_id="hr-examples", samples_per_page=6)
                with gr.Accordion("Filters", open=False, elem_id="hr-filters"):
                    with gr.Row():
                        date_from = gr.Textbox(label="From date", placeholder="YYYY-MM-DD", elem_id="hr-from")
                        date_to = gr.Textbox(label="To date", placeholder="YYYY-MM-DD", elem_id="hr-to")
                        keep_undated = gr.Checkbox(value=True, label="Keep documents without a date")
                    choices = _source_choices(served.current())
                    sources = gr.CheckboxGroup(choices=choices, value=choices, label="Sources", elem_id="hr-sources")
            with gr.Column(scale=2, min_width=360):
                with gr.Tabs(selected="sources") as tabs:
                    with gr.Tab("Sources", id="sources"):
                        evidence = gr.HTML(render.render_evidence(None, 0), elem_id="hr-evidence",
                                           js_on_load=render.CITE_JS, max_height=640)
                    with gr.Tab("Document", id="document"):
                        document = gr.HTML(render.render_document(None), elem_id="hr-document",
                                           js_on_load=render.SCROLL_JS)
                    with gr.Tab("Add documents", id="corpus"):
                        gr.Markdown(f"Add `{'`, `'.join(ALLOWED_EXTENSIONS)}` files (UTF-8 or UTF-16 text, up to "
                                    f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB each) to the corpus folder, then "
                                    "rebuild. Only new or changed documents are embedded. Questions keep being "
                                    "answered from the current index while the rebuild runs.")
                        files = gr.File(label="Files to add", file_count="multiple", elem_id="hr-upload",
                                        file_types=list(ALLOWED_EXTENSIONS), type="filepath")
                        upload_status = gr.Markdown(elem_id="hr-upload-status")
                        rebuild_btn = gr.Button("Rebuild index", variant="primary", elem_id="hr-rebuild")
                        build_status = gr.HTML(elem_id="hr-build-status", min_height=40)

        ask_inputs = [question, chatbot, session, date_from, date_to, sources, keep_undated, shown]
        ask_outputs = [chatbot, evidence, session, question, info_html, tabs, sources, shown]
        ask_btn.click(ask, ask_inputs, ask_outputs, api_name="chat", concurrency_id="ask",
                      concurrency_limit=ASK_CONCURRENCY)
        gr.api(api_ask, api_name="ask", concurrency_id="ask", concurrency_limit=ASK_CONCURRENCY)
        question.submit(ask, ask_inputs, ask_outputs, api_visibility="private", concurrency_id="ask")
        examples.click(lambda sample: sample[0], examples, question, api_visibility="private").then(
            ask, ask_inputs, ask_outputs, api_visibility="private", concurrency_id="ask")
        evidence.click(open_cite, session, [document, tabs], api_visibility="private")
        clear_btn.click(clear, None, [chatbot, evidence, session, document], api_visibility="private")
        files.upload(upload, files, [upload_status, files], api_visibility="private", concurrency_limit=1)
        rebuild_btn.click(rebuild, [sources, shown], [build_status, info_html, sources, examples, shown],
                          api_name="rebuild", concurrency_limit=8, show_progress_on=[build_status])
        app.load(page_state, None, [info_html, sources, examples, shown], api_visibility="private")
    return app


def launch(app: Any, host: str = "127.0.0.1", port: int = 7860, block: bool = True) -> Any:
    """Start the server (queue on, no analytics, system fonts); with ``block=False`` return at once."""
    _quiet_environment()
    app.queue(default_concurrency_limit=4, max_size=256)
    return app.launch(server_name=host, server_port=port, prevent_thread_lock=not block, theme=_theme(),
                      css=render.PAGE_CSS, ssr_mode=False, mcp_server=False, pwa=False, enable_monitoring=False,
                      quiet=not block, footer_links=[], max_file_size=2 * MAX_UPLOAD_BYTES, show_error=True)


def _check_port(host: str, port: int) -> None:
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except (OSError, OverflowError) as err:
        raise ServeError(f"cannot listen on {host}:{port} ({getattr(err, 'strerror', None) or err}); "
                         "stop the other server or pick another port with --port") from err


def serve(corpus: str | Path = "corpus", index: str | Path = "index", host: str = "127.0.0.1", port: int = 7860,
          model: str = DEFAULT_MODEL) -> None:
    """Load (or build) the index, warm the model up and serve the page until interrupted."""
    _quiet_environment()
    _check_port(host, port)
    idx = open_or_build(corpus, index, model)
    app = make_app(ServedIndex(corpus, idx.store, idx))
    log.info("serving %s on http://%s:%d", idx.location, host, port)
    import signal
    import sys

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # a normal exit: temporary files removed
    try:
        launch(app, host, port)
    except OSError as err:
        raise ServeError(f"cannot start the server on {host}:{port} ({err}); pick another port with --port") from err
