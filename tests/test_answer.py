"""Extractive answers: citations are exact source spans, abstention, follow-ups, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import haitirag
from haitirag.answer import NO_ANSWER, _soft_match, answer_type, negation_unmatched, resolve_followup
from haitirag.embedding import HashEmbedder, encode_tokens
from haitirag.errors import QueryError

from .conftest import FIXTURE_CORPUS, HASH_MODEL

WORDS = ["court", "Kenya", "deployment", "blocked", "who", "when", "rainfall", "farmers", "railway", "cost",
         "police", "officers", "Haiti", "signed", "agreement", "fisheries", "perch", "how", "many", "where",
         "the", "of", "?", "Nile", "plant", "billion", "x", "é", "海地", "\u0000", "\t"]


@pytest.fixture(scope="module")
def fixture_index(tmp_path_factory: pytest.TempPathFactory) -> haitirag.Index:
    return haitirag.build_index(FIXTURE_CORPUS, tmp_path_factory.mktemp("ans") / "index", model=HASH_MODEL)


def check_answer(index: haitirag.Index, a: haitirag.Answer) -> None:
    assert 0.0 <= a.score <= 1.0
    assert len(a.citations) <= 2
    if a.abstained:
        assert a.text == NO_ANSWER and not a.citations
        return
    assert a.citations
    for c in a.citations:
        doc = index.document(c.doc_id)
        assert doc.text[c.start:c.end] == c.quote
        assert c.quote.strip() and c.quote.strip() in a.text
        assert (c.title, c.date, c.source) == (doc.title, doc.date, doc.source)
    assert any(p.doc_id == a.citations[0].doc_id for p in a.passages)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.sampled_from(WORDS), min_size=1, max_size=12),
       history=st.lists(st.sampled_from(["Who blocked the deployment?", "When?", "What did farmers do?"]),
                        max_size=2))
def test_citations_are_exact_source_spans(fixture_index: haitirag.Index, words: list[str], history: list[str]):
    question = " ".join(words)
    try:
        a = fixture_index.ask(question, history=history)
    except QueryError:
        assert not question.replace("\u0000", " ").strip()
        return
    check_answer(fixture_index, a)


@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=80))
def test_any_text_answers_refuses_or_raises_query_error(fixture_index: haitirag.Index, text: str):
    try:
        a = fixture_index.ask(text)
    except QueryError:
        return
    check_answer(fixture_index, a)


@pytest.mark.parametrize("bad", ["", "   \n\t ", "\u0000\u0001"])
def test_empty_questions_raise_query_error(fixture_index: haitirag.Index, bad: str):
    with pytest.raises(QueryError, match="empty"):
        fixture_index.ask(bad)


def test_very_long_question_raises_query_error(fixture_index: haitirag.Index):
    with pytest.raises(QueryError, match="too long"):
        fixture_index.ask("court " * 20_000)


def test_question_in_another_script_is_refused(fixture_index: haitirag.Index):
    a = fixture_index.ask("海地的人口是多少？")
    assert a.abstained and a.text == NO_ANSWER


def test_answer_type():
    assert answer_type("Who signed the agreement?") == "person"
    assert answer_type("When did it happen?") == "date"
    assert answer_type("In what year was it built?") == "date"
    assert answer_type("How many troops did Benin pledge?") == "number"
    assert answer_type("Where did they oppose it?") == "place"
    assert answer_type("Why was it blocked?") is None
    # a later "when" / "where" starts a clause; the question's own wh-word decides
    assert answer_type("What did Tesla see when he was young?") is None
    assert answer_type("Where was the meeting held when the owners voted?") == "place"


def test_resolve_followup():
    first = "Who signed the agreement for the deployment of police officers?"
    resolved = resolve_followup("When?", [first])
    assert resolved.startswith("When?") and "signed" in resolved and "agreement" in resolved
    assert "Who" not in resolved
    assert resolve_followup("Which court blocked Kenya's deployment?", [first]) == \
        "Which court blocked Kenya's deployment?"
    assert resolve_followup("When?", []) == "When?"
    chained = resolve_followup("Why?", [first, "When?"])
    assert "agreement" in chained


# -- the real model on the seed report: what users see ------------------------------------------------------
def test_seed_answer_is_cited_sentence(seed_index: haitirag.Index):
    a = seed_index.ask("Who signed the agreement for the deployment of police officers?")
    assert not a.abstained
    assert "Ariel Henry" in a.text
    check_answer(seed_index, a)


def test_seed_off_topic_question_is_refused(seed_index: haitirag.Index):
    a = seed_index.ask("Which football club won the 2024 Champions League?")
    assert a.abstained and a.text == NO_ANSWER
    assert a.passages  # the closest passages are still there


def test_seed_followup_resolved_from_history(seed_index: haitirag.Index):
    first = "Who signed the agreement for the deployment of police officers?"
    b = seed_index.ask("When?", history=[first])
    assert b.resolved_question != "When?" and "agreement" in b.resolved_question
    assert not b.abstained and "March 1" in b.text
    check_answer(seed_index, b)
    alone = seed_index.ask("When?")
    assert alone.resolved_question == "When?"


def test_cli_ask_json_and_bad_input(seed_index: haitirag.Index, capsys: pytest.CaptureFixture[str]):
    import json

    from haitirag.cli import main

    assert main(["ask", "Which court blocked Kenya's deployment?", "--index", str(seed_index.path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "High Court" in out["text"] and out["citations"]
    assert main(["ask", "   ", "--index", str(seed_index.path)]) == 2
    assert capsys.readouterr().err.startswith("error: the question is empty")




def test_unusable_history_entries_are_skipped(fixture_index: haitirag.Index):
    a = fixture_index.ask("When?", history=["", "court " * 1000, "Who blocked the deployment?"])
    assert "blocked" in a.resolved_question
    check_answer(fixture_index, a)


def test_cli_ask_refusal_shows_closest_passages(seed_index: haitirag.Index, capsys: pytest.CaptureFixture[str]):
    from haitirag.cli import main

    assert main(["ask", "Which football club won the 2024 Champions League?", "--index", str(seed_index.path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(NO_ANSWER) and "closest passages:" in out


def test_soft_match_is_each_question_words_best_cosine():
    e = np.eye(4, dtype=np.float32)
    question = e[[0, 1]]  # two content words
    sentence = np.stack([e[0], (e[1] + e[2]) / np.sqrt(2), e[3]])
    mean, low, lowest_third = _soft_match(question, sentence)
    assert mean == pytest.approx((1 + 1 / np.sqrt(2)) / 2)
    assert low == pytest.approx(1 / np.sqrt(2)) and lowest_third == pytest.approx(1 / np.sqrt(2))
    assert _soft_match(question, sentence[:0]) == (0.0, 0.0, 0.0)
    assert _soft_match(question[:0], sentence) == (0.0, 0.0, 0.0)


def test_hash_token_vectors_match_equal_words():
    emb = HashEmbedder(64)
    vecs, toks = encode_tokens(emb, ["The court blocked it", "a court"])
    assert np.allclose(vecs, emb.encode(["The court blocked it", "a court"]))
    (w1, r1), (w2, r2) = toks
    assert w1 == ("the", "court", "blocked", "it") and w2 == ("a", "court")
    assert float(r1[1].astype(np.float32) @ r2[1].astype(np.float32)) == pytest.approx(1.0, abs=1e-3)


def test_embedder_without_token_vectors_still_answers(tmp_path):
    class Plain:  # the Embedder protocol only: no encode_tokens
        name, dimension, precision = HASH_MODEL, 64, "fp32"

        def __init__(self) -> None:
            self.inner = HashEmbedder(64)

        def fits(self, text: str) -> bool:
            return True

        def encode(self, texts, batch_size=64, show_progress=False):  # type: ignore[no-untyped-def]
            return self.inner.encode(texts)

    haitirag.build_index(FIXTURE_CORPUS, tmp_path / "index", model=HASH_MODEL)
    index = haitirag.Index.load(tmp_path / "index", embedder=Plain())
    vecs, toks = encode_tokens(index.embedder, ["court ruling"])
    assert vecs.shape == (1, 64) and toks[0][1].shape == (0, 64)
    check_answer(index, index.ask("Who blocked the deployment?"))


def test_negation_unmatched():
    assert negation_unmatched("What does the IPCC not do?", "The IPCC monitors climate data.")
    assert not negation_unmatched("What does the IPCC not do?", "The IPCC does not carry out research.")
    assert not negation_unmatched("Why didn't they go?", "They couldn't go: the road was closed.")
    assert not negation_unmatched("What does the IPCC do?", "The IPCC does not carry out research.")
    assert not negation_unmatched("Which notable court ruled?", "The High Court ruled.")  # "not" inside a word
