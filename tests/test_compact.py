"""Part files: usage counted apart from results, and end-of-job compaction that leaves
either the old parts or the merged ones in force, whatever moment a crash picks."""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl
import pyarrow as pa
import pytest

import pipeline.write.compact as compact
from pipeline.records import Query, UsageRecord
from pipeline.resume import _remove_uncommitted, _repair_manifest
from pipeline.write import committed_parts
from pipeline.write.compact import compact_parts
from pipeline.write.manifest import MANIFEST, commit_part, next_seq
from pipeline.write.parts import OutputWriter


def small_parts(out: Path, n: int = 12, rows: int = 50) -> pl.DataFrame:
    for seq in range(n):
        ids = [f"q{seq:03d}-{i:03d}" for i in range(rows)]
        table = pa.table({"query_id": ids, "rank": list(range(rows))})
        commit_part(out, "results", table, seq, "run1")
        commit_part(out, "usage", table.slice(0, 5), seq + 1000, "run1")
    return everything(out)


def everything(out: Path) -> pl.DataFrame:
    return pl.read_parquet(committed_parts(out)["results"]).sort("query_id")


def on_disk(out: Path, name: str) -> set[str]:
    return {p.name for p in (out / name).iterdir()}


def test_small_parts_merge_up_to_the_target_and_large_ones_stay(tmp_path):
    rows = small_parts(tmp_path)
    sizes = [p.stat().st_size for p in committed_parts(tmp_path)["results"]]
    target = sum(sizes) // 2  # two or three merged parts, not one
    replaced = compact_parts(tmp_path, next_seq(tmp_path), "run1", target_bytes=target)
    assert replaced == {"results": 12, "usage": 12, "failures": 0}
    parts = committed_parts(tmp_path)
    assert 2 <= len(parts["results"]) <= 3 and 1 <= len(parts["usage"]) <= 3
    assert everything(tmp_path).equals(rows)
    assert on_disk(tmp_path, "results") == {p.name for p in parts["results"]}
    # A part of half the target or more is never rewritten; small ones keep merging.
    big = parts["results"][0]
    target = big.stat().st_size * 2
    compact_parts(tmp_path, next_seq(tmp_path), "run1", target_bytes=target)
    assert big in committed_parts(tmp_path)["results"]
    while any(compact_parts(tmp_path, next_seq(tmp_path), "run1", target_bytes=target).values()):
        pass  # converges: a lone small part is left as it is
    assert everything(tmp_path).equals(rows)


def power_cut(*args, **kwargs):
    raise OSError("power cut")


def half_a_line(out_dir: Path, entry: dict) -> None:
    """append_manifest cut off by the crash: half of the line reaches the disk."""
    line = orjson.dumps(entry)
    with open(out_dir / MANIFEST, "ab") as fh:
        fh.write(line[: len(line) // 2])
    power_cut()


@pytest.mark.parametrize(
    ("crash_at", "merged"),
    [
        ("fsync_file", False),  # the merged part is still a hidden temp file
        ("fsync_dir", False),  # renamed, but no manifest line names it
        ("append_manifest", False),  # the line was never written
        ("half_a_line", False),  # the line was cut off mid-write
        ("unlink", True),  # the line is on disk, the old files are not deleted yet
    ],
)
def test_a_crash_anywhere_leaves_the_old_parts_or_the_merged_ones(
    tmp_path, monkeypatch, crash_at, merged
):
    rows = small_parts(tmp_path)
    before = {p.name for p in committed_parts(tmp_path)["results"]}
    if crash_at == "unlink":
        monkeypatch.setattr(Path, "unlink", power_cut)
    elif crash_at == "half_a_line":
        monkeypatch.setattr(compact, "append_manifest", half_a_line)
    else:
        monkeypatch.setattr(compact, crash_at, power_cut)
    with pytest.raises(OSError, match="power cut"):
        compact_parts(tmp_path, next_seq(tmp_path), "run1")
    monkeypatch.undo()
    after = {p.name for p in committed_parts(tmp_path)["results"]}
    assert (after != before) == merged
    assert len(after) == (1 if merged else 12)
    assert everything(tmp_path).equals(rows)
    # The next run's start removes whatever no line names (what resume does first) ...
    _repair_manifest(tmp_path)
    _remove_uncommitted(tmp_path, committed_parts(tmp_path))
    assert on_disk(tmp_path, "results") == after
    assert everything(tmp_path).equals(rows)
    # ... and its own compaction then finishes the job on a sound manifest.
    compact_parts(tmp_path, next_seq(tmp_path), "run2")
    assert len(committed_parts(tmp_path)["results"]) == 1
    assert everything(tmp_path).equals(rows)


async def test_usage_rows_count_apart_from_results(tmp_path):
    writer = OutputWriter(tmp_path, include_text=False, flush_rows=3, flush_seconds=3600)
    query = Query("q1", "text", ["a", "b"], ["d1", "d2"], "in row 1")
    writer.add_ranked_columns(query, [1, 0], [0.9, 0.1])
    assert not writer.due()  # 2 results rows
    for chunk in range(3):
        writer.add_usage(UsageRecord("q1", chunk, 2, 1, 200, 1.0, 5, 5, None, 5, "tokens", 0.0))
    assert writer.due()  # 3 usage rows: usage is full, results are not
    await writer.close(compact=True)
    parts = committed_parts(tmp_path)
    assert [len(parts[n]) for n in ("results", "usage", "failures")] == [1, 1, 0]
