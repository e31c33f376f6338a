"""Which files to read, in which format, and their rows as column batches.

A `RowBatch` is format-neutral: column name -> list of Python values, plus a label for
every row ("file.jsonl line 7", "file.parquet row 7") so any later error can name it.
Rows that could not even be parsed (a malformed JSONL line) arrive as `bad_rows`.
"""

from __future__ import annotations

import glob
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import InputError

MISSING = object()  # a key absent from a JSONL object (distinct from an explicit null)
PARQUET_SUFFIXES = (".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".json.gz")


@dataclass(slots=True)
class RowBatch:
    columns: dict[str, list]
    labels: list[str]
    bad_rows: list[tuple[str, str]] = field(default_factory=list)  # (label, message)

    def __len__(self) -> int:
        return len(self.labels)


def detect_format(path: Path, configured: str) -> str:
    if configured != "auto":
        return configured
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    raise InputError(
        f"{path}: cannot tell the format from the name; set input.format to parquet or jsonl"
    )


def resolve_sources(path: str, configured_format: str = "auto") -> list[tuple[Path, str]]:
    """Expand a file, a directory or a glob into a sorted list of (file, format)."""
    candidate = Path(path)
    if any(ch in path for ch in "*?["):
        files = [Path(p) for p in sorted(glob.glob(path, recursive=True))]
        files = [f for f in files if f.is_file() and not f.name.startswith((".", "_"))]
    elif candidate.is_dir():
        files = sorted(
            f
            for f in candidate.rglob("*")
            if f.is_file()
            and not f.name.startswith((".", "_"))
            and f.name.lower().endswith(PARQUET_SUFFIXES + JSONL_SUFFIXES)
        )
    elif candidate.is_file():
        files = [candidate]
    else:
        raise InputError(f"input.path {path!r}: no such file or directory")
    if not files:
        raise InputError(f"input.path {path!r}: matched no Parquet or JSONL files")
    return [(f, detect_format(f, configured_format)) for f in files]


def parquet_batches(
    path: Path, columns: list[str], optional: set[str], batch_rows: int
) -> Iterator[RowBatch]:
    try:
        handle = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    present = set(handle.schema_arrow.names)
    missing = [c for c in columns if c not in present and c not in optional]
    if missing:
        raise InputError(
            f"{path}: missing column {missing[0]!r} (columns are {', '.join(sorted(present))}); "
            f"set input.columns.<name> to map it"
        )
    wanted = [c for c in columns if c in present]
    row = 0
    try:
        for record_batch in handle.iter_batches(
            batch_size=batch_rows, columns=wanted, use_threads=False
        ):
            n = record_batch.num_rows
            cols = {name: record_batch.column(name).to_pylist() for name in wanted}
            labels = [f"{path} row {row + i + 1}" for i in range(n)]
            row += n
            yield RowBatch(cols, labels)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: unreadable after row {row} ({exc})") from None


def jsonl_batches(path: Path, columns: list[str], batch_rows: int) -> Iterator[RowBatch]:
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot open ({exc.strerror})") from None
    stream: io.BufferedIOBase = gzip.GzipFile(fileobj=raw) if _is_gzip(path) else raw
    rows: list[dict] = []
    labels: list[str] = []
    bad: list[tuple[str, str]] = []
    line_no = 0
    try:
        for line in stream:
            line_no += 1
            if not line.strip():
                continue
            label = f"{path} line {line_no}"
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                bad.append((label, _json_problem(line, exc)))
            else:
                if isinstance(obj, dict):
                    rows.append(obj)
                    labels.append(label)
                else:
                    bad.append((label, f"expected a JSON object, got {type(obj).__name__}"))
            if len(rows) + len(bad) >= batch_rows:
                yield _rows_to_batch(rows, labels, bad, columns)
                rows, labels, bad = [], [], []
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{path}: unreadable after line {line_no} ({exc})") from None
    finally:
        stream.close()
        raw.close()
    if rows or bad:
        yield _rows_to_batch(rows, labels, bad, columns)


def _rows_to_batch(rows: list[dict], labels: list[str], bad: list, columns: list[str]) -> RowBatch:
    cols = {name: [r.get(name, MISSING) for r in rows] for name in columns}
    return RowBatch(cols, labels, bad)


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _json_problem(line: bytes, exc: Exception) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"invalid UTF-8 at byte {err.start}"
    return f"malformed JSON ({exc})"
