"""Rows for the scale benches: real text made big, written straight through a store's ``write``."""

from __future__ import annotations

import random
import time

from haitirag.build import _manifest_fields
from haitirag.chunking import ChunkSettings
from haitirag.records import Chunk, Document

SOURCES = [f"Desk {i}" for i in range(10)]


def corpus_rows(paragraphs: list[dict], n: int, seed: int = 14) -> tuple[list[Document], list[Chunk]]:
    rng = random.Random(seed)
    docs, chunks = [], []
    for i in range(n):
        p = paragraphs[i % len(paragraphs)]
        words = p["text"].split()
        keep = [w for w in words if rng.random() > 0.1] or words
        text = " ".join(keep) + f" (copy {i // len(paragraphs)})"
        day = 18262 + (i * 7919) % 1826  # 2020-01-01 + up to 5 years
        date = time.strftime("%Y-%m-%d", time.gmtime(day * 86400))
        doc_id = f"d{i:07d}"
        docs.append(Document(doc_id=doc_id, text=text, title=p.get("title", ""), date=date,
                             source=SOURCES[i % len(SOURCES)], path=f"bench.jsonl#{doc_id}", sha256=f"{i:064x}"))
        chunks.append(Chunk(f"c{i:07d}", doc_id, text, 0, len(text), len(text) // 4))
    return docs, chunks


def write(store, docs, chunks, matrix, texts, model, index_type="hnsw") -> tuple[float, dict[str, float]]:  # type: ignore[no-untyped-def]
    laps: dict[str, float] = {}
    mark = [time.perf_counter()]

    def lap(stage: str) -> None:
        now = time.perf_counter()
        laps[stage] = laps.get(stage, 0.0) + now - mark[0]
        mark[0] = now

    fields = _manifest_fields(docs, chunks, int(matrix.shape[1]), model, "fp32", ChunkSettings(), "")
    sentences = {d.doc_id: [(0, len(d.text))] for d in docs}
    t0 = time.perf_counter()
    with store.lock():
        store.write(fields, docs, sentences, chunks, matrix, texts, range(len(chunks)), index_type, lap)
    return time.perf_counter() - t0, laps


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]
