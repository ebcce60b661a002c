"""The error hierarchy: every message says what went wrong and how to fix it."""

from __future__ import annotations

__all__ = [
    "CorpusError",
    "DatabaseError",
    "HaitiragError",
    "IndexCorruptError",
    "IndexFormatError",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "ModelError",
    "QueryError",
]


class HaitiragError(Exception):
    """Base class; the CLI prints ``error: <message>`` and exits with status 2."""


class CorpusError(HaitiragError):
    """The corpus folder is missing, empty, or holds nothing indexable."""


class IndexNotFoundError(HaitiragError):
    """There is no index at the given path."""


class IndexCorruptError(HaitiragError):
    """An index file is missing, truncated, or disagrees with the manifest."""


class IndexMismatchError(HaitiragError):
    """The index was built with another format version, model or settings."""


class IndexFormatError(IndexMismatchError):
    """The index was written by another version of haitirag in another format: rebuild it."""


class IndexLockedError(HaitiragError):
    """Another build holds the index lock."""


class QueryError(HaitiragError, ValueError):
    """The question or a search parameter is unusable (empty, too long, k <= 0)."""


class ModelError(HaitiragError):
    """The embedding model cannot be loaded."""


class DatabaseError(HaitiragError):
    """A ``postgresql://`` index: the driver is missing, or the server cannot be reached or used."""
