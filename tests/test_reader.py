"""The trained reader: shipped weights load offline and are checked; spans; training runs end to end."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haitirag.errors import ModelError
from haitirag.reader import READER_PATH, Reader, best_span, window_bounds

from .conftest import DATA

TINY_TRAIN = DATA / "reader-train-tiny.jsonl"


def copy_weights(tmp_path: Path) -> Path:
    dst = tmp_path / "models"
    dst.mkdir()
    shutil.copy(READER_PATH, dst / READER_PATH.name)
    shutil.copy(READER_PATH.with_suffix(".json"), dst / "reader.json")
    return dst / READER_PATH.name


def test_shipped_weights_are_small_safetensors_with_a_recorded_checksum():
    from haitirag.reader import sha256_file

    meta = json.loads(READER_PATH.with_suffix(".json").read_text())
    assert READER_PATH.stat().st_size <= 50_000_000
    assert meta["sha256"] == sha256_file(READER_PATH)
    assert meta["training"]["command"].startswith("python -m haitirag.train")
    assert len(meta["calibration"]["weights"]) == 2


@pytest.mark.model
def test_reader_loads_offline_and_finds_the_answer_span():
    reader = Reader()
    window = "The bridge was built in 1832. The engineer Anna Brooks designed it. It carries 4,000 cars a day."
    r_who, r_none = reader.read("Who designed the bridge?", [window, "Marlow holds a market on Saturdays."])
    assert window[r_who.start:r_who.end] == "Anna Brooks"
    assert r_who.logit > r_none.logit
    assert reader.probability(r_who.logit) > reader.probability(r_none.logit)
    assert 0.0 <= reader.probability(-1e9) <= reader.probability(1e9) <= 1.0


@pytest.mark.model
def test_damaged_weights_are_refused_with_a_fix(tmp_path: Path):
    path = copy_weights(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"damaged.*git checkout") as err:
        Reader(path).read("Who?", ["Anna built it."])
    assert "\n" not in str(err.value)


def test_missing_weights_are_refused_with_a_fix(tmp_path: Path):
    path = copy_weights(tmp_path)
    path.unlink()
    with pytest.raises(ModelError, match=r"missing.*python -m haitirag.train"):
        Reader(path).read("Who?", ["Anna built it."])


def test_truncated_weights_are_refused(tmp_path: Path):
    path = copy_weights(tmp_path)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ModelError, match="damaged"):
        Reader(path).read("Who?", ["Anna built it."])


@settings(max_examples=100, deadline=None)
@given(n=st.integers(2, 40), seed=st.integers(0, 10_000))
def test_best_span_is_a_window_span_at_most_30_tokens(n: int, seed: int):
    rng = np.random.default_rng(seed)
    q = int(rng.integers(1, n))  # question tokens, then the window's
    seq = [None] + [0] * (q - 1) + [None] + [1] * (n - q)
    offsets = [(0, 0)] * (q + 1) + [(3 * i, 3 * i + 2) for i in range(n - q)]
    start, end = rng.normal(size=n + 1), rng.normal(size=n + 1)
    r = best_span(start, end, seq, offsets)
    assert 0 <= r.start < r.end <= 3 * (n - q)
    ctx = [i for i, s in enumerate(seq) if s == 1]
    best = max((start[i] + end[j], i, j) for i in ctx for j in ctx if i <= j < i + 30)
    assert r.logit == pytest.approx(best[0] - (start[0] + end[0]))
    assert (r.start, r.end) == (offsets[best[1]][0], offsets[best[2]][1])


def test_window_bounds():
    sents = [(0, 5), (6, 10), (11, 20), (21, 30)]
    assert window_bounds(sents, 0) == (0, 10)
    assert window_bounds(sents, 2) == (6, 30)
    assert window_bounds(sents, 3, before=2, after=0) == (6, 30)


def test_training_examples_hold_the_answer_or_not(tmp_path: Path):
    from haitirag.evaluate import normalize
    from haitirag.train import make_examples, read_paragraphs

    paragraphs = list(read_paragraphs(TINY_TRAIN))
    examples = make_examples(paragraphs, questions=100, seed=1)
    golds = {q["question"]: q["answers"][0]["text"] for p in paragraphs for q in p["qas"]}
    assert {e.question for e in examples} == set(golds)
    pos = [e for e in examples if e.answer_start is not None]
    neg = [e for e in examples if e.answer_start is None]
    assert pos and neg
    for e in pos:
        assert e.window[e.answer_start:e.answer_end] == golds[e.question]
    for e in neg:
        assert normalize(golds[e.question]) not in normalize(e.window)


@pytest.mark.model
@pytest.mark.slow
def test_training_runs_end_to_end_on_a_tiny_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from haitirag.train import main

    out = tmp_path / "out"
    assert main(["--train", str(TINY_TRAIN), "--out", str(out), "--questions", "7", "--max-steps", "2",
                 "--batch-size", "4", "--threads", "1"]) == 0
    meta = json.loads((out / "reader.json").read_text())
    assert meta["training"]["steps"] == 2 and meta["training"]["examples"] > 7
    assert "wrote" in capsys.readouterr().out
    reader = Reader(out / "reader.safetensors")
    (r,) = reader.read("Who built the bridge?", ["It was built in 1832 by the engineer Anna Brooks."])
    assert 0 <= r.start < r.end

    # a next stage from it, also on the windows read for development questions; their articles are recorded
    import haitirag
    from haitirag.train import trained_on

    from .conftest import HASH_MODEL

    mini = DATA / "squad-mini"
    haitirag.build_index(mini / "corpus.jsonl", tmp_path / "index", model=HASH_MODEL)
    qs = tmp_path / "questions.jsonl"
    qs.write_text("".join(json.dumps({**json.loads(line), "article": "Super_Bowl_50"}) + "\n"
                          for line in (mini / "questions.jsonl").read_text().splitlines() if '"turns"' not in line))
    from haitirag.evaluate import article_part

    assert main(["--train", str(TINY_TRAIN), "--out", str(tmp_path / "next"), "--questions", "3", "--max-steps", "1",
                 "--batch-size", "4", "--threads", "1", "--init", str(out / "reader.safetensors"),
                 "--dev-index", str(tmp_path / "index"), "--dev-questions", str(qs),
                 "--dev-part", str(article_part("Super_Bowl_50"))]) == 0
    meta = json.loads((tmp_path / "next" / "reader.json").read_text())
    assert meta["training"]["dev"]["articles"] == ["Super_Bowl_50"] and meta["training"]["dev"]["examples"] > 0
    assert trained_on(meta) == {"Super_Bowl_50"} and meta["training"]["previous"]["steps"] == 2


def test_a_stage_on_the_windows_ask_reads_for_training_questions(tmp_path: Path):
    import haitirag
    from haitirag.train import main, read_paragraphs

    from .conftest import HASH_MODEL

    assert main(["--train", str(TINY_TRAIN), "--export", str(tmp_path / "tr")]) == 0
    docs = [json.loads(line) for line in (tmp_path / "tr" / "corpus.jsonl").read_text().splitlines()]
    qs = [json.loads(line) for line in (tmp_path / "tr" / "questions.jsonl").read_text().splitlines()]
    paragraphs = list(read_paragraphs(TINY_TRAIN))
    assert [d["id"] for d in docs] == ["River_Town#p0", "River_Town#p1", "Glass_Works#p0"]
    assert [d["text"] for d in docs] == [p["context"] for p in paragraphs]
    assert len(qs) == sum(len(p["qas"]) for p in paragraphs) == 7
    by_id = {d["id"]: d for d in docs}
    for q in qs:  # every answer lies in its gold paragraph
        assert any(a in by_id[q["gold_ids"][0]]["text"] for a in q["answers"]) and q["article"] in q["gold_ids"][0]

    haitirag.build_index(tmp_path / "tr" / "corpus.jsonl", tmp_path / "tr" / "index", model=HASH_MODEL)
    out = tmp_path / "out"
    assert main(["--train", str(TINY_TRAIN), "--out", str(out), "--questions", "0", "--windows", "4",
                 "--windows-index", str(tmp_path / "tr" / "index"), "--max-steps", "1", "--batch-size", "4",
                 "--threads", "1"]) == 0
    windows = json.loads((out / "reader.json").read_text())["training"]["windows"]
    # whole articles are drawn until there are 4 questions: River_Town has 5, Glass_Works 2
    assert windows["articles"] in (["River_Town"], ["Glass_Works", "River_Town"])
    assert windows["examples"] >= windows["questions"] >= 4 and windows["answerable_examples"] >= 1
    with pytest.raises(SystemExit):  # --windows without its index is a usage error
        main(["--train", str(TINY_TRAIN), "--windows", "4"])


def test_entity_swapped_questions_are_unanswerable_copies():
    import random

    from haitirag.train import article_entities, swap_entity

    paragraphs = [
        {"title": "Town", "context": "The bridge of Marlow was built in 1832 by Anna Brooks. It carries cars."},
        {"title": "Town", "context": "In 1901 the mayor, John Hale, opened a market in Henley beside the river."},
    ]
    ents = article_entities(paragraphs)["Town"]
    assert "1832" in ents["year"] and "1901" in ents["year"] and "Anna Brooks" in ents["name2"]
    window = paragraphs[0]["context"]
    rng = random.Random(0)
    swapped = {swap_entity("Who built the bridge of Marlow in 1832?", window, "Anna Brooks", ents, rng)
               for _ in range(20)}
    assert swapped <= {"Who built the bridge of Henley in 1832?", "Who built the bridge of Marlow in 1901?"}
    assert len(swapped) == 2  # either the place or the year, each time for one not in the window
    assert swap_entity("Who built the bridge?", window, "Anna Brooks", ents, rng) is None  # nothing to swap


def test_a_second_stage_leaves_out_the_first_stages_questions():
    from haitirag.train import make_examples, read_paragraphs

    paragraphs = list(read_paragraphs(TINY_TRAIN))
    first = {e.question for e in make_examples(paragraphs, questions=3, seed=0)}
    second = make_examples(paragraphs, questions=100, seed=0, skip=3, swap_rate=1.0)
    asked = {q["question"] for p in paragraphs for q in p["qas"]}
    originals = {e.question for e in second if e.question in asked}
    assert originals and not originals & first and originals | first == asked


def test_development_examples_are_the_windows_ask_reads(tmp_path: Path):
    import haitirag
    from haitirag.answer import Answerer
    from haitirag.evaluate import article_part, contains_answer
    from haitirag.train import retrieved_examples

    from .conftest import HASH_MODEL

    mini = DATA / "squad-mini"
    index = haitirag.build_index(mini / "corpus.jsonl", tmp_path / "index", model=HASH_MODEL)
    train_art = next(a for a in (f"Article {i}" for i in range(100)) if article_part(a) == 2)
    other_art = next(a for a in (f"Article {i}" for i in range(100)) if article_part(a) != 2)
    recs = [json.loads(line) for line in (mini / "questions.jsonl").read_text().splitlines() if '"turns"' not in line]
    for n, r in enumerate(recs):
        r["article"] = other_art if n == 0 else train_art  # q1 is of an article the training leaves out
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(r) + "\n" for r in recs))

    examples, articles = retrieved_examples(tmp_path / "index", questions, part=2, negatives=3)
    assert articles == [train_art]
    by_q = {r["question"]: r for r in recs}
    assert {e.question for e in examples} <= {r["question"] for r in recs[1:]}
    answerer = Answerer(index)
    for q in {e.question for e in examples}:
        answerer.ranker.question(q)
        read = {index.documents[d].text[a:b]
                for d, a, b in answerer.windows(q, index.search(q, k=answerer.passages))}
        for e in (e for e in examples if e.question == q):
            assert e.window in read  # exactly what ask would read
            if e.answer_start is None:
                assert not contains_answer(e.window, by_q[q]["answers"])
            else:
                assert e.window[e.answer_start:e.answer_end].lower() in {a.lower() for a in by_q[q]["answers"]}
    unanswerable = [e for e in examples if not by_q[e.question]["answers"]]
    assert unanswerable and len(unanswerable) <= 3 and all(e.answer_start is None for e in unanswerable)
    assert any(e.answer_start is not None for e in examples)


def test_questions_asked_without_their_paragraph_give_only_no_answer_windows(tmp_path: Path):
    import haitirag
    from haitirag.evaluate import contains_answer
    from haitirag.train import retrieved_examples

    from .conftest import HASH_MODEL

    mini = DATA / "squad-mini"
    index = haitirag.build_index(mini / "corpus.jsonl", tmp_path / "index", model=HASH_MODEL)
    recs = [json.loads(line) for line in (mini / "questions.jsonl").read_text().splitlines() if '"turns"' not in line]
    by_q = {r["question"]: r for r in recs if r.get("answers") and r.get("gold_ids")}
    assert by_q
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(r) + "\n" for r in recs))
    kept, _ = retrieved_examples(tmp_path / "index", questions, part=0, parts=1)
    hidden, _ = retrieved_examples(tmp_path / "index", questions, part=0, parts=1, negatives=3, unanswerable=1.0)
    assert any(e.answer_start is not None for e in kept)  # asked with their paragraph, they have answers
    asked = [e for e in hidden if e.question in by_q]
    assert asked and all(e.answer_start is None for e in asked)
    for e in asked:
        assert not contains_answer(e.window, by_q[e.question]["answers"])
        assert not any(e.window in index.documents[g].text for g in by_q[e.question]["gold_ids"])  # not its own
    per_question = Counter(e.question for e in asked)
    assert max(per_question.values()) <= 3


def test_the_development_articles_a_reader_trained_on_are_known_through_its_chain():
    from haitirag.train import trained_on

    meta = {"training": {"dev": {"articles": ["Warsaw"]}, "previous": {"dev": {"articles": ["Oxygen"]},
                                                                        "previous": None}}}
    assert trained_on(meta) == {"Warsaw", "Oxygen"}
    assert trained_on({"training": {"previous": None}}) == set()
