"""Fresh scores into the cache from a thread of their own.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "scores.db"
    >>> from pipeline.cache.keys import ScoringIdentity
    >>> store = ScoreStore.open(path); model = store.model_id(ScoringIdentity("k", "u", "m", "{}"))
    >>> writer = CacheWriter(path, model, b"i" * 16)
    >>> writer.put("solar", ["panel", "roof"], [0.5, 0.25]); writer.put("wind", ["farm"], [0.1])
    >>> writer.close(); writer.stored, writer.error
    (3, None)

Why a thread: a commit, a WAL checkpoint (which fsyncs) or another job holding the write
lock would otherwise stall the event loop, and every request in flight with it; hashing
the pairs' keys is done here too. `put` only appends to a queue; the thread takes
everything queued so far (up to `MAX_ROWS` pairs) and commits it in one transaction, so
under load many chunk answers share one commit, and when idle each answer is committed
as soon as it arrives.

A write that fails (disk full, a lock held past the busy timeout) is reported once on
stderr and in summary.json; the run goes on without storing, since the results do not
depend on the cache. The thread is a daemon: if the process dies, rows not yet committed
are lost, which costs sending those pairs again, never a wrong or torn entry.
"""

from __future__ import annotations

import queue
import sqlite3
import sys
import threading
import time
from pathlib import Path

from pipeline.cache.keys import pair_keys
from pipeline.cache.store import BUSY_TIMEOUT_MS, CacheFileError, ScoreStore

MAX_ROWS = 20_000  # pairs per transaction at most

Answer = tuple[str, list[str], list[float]]  # query, documents, their scores


class CacheWriter:
    def __init__(self, path: Path, model: int, identity: bytes):
        self.path = path
        self.model = model
        self.identity = identity  # the scoring identity's digest, for the keys
        self.stored = 0  # rows committed
        self.error: str | None = None
        self._queue: queue.SimpleQueue[Answer | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def put(self, query: str, documents: list[str], scores: list[float]) -> None:
        """Queue the scores of (query, document) pairs to be stored; returns at once."""
        if self.error is not None or not documents:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="score-cache", daemon=True)
            self._thread.start()
        self._queue.put((query, documents, scores))

    def close(self) -> None:
        """Store everything queued, then stop the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(BUSY_TIMEOUT_MS / 1000 + 30)
        if self._thread.is_alive():
            self._fail("the cache writer did not finish in time; unstored scores are dropped")

    def _run(self) -> None:
        try:
            store = ScoreStore.open(self.path)
        except CacheFileError as exc:
            self._fail(str(exc))
            store = None
        stop = False
        while not stop:
            batch: list[tuple[bytes, float]] = []
            item = self._queue.get()
            while True:
                if item is None:
                    stop = True
                    break
                query, documents, scores = item
                batch.extend(zip(pair_keys(self.identity, query, documents), scores, strict=True))
                if len(batch) >= MAX_ROWS:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if store is None or self.error is not None:
                continue  # keep draining so close() returns
            try:
                self.stored += store.put(self.model, batch, int(time.time()))
            except sqlite3.Error as exc:
                self._fail(f"{self.path}: {exc}")
        if store is not None:
            store.close()

    def _fail(self, message: str) -> None:
        if self.error is None:
            self.error = message
            print(
                f"warning: score cache: {message}; the run goes on without storing new scores",
                file=sys.stderr,
            )
