"""The ONNX Runtime query path: the same vectors, readings and answers as torch, no torch import, safe fallbacks."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from haitirag import runtime
from haitirag.answer import Answerer
from haitirag.cli import main
from haitirag.embedding import DEFAULT_MODEL, SentenceTransformerEmbedder, make_embedder
from haitirag.errors import ModelError
from haitirag.index import Index
from haitirag.reader import READER_PATH, Reader

pytestmark = [pytest.mark.model]

EVAL = Path(__file__).parent.parent / "eval"
TEXTS = ["Who is Ariel Henry?", "   leading and trailing spaces   ", "kenya police haiti",
         "Le président kényan — William Ruto — a signé l'accord à Nairobi.", "word " * 400, "?"]


@pytest.fixture(scope="module")
def torch_embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(DEFAULT_MODEL, precision="fp32")


def _open(path: Path, onnx: bool) -> Index:
    embedder = make_embedder(DEFAULT_MODEL, onnx=True) if onnx else SentenceTransformerEmbedder(precision="fp32")
    index = Index.load(path, embedder=embedder)
    index._answerer = Answerer(index, reader=Reader(onnx=onnx))
    return index


def test_export_writes_each_model_once_with_the_weights_it_came_from(exported: list[Path]):
    encoder, reader = exported
    meta = json.loads(encoder.with_suffix(".json").read_text(encoding="utf-8"))
    assert meta["sources"]["weights"]["sha256"] == runtime._sha256(runtime._weights(
        Path(runtime.resolve_model_path(DEFAULT_MODEL))))
    assert meta["size"] == encoder.stat().st_size
    rmeta = json.loads(reader.with_suffix(".json").read_text(encoding="utf-8"))
    assert rmeta["sources"]["reader"]["sha256"] == Reader().meta["sha256"]
    stamps = [p.stat().st_mtime_ns for p in exported]
    assert runtime.export() == exported  # up to date: nothing written again
    assert [p.stat().st_mtime_ns for p in exported] == stamps


def test_onnx_vectors_equal_the_torch_ones(exported: list[Path], torch_embedder: SentenceTransformerEmbedder):
    onnx = make_embedder(DEFAULT_MODEL, onnx=True)
    assert isinstance(onnx, runtime.OnnxEmbedder)
    a, b = onnx.encode(TEXTS), torch_embedder.encode(TEXTS)
    assert a.shape == b.shape == (len(TEXTS), onnx.dimension)
    assert np.abs(a - b).max() < 1e-5
    assert (np.sum(a * b, axis=1) >= 0.9999).all()
    va, ta = onnx.encode_tokens(TEXTS)
    vb, tb = torch_embedder.encode_tokens(TEXTS)
    assert np.abs(va - vb).max() < 1e-5
    for (words_a, rows_a), (words_b, rows_b) in zip(ta, tb, strict=True):
        assert words_a == words_b
        assert np.abs(rows_a.astype(np.float32) - rows_b.astype(np.float32)).max() < 2e-3  # both float16
    vc, tc = onnx.encode_tokens(TEXTS, batch_size=2)  # other batches, other padding: the same vectors
    assert np.abs(vc - va).max() < 1e-5
    assert [w for w, _ in tc] == [w for w, _ in ta]


def test_onnx_says_what_fits_as_torch_does(exported: list[Path], torch_embedder: SentenceTransformerEmbedder):
    onnx = make_embedder(DEFAULT_MODEL, onnx=True)
    for n in (100, 250, 254, 255, 256, 300):
        text = " ".join(["word"] * n)
        assert onnx.fits(text) == torch_embedder.fits(text), n


def test_onnx_reader_reads_as_the_torch_reader(exported: list[Path]):
    windows = ["Kenya's High Court blocked the deployment in January.",
               "Benin pledged 2,000 troops. The United States declined to send soldiers.",
               "Nothing here is about the question at all, only the weather in Nairobi."]
    onnx, torch_reader = Reader(), Reader(onnx=False)
    assert onnx.runtime == "onnx" and torch_reader.runtime == "torch"
    for question in ("Which court blocked the deployment?", "How many troops did Benin pledge?"):
        for a, b in zip(onnx.read(question, windows), torch_reader.read(question, windows), strict=True):
            assert (a.start, a.end) == (b.start, b.end)
            assert abs(a.logit - b.logit) < 1e-4


def test_answers_are_identical_on_the_seed_questions(exported: list[Path], seed_index: Index):
    asked: list[tuple[str, list[str]]] = []  # (question, the conversation before it)
    for f in ("seed-questions.jsonl", "seed-questions-users.jsonl"):
        for line in (EVAL / f).read_text(encoding="utf-8").splitlines():
            item = json.loads(line) if line.strip() else {}
            turns = [t["question"] for t in item.get("turns", [item] if "question" in item else [])]
            asked += [(q, turns[:i]) for i, q in enumerate(turns)]
    assert len(asked) >= 25
    onnx, torch_index = _open(seed_index.path, True), _open(seed_index.path, False)
    assert isinstance(onnx.embedder, runtime.OnnxEmbedder) and onnx._answerer.reader.runtime == "onnx"
    for q, history in asked:
        a, b = onnx.ask(q, history), torch_index.ask(q, history)
        assert (a.text, a.citations, a.abstained, a.span) == (b.text, b.citations, b.abstained, b.span), q
        assert abs(a.score - b.score) < 1e-5
        assert [p.chunk_id for p in onnx.search(q, k=10)] == [p.chunk_id for p in torch_index.search(q, k=10)]


def test_a_question_from_the_command_line_imports_neither_torch_nor_scipy(exported: list[Path], seed_index: Index):
    code = ("import json, sys\nfrom haitirag.cli import main\n"
            f"rc = main(['ask', '--index', {str(seed_index.path)!r}, 'How many troops did Benin pledge?'])\n"
            "print(json.dumps({m: m in sys.modules for m in ('torch', 'scipy', 'sentence_transformers', "
            "'transformers', 'bm25s')}), rc)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False,
                         env={**os.environ})
    assert res.returncode == 0, res.stderr
    *answer, last = res.stdout.strip().splitlines()
    loaded, rc = last.rsplit(" ", 1)
    assert rc == "0" and "2,000" in "\n".join(answer)
    assert json.loads(loaded) == dict.fromkeys(("torch", "scipy", "sentence_transformers", "transformers",
                                                "bm25s"), False)


def test_damaged_reader_weights_are_refused_even_with_an_export(exported: list[Path], tmp_path: Path):
    path = tmp_path / "reader.safetensors"
    shutil.copy(READER_PATH, path)
    shutil.copy(READER_PATH.with_suffix(".json"), path.with_suffix(".json"))
    assert Reader(path).runtime == "onnx"  # the same weights elsewhere: the export serves them
    seen = path.stat().st_mtime_ns
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(seen + 10**9, seen + 10**9))  # a later edit (whatever the file system's resolution)
    with pytest.raises(ModelError, match="damaged"):
        Reader(path).read("Who?", ["Anna built it."])


def test_a_copy_of_the_weights_is_hashed_once_then_known_by_its_size_and_mtime(exported: list[Path],
                                                                              tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "reader.safetensors"  # as another clone of the project has it
    shutil.copy(READER_PATH, path)
    shutil.copy(READER_PATH.with_suffix(".json"), path.with_suffix(".json"))
    sha = Reader(path).meta["sha256"]
    assert runtime.reader_export(path, sha) == exported[1]  # hashed: the same bytes

    def no_hashing(p: Path) -> str:
        raise AssertionError(f"hashed {p} again")

    monkeypatch.setattr(runtime, "_sha256", no_hashing)
    assert runtime.reader_export(path, sha) == exported[1]


def test_a_damaged_export_is_not_used(exported: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      caplog: pytest.LogCaptureFixture):
    for p in exported:
        for f in (p, p.with_suffix(".json")):
            shutil.copy(f, tmp_path / f.name)
    monkeypatch.setenv("HAITIRAG_CACHE", str(tmp_path))
    assert runtime.encoder_export(DEFAULT_MODEL) == tmp_path / exported[0].name
    with open(tmp_path / exported[0].name, "r+b") as f:
        f.truncate(1000)
    with caplog.at_level(logging.WARNING):
        assert runtime.encoder_export(DEFAULT_MODEL) is None
        assert isinstance(make_embedder(DEFAULT_MODEL, onnx=True), SentenceTransformerEmbedder)
    assert "damaged" in caplog.text and "haitirag export" in caplog.text


def test_without_onnxruntime_questions_run_on_torch(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(runtime, "available", lambda: False)
    assert isinstance(make_embedder(DEFAULT_MODEL, onnx=True), SentenceTransformerEmbedder)
    assert Reader().runtime == "torch"


def test_a_bad_thread_setting_is_a_one_line_error_naming_the_fix(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HAITIRAG_THREADS", "two")
    with pytest.raises(ModelError, match="HAITIRAG_THREADS=1") as err:
        runtime.threads()
    assert "\n" not in str(err.value)


def test_export_command_prints_the_files(exported: list[Path], capsys: pytest.CaptureFixture[str]):
    assert main(["export"]) == 0
    assert capsys.readouterr().out.split() == [str(p) for p in exported]


def test_builds_embed_on_onnx_without_bf16_and_the_vectors_are_torchs(exported: list[Path], tmp_path: Path,
                                                                       torch_embedder: SentenceTransformerEmbedder,
                                                                       monkeypatch: pytest.MonkeyPatch):
    from haitirag import embedding
    from haitirag.build import build_index
    from haitirag.index import embed_text

    monkeypatch.setattr(embedding, "cpu_has_bf16", lambda: True)
    assert isinstance(embedding.build_embedder(DEFAULT_MODEL), SentenceTransformerEmbedder)  # bf16: torch
    assert isinstance(embedding.build_embedder("hash:16"), embedding.HashEmbedder)
    monkeypatch.setattr(embedding, "cpu_has_bf16", lambda: False)
    assert isinstance(embedding.build_embedder(DEFAULT_MODEL), runtime.OnnxEmbedder)
    corpus = Path(__file__).parent.parent / "corpus"
    index = build_index(corpus, tmp_path / "index")  # the default build embedder
    assert index.manifest["precision"] == "fp32"
    from haitirag.vectors import matrix

    built = matrix(index.vectors)
    texts = [embed_text(index.documents[c.doc_id].title, c.text) for c in index.chunks]
    cos = (built * torch_embedder.encode(texts)).sum(axis=1)
    assert len(texts) >= 2 and cos.min() > 0.9999
