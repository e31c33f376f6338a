"""Which files to read, in which format, and their rows as column batches.

A `RowBatch` is format-neutral: column name -> list of Python values, plus a label for
every row ("file.jsonl line 7", "file.parquet row 7") so any later error can name it.
Rows that could not even be parsed (a malformed JSONL line) arrive as `bad_rows`.

A directory or a recursive glob never reaches into an output directory of this tool (one
holding `_manifest.jsonl` or `_job.json`): with `output.dir` inside the input directory,
the next run would otherwise read its own part files as input.

`input.path` may be a URL (`s3://bucket/prefix`, see `pipeline.storage`): one object, a
prefix (every Parquet/JSONL object under it) or a glob over keys; files are then
`ObjectPath`s, read as streams (JSONL) or by ranged reads (Parquet).
"""

from __future__ import annotations

import glob
import gzip
import io
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import InputError
from pipeline.storage import Location, ObjectPath, glob_pattern, location, parquet_file

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
    finished: int = 0  # rows left out unread: their queries were finished earlier (resume)
    # pairs: (kept rows before it, query id, label of its first row) for each query whose
    # rows were left out and begin in this batch (continued ones are not named again)
    skipped: list[tuple[int, str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def without(self, positions: list[int]) -> RowBatch:
        """This batch minus the rows at `positions` (sorted), counted as `finished`."""
        gone = set(positions)
        keep = [i for i in range(len(self.labels)) if i not in gone]
        columns = {name: [values[i] for i in keep] for name, values in self.columns.items()}
        labels = [self.labels[i] for i in keep]
        return RowBatch(columns, labels, self.bad_rows, self.finished + len(gone))


# (raw query_id values of a row batch, the label of its row i) -> positions to leave unread
SkipRows = Callable[[list, Callable[[int], str]], list[int]]


def detect_format(path: Location, configured: str) -> str:
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


def resolve_sources(path: str, configured_format: str = "auto") -> list[tuple[Location, str]]:
    """Expand a file, a directory or a glob into a sorted list of (file, format)."""
    candidate = location(path, "input.path", InputError)
    files: list[Location] = []
    if isinstance(candidate, ObjectPath):
        files.extend(_object_files(candidate, path))
    else:
        files.extend(_local_files(candidate, path))
    if not files:
        raise InputError(f"input.path {path!r}: matched no Parquet or JSONL files")
    return [(f, detect_format(f, configured_format)) for f in files]


def _local_files(candidate: Path, path: str) -> list[Path]:
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
    return files


def _object_files(where: ObjectPath, url: str) -> list[ObjectPath]:
    """The input objects a URL names: itself, or those under its prefix (or matching its
    glob) with an input suffix, outside any output directory of this tool. One listing."""
    try:
        wildcard = re.search(r"[*?[]", where.path)
        if wildcard is None:
            if where.is_file():
                return [where]
            root = where
        else:  # listed from the last "/" before the first wildcard
            above = where.path[: wildcard.start()].rsplit("/", 1)[0]
            root = where.at(above)
        if not root.is_dir():
            raise InputError(f"input.path {url!r}: no such object or prefix")
        listed = root.files()
    except OSError as exc:
        raise InputError(f"input.path {url!r}: cannot list it ({exc})") from None
    outputs = {p.parent.path for p in listed if p.name in OUTPUT_MARKERS}
    match = glob_pattern(where.path).fullmatch if wildcard is not None else None
    return [
        f
        for f in listed
        if not f.name.startswith((".", "_"))
        and (match(f.path) if match else f.name.lower().endswith(PARQUET_SUFFIXES + JSONL_SUFFIXES))
        and not any(f.path.startswith(f"{out}/") for out in outputs if out != root.path)
    ]


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
    path: Location,
    columns: list[str],
    optional: set[str],
    batch_rows: int,
    keys: Mapping[str, str] | None = None,
) -> Iterator[RowBatch]:
    """`keys`: column -> its `input.columns` key, so an error names what to change."""
    handle, wanted = _open_parquet(path, columns, optional, keys)
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


def parquet_batches_skipping(
    path: Location,
    columns: list[str],
    optional: set[str],
    batch_rows: int,
    id_column: str,
    skip: SkipRows,
    keys: Mapping[str, str] | None = None,
) -> Iterator[RowBatch]:
    """`parquet_batches`, but the id column of each batch is read first and `skip` says
    which rows to leave out: the other columns of a row group are decoded only from its
    first batch that keeps a row, so a finished stretch of the input costs its ids alone.

    Both readers of a row group slice it with the same `batch_size`, so the k-th id batch
    and the k-th full batch are the same rows (checked)."""
    handle, wanted = _open_parquet(path, columns, optional, keys)
    row = 0
    try:
        for group in range(handle.num_row_groups):
            full: Iterator[pa.RecordBatch] | None = None
            taken = 0  # batches of `full` consumed so far
            ids = handle.iter_batches(
                batch_size=batch_rows, row_groups=[group], columns=[id_column], use_threads=False
            )
            for index, id_batch in enumerate(ids):
                n, first = id_batch.num_rows, row
                row += n
                gone = skip(id_batch.column(0).to_pylist(), partial(_row_label, path, first))
                if len(gone) == n:
                    yield RowBatch({name: [] for name in wanted}, [], finished=n)
                    continue
                if full is None:
                    full = handle.iter_batches(
                        batch_size=batch_rows, row_groups=[group], columns=wanted, use_threads=False
                    )
                record_batch = None
                while taken <= index:
                    record_batch = next(full, None)
                    taken += 1
                if record_batch is None or record_batch.num_rows != n:
                    raise InputError(f"{path}: row group {group} read back inconsistently")
                keep = _kept(n, gone)
                if gone:
                    record_batch = record_batch.take(pa.array(keep, pa.int32()))
                cols = {name: record_batch.column(name).to_pylist() for name in wanted}
                labels = [f"{path} row {first + i + 1}" for i in keep]
                yield RowBatch(cols, labels, finished=len(gone))
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{path}: unreadable after row {row} ({exc})") from None


def _row_label(path: Location, first: int, i: int) -> str:
    return f"{path} row {first + i + 1}"  # the label parquet_batches gives row i


def _kept(n: int, gone: list[int]) -> list[int]:
    if not gone:
        return list(range(n))
    drop = set(gone)
    return [i for i in range(n) if i not in drop]


def _open_parquet(
    path: Location, columns: list[str], optional: set[str], keys: Mapping[str, str] | None
) -> tuple[pq.ParquetFile, list[str]]:
    try:
        handle = parquet_file(path)
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
    return handle, [c for c in columns if c in present]


def jsonl_batches(
    path: Location, columns: list[str], batch_rows: int, keys_seen: set[str] | None = None
) -> Iterator[RowBatch]:
    """`keys_seen`, when given, collects every key of the rows read (for error messages)."""
    try:
        raw = path.open("rb")
        # Peeked, not reopened: on an object store a second open is a second GET.
        gzipped = raw.peek(2)[:2] == b"\x1f\x8b"
    except OSError as exc:
        raise InputError(f"{path}: cannot open ({exc.strerror or exc})") from None
    stream: io.BufferedIOBase = gzip.GzipFile(fileobj=raw) if gzipped else raw
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


def _json_problem(line: bytes, exc: Exception) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"invalid UTF-8 at byte {err.start}"
    return f"malformed JSON ({exc})"
