"""The commit protocol of part files: write, fsync, rename, then one manifest line.

    >>> import tempfile, pyarrow as pa
    >>> tmp = tempfile.TemporaryDirectory(); out = Path(tmp.name)
    >>> commit_part(out, "failures", pa.table({"query_id": ["q1"]}), seq=0, run_id="r")
    'part-000000-r.parquet'
    >>> [p.name for p in committed_parts(out)["failures"]], next_seq(out)
    (['part-000000-r.parquet'], 1)
    >>> tmp.cleanup()

`_manifest.jsonl` is the truth about what an output directory holds: a part is committed
when a complete line names it, and stays committed until a later line lists it under
`"replaces"` (compaction, `--retry-failed`). A file no line names was cut off by a crash.

On an object store (`output.dir = "s3://..."`, see `pipeline.storage`) there is no rename
and no append, so the rule is kept with what a store does guarantee: an object written in
one PUT (or one completed multipart upload) appears whole or not at all. A part is written
straight to its final key in one PUT, and committed by the manifest, rewritten whole (one
PUT) with the new line at its end. A reader of `_manifest.jsonl` sees the old or the new
version, never half of either; a part no version names is ignored, and removed by the next
run. One writer per output directory, as on a local disk.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.storage import Location, ObjectPath, location, write_parquet_object

MANIFEST = "_manifest.jsonl"
DATASETS = ("results", "usage", "failures")


def part_name(seq: int, run_id: str) -> str:
    return f"part-{seq:06d}-{run_id}.parquet"


def write_part(folder: Location, final: str, table: pa.Table) -> None:
    """`table` as `folder/final`, under a hidden temporary name until it is on disk (on an
    object store: in one PUT of the final key)."""
    if isinstance(folder, ObjectPath):
        write_parquet_object(folder / final, table)
        return
    tmp = folder / f".{final}.tmp"
    pq.write_table(table, tmp, compression="zstd")
    fsync_file(tmp)
    os.replace(tmp, folder / final)
    fsync_dir(folder)


def append_manifest(out_dir: Location, entry: dict) -> None:
    """Append one line, fsynced: the moment the parts it names are committed (on an object
    store: the manifest rewritten whole, one PUT, that line at its end)."""
    entry.setdefault("at", time.time())
    if isinstance(out_dir, ObjectPath):
        manifest = out_dir / MANIFEST
        try:
            earlier = manifest.read_bytes()
        except FileNotFoundError:
            earlier = b""
        manifest.write_bytes(earlier + orjson.dumps(entry) + b"\n")
        return
    with open(out_dir / MANIFEST, "ab") as fh:
        fh.write(orjson.dumps(entry) + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


def commit_part(out_dir: Location, name: str, table: pa.Table, seq: int, run_id: str) -> str:
    """Write and commit one part of dataset `name` on its own; return its file name."""
    (out_dir / name).mkdir(parents=True, exist_ok=True)
    final = part_name(seq, run_id)
    write_part(out_dir / name, final, table)
    append_manifest(
        out_dir,
        {"seq": seq, "run": run_id, "queries": 0, name: final, f"{name}_rows": table.num_rows},
    )
    return final


def committed_parts(out_dir: str | Location) -> dict[str, list[Location]]:
    """Part files a manifest line names, per dataset, in commit order (`out_dir`: a
    folder, or an object store's URL)."""
    parts: dict[str, list[Location]] = {name: [] for name in DATASETS}
    out_dir = location(out_dir, "output.dir")
    manifest = out_dir / MANIFEST
    if not manifest.exists():
        return parts
    with manifest.open("rb") as fh:
        for line in fh:
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a line cut off by a crash: its parts were never committed
            for name, old in (entry.get("replaces") or {}).items():
                gone = set(old)
                parts[name] = [p for p in parts[name] if p.name not in gone]
            for name in DATASETS:
                if entry.get(name):
                    parts[name].append(out_dir / name / entry[name])
    return parts


def next_seq(out_dir: Location) -> int:
    manifest = out_dir / MANIFEST
    if not manifest.exists():
        return 0
    last = -1
    with manifest.open("rb") as fh:
        for line in fh:
            try:
                last = max(last, int(orjson.loads(line)["seq"]))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                continue
    return last + 1


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    # Some filesystems cannot fsync a directory; the rename is still atomic there.
    with contextlib.suppress(OSError):
        fsync_file(path)
