from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import haitirag
from haitirag.chunking import Chunker, ChunkSettings, split_sentences
from haitirag.corpus import load_corpus
from haitirag.embedding import HashEmbedder
from haitirag.records import Document

from .conftest import FIXTURE_CORPUS, HASH_MODEL


def check_chunks(doc: Document, chunker: Chunker) -> None:
    chunks = chunker.chunk(doc)
    assert chunks, doc.path
    for c in chunks:
        assert doc.text[c.start:c.end] == c.text
        assert c.n_tokens == chunker.count(c.text) <= chunker.settings.max_tokens
        assert c.text == c.text.strip()
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)
    # every sentence is in some chunk
    for s, e in chunker.sentences(doc):
        assert any(c.start <= s and e <= c.end for c in chunks)


@pytest.mark.parametrize("max_tokens, overlap", [(200, 32), (40, 10), (16, 0)])
def test_fixture_corpus_chunks_round_trip_and_fit(max_tokens: int, overlap: int):
    chunker = Chunker(ChunkSettings(max_tokens=max_tokens, overlap_tokens=overlap))
    for doc in load_corpus(FIXTURE_CORPUS).documents:
        check_chunks(doc, chunker)


def test_sentences_are_whole_and_overlap_repeats_a_sentence():
    doc = next(d for d in load_corpus(FIXTURE_CORPUS).documents if d.path == "haiti_report.txt")
    spans = split_sentences(doc.text)
    sentences = [doc.text[s:e] for s, e in spans]
    assert "However, Kenya's deployment was blocked by its High Court in January, deeming it unconstitutional." \
        in sentences
    chunks = Chunker(ChunkSettings(max_tokens=80, overlap_tokens=40)).chunk(doc)
    assert len(chunks) > 3
    starts = {s for s, _ in spans}
    chunker = Chunker(ChunkSettings(max_tokens=80, overlap_tokens=40))
    for a, b in itertools.pairwise(chunks):
        assert b.start in starts  # chunks begin on a sentence
        last = max((s, e) for s, e in spans if e <= a.end)
        if chunker.count(doc.text[last[0]:last[1]]) + 1 <= 40:
            assert b.start < a.end  # a short last sentence is repeated in the next chunk


def test_long_sentence_is_cut_at_words():
    text = "Title\n\n" + " ".join(f"word{i}" for i in range(600)) + "."
    doc = Document("d", text)
    chunker = Chunker(ChunkSettings(max_tokens=50, overlap_tokens=0))
    check_chunks(doc, chunker)


def test_model_limit_is_respected():
    text = " ".join(["alpha beta gamma delta."] * 200)
    doc = Document("d", text)
    emb = HashEmbedder(max_words=30)
    chunker = Chunker(ChunkSettings(max_tokens=400, overlap_tokens=0), fits=lambda d, t: emb.fits(t))
    chunks = chunker.chunk(doc)
    assert all(emb.fits(c.text) and doc.text[c.start:c.end] == c.text for c in chunks)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=80),
                min_size=1, max_size=12), st.integers(8, 60))
def test_property_spans_round_trip(parts: list[str], max_tokens: int):
    text = ". ".join(parts)
    doc = Document("d", text)
    chunker = Chunker(ChunkSettings(max_tokens=max_tokens, overlap_tokens=max_tokens // 4))
    for c in chunker.chunk(doc):
        assert doc.text[c.start:c.end] == c.text
        assert c.n_tokens <= max_tokens


@pytest.mark.parametrize("text", ["0. \x1f0. 0", "Hello there.\x00 Next one! And more.", "\x1b[31mRed.\x1b[0m Plain."])
def test_control_characters_do_not_break_the_splitter(text: str):
    spans = split_sentences(text)
    assert spans and all(text[s:e].strip() == text[s:e] for s, e in spans)
    def visible(t: str) -> str:
        return "".join(c for c in t if c.isprintable() and not c.isspace())

    assert visible("".join(text[s:e] for s, e in spans)) == visible(text)


def test_a_huge_paragraph_is_split_in_pieces_with_the_same_sentences_and_moving_progress(
        monkeypatch: pytest.MonkeyPatch):
    from haitirag import chunking

    from .conftest import SEED_CORPUS

    report = next(SEED_CORPUS.glob("*.txt")).read_text(encoding="utf-8")
    text = " ".join([" ".join(report.split())] * 5)  # one paragraph of about 11,000 characters, no blank line
    monkeypatch.setattr(chunking, "SLICE", 10**9)
    whole = split_sentences(text)
    monkeypatch.setattr(chunking, "SLICE", 2_000)
    seen: list[int] = []
    pieces = split_sentences(text, seen.append)
    assert pieces == whole and len(whole) > 50
    assert len(seen) >= 4 and seen == sorted(seen) and seen[-1] == len(text)  # progress during the paragraph
    assert all(text[s:e].strip() == text[s:e] for s, e in pieces)


SAMPLE = FIXTURE_CORPUS.parent / "sentences.jsonl"  # hand-checked boundaries (bench/splitter.py, LICENSE-squad.md)


def test_sentence_boundaries_on_the_hand_checked_sample():
    """The splitter finds the sample's sentence starts (news with abbreviations, initials, times and quotes;
    SQuAD paragraphs): F1 as measured for Punkt by bench/splitter.py (pysbd, the previous splitter: 0.981)."""
    tp = fp = fn = 0
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        spans = split_sentences(rec["text"])
        assert all(rec["text"][a:b] == rec["text"][a:b].strip() and a < b for a, b in spans)
        got, want = {a for a, _ in spans[1:]}, set(rec["starts"])
        tp, fp, fn = tp + len(got & want), fp + len(got - want), fn + len(want - got)
    assert tp + fn >= 300
    assert 2 * tp / (2 * tp + fp + fn) >= 0.985


def test_an_index_split_by_another_splitter_is_rechunked(hash_index, corpus):
    from haitirag.build import index_status
    from haitirag.chunking import SPLITTER

    manifest_path = hash_index.path / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["chunking"]["splitter"] == SPLITTER
    assert not index_status(corpus, hash_index.path, model=HASH_MODEL).full
    del manifest["chunking"]["splitter"]  # as an index written before the splitter was recorded (pysbd)
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    status = index_status(corpus, hash_index.path, model=HASH_MODEL)
    assert status.full and "splitter" in status.reason
    index = haitirag.build_index(corpus, hash_index.path, model=HASH_MODEL)
    assert index.report is not None and index.report.full and index.report.chunks_reused == 0
    assert index.manifest["chunking"]["splitter"] == SPLITTER


def edits_of(text: str) -> list[str]:
    """``text`` edited as users edit reports: a sentence appended, one paragraph changed, one inserted, one deleted,
    the title changed, a paragraph split in two."""
    paras = text.split("\n\n")
    mid = len(paras) // 2
    return [
        text + " An editor added this sentence.",
        "\n\n".join([*paras[:mid], paras[mid].replace(".", ", officials said.", 1), *paras[mid + 1:]]),
        "\n\n".join([*paras[:mid], "A new paragraph. It has two sentences.", *paras[mid:]]),
        "\n\n".join(paras[:mid] + paras[mid + 1:]),
        "A new headline\n\n" + "\n\n".join(paras[1:]),
        text.replace(". ", ".\n\n", 1),
    ]


@pytest.mark.parametrize("max_tokens, overlap", [(200, 32), (30, 8)])
def test_an_edit_keeps_the_unchanged_paragraphs_sentences_and_chunks_as_a_fresh_split(
        max_tokens: int, overlap: int, monkeypatch: pytest.MonkeyPatch):
    """``Chunker.split`` with the previous version gives what splitting the new text from scratch gives, and
    runs the sentence splitter only on paragraphs that changed (long sentences cut as before: max_tokens 30)."""
    from haitirag import chunking

    from .conftest import SEED_CORPUS

    report = next(SEED_CORPUS.glob("*.txt")).read_text(encoding="utf-8")
    old = Document("r", report * 2)  # (paragraphs repeated: the same text twice)
    chunker = Chunker(ChunkSettings(max_tokens=max_tokens, overlap_tokens=overlap))
    previous = (old.text, chunker.sentences(old))
    assert len(old.text.split("\n\n")) > 10
    read: list[str] = []
    real = chunking._sentences

    def spy(plain: str, p0: int, p1: int) -> list[tuple[int, int]]:
        read.append(plain[p0:p1])
        return real(plain, p0, p1)

    counts = []
    for text in edits_of(old.text):
        doc = Document("r", text)
        monkeypatch.setattr(chunking, "_sentences", real)
        fresh = chunker.sentences(doc), chunker.chunk(doc)
        read.clear()
        monkeypatch.setattr(chunking, "_sentences", spy)
        assert chunker.split(doc, previous=previous) == fresh
        before = {p.strip() for p in old.text.split("\n\n")}
        assert all(piece not in before for piece in read), read  # only new paragraphs were split
        counts.append(len(read))
    assert counts[0] == 1 and counts[3] == 0 and max(counts) <= 2  # appended: the last paragraph; deleted: none


def test_previous_sentences_that_do_not_cover_a_paragraph_are_not_reused():
    doc = Document("r", "First sentence here. Second one.\n\nA paragraph. Another.")
    chunker = Chunker()
    for spans in ([(0, 5)], [(0, 20)], [(0, 20), (21, 32), (34, 46)], [(34, 46), (47, 55)], [(0, 60)],
                  [(0, 25), (21, 32), (34, 46), (47, 55)]):
        assert chunker.split(doc, previous=(doc.text, spans)) == (chunker.sentences(doc), chunker.chunk(doc))
