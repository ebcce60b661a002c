"""Vector search: exact or an HNSW graph, chosen by size or forced; filters keep returning k results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import haitirag
from haitirag import vectors
from haitirag.errors import HaitiragError

from .conftest import HASH_MODEL

QUERIES = ["Which court blocked Kenya's deployment?", "Nile perch catches on Lake Victoria", "railway extension",
           "rainfall forecast for farmers", "troops pledged by Benin"]


def _clustered(n: int, dim: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dim))
    data = centres[rng.integers(0, 40, n)] + 0.3 * rng.normal(size=(n, dim))
    queries = centres[rng.integers(0, 40, 50)] + 0.3 * rng.normal(size=(50, dim))
    unit = [(m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32) for m in (data, queries)]
    return unit[0], unit[1]


def test_hnsw_finds_what_exact_search_finds():
    data, queries = _clustered(4000)
    flat, _ = vectors.build(data, "flat")
    graph, settings = vectors.build(data, "hnsw")
    assert settings["type"] == "hnsw" and vectors.kind_of(graph) == "hnsw" and vectors.kind_of(flat) == "flat"
    recall = np.mean([len({r for r, _ in vectors.search(graph, q[None], 10)} &
                          {r for r, _ in vectors.search(flat, q[None], 10)}) / 10 for q in queries])
    assert recall >= 0.98
    assert np.allclose(vectors.matrix(graph), data)  # the next build reuses the vectors as they were


@pytest.mark.parametrize("exact_below", [0, 10**9])  # the graph with the filter, or the allowed rows scored
def test_a_filtered_graph_search_still_returns_k_allowed_rows(monkeypatch: pytest.MonkeyPatch, exact_below: int):
    data, queries = _clustered(3000)
    graph, _ = vectors.build(data, "hnsw")
    flat, _ = vectors.build(data, "flat")
    monkeypatch.setattr(vectors, "EXACT_FILTERED", exact_below)
    allowed = np.zeros(len(data), dtype=bool)
    allowed[::97] = True  # 31 rows scattered over the graph
    for q in queries[:10]:
        got = vectors.search(graph, q[None], 20, allowed)
        assert len(got) == 20 and all(allowed[r] for r, _ in got)
        want = vectors.search(flat, q[None], 20, allowed)
        assert len({r for r, _ in got} & {r for r, _ in want}) >= 18
    assert len(vectors.search(graph, queries[0][None], 50, allowed)) == allowed.sum()  # fewer allowed than asked


def test_auto_builds_a_graph_from_the_threshold_and_a_type_change_rebuilds_without_embedding(
        corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    flat = haitirag.build_index(corpus, tmp_path / "index", model=HASH_MODEL)
    assert flat.manifest["vectors"] == {"type": "flat"}
    want = {q: [p.chunk_id for p in flat.search(q, k=5)] for q in QUERIES}
    forced = haitirag.build_index(corpus, tmp_path / "index", model=HASH_MODEL, index_type="hnsw")
    assert forced.report is not None and forced.report.wrote and forced.report.chunks_embedded == 0
    assert forced.manifest["vectors"]["type"] == "hnsw" and vectors.kind_of(forced.vectors) == "hnsw"
    reloaded = haitirag.load_index(tmp_path / "index")
    assert reloaded.vectors.hnsw.efSearch == vectors.HNSW["ef_search"]
    assert {q: [p.chunk_id for p in reloaded.search(q, k=5)] for q in QUERIES} == want  # tiny: the graph is exact
    again = haitirag.build_index(corpus, tmp_path / "index", model=HASH_MODEL, index_type="hnsw")
    assert again.report is not None and not again.report.wrote  # nothing changed: nothing written
    monkeypatch.setattr(vectors, "AUTO_HNSW", 1)
    auto = haitirag.build_index(corpus, tmp_path / "index", model=HASH_MODEL)
    assert auto.report is not None and not auto.report.wrote and auto.manifest["vectors"]["type"] == "hnsw"
    monkeypatch.setattr(vectors, "AUTO_HNSW", 10**9)
    back = haitirag.build_index(corpus, tmp_path / "index", model=HASH_MODEL)
    assert back.manifest["vectors"] == {"type": "flat"} and back.report is not None and back.report.wrote


def test_a_bad_index_type_is_a_one_line_error(corpus: Path, tmp_path: Path):
    with pytest.raises(HaitiragError, match="index type must be one of auto, flat, hnsw") as err:
        haitirag.build_index(corpus, tmp_path / "index", model=HASH_MODEL, index_type="ivf")
    assert "\n" not in str(err.value) and not (tmp_path / "index" / "manifest.json").exists()
