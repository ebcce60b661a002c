"""How fast a question is answered: per stage, from a new command-line process, and for many users at once.

    python bench/ask_latency.py                                   # the seed corpus (corpus/)
    python bench/ask_latency.py --corpus ../shared/eval/squad11/corpus.jsonl --index IDX11 \\
        --questions ../shared/eval/squad11/questions-dev.jsonl --sample 200 --compare 1000

Builds (or reuses) the index, then prints tables (markdown):

1. **Stages**, per runtime (``onnx``: ONNX Runtime, what questions use after ``haitirag export``; ``torch``:
   sentence-transformers and torch in fp32) and thread count, on a quiet machine and with the other core
   busy (``--busy``: a second process spinning): question encode, search, answer (first stage + reader) and
   the total, p50/p90/p99 in ms. ``cold``: a question not asked before in this process (as a server sees
   it; what earlier questions cached stays); ``warm``: the same question again.
2. **Cold command line**: ``haitirag ask`` in a new process (import, load the index, load the models,
   answer), ``--cli`` runs with different questions.
3. **Users at once**: ``--users`` threads (sessions) each ask ``--per-user`` questions through the Python API
   at the same moment; p50/p99 per question and whether every answer equals the one-user answer.
   ``--page N``: the same with N ``gradio_client`` sessions on the page's ``/ask`` (a server started here).
4. **Same answers** (``--compare N``): N questions answered on both runtimes: identical answer text and
   citations, identical top-10 search results, and the largest difference in the reader's logit.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

SEED = [
    "Who signed the agreement for the deployment of police officers?",
    "Which court blocked Kenya's deployment?",
    "How many troops did Benin pledge to the mission?",
    "What is the population of Haiti?",
    "Who is Ariel Henry?",
    "Why did the United States decline to send troops?",
    "kenya police haiti",
    "What did Republican lawmakers say about the funding?",
    "How many countries pledged personnel?",
    "When did the gangs attack the prisons?",
]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


def opened(path: Path, runtime: str, threads: int) -> Any:
    """The index with the embedding model and the reader on ``runtime``."""
    from haitirag import runtime as rt
    from haitirag.answer import Answerer
    from haitirag.embedding import SentenceTransformerEmbedder
    from haitirag.index import Index
    from haitirag.reader import Reader
    from haitirag.store import read_manifest

    model = read_manifest(path)["model"]
    if runtime == "onnx":
        exported = rt.encoder_export(model)
        if exported is None:
            sys.exit("no up-to-date ONNX export: run `haitirag export` first")
        embedder: Any = rt.OnnxEmbedder(model, exported, threads=threads)
        reader = Reader(threads=threads)
        if reader.runtime != "onnx":
            sys.exit("the reader has no up-to-date ONNX export: run `haitirag export` first")
    else:
        import torch

        torch.set_num_threads(threads)
        embedder = SentenceTransformerEmbedder(model, precision="fp32")
        reader = Reader(threads=threads, onnx=False)
    index = Index.load(path, embedder=embedder)
    index._answerer = Answerer(index, reader=reader)
    return index


def stages(index: Any, questions: list[str], rounds: int) -> dict[str, dict[str, list[float]]]:
    """Per question: encode, search, answer (ms), once cold and ``rounds`` times warm."""
    answerer = index._answerer
    out: dict[str, dict[str, list[float]]] = {"cold": {}, "warm": {}}
    for q in questions:
        for run in ["cold"] + ["warm"] * rounds:
            t0 = time.perf_counter()
            answerer.ranker.question(q)
            t1 = time.perf_counter()
            passages = index.search(q, k=answerer.passages)
            t2 = time.perf_counter()
            answerer.answer(q, q, passages)
            t3 = time.perf_counter()
            for name, v in (("encode", t1 - t0), ("search", t2 - t1), ("answer", t3 - t2), ("total", t3 - t0)):
                out[run].setdefault(name, []).append(1000 * v)
    return out


class Busy:
    """A second process keeping one core busy."""

    def __enter__(self) -> Busy:
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()


def cold_cli(path: Path, questions: list[str]) -> list[float]:
    times = []
    for q in questions:
        t = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "haitirag", "ask", "--index", str(path), q],
                             capture_output=True, text=True, timeout=600, check=False)
        times.append(time.perf_counter() - t)
        if res.returncode != 0:
            sys.exit(f"haitirag ask failed: {res.stderr.strip()}")
    return times


def users(index: Any, questions: list[str], n: int, per_user: int) -> tuple[list[float], int, float]:
    """``n`` threads asking at once; latencies (ms), answers differing from one user's, wall seconds."""
    work = [[questions[(u * per_user + j) % len(questions)] for j in range(per_user)] for u in range(n)]
    alone = {q: index.ask(q) for q in dict.fromkeys(q for w in work for q in w)}
    index._answerer.ranker._q.clear()
    index._query_vecs.clear()
    lat: list[float] = []
    wrong = 0
    lock = threading.Lock()
    barrier = threading.Barrier(n)

    def session(qs: list[str]) -> None:
        nonlocal wrong
        barrier.wait()
        for q in qs:
            t = time.perf_counter()
            a = index.ask(q)
            ms = 1000 * (time.perf_counter() - t)
            with lock:
                lat.append(ms)
                wrong += (a.text, a.citations) != (alone[q].text, alone[q].citations)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=session, args=(w,)) for w in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lat, wrong, time.perf_counter() - t0


def page_users(index: Any, corpus: str, questions: list[str], n: int, per_user: int,
               concurrency: int = 0) -> tuple[list[float], int, float]:
    """``n`` gradio_client sessions asking the page's ``/ask`` at once; as ``users``."""
    import socket

    from gradio_client import Client

    from haitirag import web

    if concurrency:
        web.ASK_CONCURRENCY = concurrency
    app = web.make_app(web.ServedIndex(corpus, index.path, index))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    web.launch(app, port=port, block=False)
    url = f"http://127.0.0.1:{port}/"
    work = [[questions[(u * per_user + j) % len(questions)] for j in range(per_user)] for u in range(n)]
    alone = {q: index.ask(q).text for q in dict.fromkeys(q for w in work for q in w)}
    clients = [Client(url, verbose=False) for _ in range(n)]
    lat: list[float] = []
    wrong = 0
    lock = threading.Lock()
    barrier = threading.Barrier(n)

    def session(client: Any, qs: list[str]) -> None:
        nonlocal wrong
        barrier.wait()
        for q in qs:
            t = time.perf_counter()
            out = client.predict(q, [], None, "", "", True, api_name="/ask")
            ms = 1000 * (time.perf_counter() - t)
            with lock:
                lat.append(ms)
                wrong += out["text"] != alone[q]

    t0 = time.perf_counter()
    threads = [threading.Thread(target=session, args=(c, w)) for c, w in zip(clients, work, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    app.close()
    return lat, wrong, wall


def interleaved(cases: list[Any], sizes: list[int], rounds: int, run: Any) -> dict[int, list[float]]:
    """``run(case, n)`` timed for every case with each batch size ``n`` in turn (interleaved, so a machine that gets
    busier or quieter affects every size alike); ms per call."""
    out: dict[int, list[float]] = {n: [] for n in sizes}
    for _ in range(rounds):
        for case in cases:
            for n in sizes:
                t = time.perf_counter()
                run(case, n)
                out[n].append(1000 * (time.perf_counter() - t))
    return out


def reader_batches(index: Any, questions: list[str], sizes: list[int], rounds: int) -> dict[int, list[float]]:
    """The reader alone over each question's windows (``Answerer.windows``, as ``ask`` reads them)."""
    answerer = index._answerer
    cases = []
    for q in questions:
        answerer.ranker.question(q)
        windows = answerer.windows(q, index.search(q, k=answerer.passages))
        cases.append((q, [index.documents[d].text[s:e] for d, s, e in windows]))
    return interleaved(cases, sizes, rounds, lambda c, n: answerer.reader.read(c[0], c[1], batch_size=n))


def encode_batches(index: Any, questions: list[str], sizes: list[int], rounds: int) -> dict[int, list[float]]:
    """The first stage's model pass alone: each question's candidate sentences encoded (sentence and token
    vectors, ``embedding.encode_tokens``)."""
    from haitirag.embedding import encode_tokens

    answerer = index._answerer
    cases = [[index.documents[c.doc_id].text[c.start:c.end]
              for c in answerer.ranker.candidates(index.search(q, k=answerer.passages))] for q in questions]
    return interleaved(cases, sizes, rounds, lambda texts, n: encode_tokens(index.embedder, texts, batch_size=n))


def compare(onnx: Any, torch_index: Any, questions: list[str]) -> dict[str, Any]:
    import numpy as np

    diff_answer, diff_top, max_logit, min_cos = 0, 0, 0.0, 1.0
    for q in questions:
        a, b = onnx.ask(q), torch_index.ask(q)
        diff_answer += (a.text, a.citations, a.abstained, a.span) != (b.text, b.citations, b.abstained, b.span)
        la, lb = a.details.get("logit"), b.details.get("logit")
        if la is not None and lb is not None:
            max_logit = max(max_logit, abs(la - lb))
        va, vb = onnx.embed_query(q)[0], torch_index.embed_query(q)[0]
        min_cos = min(min_cos, float(np.dot(va, vb) / (np.linalg.norm(va) * np.linalg.norm(vb))))
        top_a = [p.chunk_id for p in onnx.search(q, k=10)]
        top_b = [p.chunk_id for p in torch_index.search(q, k=10)]
        diff_top += top_a != top_b
    return {"questions": len(questions), "answers differing": diff_answer, "top-10 differing": diff_top,
            "largest reader logit difference": round(max_logit, 6), "lowest question-vector cosine": round(min_cos, 6)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="corpus")
    ap.add_argument("--index", default="bench/out/seed")
    ap.add_argument("--questions", help="a question file to sample from instead of the seed questions")
    ap.add_argument("--sample", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3, help="warm repeats of each question (default: 3)")
    ap.add_argument("--runtimes", default="onnx,torch")
    ap.add_argument("--threads", default="1,2", help="threads per model call to measure (default: 1,2)")
    ap.add_argument("--busy", action="store_true", help="also measure with the other core busy")
    ap.add_argument("--cli", type=int, default=5, help="cold command-line runs (default: 5; 0: none)")
    ap.add_argument("--users", type=int, default=20, help="sessions at once (default: 20; 0: none)")
    ap.add_argument("--per-user", type=int, default=3)
    ap.add_argument("--user-threads", type=int, default=2, help="threads per model call for --users (default: 2)")
    ap.add_argument("--page", type=int, default=0, help="sessions at once on the page's /ask (default: 0: none)")
    ap.add_argument("--page-concurrency", type=int, default=0,
                    help="questions the page answers at once (default: 0: web.ASK_CONCURRENCY)")
    ap.add_argument("--reader-batch", type=int, default=0,
                    help="windows per reader call (default: 0: reader.BATCH)")
    ap.add_argument("--encode-batch", type=int, default=0,
                    help="candidate sentences per encoder call in the first stage (default: 0: ranker.ENCODE_BATCH)")
    ap.add_argument("--reader-ab", default="", metavar="N,M",
                    help="time the reader alone with these batch sizes, interleaved (e.g. 16,4)")
    ap.add_argument("--encode-ab", default="", metavar="N,M",
                    help="time the first stage's sentence encoding alone with these batch sizes (e.g. 64,8)")
    ap.add_argument("--compare", type=int, default=0, help="questions to answer on both runtimes (default: 0)")
    args = ap.parse_args()

    from haitirag import ranker
    from haitirag import reader as reader_module
    from haitirag.evaluate import open_eval_index

    if args.reader_batch:
        reader_module.BATCH = args.reader_batch
    if args.encode_batch:
        ranker.ENCODE_BATCH = args.encode_batch
    t0 = time.perf_counter()
    path = open_eval_index(args.corpus, args.index).path
    questions = list(SEED)
    pool = questions
    if args.questions:
        with open(args.questions, encoding="utf-8") as f:
            pool = [json.loads(line)["question"] for line in f if line.strip()]
        questions = random.Random(0).sample(pool, min(args.sample, len(pool)))
    print(f"index {path} ready in {time.perf_counter() - t0:.1f} s; {len(questions)} questions; "
          f"{os.cpu_count()} cores; reader batches of {reader_module.BATCH} windows, first-stage encoder batches of "
          f"{ranker.ENCODE_BATCH} sentences\n")

    if args.runtimes:
        print("| runtime | threads | other core | run | encode p50 | search p50 | answer p50 | total p50 | p90 | p99 |")
        print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|")
    for runtime in filter(None, args.runtimes.split(",")):
        for n in (int(t) for t in args.threads.split(",")):
            index = opened(path, runtime, n)
            index.ask("warm up the models")
            for busy in (False, True) if args.busy else (False,):
                index._answerer = type(index._answerer)(index, reader=index._answerer.reader)  # empty caches
                index._query_vecs.clear()
                if busy:
                    with Busy():
                        rows = stages(index, questions, args.rounds)
                else:
                    rows = stages(index, questions, args.rounds)
                for run, r in rows.items():
                    p = {k: statistics.median(v) for k, v in r.items()}
                    print(f"| {runtime} | {n} | {'busy' if busy else 'quiet'} | {run} | {p['encode']:.1f} "
                          f"| {p['search']:.1f} | {p['answer']:.0f} | **{p['total']:.0f}** "
                          f"| {pct(r['total'], 90):.0f} | {pct(r['total'], 99):.0f} |", flush=True)

    if args.cli:
        qs = random.Random(1).sample(pool, min(args.cli, len(pool)))
        times = cold_cli(path, qs)
        print(f"\ncold `haitirag ask` ({len(times)} new processes, different questions): median "
              f"**{statistics.median(times):.2f} s**, fastest {min(times):.2f} s, slowest {max(times):.2f} s")

    if args.users:
        index = opened(path, "onnx", args.user_threads)
        index.ask("warm up the models")
        lat, wrong, wall = users(index, questions, args.users, args.per_user)
        print(f"\n{args.users} sessions at once, {args.per_user} questions each (Python API, onnx, "
              f"{args.user_threads} threads per call): p50 {statistics.median(lat):.0f} ms, "
              f"p99 **{pct(lat, 99):.0f} ms**, {len(lat) / wall:.1f} questions/s; "
              f"answers different from one user's: {wrong}")

    if args.page:
        index = opened(path, "onnx", args.user_threads)
        index.ask("warm up the models")
        lat, wrong, wall = page_users(index, args.corpus, questions, args.page, args.per_user, args.page_concurrency)
        from haitirag import web

        print(f"\n{args.page} page sessions at once, {args.per_user} questions each (gradio_client, /ask, "
              f"{web.ASK_CONCURRENCY} answered at once, {args.user_threads} threads per call): p50 "
              f"{statistics.median(lat):.0f} ms, p99 **{pct(lat, 99):.0f} ms**, {len(lat) / wall:.1f} questions/s; "
              f"answers different from one user's: {wrong}")

    for spec, timed, what, digits in ((args.reader_ab, reader_batches, "reader alone", 0),
                                      (args.encode_ab, encode_batches, "candidate sentences encoded alone", 1)):
        if spec:
            index = opened(path, "onnx", 2)
            index.ask("warm up the models")
            res = timed(index, questions, [int(x) for x in spec.split(",")], args.rounds)
            print(f"\n{what}, " + ", ".join(f"batches of {n}: p50 {statistics.median(v):.{digits}f} ms, p90 "
                                            f"{pct(v, 90):.{digits}f} ms" for n, v in res.items()))

    if args.compare:
        qs = random.Random(2).sample(pool, min(args.compare, len(pool)))
        result = compare(opened(path, "onnx", 1), opened(path, "torch", 1), qs)
        print("\nsame answers, onnx vs torch (fp32): " + ", ".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
