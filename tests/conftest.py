"""Shared fixtures: a tiny fixture corpus, a hash-embedder index (fast), a real-model seed index (once)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import haitirag

DATA = Path(__file__).parent / "data"
FIXTURE_CORPUS = DATA / "corpus"
SEED_CORPUS = Path(__file__).parent.parent / "corpus"
HASH_MODEL = "hash:64"


def segment_dir(location: str | Path, n: int = 0) -> Path:
    """The folder of segment ``n`` of the index folder's current generation (its data files)."""
    import json

    manifest = json.loads((Path(location) / "manifest.json").read_text())
    return Path(location) / f"gen-{manifest['generation']}" / f"seg-{manifest['segments'][n]['id']}"


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Tests never use (or write) the user's ~/.cache/haitirag: ONNX exports go to a fresh folder, so
    questions run on torch unless a test asks for ``exported`` (the ONNX Runtime path)."""
    folder = tmp_path_factory.mktemp("haitirag-cache")
    before = os.environ.get("HAITIRAG_CACHE")
    os.environ["HAITIRAG_CACHE"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("HAITIRAG_CACHE", None)
    else:
        os.environ["HAITIRAG_CACHE"] = before


@pytest.fixture(scope="session")
def exported(onnx_cache: Path) -> list[Path]:
    """The default embedding model and the shipped reader exported to ONNX (once per test session)."""
    from haitirag import runtime

    return runtime.export()


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    """A writable copy of the fixture corpus."""
    dst = tmp_path / "corpus"
    shutil.copytree(FIXTURE_CORPUS, dst)
    return dst


@pytest.fixture()
def hash_index(corpus: Path, tmp_path: Path) -> haitirag.Index:
    return haitirag.build_index(corpus, tmp_path / "index", model=HASH_MODEL)


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory: pytest.TempPathFactory) -> haitirag.Index:
    """The seed report indexed with the real default model (built once per test session)."""
    return haitirag.build_index(SEED_CORPUS, tmp_path_factory.mktemp("seed") / "index")
