"""Resume of a pairs input (one row per candidate): the rows of queries an earlier run
ranked are left out unread, all of them, also where a query straddles a batch or row group
boundary, and the run still ends exactly like one clean run. A finished query id that
comes back later in the input is still not grouped (exit 2) or, with allow_ungrouped, a
duplicate failure."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import InputConfig
from pipeline.ledger import QueryLedger
from pipeline.read import open_input
from pipeline.read.layouts import InputReader
from pipeline.records import Finished
from pipeline.run import EXIT_SETUP
from pipeline.write import committed_parts
from pipeline.write.parts import OutputWriter
from tests.fake_server import Knobs, running_server
from tests.helpers import job_config, make_queries, pairs_rows, run

SIZES = [3, 7, 11, 20, 5, 14, 9, 4, 17, 6]  # rows per query: most straddle a batch of 7


def pairs_input(tmp: Path, fmt: str, rows: list[dict] | None = None) -> Path:
    """Queries of 3-20 rows, with a row without an id inside a query and a query that
    fails validation (a null text): both failure rows, on resume recorded ones."""
    if rows is None:
        rows = pairs_rows(make_queries(30, SIZES, seed=12))
        rows[40] = {**rows[40], "query_id": None}  # an unparseable row amid its query's rows
        bad = next(i for i, r in enumerate(rows) if r["query_id"] == "q0011")
        rows[bad + 2] = {**rows[bad + 2], "text": None}  # q0011 fails: missing_field
    if fmt == "parquet":
        path = tmp / "pairs.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=10)  # 7+3 per group
    else:
        path = tmp / "pairs.jsonl"
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def config(path: Path, out: Path, url: str, **extra):
    return job_config(
        path,
        out,
        url,
        input__layout='"pairs"',
        input__batch_rows=7,
        output__flush_rows=3,
        limits__max_docs_per_request=8,
        **extra,
    )


def tables(out: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    parts = committed_parts(out)
    r = pl.read_parquet(parts["results"]).sort("query_id", "rank")
    f = pl.DataFrame(schema={"query_id": pl.String, "source": pl.String, "error": pl.String})
    if parts["failures"]:
        f = pl.read_parquet(parts["failures"]).select("query_id", "source", "error")
    return r, f.sort("source")


def ranked_ids(out: Path) -> set[str]:
    """The query ids `out` holds results of."""
    parts = committed_parts(out)
    if not parts["results"]:
        return set()
    return set(pl.read_parquet(parts["results"])["query_id"].unique().to_list())


def record_converted_rows(monkeypatch) -> list[str | None]:
    """The query id of every pairs row the reader converts from now on (None: no id)."""
    built: list[str | None] = []
    original = InputReader._pairs_row

    def counting(self, batch, i, group):
        built.append(batch.columns["query_id"][i])
        return original(self, batch, i, group)

    monkeypatch.setattr(InputReader, "_pairs_row", counting)
    return built


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
async def test_a_pairs_run_cut_after_any_commit_resumes_to_the_clean_output(
    tmp_path, fmt, monkeypatch
):
    path = pairs_input(tmp_path, fmt)
    async with running_server(Knobs(max_docs=8)) as server:
        first = await run(config(path, tmp_path / "clean", server.base_url))
        assert first.exit_code == 1  # the row without an id and q0011
        want_r, want_f = tables(tmp_path / "clean")
        assert sorted(want_f["error"].to_list()) == ["missing_field", "missing_field"]

        history = tmp_path / "history"
        monkeypatch.setattr(OutputWriter, "_compact", lambda self: None)
        await run(config(path, history, server.base_url))
        monkeypatch.undo()
        built = record_converted_rows(monkeypatch)
        lines = (history / "_manifest.jsonl").read_bytes().splitlines(keepends=True)
        assert len(lines) > 6
        for k in sorted({1, 2, 3, len(lines) // 3, len(lines) // 2, len(lines) - 1, len(lines)}):
            cut = tmp_path / f"cut-{k}"
            shutil.copytree(history, cut)
            (cut / "_manifest.jsonl").write_bytes(b"".join(lines[:k]))
            done_ids = ranked_ids(cut)
            finished = {
                q["query"] for q in make_queries(30, SIZES, seed=12) if q["query_id"] in done_ids
            }
            server.log.clear()
            built.clear()
            outcome = await run(config(path, cut, server.base_url))
            got_r, got_f = tables(cut)
            assert got_r.equals(want_r), k
            assert got_f.equals(want_f), k
            assert outcome.stats.queries_read == first.stats.queries_read, k
            sent = {r.query for r in server.log}
            assert not sent & finished, k  # no request for a query ranked before the cut
            assert not set(built) & done_ids, k  # and not one of its rows converted
            summary = orjson.loads((cut / "summary.json").read_bytes())
            assert summary["queries"]["accounted_for"], k


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
async def test_a_no_op_pairs_resume_converts_no_row_of_a_ranked_query(tmp_path, fmt, monkeypatch):
    path = pairs_input(tmp_path, fmt)
    out = tmp_path / "out"
    async with running_server(Knobs(max_docs=8)) as server:
        first = await run(config(path, out, server.base_url))
        before = tables(out)
        ranked = set(before[0]["query_id"].unique().to_list())
        built = record_converted_rows(monkeypatch)
        server.log.clear()
        again = await run(config(path, out, server.base_url))
    assert server.log == []
    # Only the rows of what failed are read again (the row without an id, q0011's rows).
    assert not set(built) & ranked
    assert built.count(None) == 1 and set(built) == {None, "q0011"}
    s = again.stats
    assert s.queries_read == first.stats.queries_read == s.queries_skipped
    assert s.queries_ranked == s.queries_failed == 0
    got = tables(out)
    assert got[0].equals(before[0]) and got[1].equals(before[1])


def stray_rows() -> tuple[list[dict], list[dict]]:
    """A grouped pairs input, and the same with q0003's first rows again at the end."""
    rows = pairs_rows(make_queries(12, SIZES, seed=5))
    return rows, rows + [r for r in rows if r["query_id"] == "q0003"][:2]


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
async def test_a_finished_query_coming_back_later_still_stops_the_resume(tmp_path, fmt):
    grouped, strayed = stray_rows()
    async with running_server(Knobs(max_docs=8)) as server:
        fresh = await run(
            config(pairs_input(tmp_path, fmt, strayed), tmp_path / "f", server.base_url)
        )
        assert fresh.exit_code == EXIT_SETUP
        path = pairs_input(tmp_path, fmt, grouped)
        out = tmp_path / "out"
        assert (await run(config(path, out, server.base_url))).exit_code == 0
        pairs_input(tmp_path, fmt, strayed)  # the input grows a stray: same file, resumed
        server.log.clear()
        again = await run(config(path, out, server.base_url), accept_changed_input=True)
    assert again.exit_code == EXIT_SETUP
    assert "input is not grouped by query_id" in again.message
    assert "query_id 'q0003' comes back after other queries" in again.message
    assert again.message == fresh.message  # the same row named
    assert server.log == []


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
async def test_with_allow_ungrouped_a_finished_query_coming_back_is_a_duplicate(tmp_path, fmt):
    grouped, strayed = stray_rows()
    extra = {"input__allow_ungrouped": "true"}
    async with running_server(Knobs(max_docs=8)) as server:
        clean = tmp_path / "clean"
        await run(config(pairs_input(tmp_path, fmt, strayed), clean, server.base_url, **extra))
        want = tables(clean)
        assert want[1]["error"].to_list() == ["duplicate_query_id"]
        path = pairs_input(tmp_path, fmt, grouped)
        out = tmp_path / "out"
        assert (await run(config(path, out, server.base_url, **extra))).exit_code == 0
        pairs_input(tmp_path, fmt, strayed)
        server.log.clear()
        again = await run(config(path, out, server.base_url, **extra), accept_changed_input=True)
    assert again.exit_code == 1 and server.log == []
    got = tables(out)
    assert got[0].equals(want[0]) and got[1].equals(want[1])


@pytest.mark.parametrize("batch_rows", [1, 3, 7, 64])
def test_ranked_queries_are_left_out_whole_across_batches_and_files(tmp_path, batch_rows):
    """Two files, Parquet then JSONL, a query (ranked or not) straddling the boundary:
    exactly the unranked queries come out, whole, and each ranked one counts once."""
    queries = make_queries(16, SIZES, seed=3)
    rows = pairs_rows(queries)
    cut = sum(SIZES[:5]) + 4  # inside q0005 (14 rows)
    for part in ("a", "b"):  # read in this order
        (tmp_path / "in" / part).mkdir(parents=True)
    pairs_input(tmp_path / "in" / "a", "parquet", rows[:cut])
    pairs_input(tmp_path / "in" / "b", "jsonl", rows[cut:])
    ranked = {"q0000", "q0002", "q0003", "q0005", "q0009", "q0015"}
    for ranked_set in (ranked, {q["query_id"] for q in queries} - ranked):
        reader = open_input(
            InputConfig(path=str(tmp_path / "in"), layout="pairs", batch_rows=batch_rows)
        )
        with QueryLedger() as ledger:
            ledger.load_ids(pa.array(sorted(ranked_set)), QueryLedger.RANKED)
            got = [item for batch in reader.batches(ledger) for item in batch]
        done = sum(item.count for item in got if isinstance(item, Finished))
        assert done == len(ranked_set)
        out = [item for item in got if not isinstance(item, Finished)]
        want = [q for q in queries if q["query_id"] not in ranked_set]
        assert [(q.query_id, q.documents, q.doc_ids) for q in out] == [
            (q["query_id"], q["documents"], q["doc_ids"]) for q in want
        ]
