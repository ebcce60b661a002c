"""Shared fixtures: a tiny fixture corpus, a hash-embedder index (fast), a real-model seed index (once)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import haitirag

DATA = Path(__file__).parent / "data"
FIXTURE_CORPUS = DATA / "corpus"
SEED_CORPUS = Path(__file__).parent.parent / "corpus"
HASH_MODEL = "hash:64"


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
