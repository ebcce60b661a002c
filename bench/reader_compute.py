"""How much arithmetic a question's reading is, against what this CPU can do: the floor under ``ask``'s latency.

    python bench/reader_compute.py --index IDX11 --questions ../shared/eval/squad11/questions-dev.jsonl \\
        [--sample 100] [--threads 2]

For ``--sample`` dev questions (fixed seed) the windows the reader reads (``Answerer.windows``, as ``ask`` does)
are tokenized and batched as ``Reader.read`` batches them (``reader.BATCH`` windows of similar length, padded),
and the reader's matrix products counted: per layer ``2 n (4 h^2 + 2 h i) + 4 n^2 h`` floating-point operations
for a sequence of ``n`` tokens (hidden size ``h``, feed-forward size ``i``; layer norms, softmax and GELU are left
out, so this is a floor). Then the same reading is timed on the runtime questions use (ONNX Runtime after
``haitirag export``), and this CPU's fp32 matrix-product rate is measured with numpy on the reader's own shapes
(the projections and feed-forward of one batch), ``--threads`` threads. Printed: tokens, GFLOP and reader time
per question, the rate achieved, and the least time that arithmetic can take at the measured fp32 rate, for one
question and for sixty at once (issue 11: twenty users asking three questions each).

``--bf16`` also reads every question's windows with the reader on torch, in fp32 and under bfloat16 autocast (one
after the other), and prints both times and how often bf16 changes the reading: the window with the best logit,
its span, and the largest logit difference. (bf16 is fast only where the CPU computes it natively: AMX.)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from typing import Any


def fastest(x: Any, w_h: Any, w_i: Any, w_o: Any, rounds: int = 30) -> float:
    """Seconds, best of ``rounds``, for one layer's products on a batch ``x`` (numpy or torch arrays): the four
    attention projections (``w_h``), and the feed-forward in (``w_i``) and out (``w_o``)."""
    xi = x @ w_i
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(4):
            x @ w_h
        x @ w_i
        xi @ w_o
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", required=True)
    ap.add_argument("--questions", required=True)
    ap.add_argument("--sample", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="compare the reader on torch in fp32 and bf16")
    args = ap.parse_args()
    os.environ.setdefault("HAITIRAG_THREADS", str(args.threads))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    import numpy as np

    import haitirag
    from haitirag import reader as rd
    from haitirag.answer import Answerer
    from haitirag.runtime import pad

    index = haitirag.load_index(args.index)
    answerer = Answerer(index)
    rdr = answerer.reader
    rng = random.Random(0)
    qs = [json.loads(line) for line in open(args.questions, encoding="utf-8")]
    qs = rng.sample([q for q in qs if not q.get("is_impossible")], args.sample)
    config = json.load(open(os.path.join(rd.resolve_model_path(rd.DEFAULT_MODEL), "config.json"), encoding="utf-8"))
    h, inter, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    _model, tok = rdr._load()
    rdr.read("warm up", ["The reader loads and runs once."])

    tokens, padded, flops, times, read = [], [], [], [], []
    if args.bf16:
        import torch

        pt = rd.Reader(onnx=False, threads=args.threads)
        pt.read("warm up", ["The reader loads and runs once."])
        pt_times: dict[str, list[float]] = {"fp32": [], "bf16": []}
        changed_window = changed_span = 0
        logit_diff = 0.0
    for q in qs:
        passages = index.search(q["question"], k=answerer.passages)
        windows = answerer.windows(q["question"], passages)
        texts = [index.documents[d].text[a:b] for d, a, b in windows]
        encs = tok.encode_batch([(q["question"], w) for w in texts])
        order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
        n_real = n_pad = 0
        f = 0.0
        for b in range(0, len(order), rd.BATCH):
            part = [encs[i] for i in order[b:b + rd.BATCH]]
            ids, _mask, _types = pad(part)
            n = ids.shape[1]
            n_real += sum(len(e.ids) for e in part)
            n_pad += n * len(part)
            f += len(part) * layers * (2 * n * (4 * h * h + 2 * h * inter) + 4 * n * n * h)
        t = time.perf_counter()
        rdr.read(q["question"], texts)
        times.append(time.perf_counter() - t)
        tokens.append(n_real)
        read.append(len(texts))
        if args.bf16:
            t = time.perf_counter()
            a = pt.read(q["question"], texts)
            pt_times["fp32"].append(time.perf_counter() - t)
            t = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                b16 = pt.read(q["question"], texts)
            pt_times["bf16"].append(time.perf_counter() - t)
            best_a = max(range(len(a)), key=lambda j: a[j].logit)
            best_b = max(range(len(b16)), key=lambda j: b16[j].logit)
            changed_window += best_a != best_b
            span_a, span_b = (a[best_a].start, a[best_a].end), (b16[best_b].start, b16[best_b].end)
            changed_span += best_a == best_b and span_a != span_b
            logit_diff = max(logit_diff, max(abs(x.logit - y.logit) for x, y in zip(a, b16, strict=True)))
        padded.append(n_pad)
        flops.append(f)

    # this CPU's fp32 matrix-product rate on the reader's shapes (a batch of 4 windows of the median length)
    n = int(statistics.median(padded)) // max(1, int(statistics.median(read)))
    rows = rd.BATCH * n
    x, w_h, w_i, w_o = (np.random.default_rng(0).standard_normal(s, dtype=np.float32)
                        for s in ((rows, h), (h, h), (h, inter), (inter, h)))
    gemm_flops = 2 * rows * (4 * h * h + 2 * h * inter)
    rate = gemm_flops / fastest(x, w_h, w_i, w_o)
    torch_rates = {}
    if args.bf16:  # the same products with torch, in fp32 and in bf16
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            torch_rates[name] = gemm_flops / fastest(*(torch.from_numpy(m).to(dtype) for m in (x, w_h, w_i, w_o)))

    p50_f, p50_t = statistics.median(flops), statistics.median(times)
    print(f"\n{args.sample} questions of {args.questions}, index {args.index} ({len(index):,} chunks); reader on "
          f"{rdr.runtime}, {args.threads} threads; {layers} layers, hidden {h}, feed-forward {inter}\n")
    print("| per question (median) | value |")
    print("|---|---:|")
    print(f"| windows read | {statistics.median(read):.0f} |")
    print(f"| tokens read (question + window, each window) | {statistics.median(tokens):.0f} |")
    print(f"| tokens with padding (batches of {rd.BATCH}) | {statistics.median(padded):.0f} |")
    print(f"| matrix products, GFLOP | {p50_f / 1e9:.1f} |")
    print(f"| reader time, ms (p50 / p90) | {1000 * p50_t:.0f} / {1000 * sorted(times)[int(0.9 * len(times))]:.0f} |")
    print(f"| rate achieved by the reader, GFLOP/s | {p50_f / p50_t / 1e9:.0f} |")
    print(f"| this CPU's fp32 matrix products (numpy, the reader's shapes), GFLOP/s | {rate / 1e9:.0f} |")
    print(f"| least time for those products at that rate, ms | {1000 * p50_f / rate:.0f} |")
    print(f"| sixty such questions (twenty users, three each): least time, s | {60 * p50_f / rate:.1f} |")
    if args.bf16:
        print(f"| the same products with torch, fp32 / bf16, GFLOP/s | {torch_rates['fp32'] / 1e9:.0f} / "
              f"{torch_rates['bf16'] / 1e9:.0f} |")
        print(f"\nThe reader on torch: fp32 p50 {1000 * statistics.median(pt_times['fp32']):.0f} ms, bf16 autocast p50 "
              f"{1000 * statistics.median(pt_times['bf16']):.0f} ms; bf16 chose another window for {changed_window} "
              f"and another span in the same window for {changed_span} of {len(qs)} questions; largest logit "
              f"difference {logit_diff:.2f}")


if __name__ == "__main__":
    sys.exit(main())
