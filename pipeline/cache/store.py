"""The score cache on disk: one SQLite file in WAL mode, from the standard library.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "scores.db"
    >>> store = ScoreStore.open(path)
    >>> ident = ScoringIdentity("jina", "https://api.jina.ai/v1/rerank", "m", "{}")
    >>> model = store.model_id(ident)
    >>> store.put(model, [(b"k" * 24, 0.75)], created=1_700_000_000)
    1
    >>> store.lookup(model, [b"k" * 24, b"x" * 24])    # (found, expired)
    ({b'kkkkkkkkkkkkkkkkkkkkkkkk': 0.75}, 0)
    >>> store.close()

Schema (`SCHEMA`): `scores(model, key, score, created)`, primary key (model, key), WITHOUT
ROWID, so an entry is its key, its float64 score and its unix second, about 45 bytes; the
`models` table maps a small integer to each scoring identity (kind, model, URL, options)
for `cache stats` and `cache drop`. No text and no key is stored.

Why this shape:
- WAL with `synchronous = NORMAL`: a commit is atomic, a SIGKILL never tears an entry or
  loses a committed one, and power loss can lose only the last commits (which costs
  re-sending those pairs, never a wrong score). Readers never block the writer or each other.
- `BEGIN IMMEDIATE` for every write, with a busy timeout: two jobs writing one cache wait
  for each other's (short) transactions instead of failing or deadlocking; a read never
  upgrades to a write.
- Keys of one query share an 8-byte prefix, so its entries lie together: a run looks a
  query up with one range scan over that prefix (`lookup_query`), and stores a chunk's
  answer into one or two B-tree pages. Nothing like the whole cache is ever in memory.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from pipeline.cache.keys import ScoringIdentity

SCHEMA_VERSION = "1"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    id INTEGER PRIMARY KEY,
    identity BLOB NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    model TEXT,
    url TEXT NOT NULL,
    options TEXT NOT NULL,
    added INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS scores (
    model INTEGER NOT NULL,
    key BLOB NOT NULL,
    score REAL NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (model, key)
) WITHOUT ROWID;
"""
CHECKPOINT_PAGES = 10_000
BUSY_TIMEOUT_MS = 60_000  # a writer waits this long for another job's transaction
LOOKUP_BATCH = 512  # keys per SELECT; statements are cached per size (powers of two)
# SQLite's page cache per connection (64 MiB): what bounds a connection's memory, whatever
# the size of the file. No mmap: mapped pages count in the process's resident memory as
# they are touched (400 MB after 300k lookups at 10M entries) and were not faster.
CACHE_KIB = 65_536


class CacheFileError(Exception):
    """The cache file cannot be opened or is not a score cache; the message says why."""


@dataclass(frozen=True, slots=True)
class ModelRow:
    id: int
    kind: str
    model: str | None
    url: str
    options: str


class ScoreStore:
    """One connection to a cache file. Not shared between threads at once (the writer
    thread opens its own)."""

    def __init__(self, conn: sqlite3.Connection, path: Path, read_only: bool):
        self.conn = conn
        self.path = path
        self.read_only = read_only

    @classmethod
    def open(cls, path: Path, *, read_only: bool = False) -> ScoreStore:
        """Open (read_only: never create or write) or create a cache file."""
        path = Path(path)
        try:
            if read_only:
                if not path.is_file():
                    raise CacheFileError(
                        f"{path}: no such cache file (read_only never creates one)"
                    )
                uri = f"file:{quote(str(path.resolve()))}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            store = cls(conn, path, read_only)
            try:
                store._configure()
            except BaseException:
                conn.close()
                raise
        except sqlite3.Error as exc:
            raise CacheFileError(f"{path}: cannot open as a score cache ({exc})") from None
        except OSError as exc:
            raise CacheFileError(f"{path}: cannot create ({exc.strerror})") from None
        return store

    def _configure(self) -> None:
        c = self.conn
        c.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        c.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        if not self.read_only:
            tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master")}
            if tables and "meta" not in tables:  # someone else's database: leave it alone
                raise CacheFileError(f"{self.path}: an SQLite file, but not a score cache")
            mode = c.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise CacheFileError(f"{self.path}: cannot switch to WAL mode (got {mode})")
            c.execute("PRAGMA synchronous = NORMAL")
            # Checkpoint (which fsyncs the file) every 10,000 pages (40 MB) of WAL rather than
            # SQLite's 1,000: inserts at 10M entries went from ~120k to ~170k pairs/s.
            c.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
            c.execute("PRAGMA journal_size_limit = 67108864")  # truncate a checkpointed WAL
            with self.transaction():
                tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master")}
                if not tables:  # a new file: the schema, once
                    for statement in SCHEMA.split(";"):
                        if statement.strip():
                            c.execute(statement)
                    c.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        self._check_schema()

    def _check_schema(self) -> None:
        try:
            row = self.conn.execute(
                "SELECT value FROM meta WHERE name = 'schema_version'"
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise CacheFileError(
                f"{self.path}: not a rerank-pipeline score cache ({exc})"
            ) from None
        if row is None or row[0] != SCHEMA_VERSION:
            raise CacheFileError(
                f"{self.path}: score cache schema {row[0] if row else 'missing'}, this version "
                f"reads {SCHEMA_VERSION}: use another cache path"
            )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction, taken at once (BEGIN IMMEDIATE): it waits for another
        writer through the busy timeout, and it never has to upgrade a read lock."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- models -----------------------------------------------------------------------------
    def model_id(self, ident: ScoringIdentity) -> int | None:
        """The identity's number, added if new (None: read-only and not in the cache)."""
        digest = ident.digest
        if not self.read_only:
            with self.transaction():
                self.conn.execute(
                    "INSERT OR IGNORE INTO models (identity, kind, model, url, options, added) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (digest, ident.kind, ident.model, ident.url, ident.options, int(time.time())),
                )
        row = self.conn.execute("SELECT id FROM models WHERE identity = ?", (digest,)).fetchone()
        return None if row is None else int(row[0])

    def models(self) -> list[ModelRow]:
        rows = self.conn.execute(
            "SELECT id, kind, model, url, options FROM models ORDER BY id"
        ).fetchall()
        return [ModelRow(*r) for r in rows]

    # -- entries ----------------------------------------------------------------------------
    def lookup(
        self, model: int, keys: list[bytes], min_created: int | None = None
    ) -> tuple[dict[bytes, float], int]:
        """({key: score} of the keys in the cache, how many more were there but created
        before `min_created`: expired, so misses). Any keys; `lookup_query` is faster for
        the keys of one query."""
        rows: list = []
        aged = min_created is not None
        for start in range(0, len(keys), LOOKUP_BATCH):
            batch = keys[start : start + LOOKUP_BATCH]
            size = 1 << (len(batch) - 1).bit_length()  # pad: a few statement shapes only
            if size > len(batch):
                batch = batch + [batch[0]] * (size - len(batch))
            marks = ",".join("?" * size)
            sql = f"SELECT {_columns(aged)} FROM scores WHERE model = ? AND key IN ({marks})"
            rows += self.conn.execute(sql, (model, *batch)).fetchall()
        return _found(rows, keys, min_created)

    def lookup_query(
        self, model: int, keys: list[bytes], min_created: int | None = None
    ) -> tuple[dict[bytes, float], int]:
        """`lookup` for keys that share their 8-byte query prefix (one query's pairs): one
        range scan over the query's entries, which lie together (about 5x faster than
        `key IN (...)`). It also reads entries of the query's documents that are no longer
        in its list; `max_age_days` and `cache drop --older-than-days` bound those."""
        if not keys:
            return {}, 0
        prefix = keys[0][:8]
        end = int.from_bytes(prefix, "big") + 1
        sql = f"SELECT {_columns(min_created is not None)} FROM scores WHERE model = ? AND key >= ?"
        if end < 1 << 64:
            rows = self.conn.execute(sql + " AND key < ?", (model, prefix, end.to_bytes(8, "big")))
        else:  # the last prefix: no upper bound
            rows = self.conn.execute(sql, (model, prefix))
        return _found(rows.fetchall(), keys, min_created)

    def put(self, model: int, rows: Iterable[tuple[bytes, float]], created: int) -> int:
        """Insert or refresh (key, score) entries in one transaction; returns how many.
        Sorted first (neighbouring keys land on the same pages); the two integers shared by
        every row go into the statement, so the rows are bound as they are."""
        data = sorted(rows)
        if data:
            sql = f"INSERT OR REPLACE INTO scores VALUES ({int(model)}, ?, ?, {int(created)})"
            with self.transaction():
                self.conn.executemany(sql, data)
        return len(data)

    def close(self) -> None:
        self.conn.close()


def _columns(aged: bool) -> str:
    return "key, score, created" if aged else "key, score"


def _found(
    rows: list, keys: list[bytes], min_created: int | None
) -> tuple[dict[bytes, float], int]:
    """Rows (key, score[, created]) as {key: score}; with `min_created`, those created
    before it left out and counted (among `keys` only)."""
    if min_created is None:
        return dict(rows), 0
    found = {key: score for key, score, created in rows if created >= min_created}
    old = {key for key, _, created in rows if created < min_created}
    return found, sum(1 for key in keys if key in old) if old else 0
