"""Which files to read, in which format, and their rows as column batches.

A `RowBatch` is format-neutral: column name -> list of Python values, plus a label for
every row ("file.jsonl line 7", "file.parquet row 7") so any later error can name it.
Rows that could not even be parsed (a malformed JSONL line) arrive as `bad_rows`.

A directory or a recursive glob never reaches into an output directory of this tool (one
holding `_manifest.jsonl` or `_job.json`): with `output.dir` inside the input directory,
the next run would otherwise read its own part files as input.
"""

from __future__ import annotations

import glob
import gzip
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import InputError

MISSING = object()  # a key absent from a JSONL object (distinct from an explicit null)
PARQUET_SUFFIXES = (".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".json.gz")
# The files that mark an output directory (pipeline.write's manifest, pipeline.resume's job
# file); named here because read/ sits below both and must not import them.
OUTPUT_MARKERS = ("_manifest.jsonl", "_job.json")
UTF8_BOM = b"\xef\xbb\xbf"


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
    seen: dict[Path, bool] = {}  # directory -> is an output directory (asked once each)
    if any(ch in path for ch in "*?["):
        files = [Path(p) for p in sorted(glob.glob(path, recursive=True))]
        root = _glob_root(path)
        files = [
            f
            for f in files
            if f.is_file()
            and not f.name.startswith((".", "_"))
            and not _in_output_dir(f, root, seen)
        ]
    elif candidate.is_dir():
        files = sorted(
            f
            for f in candidate.rglob("*")
            if f.is_file()
            and not f.name.startswith((".", "_"))
            and f.name.lower().endswith(PARQUET_SUFFIXES + JSONL_SUFFIXES)
            and not _in_output_dir(f, candidate, seen)
        )
    elif candidate.is_file():
        files = [candidate]
    else:
        raise InputError(f"input.path {path!r}: no such file or directory")
    if not files:
        raise InputError(f"input.path {path!r}: matched no Parquet or JSONL files")
    return [(f, detect_format(f, configured_format)) for f in files]


def _glob_root(pattern: str) -> Path:
    """The directory a glob starts from: its path before the first wildcard."""
    parts = Path(pattern).parts
    first = next((i for i, p in enumerate(parts) if any(c in p for c in "*?[")), len(parts))
    return Path(*parts[:first]) if first else Path(".")


def _in_output_dir(file: Path, root: Path, seen: dict[Path, bool]) -> bool:
    """Whether a directory between `root` (excluded) and `file` is an output directory."""
    for parent in file.parents:
        if parent == root or parent == parent.parent:
            return False
        if parent not in seen:
            seen[parent] = any((parent / name).is_file() for name in OUTPUT_MARKERS)
        if seen[parent]:
            return True
    return False


def column_key(column: str, keys: Mapping[str, str] | None) -> str:
    """The job key that names `column`, for messages: "input.columns.doc_ids"."""
    key = (keys or {}).get(column)
    return f"input.columns.{key}" if key else "input.columns.<name>"


def parquet_batches(
    path: Path,
    columns: list[str],
    optional: set[str],
    batch_rows: int,
    keys: Mapping[str, str] | None = None,
) -> Iterator[RowBatch]:
    """`keys`: column -> its `input.columns` key, so an error names what to change."""
    try:
        handle = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    present = set(handle.schema_arrow.names)
    missing = [c for c in columns if c not in present and c not in optional]
    if missing:
        key = column_key(missing[0], keys)
        raise InputError(
            f"{path}: missing column {missing[0]!r} for {key} (columns are "
            f"{', '.join(sorted(present))}); set {key} to the column that holds it"
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


def jsonl_batches(
    path: Path, columns: list[str], batch_rows: int, keys_seen: set[str] | None = None
) -> Iterator[RowBatch]:
    """`keys_seen`, when given, collects every key of the rows read (for error messages)."""
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
            if line_no == 1 and line.startswith(UTF8_BOM):  # an editor's byte-order mark
                line = line[len(UTF8_BOM) :]
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
                    if keys_seen is not None:
                        keys_seen.update(obj)
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
