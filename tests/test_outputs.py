"""What results/ holds, and what a run does when its output cannot be written."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import orjson
import polars as pl
import pytest

from pipeline.config import load_job
from pipeline.errors import OutputError, SetupError
from pipeline.records import Failure, Query, UsageRecord
from pipeline.run import EXIT_OK
from pipeline.write import OutputWriter, committed_parts
from tests.fake_server import Knobs, ThreadedServer
from tests.helpers import make_queries, results, run, write_grouped_parquet


def start_cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "RERANK_API_KEY": "sk-test"},
    )


async def test_final_pass_score_falls_with_rank_and_both_raw_scores_are_kept(tmp_path):
    # The sample job: local BM25 (approximately listwise) with the final pass, whose
    # scores sit on another scale than the chunks': before, 9 sample queries had a
    # lower-ranked document with a higher score.
    sets = [f"output.dir={tmp_path / 'final'}"]
    assert (await run(load_job("jobs/sample.toml", sets))).exit_code == EXIT_OK
    plain_sets = [f"output.dir={tmp_path / 'plain'}", "limits.final_pass=false"]
    assert (await run(load_job("jobs/sample.toml", plain_sets))).exit_code == EXIT_OK
    final, plain = results(tmp_path / "final"), results(tmp_path / "plain")

    rises = final.filter(pl.col("score").diff().over("query_id") > 0)
    assert rises.height == 0, rises
    # Exactly: rank is the order of score descending, ties by input_rank ascending (the
    # documented tie-break; BM25 ties often, e.g. every document sharing no query term).
    resorted = final.sort(
        "query_id", pl.col("score"), "input_rank", descending=[False, True, False]
    )
    assert resorted["rank"].to_list() == final["rank"].to_list()
    # chunk_score is each document's own chunk score: what a run without the final pass
    # ranks by, document for document.
    joined = final.join(plain, on=["query_id", "doc_id"], suffix="_plain")
    assert joined.height == plain.height == final.height
    assert (joined["chunk_score"] == joined["score_plain"]).all()
    # final_score: set for exactly the leaders of a chunked query (the window: 64), whose
    # `score` it is; the rank of every leader comes before every other document's.
    leaders = final.filter(pl.col("final_score").is_not_null())
    assert (leaders["score"] == leaders["final_score"]).all()
    per_query = leaders.group_by("query_id").agg(pl.len(), pl.col("rank").max())
    assert per_query.height > 0
    assert (per_query["len"] == 64).all() and (per_query["rank"] == 64).all()
    # Where no final pass ran (one chunk), the score is the chunk score.
    single = final.filter(~pl.col("query_id").is_in(per_query["query_id"].implode()))
    assert single.height > 0 and (single["score"] == single["chunk_score"]).all()


async def test_turning_the_final_pass_on_is_another_job_for_resume(tmp_path):
    # results/ gains two columns with it: parts of both kinds must never be mixed.
    out = [f"output.dir={tmp_path / 'out'}"]
    await run(load_job("jobs/sample.toml", [*out, "limits.final_pass=false"]))
    with pytest.raises(SetupError, match=r"final_pass: was None, now True"):
        await run(load_job("jobs/sample.toml", out))


def test_output_folder_gone_mid_run_one_line_exit_2_summary_written_and_resumable(tmp_path):
    # A real failure of the filesystem, not a mock: once the first parts are committed,
    # results/ is swapped for a plain file, so the next part cannot be created in it
    # (ENOTDIR; chmod would not do: these tests may run as root, which ignores modes).
    queries = make_queries(600, [3, 8], seed=61)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    out = tmp_path / "out"
    job = tmp_path / "job.toml"
    with ThreadedServer(Knobs(latency_s=0.02)) as server:
        job.write_text(
            f'[input]\npath = "{path}"\n[provider]\nkind = "jina"\nbase_url = "{server.base_url}"\n'
            "[limits]\nmax_concurrency = 2\n"
            f'[output]\ndir = "{out}"\nflush_seconds = 0.2\n'
        )
        proc = start_cli("run", str(job), "--quiet")
        while not committed_parts(out)["results"]:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        (out / "results").rename(tmp_path / "results.saved")
        (out / "results").write_text("not a folder")
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 2, stderr
        lines = stderr.decode().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: cannot write "), lines
        assert f"{out / 'results'}" in lines[0] and "Not a directory" in lines[0]
        summary = orjson.loads((out / "summary.json").read_bytes())
        assert summary["status"] == "output_error"

        # Put the folder back: the work committed before is there, and a rerun resumes
        # from it, sending none of it again.
        (out / "results").unlink()
        (tmp_path / "results.saved").rename(out / "results")
        saved = set(pl.read_parquet(committed_parts(out)["results"])["query_id"].to_list())
        assert saved
        sent_before = len(server.log)
        proc = start_cli("run", str(job), "--quiet")
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        resent = {r.query for r in server.log[sent_before:]}
    assert not resent & {q["query"] for q in queries if q["query_id"] in saved}
    got = results(out)
    assert got["query_id"].n_unique() == len(queries)
    assert got.group_by("query_id", "rank").len()["len"].max() == 1  # each query once


async def test_rows_a_failed_commit_held_are_committed_by_the_next_flush(tmp_path):
    # The output may be writable again later (space freed): nothing is dropped meanwhile,
    # and the failed commit leaves no part file and no manifest line behind.
    writer = OutputWriter(tmp_path, include_text=False)
    query = Query("q1", "solar", ["a", "b"], ["d1", "d2"], "in row 1")
    writer.add_ranked_columns(query, [1, 0], [0.9, 0.1])
    writer.add_failure(Failure("q2", "in row 2", "input", "missing_field", "no query"))
    await writer.flush()
    (tmp_path / "usage").rename(tmp_path / "usage.saved")
    (tmp_path / "usage").write_text("not a folder")
    writer.add_ranked_columns(Query("q3", "x", ["c"], ["d3"], "in row 3"), [0], [0.5])
    writer.add_usage(UsageRecord("q3", 0, 1, 1, 200, 1.0, None, None, None, 4, "tokens", 0.0))
    with pytest.raises(OutputError, match=r"usage.*Not a directory"):
        await writer.flush()
    assert [len(v) for v in committed_parts(tmp_path).values()] == [1, 0, 1]
    assert len(list((tmp_path / "results").iterdir())) == 1  # its results part: removed
    (tmp_path / "usage").unlink()
    (tmp_path / "usage.saved").rename(tmp_path / "usage")
    await writer.close()
    assert sorted(results(tmp_path)["query_id"].to_list()) == ["q1", "q1", "q3"]
    assert pl.read_parquet(committed_parts(tmp_path)["usage"])["query_id"].to_list() == ["q3"]


def test_an_output_directory_that_cannot_take_the_job_record_is_one_line_and_exit_2(tmp_path):
    out = tmp_path / "out"
    (out / "_job.json").mkdir(parents=True)  # where the job record goes: a folder
    proc = start_cli("run", "jobs/sample.toml", "--set", f"output.dir={out}")
    _, stderr = proc.communicate(timeout=120)
    lines = stderr.decode().strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, lines
    assert lines[0] == f"error: {out / '_job.json'}: Is a directory"


def test_a_summary_that_cannot_be_written_is_said_and_exit_2_with_the_results_kept(tmp_path):
    out = tmp_path / "out"
    (out / ".summary.json.tmp").mkdir(parents=True)  # summary.json's way in: blocked
    proc = start_cli("run", "jobs/sample.toml", "--quiet", "--set", f"output.dir={out}")
    _, stderr = proc.communicate(timeout=120)
    lines = [x for x in stderr.decode().splitlines() if not x.startswith("warning:")]
    assert proc.returncode == 2 and len(lines) == 1, lines
    assert lines[0].startswith("error: summary.json not written (Is a directory)")
    assert not (out / "summary.json").exists()  # never half a file
    assert results(out)["query_id"].n_unique() == 36
