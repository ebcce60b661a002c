"""haitirag: offline extractive question answering over a folder of source texts.

    import haitirag
    index = haitirag.build_index("corpus", "index")   # or haitirag.load_index("index")
    print(index.ask("Which court blocked Kenya's deployment?").text)

Heavy libraries (torch, sentence-transformers, faiss, gradio) load on first use, not on import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "BuildReport",
    "Chunk",
    "ChunkSettings",
    "Citation",
    "CorpusError",
    "DatabaseError",
    "Document",
    "HaitiragError",
    "Index",
    "IndexCorruptError",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "ModelError",
    "Passage",
    "QueryError",
    "__version__",
    "build_index",
    "load_index",
]

_LAZY = {
    "build_index": "build", "BuildReport": "build",
    "load_index": "index", "Index": "index",
    "ChunkSettings": "chunking",
    "Document": "records", "Chunk": "records", "Passage": "records", "Citation": "records", "Answer": "records",
    "HaitiragError": "errors", "CorpusError": "errors", "DatabaseError": "errors", "IndexNotFoundError": "errors",
    "IndexCorruptError": "errors", "IndexMismatchError": "errors", "IndexLockedError": "errors",
    "QueryError": "errors", "ModelError": "errors",
}

if TYPE_CHECKING:
    from .build import BuildReport, build_index
    from .chunking import ChunkSettings
    from .errors import (
        CorpusError,
        DatabaseError,
        HaitiragError,
        IndexCorruptError,
        IndexLockedError,
        IndexMismatchError,
        IndexNotFoundError,
        ModelError,
        QueryError,
    )
    from .index import Index, load_index
    from .records import Answer, Chunk, Citation, Document, Passage


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'haitirag' has no attribute {name!r}")
