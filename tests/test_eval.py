"""The evaluation: normalisation, question files with conversations, metrics on a hand-checked fixture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import haitirag
from haitirag.evaluate import EvalError, contains_answer, evaluate, load_questions, normalize, open_eval_index

from .conftest import DATA, HASH_MODEL

MINI = DATA / "squad-mini"


def test_normalize_and_contains_answer():
    assert normalize("The  Denver Broncos!") == "denver broncos"
    assert normalize("An apple, a pear") == "apple pear"
    assert contains_answer("They beat the Denver Broncos, 24–10.", ["denver broncos"])
    assert contains_answer("It cost $1.2 billion.", ["1 2 billion"])
    assert not contains_answer("Broncos won", ["Denver Broncos"])
    assert not contains_answer("Novemberish", ["November"])  # whole words only
    assert not contains_answer("anything", [])


def test_load_questions_flattens_conversations():
    qs = load_questions(MINI / "questions.jsonl")
    assert [q.qid for q in qs] == ["q1", "q2", "q3", "q4", "c1.0", "c1.1"]
    assert [q.answerable for q in qs] == [True, True, True, False, True, True]
    assert qs[5].history == ("Who was named Super Bowl MVP, recording five solo tackles?",)
    assert qs[4].history == ()
    assert qs[0].gold_ids == ("Super_Bowl_50#p0",)


def test_load_questions_errors(tmp_path: Path):
    with pytest.raises(EvalError, match="cannot read"):
        load_questions(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n', encoding="utf-8")
    with pytest.raises(EvalError, match="line 1"):
        load_questions(bad)


def test_metrics_on_hand_checked_fixture(tmp_path: Path):
    index = haitirag.build_index(MINI / "corpus.jsonl", tmp_path / "index", model=HASH_MODEL)
    qs = load_questions(MINI / "questions.jsonl")
    rep = evaluate(index, qs, k=5)
    items = {it["id"]: it for it in rep.items}
    assert (rep.questions, rep.answerable, rep.unanswerable, rep.with_gold_ids) == (6, 5, 1, 3)
    # recall and MRR recomputed by hand from each question's gold rank
    ranks = [items[q]["gold_rank"] for q in ("q1", "q2", "q3")]
    assert rep.recall_at_1 == pytest.approx(sum(r == 0 for r in ranks) / 3)
    assert rep.recall_at_5 == pytest.approx(sum(r is not None and r < 5 for r in ranks) / 3)
    assert rep.mrr_at_10 == pytest.approx(sum(1 / (r + 1) for r in ranks if r is not None) / 3)
    assert rep.recall_at_10 == 1.0  # three documents: every gold one is among the top 10
    # accuracy: the answers that contain a gold answer, over the five answerable questions
    answerable = [it for it in rep.items if it["answerable"]]
    assert rep.answer_accuracy == pytest.approx(sum(it["correct"] for it in answerable) / 5)
    assert all(it["correct"] == (not it["abstained"] and contains_answer(it["text"], it["answers"]))
               for it in answerable)
    assert rep.wrong_abstention_answerable == pytest.approx(sum(it["abstained"] for it in answerable) / 5)
    assert rep.abstention_unanswerable in (0.0, 1.0)
    assert rep.abstention_unanswerable == float(items["q4"]["abstained"])
    assert rep.max_answer_sentences <= 2
    # the follow-up was read alone and with the history's words; the reading kept is one of the two
    from haitirag.answer import resolve_followup

    first = next(q for q in qs if q.qid == "c1.0").question
    assert items["c1.1"]["resolved"] in ("How many sacks?", resolve_followup("How many sacks?", [first]))
    assert rep.queries_per_s > 0
    assert "recall@5" in rep.table()
    assert set(rep.to_json()) >= {"recall_at_1", "recall_at_5", "recall_at_10", "mrr_at_10", "answer_accuracy",
                                  "abstention_unanswerable", "wrong_abstention_answerable", "mean_answer_words",
                                  "queries_per_s"}


def test_verbatim_questions_are_retrieved_first(tmp_path: Path):
    index = haitirag.build_index(MINI / "corpus.jsonl", tmp_path / "index", model=HASH_MODEL)
    qs = [q for q in load_questions(MINI / "questions.jsonl") if q.qid in ("q1", "q2")]
    rep = evaluate(index, qs)
    assert rep.recall_at_1 == 1.0 and rep.mrr_at_10 == 1.0


def test_open_eval_index_reuses_matching_index(tmp_path: Path):
    first = open_eval_index(MINI / "corpus.jsonl", tmp_path / "index", model=HASH_MODEL)
    gen = first.manifest["generation"]
    again = open_eval_index(MINI / "corpus.jsonl", tmp_path / "index", model=HASH_MODEL)
    assert again.manifest["generation"] == gen  # reused, not rebuilt
    assert again.report is None


def test_cli_eval_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from haitirag.cli import main

    args = ["eval", "--corpus", str(MINI / "corpus.jsonl"), "--questions", str(MINI / "questions.jsonl"),
            "--index", str(tmp_path / "index"), "--model", HASH_MODEL, "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["questions"] == 6 and out["recall_at_10"] == 1.0
    assert main([*args[:-1]]) == 0
    assert "answer accuracy" in capsys.readouterr().out
    assert main(["eval", "--corpus", str(MINI / "corpus.jsonl"), "--questions", str(tmp_path / "none.jsonl")]) == 2
    assert "cannot read question file" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["seed-questions.jsonl", "seed-questions-users.jsonl"])
def test_the_shipped_seed_questions_load_and_their_answers_are_in_the_seed_report(name: str):
    root = Path(__file__).parent.parent
    qs = load_questions(root / "eval" / name)
    text = normalize(" ".join(p.read_text(encoding="utf-8") for p in (root / "corpus").rglob("*.*")))
    answerable = [q for q in qs if q.answerable]
    assert len(qs) >= 10 and answerable and len(answerable) < len(qs)  # both kinds
    for q in answerable:
        assert any(normalize(a) in text for a in q.answers), (q.qid, q.answers)
