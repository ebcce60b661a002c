"""Bad input, as a table: every case gets a one-line error naming the fix (or a documented skip), never a
traceback, and nothing already indexed is lost.

Python API (``search`` and ``ask``: every argument with a wrong type or value), files in the corpus
(binary, non-UTF-8, UTF-16, empty), uploads from the page, and the page's ask handler's filters. The CLI's
exit codes and one-line errors are in ``test_cli.py``; damaged and mismatched indexes in ``test_index.py``.
Documented skip: an unknown keyword argument is Python's own ``TypeError`` (a programming error, not input).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import haitirag
from haitirag import web
from haitirag.corpus import load_corpus
from haitirag.uploads import save_upload

LONG = "word " * 20_000  # 100,000 characters

SEARCH_CASES: list[tuple[dict[str, Any], str]] = [
    ({"query": None}, "must be text"),
    ({"query": 123}, "must be text"),
    ({"query": b"court"}, "must be text"),
    ({"query": ""}, "empty; type a question"),
    ({"query": " \n\t "}, "empty; type a question"),
    ({"query": "\x00\x01\x02"}, "empty; type a question"),
    ({"query": LONG}, "too long .* shorten it"),
    ({"k": 0}, "positive whole number"),
    ({"k": -1}, "positive whole number"),
    ({"k": "5"}, "positive whole number"),
    ({"k": 1.5}, "positive whole number"),
    ({"k": True}, "positive whole number"),
    ({"mode": "fuzzy"}, "mode must be one of hybrid, dense, keyword"),
    ({"mode": None}, "mode must be one of"),
    ({"sources": "Met Desk"}, r"list of source names, e\.g\. \['Met Desk'\]"),
    ({"sources": 5}, "list of source names"),
    ({"sources": [1]}, "source names \\(text\\)"),
    ({"sources": ["Nope Desk"]}, "unknown source 'Nope Desk'.*'Met Desk'.*check the spelling"),
    ({"date_from": "March 2024"}, "YYYY-MM-DD"),
    ({"date_from": "2024-13-45"}, "YYYY-MM-DD"),
    ({"date_to": "2024-02-30"}, "YYYY-MM-DD"),
    ({"date_from": 2024}, "YYYY-MM-DD"),
    ({"date_from": "2024-05-01", "date_to": "2024-01-01"}, "after date_to .* swap them"),
    ({"keep_undated": "no"}, "keep_undated must be True or False"),
    ({"candidates": -3}, "candidates must be a positive whole number"),
]

ASK_CASES: list[tuple[dict[str, Any], str]] = [
    *[(case, why) for case, why in SEARCH_CASES if "candidates" not in case],
    ({"history": "Who signed?"}, r"list of earlier questions.*e\.g\. \['Who signed\?'\]"),
    ({"history": 5}, "list of earlier questions"),
    ({"history": [1, 2]}, "earlier questions as text"),
    ({"history": [None]}, "earlier questions as text"),
]


@pytest.mark.parametrize(("args", "why"), SEARCH_CASES, ids=[repr(c)[:40] for c, _ in SEARCH_CASES])
def test_search_refuses_bad_input_with_the_fix(hash_index: haitirag.Index, args: dict[str, Any], why: str):
    args = {"query": "court ruling", **args}
    with pytest.raises(haitirag.QueryError, match=why) as err:
        hash_index.search(**args)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("args", "why"), ASK_CASES, ids=[repr(c)[:40] for c, _ in ASK_CASES])
def test_ask_refuses_bad_input_with_the_fix(hash_index: haitirag.Index, args: dict[str, Any], why: str):
    args = {"question": args.pop("query", "Which court ruled?"), **args}
    with pytest.raises(haitirag.QueryError, match=why) as err:
        hash_index.ask(**args)
    assert "\n" not in str(err.value)


def test_good_input_next_to_the_bad_still_works(hash_index: haitirag.Index):
    assert hash_index.ask("Which court ruled?", history=None).question == "Which court ruled?"
    assert hash_index.search("court", k=10**9)  # more than there are: all of them
    undated = {d.doc_id for d in hash_index.documents.values() if d.date is None}
    assert undated and not undated & {p.doc_id for p in hash_index.search("court", k=50, keep_undated=False)}
    with pytest.raises(TypeError):  # the documented skip: Python's own error for an unknown argument
        hash_index.ask("Which court ruled?", threshold=2)  # type: ignore[call-arg]


FILES: list[tuple[str, bytes, str | None]] = [
    ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary file"),
    ("latin1.txt", "Caf\u00e9 au lait\n\nLe caf\u00e9 est bon.\n".encode("latin-1"), "not UTF-8 .* iconv"),
    ("utf16bom.txt", "Harbour report\n\nThe harbour reopened in May.\n".encode("utf-16"), None),
    ("utf16le.txt", "Harbour report\n\nThe harbour reopened in May.\n".encode("utf-16-le"),
     "UTF-16 text without a byte-order mark; save it as UTF-8"),
    ("empty.txt", b"", "empty|no text"),
    ("blank.md", b"   \n\n  \n", "empty|no text"),
]


@pytest.mark.parametrize(("name", "data", "why"), FILES, ids=[f[0] for f in FILES])
def test_corpus_files_load_or_are_skipped_with_the_reason(tmp_path: Path, name: str, data: bytes, why: str | None):
    (tmp_path / "ok.txt").write_text("Good report\n\nA fine sentence.\n", encoding="utf-8")
    (tmp_path / name).write_bytes(data)
    loaded = load_corpus(tmp_path)
    if why is None:
        doc = next(d for d in loaded.documents if d.path == name)
        assert doc.title == "Harbour report" and "reopened in May" in doc.text and not loaded.skipped
    else:
        assert [p for p, _ in loaded.skipped] == [name] and len(loaded.documents) == 1
        import re

        assert re.search(why, loaded.skipped[0][1]), loaded.skipped


@pytest.mark.parametrize(("name", "data", "why"), [f for f in FILES if f[2]], ids=[f[0] for f in FILES if f[2]])
def test_uploads_of_bad_files_change_nothing(hash_index: haitirag.Index, corpus: Path, tmp_path: Path, name: str,
                                             data: bytes, why: str):
    before = sorted(p.name for p in corpus.rglob("*"))
    src = tmp_path / name
    src.write_bytes(data)
    r = save_upload(src, corpus, name, known_ids=hash_index.documents.keys())
    assert not r.ok and "not added" in r.message and "\n" not in r.message
    assert sorted(p.name for p in corpus.rglob("*")) == before
    assert len(haitirag.load_index(hash_index.path).documents) == len(hash_index.documents)


def test_uploading_the_same_file_again_says_so(corpus: Path, tmp_path: Path):
    src = tmp_path / "harbour.md"
    src.write_text("---\ntitle: Harbour\n---\nThe harbour reopened.\n", encoding="utf-8")
    first = save_upload(src, corpus, "harbour.md")
    index = haitirag.build_index(corpus, tmp_path / "index", model="hash:64")
    again = save_upload(src, corpus, "harbour.md", known_ids=index.documents.keys())
    assert first.ok and again.ok and again.saved_as is None
    assert "already in the corpus as harbour.md" in again.message and "JSONL" not in again.message


@pytest.mark.parametrize(("dates", "sources", "why"), [
    (("March 2024", ""), None, "YYYY-MM-DD"),
    (("2024-13-45", ""), None, "YYYY-MM-DD"),
    (("2024-05-01", "2024-01-01"), None, "swap them"),
    (("", ""), [], "tick at least one source"),
])
def test_the_page_filters_say_what_to_fix(dates: tuple[str, str], sources: list[str] | None, why: str):
    shown = ["Met Desk", "Wire"]
    with pytest.raises(ValueError, match=why):
        web._filters(*dates, shown if sources is None else sources, shown, shown, True)
