"""``haitirag watch``: rebuild the index when files in the corpus change (polling, debounced).

Every ``interval`` seconds the corpus folder is listed as a set of (path, size, mtime); when that
set changes and then stays the same for ``debounce`` seconds, an incremental build runs. The build
itself detects changes by content hash, so a touched but unchanged file costs a fast no-op build.
No extra dependency: plain polling, fine for folders of thousands of files.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .build import BuildReport, update_index
from .corpus import iter_corpus_files
from .embedding import DEFAULT_MODEL, make_embedder
from .errors import HaitiragError

__all__ = ["snapshot", "watch"]

log = logging.getLogger(__name__)
Snapshot = frozenset[tuple[str, int, int]]


def snapshot(corpus: str | Path) -> Snapshot:
    """(relative path, size, mtime in ns) of every indexable file under ``corpus``."""
    root = Path(corpus)
    if not root.exists():
        return frozenset()
    out = set()
    for p in iter_corpus_files(root):
        try:
            st = p.stat()
        except OSError:  # deleted while listing
            continue
        out.add((p.relative_to(root).as_posix() if p != root else p.name, st.st_size, st.st_mtime_ns))
    return frozenset(out)


def watch(corpus: str | Path = "corpus", index: str | Path = "index", *, interval: float = 1.0,
          debounce: float = 2.0, on_build: Callable[[BuildReport], None] | None = None,
          on_error: Callable[[HaitiragError], None] | None = None, stop: threading.Event | None = None,
          **build_options: Any) -> None:
    """Build once, then rebuild whenever the corpus changes and stays unchanged for ``debounce`` s.

    Runs until ``stop`` is set or KeyboardInterrupt. ``build_options`` go to ``update_index``.
    A failed build (an empty corpus, another build holding the lock) is reported to ``on_error``
    and retried after the next change; the index stays as it was.
    """
    stop = stop or threading.Event()
    if build_options.get("embedder") is None:  # load the model once, not at every build
        build_options["embedder"] = make_embedder(build_options.pop("model", DEFAULT_MODEL))

    def build() -> None:
        try:
            report = update_index(corpus, index, **build_options)
        except HaitiragError as err:
            log.warning("build failed: %s", err)
            if on_error:
                on_error(err)
            return
        if on_build:
            on_build(report)

    built = snapshot(corpus)
    build()
    pending, since = built, time.monotonic()
    while not stop.wait(interval):
        now = snapshot(corpus)
        if now != pending:  # still changing: restart the quiet period
            pending, since = now, time.monotonic()
            continue
        if pending != built and time.monotonic() - since >= debounce:
            built = pending
            build()

