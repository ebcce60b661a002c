"""Stage 4a: the dense vector index (FAISS, inner product of normalised vectors = cosine).

Exact search (``IndexFlatIP``) up to ``AUTO_HNSW`` chunks; above that an HNSW graph (``IndexHNSWFlat``),
whose search time hardly grows with the index while exact search grows linearly (``bench/vectors.py``
measures both and the graph's recall against exact search). ``build --index-type flat|hnsw`` forces one.
The kind and its parameters are recorded in the manifest (``vectors``).

Filters (sources, dates) never cost results: when few chunks are allowed (at most ``EXACT_FILTERED``) they
are scored exactly; otherwise the graph is searched with the filter and, should it find fewer than asked,
the allowed chunks are scored exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["AUTO_HNSW", "HNSW", "KINDS", "Segments", "build", "configure", "load", "matrix", "resolve", "save",
           "search", "take"]

KINDS = ("auto", "flat", "hnsw")
AUTO_HNSW = 100_000  # chunks from which "auto" builds a graph: exact search takes 15 ms there (docs/scale.md)
HNSW = {"M": 32, "ef_construction": 200, "ef_search": 256}  # recall@10 0.99 at 100k chunks (docs/scale.md)
EXACT_FILTERED = 20_000


def resolve(kind: str, n: int) -> str:
    """The kind to build for ``n`` chunks ("auto": flat below ``AUTO_HNSW``)."""
    if kind not in KINDS:
        raise ValueError(f"index type must be one of {', '.join(KINDS)}, not {kind!r}")
    return ("hnsw" if n >= AUTO_HNSW else "flat") if kind == "auto" else kind


def build(vectors: np.ndarray, kind: str) -> tuple[Any, dict[str, Any]]:
    """A FAISS index of ``vectors`` (rows in chunk order) and its manifest entry."""
    import faiss

    dim = int(vectors.shape[1])
    index: Any
    if resolve(kind, len(vectors)) == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW["ef_construction"]
        settings: dict[str, Any] = {"type": "hnsw", **HNSW}
    else:
        index = faiss.IndexFlatIP(dim)
        settings = {"type": "flat"}
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    configure(index, settings)
    return index, settings


VECTORS, GRAPH = "vectors.faiss", "graph.faiss"


def save(index: Any, folder: Path) -> None:
    """Write ``index`` into ``folder``: the vectors (an ``IndexFlatIP``) in ``vectors.faiss``, and for a graph its
    links alone in ``graph.faiss`` (``IO_FLAG_SKIP_STORAGE``), so a load maps the vectors instead of reading them."""
    import faiss

    if kind_of(index) == "hnsw":
        faiss.write_index(faiss.downcast_index(index.storage), str(folder / VECTORS))
        writer = faiss.FileIOWriter(str(folder / GRAPH))
        faiss.write_index(index, writer, faiss.IO_FLAG_SKIP_STORAGE)
        del writer  # (closes the file)
    else:
        faiss.write_index(index, str(folder / VECTORS))


def load(folder: Path, settings: dict[str, Any] | None) -> Any:
    """Read what ``save`` wrote: the vectors memory-mapped (``IO_FLAG_MMAP_IFC``: nothing read until searched),
    a graph's links read whole (mapping them costs random reads from a cold disk: 7.5 s against 0.8 s at 1M)."""
    import faiss

    flat: Any = faiss.read_index(str(folder / VECTORS), faiss.IO_FLAG_MMAP_IFC)
    if not settings or settings.get("type") != "hnsw":
        return flat
    graph: Any = faiss.read_index(str(folder / GRAPH))
    if not hasattr(graph, "hnsw") or graph.ntotal != flat.ntotal or graph.d != flat.d:
        raise ValueError(f"{GRAPH} does not fit {VECTORS}")
    graph.storage = flat
    graph.own_fields, flat.thisown = True, False  # the graph frees its vectors
    configure(graph, settings)
    return graph


def configure(index: Any, settings: dict[str, Any] | None) -> None:
    """Search parameters of a loaded index from its manifest entry."""
    if settings and settings.get("type") == "hnsw" and hasattr(index, "hnsw"):
        index.hnsw.efSearch = int(settings.get("ef_search", HNSW["ef_search"]))


def kind_of(index: Any) -> str:
    return "hnsw" if hasattr(index, "hnsw") else "flat"


class Segments:
    """The vector indexes of a generation's segments searched as one: row r of the segment that starts at global
    row ``at`` is global row ``at + r`` (``store.py``). ``d`` and ``ntotal`` as a FAISS index has them."""

    def __init__(self, parts: list[tuple[int, Any]]):
        self.parts = parts
        self.d = int(parts[0][1].d)
        self.ntotal = sum(int(index.ntotal) for _, index in parts)

    def reconstruct_n(self, i0: int, n: int) -> np.ndarray:
        return matrix(self)[i0:i0 + n]


def _view(index: Any) -> np.ndarray | None:
    """The stored vectors as a numpy array over FAISS's own memory (no copy; valid while ``index`` lives), for
    a flat index or a graph's flat storage; None for other kinds."""
    import faiss

    flat = faiss.downcast_index(index.storage) if hasattr(index, "storage") else index
    if not isinstance(flat, faiss.IndexFlat) or not flat.ntotal:
        return None
    return faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d)


def take(index: Any, rows: Sequence[int] | np.ndarray) -> np.ndarray:
    """The vectors of ``rows`` (global rows of a ``Segments`` too), in that order."""
    ids = np.asarray(rows, dtype=np.int64)
    if not len(ids):
        return np.zeros((0, index.d), dtype=np.float32)
    if isinstance(index, Segments):
        out = np.zeros((len(ids), index.d), dtype=np.float32)
        for at, part in index.parts:
            mine = (ids >= at) & (ids < at + part.ntotal)
            if mine.any():
                out[mine] = take(part, ids[mine] - at)
        return out
    view = _view(index)
    if view is not None:
        return np.array(view[ids], dtype=np.float32)
    return np.asarray(index.reconstruct_batch(ids), dtype=np.float32).reshape(len(ids), index.d)


def matrix(index: Any) -> np.ndarray:
    """Every vector, in row order (for reuse by the next build)."""
    if isinstance(index, Segments):
        return np.concatenate([matrix(part) for _, part in index.parts])
    if not index.ntotal:
        return np.zeros((0, index.d), dtype=np.float32)
    view = _view(index)
    if view is not None:
        return np.array(view, dtype=np.float32)
    return np.asarray(index.reconstruct_n(0, index.ntotal), dtype=np.float32)


def _exact(index: Any, vec: np.ndarray, n: int, ids: np.ndarray) -> list[tuple[int, float]]:
    view = _view(index)
    rows = (view[ids] if view is not None else np.asarray(index.reconstruct_batch(ids), dtype=np.float32)) @ vec[0]
    top = np.argsort(-rows, kind="stable")[:n]
    return [(int(ids[i]), float(rows[i])) for i in top]


def search(index: Any, vec: np.ndarray, n: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
    """(row, cosine) of the ``n`` nearest rows, best first; only rows where ``allowed`` is True if given."""
    import faiss

    if isinstance(index, Segments):  # each segment's best, merged (ties: lower row first)
        found = [(at + r, s) for at, part in index.parts
                 for r, s in search(part, vec, n, None if allowed is None else allowed[at:at + part.ntotal])]
        return sorted(found, key=lambda x: (-x[1], x[0]))[:n]

    n = min(n, index.ntotal)
    if n <= 0:
        return []
    hnsw = kind_of(index) == "hnsw"
    params = None
    ids = np.zeros(0, dtype=np.int64)
    if allowed is not None:
        ids = np.flatnonzero(allowed).astype(np.int64)
        if not len(ids):
            return []
        n = min(n, len(ids))
        if hnsw and len(ids) <= EXACT_FILTERED:
            return _exact(index, vec, n, ids)
        bits = np.packbits(np.asarray(allowed, dtype=bool), bitorder="little")  # (alive until the search ends)
        sel = faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))
        if hnsw:
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=max(index.hnsw.efSearch, 2 * n))  # type: ignore[attr-defined]
        else:
            params = faiss.SearchParameters(sel=sel)  # type: ignore[call-arg]
    scores, rows = index.search(vec, n, params=params)
    found = [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]
    if allowed is not None and hnsw and len(found) < n:  # the graph ran out of allowed neighbours: exact search
        storage = faiss.downcast_index(index.storage)  # over the graph's own vectors, the filter applied
        scores, rows = storage.search(vec, n, params=faiss.SearchParameters(sel=sel))  # type: ignore[call-arg]
        found = [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]
    return found
