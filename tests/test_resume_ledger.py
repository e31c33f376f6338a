"""Resume through the ledger: a run cut off after any commit and resumed ends exactly like
one clean run (duplicates, input failures and all), and finished rows are not re-read."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import polars as pl
import pytest

from pipeline.read.layouts import InputReader
from pipeline.write import committed_parts
from pipeline.write.parts import OutputWriter
from tests.helpers import (
    job_config,
    make_queries,
    run,
    write_grouped_jsonl,
    write_grouped_parquet,
    write_pairs_parquet,
)


def tricky_queries() -> list[dict]:
    """Queries with the cases resume must get right: duplicates of ranked queries (one in
    the same row group, others far later), rows that fail validation, one without an id."""
    qs = make_queries(40, [3, 5, 12], seed=51)
    invalid = {**qs[30], "query_id": "empty", "documents": []}  # no_candidates
    no_id = {**qs[31], "query_id": None, "doc_ids": None}
    ordered = qs[:10] + [dict(qs[2])] + qs[10:20] + [invalid] + qs[20:31] + [no_id]
    return ordered + qs[32:] + [dict(qs[2]), dict(qs[15])]


def write_input(tmp: Path, layout: str) -> tuple[Path, dict]:
    queries = tricky_queries()
    if layout == "parquet":
        return write_grouped_parquet(tmp / "in.parquet", queries, row_group_size=8), {}
    if layout == "jsonl":
        return write_grouped_jsonl(tmp / "in.jsonl", queries), {}
    valid = [q for q in queries if q["query_id"] and q["documents"]]
    # Its duplicates come back after other queries: an ungrouped pairs input, kept running
    # (each later occurrence a failure row) by allow_ungrouped.
    extra = {"input__layout": '"pairs"', "input__allow_ungrouped": "true"}
    return write_pairs_parquet(tmp / "pairs.parquet", valid), extra


def final_tables(out: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    parts = committed_parts(out)
    r = pl.read_parquet(parts["results"]).sort("query_id", "rank")
    f = pl.read_parquet(parts["failures"]).select("query_id", "source", "error").sort("source")
    return r, f


def config(path: Path, out: Path, extra: dict):
    return job_config(path, out, kind="local", input__batch_rows=4, output__flush_rows=3, **extra)


@pytest.mark.parametrize("layout", ["parquet", "jsonl", "pairs"])
async def test_a_run_cut_after_any_commit_resumes_to_the_clean_output(
    tmp_path, layout, monkeypatch
):
    path, extra = write_input(tmp_path, layout)
    clean = tmp_path / "clean"
    first = await run(config(path, clean, extra))
    assert first.exit_code == 1  # the invalid rows and the duplicates
    want_r, want_f = final_tables(clean)
    assert set(want_f["error"].to_list()) >= {"duplicate_query_id"}

    # The same job with compaction off keeps every commit in the manifest: cutting the
    # manifest after line k is the directory a crash right after commit k leaves.
    history = tmp_path / "history"
    monkeypatch.setattr(OutputWriter, "_compact", lambda self: None)
    await run(config(path, history, extra))
    monkeypatch.undo()
    lines = (history / "_manifest.jsonl").read_bytes().splitlines(keepends=True)
    assert len(lines) > 6
    for k in sorted({1, 2, len(lines) // 3, len(lines) // 2, len(lines) - 1, len(lines)}):
        cut = tmp_path / f"cut-{k}"
        shutil.copytree(history, cut)
        (cut / "_manifest.jsonl").write_bytes(b"".join(lines[:k]))
        outcome = await run(config(path, cut, extra))
        got_r, got_f = final_tables(cut)
        assert got_r.equals(want_r), k
        assert got_f.equals(want_f), k
        summary = orjson.loads((cut / "summary.json").read_bytes())
        assert summary["queries"]["accounted_for"], k
        assert outcome.stats.queries_read == first.stats.queries_read, k
        # Crash leftovers are gone, and compaction left one part per dataset.
        on_disk = {p.name for p in (cut / "results").iterdir()}
        assert on_disk == {p.name for p in committed_parts(cut)["results"]}
        assert len(on_disk) == 1


async def test_a_no_op_resume_reads_ids_only(tmp_path, monkeypatch):
    path, extra = write_input(tmp_path, "parquet")
    out = tmp_path / "out"
    first = await run(config(path, out, extra))
    before = final_tables(out)
    built: list[int] = []
    original = InputReader._grouped

    def counting(self, batch, i):
        built.append(i)
        return original(self, batch, i)

    monkeypatch.setattr(InputReader, "_grouped", counting)
    again = await run(config(path, out, extra))
    s = again.stats
    # Only rows that are not a ranked query's first occurrence are read again: the failed
    # ones (their failure is recorded, so they are skipped) and nothing else.
    assert len(built) == first.stats.queries_failed
    assert s.queries_read == first.stats.queries_read == s.queries_skipped
    assert s.queries_ranked == s.queries_failed == 0
    got = final_tables(out)
    assert got[0].equals(before[0]) and got[1].equals(before[1])
