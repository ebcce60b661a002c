"""Ten people at once: each gradio_client session gets its own correct answers and its own conversation."""

from __future__ import annotations

import html
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import haitirag
from haitirag import web

from .conftest import FIXTURE_CORPUS

pytestmark = [pytest.mark.model, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # from Gradio's queue internals
              pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword).*")]

# Ten questions on the fixture corpus, each with a phrase only its right answer holds.
QUESTIONS = [
    ("Which court blocked Kenya's deployment?", "High Court"),
    ("How long is the railway extension project expected to take?", "four years"),
    ("By how much did Nile perch catches rise?", "twelve percent"),
    ("What rainfall does the weather service expect?", "above-average rainfall"),
    ("How many troops did Benin pledge to send?", "2,000"),
    ("Who welcomed the ruling?", "opposition"),
    ("When did construction of the railway extension begin?", "February"),
    ("Who signed an agreement for the deployment of police officers?", "Ariel Henry"),
    ("What were farmers advised to do?", "plant early"),
    ("What did the government say it would do about the ruling?", "appeal"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _text(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, list):  # gradio_client returns [{"type": "text", "text": ...}]
        content = " ".join(str(part.get("text", "")) for part in content)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", str(content))).split())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    tmp = tmp_path_factory.mktemp("web10")
    index = haitirag.build_index(FIXTURE_CORPUS, tmp / "index")
    app = web.make_app(web.ServedIndex(FIXTURE_CORPUS, tmp / "index", index))
    port = _free_port()
    web.launch(app, port=port, block=False)
    try:
        yield f"http://127.0.0.1:{port}/", web._source_choices(index)
    finally:
        app.close()


def test_ten_concurrent_clients_each_get_their_own_answers(server: tuple[str, list[str]]):
    from gradio_client import Client

    url, all_sources = server

    barrier = threading.Barrier(len(QUESTIONS))
    results: dict[int, list[Any]] = {}
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            client = Client(url, verbose=False)
            q1, _ = QUESTIONS[i]
            barrier.wait(timeout=60)
            first = client.predict(q1, [], "", "", all_sources, True, api_name="/chat")
            second = client.predict(q1, first[0], "", "", all_sources, True, api_name="/chat")  # asked again
            results[i] = [first, second]
        except BaseException as err:  # reported below, with the client's number
            errors.append(err)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(QUESTIONS))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert sorted(results) == list(range(len(QUESTIONS)))
    for i, (first, second) in results.items():
        q1, want1 = QUESTIONS[i]
        chat1, chat2 = first[0], second[0]
        assert [m["role"] for m in chat1] == ["user", "assistant"]
        assert _text(chat1[0]).strip() == q1 and want1 in _text(chat1[1]), (i, _text(chat1[1]))
        # the second turn continues this client's conversation, and only this one's
        assert [_text(m).strip() for m in chat2[::2]] == [q1, q1]
        assert want1 in _text(chat2[3]), (i, _text(chat2[3]))
        assert "hr-k-t1c1" in str(chat2[3]["content"])  # this session's state held exactly one earlier answer
        assert want1 in html.unescape(re.sub(r"<[^>]+>", " ", first[1]))  # the sources panel shows the quote

