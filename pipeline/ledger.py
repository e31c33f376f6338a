"""The query ids of one run, exact and on disk: duplicates in the input, work done earlier.

    >>> ledger = QueryLedger()
    >>> ledger.first_sight("q1"), ledger.first_sight("q2"), ledger.first_sight("q1")
    (True, True, False)
    >>> import pyarrow as pa
    >>> ledger.load_ids(pa.array(["q7"]), QueryLedger.RANKED)  # resume: q7 is in results/
    >>> ledger.screen(["q7", "q8", "q7"], label=str, whole_rows=True)  # rows to skip unread
    [0]
    >>> ledger.first_sight("q7"), ledger.is_done("q8"), len(ledger)
    (False, False, 3)
    >>> ledger.load_ids(pa.array(["p1"]), QueryLedger.RANKED)  # pairs: one row per candidate
    >>> ledger.screen(["q8", "p1", "p1"], label=str, whole_rows=False)
    [1, 2]
    >>> ledger.screen(["p1", "q9", "p1"], label=str, whole_rows=False)  # p1 went on; a stray
    [0]
    >>> ledger.close()

One row per query id in a SQLite table (`id TEXT PRIMARY KEY, flags`, WITHOUT ROWID) in
a private temporary database: a file in $SQLITE_TMPDIR, $TMPDIR or /var/tmp, created only
once the table outgrows the cache and unlinked as soon as it is opened, so even a killed
run leaves nothing behind. Its page cache is
bounded (`cache_mb`, 1 MB: pages it misses come from the OS page cache in about a
microsecond; 3M and 10M random 32-character ids took the same 2.6-2.7 us each with 1 and
4 MB, and 4 MB added ~3 MB of resident size once filled), so
memory stays flat however many ids a run holds; the rest lives in the OS page cache and on
disk (about 15 MB per million short ids, 40 MB per million
32-character random ids). The key is the id itself, so there is no collision to verify: a
duplicate is reported exactly when the same string came earlier.

Why this and not the alternatives (measured on the 2-core machine, per id, 1M ids):
a Python set costs 0.7 us but ~110 MB per million ids, held for the whole run;
8-byte digests in sorted in-memory arrays still grow by 8+ bytes per id and need a copy of
the id to rule out collisions; SQLite keyed by a 64-bit digest with the id as payload was
slower (3.8-5.5 us) than keying by the id (1.0 us sequential ids, 3.8 us random ones with
one multi-row statement per batch). Ids travel to SQLite as one JSON array per batch
(`json_each`): 0.4 us per id for sequential ids, 3.8 us for random ones (B-tree pages
fetched from the OS cache), against ~125 us per query for the whole run. A batch whose
JSON would not round-trip exactly (an id holding NUL, which SQLite's JSON functions cut
off) goes through bound parameters instead.

How a run uses it (the reader calls `screen` once per row batch, in order, then the
runner admits that batch's items before the next call):

- `screen(ids, label, whole_rows)` reads the batch's ids in one statement. With
  `whole_rows` (grouped: one row is one query), a row whose id is in results/ already, not
  yet seen in this run, and whose source is not a recorded failure, is returned for
  skipping: it is marked seen and never becomes a `Query` (no validation, no documents read).
  Without (pairs: a query is a stretch of contiguous rows with one id; rows without a
  usable id are never skipped and do not end a stretch), the same test is made once per
  stretch, at its first row, and then holds for every row of it: all are skipped or none.
  A stretch may go on into the next batch (or row group, or file), so the id of the last
  row screened and the decision for it are carried over to the next call. A repeated
  row id is therefore a continuation here, not a duplicate; a later stretch of a skipped
  id is read (it was marked seen: a duplicate, or "not grouped" for the reader). A ranked
  id whose stretch is read (its first row is a recorded failure) is marked `MET`, so its
  later stretches are read as well, whenever its query is admitted.
- `first_sight(id)`: True the first time an admitted query has this id (marks it seen).
- `is_done(id)`, `failure_recorded(source)`: what earlier runs finished (resume).

Seen marks are written to SQLite in one statement at the next `screen` (or every
`FLUSH_IDS` ids), so admitting a query costs a dictionary lookup on the event loop.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence

import orjson
import pyarrow as pa
import pyarrow.compute as pc

_UNSET = -1
_CONTROL = "[\\x00-\\x1f]"  # characters JSON must escape as \uXXXX (the join below does not)


class QueryLedger:
    SEEN = 1  # a query with this id was admitted in this run (a later one is a duplicate)
    RANKED = 2  # an earlier run's results/ hold it
    FAILED = 4  # an earlier run's failures/ hold it as the query's own failure
    DONE = RANKED | FAILED
    MET = 8  # pairs: a stretch of rows with this ranked id was read (not skipped) this run
    FLUSH_IDS = 8192  # seen marks held in memory before they are written without a screen

    def __init__(self, cache_mb: int = 1):
        # "" is a private temporary database; check_same_thread is off because the reader
        # screens batches in a worker thread; the lock keeps any two calls from overlapping.
        self._db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        for pragma in (
            "journal_mode = OFF",  # a scratch table: nothing to roll back or recover
            "synchronous = OFF",
            f"cache_size = -{cache_mb * 1024}",
        ):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute(
            "CREATE TABLE ids (id TEXT PRIMARY KEY, flags INTEGER NOT NULL) WITHOUT ROWID"
        )
        self._db.execute("CREATE TABLE sources (source TEXT PRIMARY KEY) WITHOUT ROWID")
        self._db.execute("BEGIN")  # one transaction for the run: no commit per statement
        self._lock = threading.Lock()
        self._pending: dict[str, int] = {}  # seen marks not yet written: id -> its flags
        self._batch: dict[str, int] = {}  # the last screened batch's ids -> flags then
        self._any_done = False
        self._any_ranked = False
        self._any_sources = False
        # pairs: the id of the last row screened (None: none yet) and whether its stretch
        # is being skipped; its next rows, in the next batch or file, follow that decision.
        self._stretch: tuple[str | None, bool] = (None, False)

    # -- what earlier runs finished (filled by resume before the run) ------------------
    def load_ids(self, ids: pa.Array | pa.ChunkedArray, flag: int) -> None:
        """Add `flag` to every id of an Arrow string column (nulls ignored): the column
        goes to SQLite as one JSON text built by Arrow kernels, not as Python strings."""
        values, payload = _arrow_json(ids)
        with self._lock:
            self._flush()
            self._batch = {}  # flags change below: nothing screened stays current
            if payload is not None:
                self._db.execute(
                    "INSERT INTO ids (id, flags) SELECT value, ? FROM json_each(?) WHERE true "
                    "ON CONFLICT (id) DO UPDATE SET flags = flags | excluded.flags",
                    (flag, payload),
                )
            elif len(values):
                self._upsert_exact([(x, flag) for x in values.to_pylist()])
        self._any_done = self._any_done or bool(flag & self.DONE)
        self._any_ranked = self._any_ranked or bool(flag & self.RANKED)

    def load_sources(self, sources: pa.Array | pa.ChunkedArray) -> None:
        """Record failure sources (`Failure.source`) of an earlier run, as `load_ids`."""
        values, payload = _arrow_json(sources)
        if not len(values):
            return
        with self._lock:
            if payload is not None:
                self._db.execute(
                    "INSERT OR IGNORE INTO sources SELECT value FROM json_each(?)", (payload,)
                )
            else:
                self._db.executemany(
                    "INSERT OR IGNORE INTO sources VALUES (?)", [(x,) for x in values.to_pylist()]
                )
        self._any_sources = True

    def count(self, flag: int) -> int:
        """How many ids carry `flag` (e.g. RANKED: queries ranked by earlier runs)."""
        with self._lock:
            self._flush()
            row = self._db.execute("SELECT count(*) FROM ids WHERE flags & ?", (flag,)).fetchone()
        return int(row[0])

    def __len__(self) -> int:
        with self._lock:
            self._flush()
            return int(self._db.execute("SELECT count(*) FROM ids").fetchone()[0])

    # -- admission ---------------------------------------------------------------------
    def may_skip(self) -> bool:
        """Could `screen` name rows to skip (did an earlier run rank anything)?"""
        return self._any_ranked

    def screen(
        self, ids: Sequence[str | None], label: Callable[[int], str], whole_rows: bool
    ) -> list[int]:
        """Look up a row batch's ids (None: a row without a usable id); return the
        positions of rows already ranked by an earlier run, to skip unread (see above)."""
        with self._lock:
            self._flush()
            distinct = list(dict.fromkeys(q for q in ids if q is not None))
            self._batch = dict.fromkeys(distinct, 0)
            self._batch.update(self._select(distinct))
            if not whole_rows:
                return self._screen_pairs(ids, label) if self._any_ranked else []
            if not self._any_done:
                return []
            ranked = [
                i
                for i, q in enumerate(ids)
                if q is not None and (self._batch[q] & (self.RANKED | self.SEEN)) == self.RANKED
            ]
            if ranked and self._any_sources:
                labels = {i: label(i) for i in ranked}
                recorded = self._recorded(list(labels.values()))
                ranked = [i for i in ranked if labels[i] not in recorded]
            skip = []
            for i in ranked:
                qid = ids[i]
                assert qid is not None
                if qid not in self._pending:  # a second row with this id is a duplicate
                    self._pending[qid] = self._batch[qid] = self._batch[qid] | self.SEEN
                    skip.append(i)
            return skip

    def _screen_pairs(self, ids: Sequence[str | None], label: Callable[[int], str]) -> list[int]:
        """`screen` for pairs rows (a query is a stretch of contiguous rows with one id,
        rows without a usable id aside): every row of a stretch is skipped or none is,
        decided at the stretch's first row, and a stretch may go on into the next batch
        (or file), so the decision for the last one is carried over in `_stretch`."""
        last, skipping = self._stretch
        wanted = self.RANKED | self.SEEN | self.MET
        recorded: set[int] = set()
        if self._any_sources:  # a stretch starting at an earlier run's failure row is read
            starts: list[int] = []  # first rows of ranked stretches not met yet
            prev = last
            for i, q in enumerate(ids):
                if q is not None and q != prev:
                    prev = q
                    if (self._batch[q] & wanted) == self.RANKED:
                        starts.append(i)
            if starts:
                labels = {i: label(i) for i in starts}
                found = self._recorded(list(labels.values()))
                recorded = {i for i in starts if labels[i] in found}
        skip: list[int] = []
        prev = last
        for i, q in enumerate(ids):
            if q == prev:  # the stretch goes on (a row without a usable id is never skipped)
                if skipping:
                    skip.append(i)
                continue
            if q is None:
                continue
            # A new stretch: decided once, at its first row, for all of its rows.
            prev, skipping = q, False
            flags = self._batch[q]
            if (flags & wanted) == self.RANKED:
                if i not in recorded:
                    skipping = True  # seen now: a later stretch of it is a duplicate
                    self._pending[q] = self._batch[q] = flags | self.SEEN
                    skip.append(i)
                else:
                    # Read, not skipped: a later stretch of this id must be read too (a
                    # duplicate of this one), even before this one is admitted. Rare, so
                    # written at once (not as a pending seen mark: it is not one).
                    self._batch[q] = flags | self.MET
                    self._upsert_exact([(q, self.MET)])
        self._stretch = (prev, skipping)
        return skip

    def first_sight(self, qid: str) -> bool:
        """True the first time a query with this id is admitted in this run."""
        with self._lock:
            if qid in self._pending:
                return False
            flags = self._batch.get(qid, _UNSET)
            if flags == _UNSET:  # not screened (a caller without a reader screen)
                flags = self._select([qid]).get(qid, 0)
            if flags & self.SEEN:
                return False
            self._pending[qid] = flags | self.SEEN
            if len(self._pending) >= self.FLUSH_IDS:
                self._flush()
            return True

    def is_done(self, qid: str | None) -> bool:
        """Did an earlier run rank this id, or record it as a failure (not a duplicate's)?"""
        if qid is None or not self._any_done:
            return False
        with self._lock:
            flags = self._pending.get(qid, _UNSET)
            if flags == _UNSET:
                flags = self._batch.get(qid, _UNSET)
            if flags == _UNSET:
                flags = self._select([qid]).get(qid, 0)
            return bool(flags & self.DONE)

    def failure_recorded(self, source: str) -> bool:
        if not self._any_sources:
            return False
        with self._lock:
            return bool(self._recorded([source]))

    def close(self) -> None:
        with self._lock:
            self._pending.clear()
            self._batch.clear()
            self._db.close()  # SQLite deletes the temporary database here

    def __enter__(self) -> QueryLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- SQL ------------------------------------------------------------------------------
    def _select(self, ids: list[str]) -> dict[str, int]:
        if not ids:
            return {}
        payload = _json(ids)
        if payload is None:
            return dict(
                row
                for q in ids
                for row in self._db.execute("SELECT id, flags FROM ids WHERE id = ?", (q,))
            )
        return dict(
            self._db.execute(
                "SELECT id, flags FROM ids WHERE id IN (SELECT value FROM json_each(?))",
                (payload,),
            ).fetchall()
        )

    def _recorded(self, sources: list[str]) -> set[str]:
        payload = _json(sources)
        if payload is None:
            return {
                s
                for s in sources
                if self._db.execute("SELECT 1 FROM sources WHERE source = ?", (s,)).fetchone()
            }
        rows = self._db.execute(
            "SELECT source FROM sources WHERE source IN (SELECT value FROM json_each(?))",
            (payload,),
        )
        return {s for (s,) in rows}

    def _flush(self) -> None:
        """Write the pending seen marks (sorted: neighbouring B-tree pages)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        for qid, flags in pending.items():  # keep the screened batch's flags current
            if qid in self._batch:
                self._batch[qid] = flags
        items = sorted(pending.items())
        payload = _json(items)
        if payload is None:
            self._upsert_exact(items)
            return
        self._db.execute(
            "INSERT INTO ids (id, flags) SELECT value ->> 0, value ->> 1 FROM json_each(?) "
            "WHERE true ON CONFLICT (id) DO UPDATE SET flags = flags | excluded.flags",
            (payload,),
        )

    def _upsert_exact(self, rows: list[tuple[str, int]]) -> None:
        self._db.executemany(
            "INSERT INTO ids (id, flags) VALUES (?, ?) "
            "ON CONFLICT (id) DO UPDATE SET flags = flags | excluded.flags",
            rows,
        )


def _json(values: list) -> bytes | None:
    """`values` as a JSON array for `json_each`, or None when it would not read back
    exactly (SQLite's JSON text functions stop at a NUL character)."""
    try:
        payload = orjson.dumps(values)
    except orjson.JSONEncodeError:  # not valid Unicode: bound parameters will say why
        return None
    return None if _lossy(payload) else payload


def _lossy(payload: bytes) -> bool:
    return b"\\u0000" in payload


def _arrow_json(column: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, str | None]:
    """The distinct non-null strings of `column`, sorted (neighbouring B-tree pages), and
    the same as a JSON array made by Arrow kernels; None for the JSON when a value holds
    a control character (those need escapes the join cannot write: bound parameters then)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    values = pc.unique(pc.drop_null(column.cast(pa.string())))
    values = values.take(pc.sort_indices(values))
    if not len(values) or pc.any(pc.match_substring_regex(values, _CONTROL)).as_py():
        return values, None
    escaped = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
    one_list = pa.ListArray.from_arrays(pa.array([0, len(escaped)], pa.int32()), escaped)
    return values, '["' + pc.binary_join(one_list, '","')[0].as_py() + '"]'
