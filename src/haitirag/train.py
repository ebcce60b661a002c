"""Train the reader (``reader.py``) on SQuAD v1.1 train: ``python -m haitirag.train --help``.

Examples, for each sampled training question (sentences split with the pipeline's own splitter):

- answerable: the window of the sentence holding the answer (with its neighbours), the answer span in it;
  sometimes also a window where that sentence is at the edge (as at question time, where windows overlap);
- unanswerable (target: the [CLS] token): a window of the same paragraph that does not hold the answer, and
  the best BM25-retrieved window of another paragraph (mostly of the same article) that does not hold it;
- SQuAD 2.0-style unanswerable (``swap_rate``): the question with one of its names or numbers that the
  answer window contains swapped for another of the same kind from the same article ("How many Haitian
  police officers..." against a sentence about Kenyan ones), paired with the answer window.

``--init`` continues from a trained reader and ``--skip`` leaves out the first questions of the seeded
sample, so a second stage trains on questions the first never saw.

``--windows N`` adds the windows ``ask`` itself reads for N training questions (retrieval over the whole
training file, then the first stage): the answering window among its real competitors, which the
hand-picked negatives above only approximate. It needs the training file indexed once: ``--export DIR``,
then ``haitirag build --corpus DIR/corpus.jsonl --index DIR/index``. ``--windows-unanswerable RATE`` asks
that share of them as if their paragraph were not indexed: the windows then read are all "no answer"
examples, the unanswerable questions SQuAD v1.1 train lacks, among the passages most like them.

The model is trained with ``transformers.Trainer`` (span cross-entropy, SQuAD 2.0-style null answer at
[CLS]); the word-embedding matrix stays frozen and is not shipped. ``--eval`` reports exact-match / F1 of
the best span over the gold paragraph's windows on SQuAD v1.1 dev questions (the reader given the
paragraph, as DrQA's reader is measured), a set the training never sees.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .reader import FROZEN, MAX_LENGTH, Reader, build_model, load_tokenizer, sha256_file, window_bounds

__all__ = ["Example", "export_corpus", "make_examples", "retrieved_examples", "train", "trained_on"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Example:
    question: str
    window: str
    answer_start: int | None  # character offsets into window; None: the window does not answer
    answer_end: int | None = None


def read_paragraphs(path: str | Path) -> Iterator[dict[str, Any]]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


_ENTITY = re.compile(r"\b[A-Z][\w'-]*(?: (?:of |the |de )?[A-Z][\w'-]*)*|\b\d[\d,]*(?:\.\d+)?\b")


def _kind(text: str) -> str:
    if text[0].isdigit():
        return "year" if re.fullmatch(r"1\d{3}|20\d{2}", text) else "number"
    return f"name{min(text.count(' ') + 1, 3)}"


def article_entities(paragraphs: Sequence[dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """Per article title: its names and numbers, by kind (year, number, one-, two-, 3+-word name)."""
    out: dict[str, dict[str, set[str]]] = {}
    for p in paragraphs:
        by_kind = out.setdefault(p.get("title", ""), {})
        for m in _ENTITY.finditer(p["context"]):
            before = p["context"][:m.start()].rstrip()
            if m.group()[0].isdigit() or (before and before[-1] not in '.!?"\'(:;'):  # not sentence-initial
                by_kind.setdefault(_kind(m.group()), set()).add(m.group())
    return {t: {k: sorted(v) for k, v in d.items()} for t, d in out.items()}


def swap_entity(question: str, window: str, answer: str, entities: dict[str, list[str]],
                rng: random.Random) -> str | None:
    """The question with one name or number it shares with ``window`` replaced by another of the article's
    of the same kind that the window does not contain; None when there is none to swap."""
    spans = [m for m in _ENTITY.finditer(question) if m.start() > 0 and m.group() in window
             and m.group() not in answer and answer not in m.group()]
    if not spans:
        return None
    m = rng.choice(spans)
    low = _norm(window)
    options = [e for e in entities.get(_kind(m.group()), []) if e != m.group() and _norm(e) not in low
               and _norm(e) not in _norm(question)]
    if not options:
        return None
    return question[:m.start()] + rng.choice(options) + question[m.end():]


def make_examples(paragraphs: Sequence[dict[str, Any]], questions: int, seed: int = 0,
                  edge_rate: float = 0.25, skip: int = 0, far_rate: float = 1.0,
                  swap_rate: float = 0.0) -> list[Example]:
    """Training examples for ``questions`` randomly sampled questions (all when there are fewer), after
    leaving out the sample's first ``skip``."""
    import bm25s

    from .chunking import split_sentences

    rng = random.Random(seed)
    sents = [split_sentences(p["context"]) for p in paragraphs]
    flat = [(pi, si) for pi, ss in enumerate(sents) for si in range(len(ss))]
    corpus = [paragraphs[pi]["context"][slice(*sents[pi][si])] for pi, si in flat]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False)

    pool = [(pi, q) for pi, p in enumerate(paragraphs) for q in p.get("qas", []) if q.get("answers")]
    rng.shuffle(pool)
    pool = pool[skip:skip + questions]
    entities = article_entities(paragraphs) if swap_rate > 0 else {}
    hits, _ = retriever.retrieve(bm25s.tokenize([q["question"] for _, q in pool], stopwords="en",
                                                show_progress=False), k=min(8, len(corpus)), show_progress=False)
    out: list[Example] = []
    for (pi, q), row in zip(pool, hits, strict=True):
        ctx, ss = paragraphs[pi]["context"], sents[pi]
        ans = q["answers"][0]
        a0 = int(ans["answer_start"])
        a1 = a0 + len(ans["text"])
        if ctx[a0:a1] != ans["text"]:
            continue
        first = next((i for i, (s, e) in enumerate(ss) if s <= a0 < e), None)
        last = next((i for i, (s, e) in enumerate(ss) if s < a1 <= e), None)
        if first is None or last is None or last - first > 1:
            continue

        def positive(lo: int, hi: int, ctx: str = ctx, ss: list[tuple[int, int]] = ss, a0: int = a0,
                     a1: int = a1, question: str = q["question"]) -> Example:
            w0, w1 = ss[lo][0], ss[hi][1]
            return Example(question, ctx[w0:w1], a0 - w0, a1 - w0)

        out.append(positive(max(0, first - 1), min(len(ss) - 1, last + 1)))
        if rng.random() < edge_rate and len(ss) > 2:
            lo = first if rng.random() < 0.5 else max(0, last - 2)
            out.append(positive(lo, min(len(ss) - 1, max(last, lo + 2))))
        answer = _norm(ans["text"])
        if swap_rate > 0 and rng.random() < swap_rate:
            w0, w1 = ss[max(0, first - 1)][0], ss[min(len(ss) - 1, last + 1)][1]
            swapped = swap_entity(q["question"], ctx[w0:w1], ans["text"],
                                  entities.get(paragraphs[pi].get("title", ""), {}), rng)
            if swapped:
                out.append(Example(swapped, ctx[w0:w1], None))
        far = [i for i in range(len(ss)) if i < first - 2 or i > last + 2]
        if far and (far_rate >= 1 or rng.random() < far_rate):
            w0, w1 = window_bounds(ss, rng.choice(far))
            if answer not in _norm(ctx[w0:w1]):
                out.append(Example(q["question"], ctx[w0:w1], None))
        for hit in row:
            hpi, hsi = flat[int(hit)]
            if hpi == pi:
                continue
            w0, w1 = window_bounds(sents[hpi], hsi)
            text = paragraphs[hpi]["context"][w0:w1]
            if answer not in _norm(text):
                out.append(Example(q["question"], text, None))
                break
    rng.shuffle(out)
    return out


def _find(window: str, answers: Sequence[str]) -> tuple[int, int] | None:
    """Character span of the first gold answer found in ``window`` (as written, else ignoring case)."""
    low = window.lower()
    for exact in (True, False):
        for a in (a for a in answers if a.strip()):
            i = window.find(a) if exact else low.find(a.lower())
            if i >= 0:
                return i, i + len(a)
    return None


def export_corpus(train_file: str | Path, out: str | Path) -> tuple[Path, Path]:
    """The training file in the development sets' format: ``corpus.jsonl`` (one paragraph a document, id
    ``<title>#p<i>``) and ``questions.jsonl`` (with ``gold_ids``), so that ``haitirag build`` can index it
    and ``retrieved_examples`` read the windows ``ask`` would read for training questions."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seen: dict[str, int] = {}
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as fc, \
            open(out / "questions.jsonl", "w", encoding="utf-8") as fq:
        for p in read_paragraphs(train_file):
            title = str(p.get("title", ""))
            i = seen[title] = seen.get(title, -1) + 1
            doc = f"{title}#p{i}"
            fc.write(json.dumps({"id": doc, "title": title.replace("_", " "), "text": p["context"],
                                 "article": title, "paragraph_index": i}) + "\n")
            for q in p.get("qas", []):
                answers = list(dict.fromkeys(a["text"] for a in q.get("answers", []) if a["text"].strip()))
                if answers:
                    fq.write(json.dumps({"id": q["id"], "question": q["question"], "answers": answers,
                                         "gold_ids": [doc], "is_impossible": False, "article": title}) + "\n")
    return out / "corpus.jsonl", out / "questions.jsonl"


def retrieved_examples(index_path: str | Path, questions_file: str | Path, part: int, parts: int = 4,
                       negatives: int = 6, sample: int | None = None, seed: int = 0,
                       unanswerable: float = 0.0) -> tuple[list[Example], list[str]]:
    """Examples from the windows the answerer reads at question time, for the development questions of the
    articles in ``part`` (``evaluate.article_part``; ``parts=1``: every article), and those articles;
    ``sample``: only the questions of whole articles drawn with ``seed`` until there are that many.
    ``unanswerable``: the share of the answerable questions asked as if their gold paragraph were not indexed
    (its passages dropped from the retrieved ones): every window then read that does not hold the answer
    text is a "no answer" example (up to ``negatives``), the question a user asks of a corpus that does not
    say, met among the passages most like it.

    For each question: hybrid retrieval, then the first stage's best windows (``Answerer.windows``), as
    ``ask`` reads them. A window of a gold paragraph holding a gold answer gives that span; a window holding
    no gold answer is a "no answer" example (up to ``negatives`` a question, best first; two for an
    answerable question). SQuAD 2.0's unanswerable questions, written to resemble a paragraph of their
    article, make the hard negatives that SQuAD v1.1 train cannot.
    """
    from . import load_index
    from .answer import Answerer
    from .evaluate import article_part, contains_answer

    recs = [r for r in read_paragraphs(questions_file) if article_part(str(r.get("article", "")), parts) == part]
    if sample is not None and sample < len(recs):
        # whole articles, drawn with seed until there are enough questions: an article's questions retrieve
        # mostly its own paragraphs, whose sentences the first stage then encodes once (190 -> ~40 ms a question)
        arts = sorted({str(r.get("article", "")) for r in recs})
        random.Random(seed).shuffle(arts)
        count = Counter(str(r.get("article", "")) for r in recs)
        drawn: set[str] = set()
        total = 0
        for art in arts:
            if total >= sample:
                break
            drawn.add(art)
            total += count[art]
        recs = sorted((r for r in recs if str(r.get("article", "")) in drawn),
                      key=lambda r: (str(r.get("article", "")), str(r.get("gold_ids"))))
    index = load_index(index_path)
    answerer = Answerer(index)
    rng = random.Random(seed)
    out: list[Example] = []
    t0 = time.time()
    for n, r in enumerate(recs, 1):
        question, gold = r["question"], set(r.get("gold_ids") or ())
        answers = [a for a in r.get("answers") or [] if a.strip()]
        answerer.ranker.question(question)  # its vector, handed to the search as at question time
        hide = bool(answers and gold) and rng.random() < unanswerable
        passages = answerer.retrieve(question, answerer.passages + (len(gold) if hide else 0))
        if hide:
            passages = [p for p in passages if p.doc_id not in gold][:answerer.passages]
        negs = []
        for d, a, b in answerer.windows(question, passages):
            text = index.documents[d].text[a:b]
            if not answers or not contains_answer(text, answers):
                negs.append(Example(question, text, None))
            elif d in gold and (span := _find(text, answers)) is not None:
                out.append(Example(question, text, *span))
        out.extend(negs[:negatives if not answers or hide else 2])
        if n % 250 == 0 or n == len(recs):
            log.info("questions: %d / %d read, %d examples, %.0f s", n, len(recs), len(out),
                     time.time() - t0)
    return out, sorted({str(r.get("article", "")) for r in recs})


def _counts(examples: Sequence[Example]) -> dict[str, int]:
    return {"examples": len(examples), "answerable_examples": sum(e.answer_start is not None for e in examples)}


def trained_on(meta: dict[str, Any]) -> set[str]:
    """The development articles a reader (or a reader it continued from) was trained on (``--dev-part``): they
    are left out of its calibration and of every figure reported for it."""
    out: set[str] = set()
    training = meta.get("training")
    while isinstance(training, dict):
        out |= set((training.get("dev") or {}).get("articles") or ())
        training = training.get("previous")
    return out


def encode_examples(tok: Any, examples: Sequence[Example]) -> list[dict[str, Any]]:
    """Token ids and start/end token targets (0, the [CLS] token, when the window does not answer)."""
    feats = []
    encs = tok.encode_batch([(e.question, e.window) for e in examples])
    for ex, enc in zip(examples, encs, strict=True):
        s_tok = e_tok = 0
        if ex.answer_start is not None and ex.answer_end is not None:
            ctx = [i for i, sid in enumerate(enc.sequence_ids) if sid == 1]
            starts = [i for i in ctx if enc.offsets[i][0] <= ex.answer_start < enc.offsets[i][1]
                      or enc.offsets[i][0] >= ex.answer_start]
            ends = [i for i in ctx if enc.offsets[i][1] <= ex.answer_end]
            if not starts or not ends or ends[-1] < starts[0]:
                continue  # the answer was truncated away
            s_tok, e_tok = starts[0], ends[-1]
        feats.append({"input_ids": enc.ids, "token_type_ids": enc.type_ids, "start_positions": s_tok,
                      "end_positions": e_tok})
    return feats


def collate(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    import torch

    n = max(len(b["input_ids"]) for b in batch)
    ids = torch.zeros((len(batch), n), dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for j, b in enumerate(batch):
        m = len(b["input_ids"])
        ids[j, :m] = torch.tensor(b["input_ids"])
        types[j, :m] = torch.tensor(b["token_type_ids"])
        mask[j, :m] = 1
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask,
            "start_positions": torch.tensor([b["start_positions"] for b in batch]),
            "end_positions": torch.tensor([b["end_positions"] for b in batch])}


def save(model: Any, out: Path, meta: dict[str, Any]) -> Path:
    """``reader.safetensors`` (fine-tuned tensors, float16, no word embeddings) and ``reader.json``."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").half().contiguous() for k, v in model.state_dict().items()
               if k != FROZEN and not k.endswith("position_ids")}
    path = out / "reader.safetensors"
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"format": "haitirag-reader", "version": "1"})
    tmp.chmod(0o644)
    tmp.replace(path)
    meta = {**meta, "sha256": sha256_file(path)}
    meta.setdefault("calibration", {"weights": [1.0, 0.0], "note": "not calibrated: bench/fit_answer.py calibrate"})
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return path


def train(train_file: str | Path, out: str | Path, questions: int = 20000, epochs: float = 1.0,
          batch_size: int = 32, lr: float = 1e-4, seed: int = 0, threads: int | None = None,
          max_steps: int = -1, init: str | Path | None = None, skip: int = 0, far_rate: float = 1.0,
          swap_rate: float = 0.0, dev_index: str | Path | None = None, dev_questions: str | Path | None = None,
          dev_part: int = 2, precision: str = "auto", windows_index: str | Path | None = None,
          windows: int = 0, windows_unanswerable: float = 0.0) -> tuple[Path, dict[str, Any]]:
    import torch
    from transformers import Trainer, TrainingArguments, set_seed

    from .embedding import cpu_has_bf16

    if threads:
        torch.set_num_threads(threads)
    # bf16 autocast, fp32 master weights: 1.6-1.8x the fp32 steps on a 2-core AVX512-BF16 CPU (measured);
    # slower than fp32 on a CPU without native bfloat16
    bf16 = precision == "bf16" or (precision == "auto" and (torch.cuda.is_available() or cpu_has_bf16()))
    set_seed(seed)
    t0 = time.time()
    examples = []
    if questions > 0:
        examples = make_examples(list(read_paragraphs(train_file)), questions, seed=seed, skip=skip,
                                 far_rate=far_rate, swap_rate=swap_rate)
    read: dict[str, Any] | None = None
    if windows > 0:
        if not windows_index:
            raise ValueError("--windows needs --windows-index (an index of the training file, --export)")
        qfile = Path(windows_index).parent / "questions.jsonl"
        more, arts = retrieved_examples(windows_index, qfile, part=0, parts=1, sample=windows, seed=seed,
                                        unanswerable=windows_unanswerable)
        read = {"questions": len({e.question for e in more}), "articles": arts,
                "unanswerable": windows_unanswerable, **_counts(more)}
        examples += more
    dev: dict[str, Any] | None = None
    if dev_questions:
        if not dev_index:
            raise ValueError("--dev-questions needs --dev-index (an index of the questions' corpus)")
        more, articles = retrieved_examples(dev_index, dev_questions, dev_part)
        dev = {"file": Path(dev_questions).parent.name + "/" + Path(dev_questions).name, "part": dev_part,
               "articles": articles, **_counts(more)}
        examples += more
    random.Random(seed).shuffle(examples)
    tok = load_tokenizer()
    feats = encode_examples(tok, examples)
    n_pos = sum(f["start_positions"] > 0 for f in feats)
    log.info("%d examples (%d answerable) from %d questions, %.0f s", len(feats), n_pos, questions, time.time() - t0)
    print(f"{len(feats)} examples ({n_pos} answerable, {len(feats) - n_pos} not) from {questions} questions; "
          f"mean length {np.mean([len(f['input_ids']) for f in feats]):.0f} tokens", file=sys.stderr)
    previous = None
    if init:
        start = Reader(init)
        model = start.torch_model()
        model.train()
        previous = start.meta.get("training")
    else:
        model = build_model()
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    args = TrainingArguments(
        output_dir=str(Path(out) / ".trainer"), per_device_train_batch_size=batch_size, learning_rate=lr,
        num_train_epochs=epochs, max_steps=max_steps, warmup_steps=0.06, lr_scheduler_type="linear",
        weight_decay=0.01, logging_steps=25, save_strategy="no", report_to="none", seed=seed,
        train_sampling_strategy="group_by_length", use_cpu=not torch.cuda.is_available(), bf16=bf16,
        dataloader_num_workers=0, remove_unused_columns=False)
    trainer = Trainer(model=model, args=args, train_dataset=feats, data_collator=collate)
    result = trainer.train()
    seconds = time.time() - t0
    meta = {"format": "haitirag-reader", "version": 1, "base": "all-MiniLM-L6-v2", "max_length": MAX_LENGTH,
            "training": {"file": Path(train_file).name, "questions": questions, "examples": len(feats),
                         "answerable_examples": int(n_pos), "epochs": epochs, "batch_size": batch_size, "lr": lr,
                         "seed": seed, "skip": skip, "far_rate": far_rate, "swap_rate": swap_rate,
                         "init": str(init) if init else None, "previous": previous, "dev": dev, "windows": read,
                         "steps": int(result.global_step),
                         "final_loss": float(result.training_loss), "seconds": round(seconds),
                         "torch_threads": torch.get_num_threads(), "precision": "bf16" if bf16 else "fp32",
                         "command": "python -m haitirag.train " + " ".join(sys.argv[1:])}}
    path = save(model, Path(out), meta)
    return path, meta


# -- evaluation: the reader given the gold paragraph (SQuAD EM / F1) ------------------------------------
def eval_given_paragraph(reader: Reader, corpus: str | Path, questions: str | Path, n: int = 500,
                         seed: int = 0, exclude: set[str] | None = None) -> dict[str, float]:
    """EM / F1 of the best span over the windows of each question's gold paragraph (``n`` sampled questions of
    articles not in ``exclude``, by default those the reader was trained on)."""
    from .chunking import split_sentences
    from .evaluate import span_scores

    docs = {d["id"]: d["text"] for d in read_paragraphs(corpus)}
    seen = trained_on(reader.meta) if exclude is None else exclude
    qs = [q for q in read_paragraphs(questions) if q.get("answers") and q.get("gold_ids")
          and q.get("article") not in seen]
    random.Random(seed).shuffle(qs)
    ems, f1s = [], []
    for q in qs[:n]:
        text = docs[q["gold_ids"][0]]
        ss = split_sentences(text)
        bounds = [window_bounds(ss, i) for i in range(len(ss))]
        readings = reader.read(q["question"], [text[a:b] for a, b in bounds])
        best = int(np.argmax([r.logit for r in readings]))
        r, w0 = readings[best], bounds[best][0]
        em, f1 = span_scores(text[w0 + r.start:w0 + r.end], q["answers"])
        ems.append(em)
        f1s.append(f1)
    return {"questions": len(ems), "em": 100 * float(np.mean(ems)), "f1": 100 * float(np.mean(f1s))}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m haitirag.train", description="Train the reader on SQuAD v1.1 train (CPU or GPU).",
        epilog="example: python -m haitirag.train --train ../shared/train/squad11-train.jsonl.gz "
               "--out src/haitirag/models --questions 20000 --eval ../shared/eval/squad11")
    p.add_argument("--train", required=True, help="SQuAD-format JSONL(.gz), one paragraph a line")
    p.add_argument("--out", default="src/haitirag/models", help="folder for reader.safetensors and reader.json")
    p.add_argument("--questions", type=int, default=20000, help="training questions sampled (seeded)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--max-steps", type=int, default=-1, help="stop after this many steps (tests, timing)")
    p.add_argument("--init", metavar="READER", help="continue from this reader.safetensors (default: the base model)")
    p.add_argument("--skip", type=int, default=0, help="leave out the sample's first N questions (a second stage)")
    p.add_argument("--far-rate", type=float, default=1.0, help="share of questions given a same-paragraph negative")
    p.add_argument("--swap-rate", type=float, default=0.0,
                   help="share of questions also given an entity-swapped unanswerable copy")
    p.add_argument("--dev-questions", metavar="FILE", help="also train on the windows read for these development "
                   "questions (of the articles in --dev-part), e.g. ../shared/eval/squad20/questions-dev.jsonl")
    p.add_argument("--dev-index", metavar="IDX", help="an index of the development questions' corpus")
    p.add_argument("--dev-part", type=int, default=2, choices=range(4),
                   help="the articles whose evaluate.article_part is this (2: not held out, not calibration)")
    p.add_argument("--export", metavar="DIR", help="write the training file as DIR/corpus.jsonl and "
                   "DIR/questions.jsonl and exit; then: haitirag build --corpus DIR/corpus.jsonl --index DIR/index")
    p.add_argument("--windows", type=int, default=0, metavar="N", help="also train on the windows ask reads for N "
                   "sampled training questions (needs --windows-index)")
    p.add_argument("--windows-index", metavar="IDX", help="an index of the training file written by --export "
                   "(its questions.jsonl beside it)")
    p.add_argument("--windows-unanswerable", type=float, default=0.0, metavar="RATE", help="share of those "
                   "questions asked as if their paragraph were not indexed: all their windows are 'no answer'")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                   help="auto: bf16 autocast on a GPU or a CPU with native bfloat16, else fp32")
    p.add_argument("--eval", metavar="DIR", help="SQuAD dev folder (corpus.jsonl, questions-dev.jsonl) for EM/F1")
    p.add_argument("--eval-questions", type=int, default=500)
    a = p.parse_args(argv)
    if a.dev_questions and not a.dev_index:
        p.error("--dev-questions needs --dev-index IDX: an index of their corpus "
                "(haitirag build --corpus CORPUS.jsonl --index IDX)")
    if a.windows and not a.windows_index:
        p.error("--windows needs --windows-index IDX: python -m haitirag.train --train FILE --export DIR, then "
                "haitirag build --corpus DIR/corpus.jsonl --index DIR/index")
    if a.export:
        for f in export_corpus(a.train, a.export):
            print(f"wrote {f}")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path, meta = train(a.train, a.out, a.questions, a.epochs, a.batch_size, a.lr, a.seed, a.threads, a.max_steps,
                       a.init, a.skip, a.far_rate, a.swap_rate, a.dev_index, a.dev_questions, a.dev_part,
                       a.precision, a.windows_index, a.windows, a.windows_unanswerable)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) in {meta['training']['seconds']} s, "
          f"final loss {meta['training']['final_loss']:.3f}")
    if a.eval:
        d = Path(a.eval)
        r = eval_given_paragraph(Reader(path), d / "corpus.jsonl", d / "questions-dev.jsonl", a.eval_questions)
        print(f"given the gold paragraph, {r['questions']} dev questions: EM {r['em']:.1f}  F1 {r['f1']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
