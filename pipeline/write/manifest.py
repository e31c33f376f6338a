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
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "_manifest.jsonl"
DATASETS = ("results", "usage", "failures")


def part_name(seq: int, run_id: str) -> str:
    return f"part-{seq:06d}-{run_id}.parquet"


def write_part(folder: Path, final: str, table: pa.Table) -> None:
    """`table` as `folder/final`, under a hidden temporary name until it is on disk."""
    tmp = folder / f".{final}.tmp"
    pq.write_table(table, tmp, compression="zstd")
    fsync_file(tmp)
    os.replace(tmp, folder / final)
    fsync_dir(folder)


def append_manifest(out_dir: Path, entry: dict) -> None:
    """Append one line, fsynced: the moment the parts it names are committed."""
    entry.setdefault("at", time.time())
    with open(out_dir / MANIFEST, "ab") as fh:
        fh.write(orjson.dumps(entry) + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


def commit_part(out_dir: Path, name: str, table: pa.Table, seq: int, run_id: str) -> str:
    """Write and commit one part of dataset `name` on its own; return its file name."""
    (out_dir / name).mkdir(parents=True, exist_ok=True)
    final = part_name(seq, run_id)
    write_part(out_dir / name, final, table)
    append_manifest(
        out_dir,
        {"seq": seq, "run": run_id, "queries": 0, name: final, f"{name}_rows": table.num_rows},
    )
    return final


def committed_parts(out_dir: Path) -> dict[str, list[Path]]:
    """Part files a manifest line names, per dataset, in commit order."""
    parts: dict[str, list[Path]] = {name: [] for name in DATASETS}
    manifest = out_dir / MANIFEST
    if not manifest.exists():
        return parts
    with open(manifest, "rb") as fh:
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


def next_seq(out_dir: Path) -> int:
    manifest = out_dir / MANIFEST
    if not manifest.exists():
        return 0
    last = -1
    with open(manifest, "rb") as fh:
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
