"""The chat page (Gradio): ask a question, read the cited answer and the passages it came from."""

from __future__ import annotations

import html
import logging
import os
from pathlib import Path
from typing import Any

from .embedding import DEFAULT_MODEL

__all__ = ["make_app", "open_or_build", "serve"]

log = logging.getLogger(__name__)


def open_or_build(corpus: str | Path, index: str | Path, model: str = DEFAULT_MODEL) -> Any:
    """Load the index, building it first when there is none."""
    from .build import build_index
    from .index import load_index

    if not (Path(index) / "manifest.json").exists():
        log.warning("no index at %s: building it from %s", index, corpus)
        return build_index(corpus, index, model=model, progress=True)
    return load_index(index)


def _render(answer: Any) -> str:
    esc = html.escape
    parts = [f"<p>{esc(answer.text)}" + "".join(f" [{n}]" for n in range(1, len(answer.citations) + 1)) + "</p>"]
    for n, c in enumerate(answer.citations, 1):
        meta = ", ".join(esc(x) for x in (c.date, c.source) if x)
        parts.append(f"<p><small>[{n}] {esc(c.title)}" + (f" ({meta})" if meta else "") + "</small></p>")
    return "\n".join(parts)


def make_app(index: Any) -> Any:
    import gradio as gr

    from .errors import HaitiragError

    def respond(question: str) -> str:
        try:
            return _render(index.ask(question))
        except HaitiragError as err:
            return f"<p>{html.escape(str(err))}</p>"

    with gr.Blocks(title="haitirag", analytics_enabled=False) as app:
        gr.Markdown(f"# haitirag\n{len(index.documents)} documents, {len(index.chunks)} chunks, model `{index.model}`")
        question = gr.Textbox(label="Question", placeholder="Which court blocked Kenya's deployment?")
        ask = gr.Button("Ask", variant="primary")
        out = gr.HTML()
        ask.click(respond, question, out)
        question.submit(respond, question, out)
    return app


def serve(corpus: str | Path = "corpus", index: str | Path = "index", host: str = "127.0.0.1", port: int = 7860,
          model: str = DEFAULT_MODEL) -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    app = make_app(open_or_build(corpus, index, model))
    app.queue().launch(server_name=host, server_port=port, show_api=False)
