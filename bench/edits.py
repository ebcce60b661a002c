"""What an edit to a long document costs: chunks embedded again, by kind of edit.

    python bench/edits.py --corpus ../shared/eval/squad11/corpus.jsonl [--model hash:384]

The corpus's paragraphs joined into one document per article (``bench/peer.py --articles``: 48 documents, about
31,000 characters at the median), indexed once; then, for each article in turn, one edit of each kind is made
to that article alone, the index brought up to date (``update_index``, the model loaded), and the edit undone
(brought up to date again, not counted). Counted: the chunks the update embedded against the article's chunks.
Kinds of edit, each at the article's middle sentence (Punkt's sentences, as the index splits them):

* appended: a sentence added at the end of the article (the middle sentence is not touched);
* lengthened: a clause of 12 words added inside the middle sentence;
* shortened: the middle sentence's second half removed;
* deleted: the middle sentence removed;
* paragraph inserted: a new paragraph of three sentences before the middle sentence's paragraph.

Chunks are packed greedily from the document's start, so an edit that changes a sentence's length can move the
later chunk boundaries until the packing falls in step again; this measures how far that goes. The figures do not
depend on the model (``--model hash:384``, the default, is the test embedder: the same chunks, no model time).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.peer import articles

CLAUSE = " which officials from several ministries described at length in a statement on Tuesday"
PARAGRAPH = ("An editor added this paragraph. It has three sentences of its own. They say nothing about the "
             "article's subject.")


def edit(text: str, kind: str, sentences: list[tuple[int, int]]) -> str:
    """``text`` with one edit of ``kind`` made at its middle sentence."""
    a, b = sentences[len(sentences) // 2]
    if kind == "appended":
        return text + " An editor added this sentence at the end."
    if kind == "lengthened":
        return text[:b - 1] + CLAUSE + text[b - 1:]
    if kind == "shortened":
        cut = a + (b - a) // 2
        return text[:cut].rstrip() + "." + text[b:]
    if kind == "deleted":
        return text[:a] + text[b:].lstrip(" ")
    start = text.rfind("\n\n", 0, a)
    start = 0 if start < 0 else start + 2
    return text[:start] + PARAGRAPH + "\n\n" + text[start:]


KINDS = ("appended", "lengthened", "shortened", "deleted", "paragraph inserted")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", required=True, help="a .jsonl corpus of paragraphs (id, title, text, article)")
    ap.add_argument("--model", default="hash:384")
    ap.add_argument("--limit", type=int, default=0, help="only the first N articles (0: all)")
    args = ap.parse_args()
    from haitirag import build_index
    from haitirag.build import update_index
    from haitirag.embedding import build_embedder

    work = Path(tempfile.mkdtemp())
    try:
        path = articles(args.corpus, work / "articles.jsonl")
        rows = [json.loads(line) for line in path.open(encoding="utf-8")]
        if args.limit:
            rows = rows[:args.limit]
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        original = path.read_text(encoding="utf-8")
        emb = build_embedder(args.model)
        index = build_index(path, work / "index", model=args.model)
        by_doc = {d: sum(1 for c in index.chunks if c.doc_id == d) for d in index.documents}
        spent: dict[str, list[tuple[int, int]]] = {k: [] for k in KINDS}
        for i, row in enumerate(rows):
            sentences = index.sentences[row["id"]]
            for kind in KINDS:
                changed = [dict(r) for r in rows]
                changed[i]["text"] = edit(row["text"], kind, sentences)
                path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in changed),
                                encoding="utf-8")
                report = update_index(path, work / "index", model=args.model, embedder=emb)
                spent[kind].append((report.chunks_embedded, by_doc[row["id"]]))
                path.write_text(original, encoding="utf-8")
                update_index(path, work / "index", model=args.model, embedder=emb)
            print(f"{i + 1}/{len(rows)} articles", end="\r", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    chunks = [n for _, n in spent[KINDS[0]]]
    print(f"\n{len(rows)} articles of {args.corpus} as documents ({statistics.median(chunks):.0f} chunks at the "
          f"median, {min(chunks)} to {max(chunks)}); one edit at a time, at the middle sentence\n")
    print("| edit | chunks embedded: median | mean | max | share of the document's chunks (mean) | "
          "articles where 1 or 2 chunks were embedded |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind in KINDS:
        got = [e for e, _ in spent[kind]]
        share = statistics.mean(e / n for e, n in spent[kind])
        few = sum(1 for e in got if e <= 2)
        print(f"| {kind} | {statistics.median(got):.0f} | {statistics.mean(got):.1f} | {max(got)} | {share:.1%} | "
              f"{few} of {len(got)} |")


if __name__ == "__main__":
    main()
