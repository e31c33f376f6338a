"""End-of-job compaction: many small committed parts become a few large ones, crash-safely.

    >>> import tempfile, pyarrow as pa
    >>> from pipeline.write.manifest import commit_part
    >>> tmp = tempfile.TemporaryDirectory(); out = Path(tmp.name)
    >>> for seq in range(3):
    ...     _ = commit_part(out, "usage", pa.table({"query_id": [f"q{seq}"]}), seq, "run1")
    >>> compact_parts(out, seq=3, run_id="run1")
    {'results': 0, 'usage': 3, 'failures': 0}
    >>> [p.name for p in committed_parts(out)["usage"]], sorted(p.name for p in (out / "usage").iterdir())
    (['part-000003-run1.parquet'], ['part-000003-run1.parquet'])
    >>> tmp.cleanup()

A run commits a part every `flush_seconds` or `flush_rows` rows, so a long run leaves
hundreds of small parts per folder (a 1M-query run: ~560 before this step). At the end of
a job, `compact_parts` merges small parts (each under half of `target_bytes`) in commit
order into parts of about `target_bytes` (64 MB by default: tens of files for tens of
millions of queries), and leaves large ones alone, so a part is rewritten a bounded
number of times however often a job is resumed.

Crash safety is the writer's rule (a part is either fully committed and named by
`_manifest.jsonl`, or absent): each merged part is written under a hidden temporary name,
fsynced and renamed, and only then published by one manifest line
`{"replaces": {"usage": [old parts]}, "usage": "new part"}`, which `committed_parts`
honours; the old files are deleted after that line is on disk. A crash before the line
leaves the old parts in force (the new file, named by no line, is removed by the next run);
a crash after it leaves the new part in force (the old files are then the ones removed).
The rows of a query stay in one part, as every reader assumes.

On an object store the merged part is written to a local temporary file (the memory of a
run stays flat) and uploaded to its final key, which appears whole when the upload
completes; the manifest line then publishes it, as above (see `manifest`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.storage import Location, ObjectPath, parquet_file
from pipeline.write.manifest import (
    DATASETS,
    append_manifest,
    committed_parts,
    fsync_dir,
    fsync_file,
    part_name,
)

TARGET_PART_BYTES = 64 << 20  # on disk (zstd); a part is "small" under half of it
# Rows per written row group: what compaction holds in memory. 131,072 rows raised the
# run's RSS by ~16 MB while it compacted (the encoders buffer a whole row group); 32,768
# rows cost nothing measurable, and ~3,000 queries per row group still read in one go.
ROW_GROUP_ROWS = 32_768
READ_BATCH_ROWS = 32_768


def compact_parts(
    out_dir: Location, seq: int, run_id: str, target_bytes: int = TARGET_PART_BYTES
) -> dict[str, int]:
    """Merge the small committed parts of each dataset; return how many were replaced.

    `seq` is the first manifest sequence number free for the merged parts (one each)."""
    replaced = {}
    for name in DATASETS:
        replaced[name] = 0
        for group in _groups(committed_parts(out_dir)[name], target_bytes):
            _merge(out_dir, name, group, seq, run_id)
            replaced[name] += len(group)
            seq += 1
    return replaced


def _groups(parts: list[Location], target_bytes: int) -> list[list[Location]]:
    """Consecutive small parts of one schema, gathered until they reach the target."""
    groups: list[list[Location]] = []
    group: list[Location] = []
    size = 0
    schema = None
    for path in parts:
        nbytes = path.stat().st_size
        if nbytes >= target_bytes // 2:
            continue
        part_schema = parquet_file(path).schema_arrow
        if group and (size + nbytes > target_bytes or not part_schema.equals(schema)):
            groups.append(group)
            group, size = [], 0
        if not group:
            schema = part_schema
        group.append(path)
        size += nbytes
    groups.append(group)
    return [g for g in groups if len(g) > 1]


def _merge(out_dir: Location, name: str, group: list[Location], seq: int, run_id: str) -> None:
    folder = out_dir / name
    final = part_name(seq, run_id)
    if isinstance(folder, ObjectPath):
        fd, staged = tempfile.mkstemp(prefix=f".{final}.", suffix=".tmp")
        os.close(fd)
        try:
            rows = _write_merged(Path(staged), group)
            (folder / final).upload(Path(staged))
        finally:
            os.unlink(staged)
    else:
        tmp = folder / f".{final}.tmp"
        rows = _write_merged(tmp, group)
        fsync_file(tmp)
        tmp.replace(folder / final)
        fsync_dir(folder)
    append_manifest(
        out_dir,
        {
            "seq": seq,
            "run": run_id,
            "queries": 0,
            "replaces": {name: [p.name for p in group]},
            name: final,
            f"{name}_rows": rows,
            "compacted": True,
        },
    )
    for path in group:
        path.unlink(missing_ok=True)


def _write_merged(target: Path, group: list[Location]) -> int:
    """The rows of `group`'s parts, in order, as one Parquet file; returns their count."""
    rows = 0
    with pq.ParquetWriter(
        target, parquet_file(group[0]).schema_arrow, compression="zstd"
    ) as writer:
        held: list[pa.RecordBatch] = []
        held_rows = 0
        for path in group:
            for batch in parquet_file(path).iter_batches(
                batch_size=READ_BATCH_ROWS, use_threads=False
            ):
                held.append(batch)
                held_rows += batch.num_rows
                if held_rows >= ROW_GROUP_ROWS:
                    writer.write_table(pa.Table.from_batches(held), row_group_size=held_rows)
                    rows += held_rows
                    held, held_rows = [], 0
        if held:
            writer.write_table(pa.Table.from_batches(held), row_group_size=held_rows)
            rows += held_rows
    return rows
