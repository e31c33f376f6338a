"""The part-file writer (see the package docstring, and `manifest` for the protocol).

A part is committed when a dataset's buffer reaches `flush_rows` rows (results, usage and
failures each counted on their own) or `flush_seconds` have passed, whichever is first;
`close(compact=True)` then merges the job's small parts (`compact`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import time
from itertools import repeat
from operator import attrgetter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from pipeline.errors import OutputError
from pipeline.records import Failure, Query, RankedDoc, UsageRecord
from pipeline.storage import Location, read_table
from pipeline.write.manifest import (
    DATASETS,
    MANIFEST,
    append_manifest,
    committed_parts,
    next_seq,
    part_name,
    write_part,
)

__all__ = ["DATASETS", "MANIFEST", "OutputWriter", "committed_parts", "drop_retryable_failures"]

_ONE = 1
# Rows of one dataset buffered before a commit (output.flush_rows). Not larger: encoding a
# part costs memory with its size (100,000-row commits raised a 100k-query run's peak RSS
# from 187 to 270 MB); large part *files* come from compaction instead.
FLUSH_ROWS = 20_000

RESULTS_SCHEMA = pa.schema(
    [
        ("query_id", pa.string()),
        ("doc_id", pa.string()),
        ("rank", pa.int32()),
        ("score", pa.float64()),
        ("input_rank", pa.int32()),
    ]
)
USAGE_SCHEMA = pa.schema(
    [
        ("query_id", pa.string()),
        ("chunk", pa.int32()),
        ("n_docs", pa.int32()),
        ("attempts", pa.int32()),
        ("http_status", pa.int32()),
        ("latency_ms", pa.float64()),
        ("prompt_tokens", pa.int64()),
        ("total_tokens", pa.int64()),
        ("search_units", pa.float64()),
        ("estimated_tokens", pa.int64()),
        ("billing", pa.string()),
        ("started_at", pa.timestamp("ms", tz="UTC")),
    ]
)
FAILURES_SCHEMA = pa.schema(
    [
        ("query_id", pa.string()),
        ("source", pa.string()),
        ("stage", pa.string()),
        ("error", pa.string()),
        ("message", pa.string()),
        ("retryable", pa.bool_()),
    ]
)


# With limits.final_pass, the two scores `score` is made from (see
# pipeline.merge.PendingQuery.final_pass_columns), so that no information is lost.
FINAL_PASS_FIELDS = [pa.field("chunk_score", pa.float64()), pa.field("final_score", pa.float64())]


def results_schema(include_text: bool, final_pass: bool = False) -> pa.Schema:
    schema = RESULTS_SCHEMA
    if final_pass:
        for f in FINAL_PASS_FIELDS:
            schema = schema.append(f)
    return schema.append(pa.field("text", pa.string())) if include_text else schema


class OutputWriter:
    def __init__(
        self,
        out_dir: Location,
        include_text: bool,
        flush_rows: int = FLUSH_ROWS,
        flush_seconds: float = 3.0,
        *,
        final_pass: bool = False,
    ):
        self.out_dir = out_dir
        self.include_text = include_text
        self.final_pass = final_pass  # results/ also has chunk_score and final_score
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
        self.schemas = {
            "results": results_schema(include_text, final_pass),
            "usage": USAGE_SCHEMA,
            "failures": FAILURES_SCHEMA,
        }
        self._buffers = {name: _empty(schema) for name, schema in self.schemas.items()}
        self._usage_rows: list[tuple] = []  # becomes _buffers["usage"] at commit (add_usage)
        self._result_rows = 0  # buffered results rows
        self._failure_rows = 0
        self._pending_queries = 0
        self._last_flush = time.monotonic()
        self._lock = asyncio.Lock()
        self._seq = next_seq(out_dir)
        for name in DATASETS:
            (out_dir / name).mkdir(parents=True, exist_ok=True)

    # -- buffering (cheap, on the event loop) ----------------------------------------
    def add_ranked_columns(
        self,
        query: Query,
        positions: list[int],
        scores: list[float],
        chunk_scores: list[float] | None = None,
        final_scores: list[float | None] | None = None,
    ) -> None:
        """add_ranked for a ranking given as lists (PendingQuery.order()): whole columns
        are extended at once instead of five appends per document. `chunk_scores` and
        `final_scores` (a final pass's query) default to `scores` and nulls."""
        cols = self._buffers["results"]
        n = len(positions)
        cols["query_id"].extend(repeat(query.query_id, n))
        cols["doc_id"].extend(map(query.doc_ids.__getitem__, positions))
        cols["rank"].extend(range(1, n + 1))
        cols["score"].extend(scores)
        cols["input_rank"].extend(map(_ONE.__add__, positions))
        if self.final_pass:
            cols["chunk_score"].extend(scores if chunk_scores is None else chunk_scores)
            cols["final_score"].extend(repeat(None, n) if final_scores is None else final_scores)
        if self.include_text:
            cols["text"].extend(map(query.documents.__getitem__, positions))
        self._result_rows += n
        self._pending_queries += 1

    def add_ranked(self, query: Query, ranking: list[RankedDoc]) -> None:
        cols = self._buffers["results"]
        qid = query.query_id
        for rank, doc in enumerate(ranking, start=1):
            cols["query_id"].append(qid)
            cols["doc_id"].append(query.doc_ids[doc.position])
            cols["rank"].append(rank)
            cols["score"].append(doc.score)
            cols["input_rank"].append(doc.position + 1)
            if self.final_pass:
                cols["chunk_score"].append(doc.score)
                cols["final_score"].append(None)
            if self.include_text:
                cols["text"].append(query.documents[doc.position])
        self._result_rows += len(ranking)
        self._pending_queries += 1

    def add_failure(self, failure: Failure) -> None:
        cols = self._buffers["failures"]
        cols["query_id"].append(failure.query_id)
        cols["source"].append(failure.source)
        cols["stage"].append(failure.stage)
        cols["error"].append(failure.error)
        cols["message"].append(failure.message)
        cols["retryable"].append(failure.retryable)
        self._failure_rows += 1
        self._pending_queries += 1

    def add_usage(self, usage: UsageRecord) -> None:
        # One row per request: kept as a tuple (one C-level attrgetter call) and turned
        # into columns only when the part is committed, in the writer's thread.
        self._usage_rows.append(_USAGE_ROW(usage))

    # -- committing (file I/O in a worker thread) -------------------------------------
    def due(self) -> bool:
        fullest = max(self._result_rows, self._failure_rows, len(self._usage_rows))
        if not fullest:
            return False
        return (
            fullest >= self.flush_rows or time.monotonic() - self._last_flush >= self.flush_seconds
        )

    async def maybe_flush(self) -> None:
        if self.due():
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            if not (self._result_rows or self._failure_rows or self._usage_rows):
                return
            buffers, self._buffers = self._buffers, {n: _empty(s) for n, s in self.schemas.items()}
            usage_rows, self._usage_rows = self._usage_rows, []
            queries, self._pending_queries = self._pending_queries, 0
            counts = (self._result_rows, self._failure_rows)
            self._result_rows = self._failure_rows = 0
            self._last_flush = time.monotonic()
            seq, self._seq = self._seq, self._seq + 1
            try:
                await asyncio.to_thread(self._commit_or_undo, seq, buffers, queries, usage_rows)
            except OutputError:
                # Keep the rows for the last flush at close: the disk may have room again.
                self._put_back(buffers, usage_rows, queries, counts)
                raise

    async def close(self, compact: bool = False) -> None:
        """Commit what is buffered; with `compact`, then merge the small parts (the end of
        a job that was not interrupted: compaction takes seconds per million queries)."""
        await self.flush()
        if compact:
            async with self._lock:
                await asyncio.to_thread(self._compact)

    def _compact(self) -> None:
        from pipeline.write.compact import compact_parts

        try:
            compact_parts(self.out_dir, self._seq, self.run_id)
            self._seq = next_seq(self.out_dir)
        except OSError as exc:
            # Every row is committed already: the small parts stay in force (a half-merged
            # part is named by no manifest line, and the next run removes it).
            raise OutputError(
                f"cannot compact {_where(exc, self.out_dir)}: {_reason(exc)}"
            ) from exc

    def _put_back(
        self,
        buffers: dict[str, dict[str, list]],
        usage_rows: list[tuple],
        queries: int,
        counts: tuple[int, int],
    ) -> None:
        for name, cols in buffers.items():
            if name == "usage":
                continue  # made from usage_rows in _commit, which are put back below
            current = self._buffers[name]
            for col, values in cols.items():
                current[col] = values + current[col]
        self._usage_rows = usage_rows + self._usage_rows
        self._pending_queries += queries
        self._result_rows += counts[0]
        self._failure_rows += counts[1]

    def _commit_or_undo(
        self, seq: int, buffers: dict[str, dict[str, list]], queries: int, usage_rows: list[tuple]
    ) -> None:
        """`_commit`, or on an OSError (folder gone, disk full) an `OutputError` naming the
        path, with this commit's part files removed and the manifest as it was: committed
        work stays exactly as before, and no half-written line is left to append after."""
        manifest = self.out_dir / MANIFEST
        try:
            size = manifest.stat().st_size
        except OSError:
            size = None
        try:
            self._commit(seq, buffers, queries, usage_rows)
        except OSError as exc:
            final = part_name(seq, self.run_id)
            for name in DATASETS:
                for path in (self.out_dir / name / final, self.out_dir / name / f".{final}.tmp"):
                    with contextlib.suppress(OSError):
                        path.unlink(missing_ok=True)
            # (On an object store the manifest is replaced whole or not at all: as it was.)
            if size is not None and isinstance(manifest, Path):
                with contextlib.suppress(OSError), open(manifest, "r+b") as fh:
                    fh.truncate(size)
            raise OutputError(f"cannot write {_where(exc, self.out_dir)}: {_reason(exc)}") from exc

    def _commit(
        self, seq: int, buffers: dict[str, dict[str, list]], queries: int, usage_rows: list[tuple]
    ) -> None:
        if usage_rows:
            buffers["usage"] = _usage_columns(usage_rows)
        entry: dict[str, object] = {
            "seq": seq,
            "run": self.run_id,
            "queries": queries,
            "at": time.time(),
        }
        for name, cols in buffers.items():
            n = len(next(iter(cols.values())))
            if not n:
                entry[name] = None
                continue
            table = pa.Table.from_pydict(cols, schema=self.schemas[name])
            final = part_name(seq, self.run_id)
            write_part(self.out_dir / name, final, table)
            entry[name] = final
            entry[f"{name}_rows"] = n
        append_manifest(self.out_dir, entry)


def drop_retryable_failures(out_dir: Location) -> list[str]:
    """For --retry-failed: commit a failures/ without the retryable rows; return their ids.

    One new part holding the rows that stay replaces every earlier failures part, in one
    manifest line. A crash before that line leaves the old parts in force; a crash after it
    leaves the dropped queries in neither dataset, so the next run simply ranks them.
    """
    old = committed_parts(out_dir)["failures"]
    if not old:
        return []
    table = pa.concat_tables([read_table(p) for p in old])
    retryable = table.column("retryable").fill_null(False)
    dropped = table.filter(retryable).column("query_id").to_pylist()
    if not dropped:
        return []
    kept = table.filter(pa.compute.invert(retryable))
    seq = next_seq(out_dir)
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-retry"
    entry: dict[str, object] = {
        "seq": seq,
        "run": run_id,
        "queries": 0,
        "replaces": {"failures": [p.name for p in old]},
        "failures": None,
    }
    if kept.num_rows:
        final = part_name(seq, run_id)
        write_part(out_dir / "failures", final, kept)
        entry["failures"] = final
    append_manifest(out_dir, entry)
    for path in old:
        path.unlink(missing_ok=True)
    return [q for q in dropped if q is not None]


def _where(exc: OSError, out_dir: Location) -> str:
    # pyarrow's errors carry the path in their text only ("Failed to open local file '…'").
    if exc.filename:
        return str(exc.filename)
    found = re.search(r"local file '([^']+)'", str(exc))
    return found.group(1) if found else f"to {out_dir}"


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


_USAGE_ROW = attrgetter(*USAGE_SCHEMA.names)  # a UsageRecord as a tuple in schema order


def _usage_columns(rows: list[tuple]) -> dict[str, list]:
    cols = dict(zip(USAGE_SCHEMA.names, map(list, zip(*rows, strict=True)), strict=True))
    cols["started_at"] = [int(t * 1000) for t in cols["started_at"]]  # unix s -> ms
    return cols


def _empty(schema: pa.Schema) -> dict[str, list]:
    return {name: [] for name in schema.names}
