"""What results/ holds, and what a run does when its output cannot be written."""

from __future__ import annotations

import polars as pl
import pytest

from pipeline.config import load_job
from pipeline.errors import SetupError
from pipeline.run import EXIT_OK
from tests.helpers import results, run


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
