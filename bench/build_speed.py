"""A whole build against the bare sentence-transformers encoder on the same chunk texts, side by side.

    python bench/build_speed.py [--corpus ../shared/eval/squad11/corpus.jsonl] [--docs 400] [--rounds 3]

Each round, in turn: ``build_index(..., full=True)`` of the first ``--docs`` documents of the corpus into a
new folder (reading, sentence splitting, chunking, embedding, BM25, writing; the model already loaded), and
``SentenceTransformer.encode`` of the very texts that build embedded (title + chunk, ``index.embed_text``),
same batch size and precision. The build embeds with what ``haitirag build`` uses (``embedding.build_embedder``:
the ONNX export on a CPU without bf16), or with ``--torch`` the sentence-transformers model itself. Prints
each stage's median seconds, and the build's throughput as a share of the bare encoder's (issue 10's target:
within 10 %).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import haitirag
from haitirag.embedding import SentenceTransformerEmbedder, build_embedder
from haitirag.index import embed_text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="../shared/eval/squad11/corpus.jsonl")
    ap.add_argument("--docs", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--torch", action="store_true", help="build with the sentence-transformers model too")
    args = ap.parse_args()
    lines = [line for line in Path(args.corpus).read_text(encoding="utf-8").splitlines() if line.strip()]
    bare = SentenceTransformerEmbedder(precision=args.precision)
    bare.encode(["warm up"])
    bare_model = bare.model
    emb = bare if args.torch else build_embedder()
    emb.encode(["warm up"])
    builds, bares, stages = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        corpus.write_text("\n".join(lines[: args.docs]) + "\n", encoding="utf-8")
        texts: list[str] = []
        for r in range(args.rounds):
            t0 = time.perf_counter()
            index = haitirag.build_index(corpus, Path(tmp) / f"index{r}", embedder=emb, full=True,
                                         batch_size=args.batch_size)
            builds.append(time.perf_counter() - t0)
            assert index.report is not None
            stages.append(dict(index.report.timings))
            texts = [embed_text(index.documents[c.doc_id].title, c.text) for c in index.chunks]
            import torch

            t0 = time.perf_counter()
            with torch.inference_mode():
                if bare.precision == "bf16":
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        bare_model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True)
                else:
                    bare_model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True)
            bares.append(time.perf_counter() - t0)
    n = len(texts)
    build, bare_s = statistics.median(builds), statistics.median(bares)
    print(f"{args.docs} documents of {args.corpus}, {n} chunks, precision {bare.precision}, batch "
          f"{args.batch_size}, build embedder {type(emb).__name__}, median of {args.rounds} rounds (build and "
          "bare encoder in turn)\n")
    print("| run | seconds | chunks/s | share of the bare encoder's throughput |")
    print("|---|---:|---:|---:|")
    print(f"| bare `SentenceTransformer.encode` | {bare_s:.1f} | {n / bare_s:.1f} | 1.00 |")
    print(f"| `build_index(full=True)`, {type(emb).__name__} | {build:.1f} | {n / build:.1f} | {bare_s / build:.2f} |")
    keys = [k for k in stages[0] if all(k in s for s in stages)]
    print("\nbuild stages, median seconds: " + json.dumps({k: round(statistics.median(s[k] for s in stages), 2)
                                                           for k in keys}))


if __name__ == "__main__":
    main()
