"""Requests on the wire: what a timeout says, and when a request counts as started."""

from __future__ import annotations

from collections import deque

from pipeline.run import EXIT_OK
from tests.fake_server import Knobs, running_server
from tests.helpers import failures, job_config, make_queries, run, usage, write_grouped_parquet


async def test_a_timeout_is_its_own_kind_and_names_the_limit(tmp_path, out_dir):
    path = write_grouped_parquet(tmp_path / "in.parquet", make_queries(3, 5, seed=54))
    knobs = Knobs(hang_s=5, script=deque(["none", "hang"]))
    async with running_server(knobs) as server:
        cfg = job_config(
            path,
            out_dir,
            server.base_url,
            limits__max_concurrency=1,
            limits__max_attempts=1,
            limits__timeout_s=0.3,
        )
        outcome = await run(cfg)
    f = failures(out_dir)
    assert f["error"].to_list() == ["timeout"] and f["retryable"].to_list() == [True]
    assert "no answer within limits.timeout_s = 0.3s" in f["message"][0]
    assert dict(outcome.stats.errors) == {"timeout": 1}


async def test_usage_started_at_is_when_the_request_was_sent(tmp_path, out_dir):
    """At 600 requests a minute no more than 10 requests are sent in any second (the
    limiter's guarantee), so no more than 10 usage rows may say they started in one."""
    path = write_grouped_parquet(tmp_path / "in.parquet", make_queries(25, 5, seed=55))
    async with running_server() as server:
        cfg = job_config(
            path,
            out_dir,
            server.base_url,
            limits__requests_per_minute=600,
            limits__max_concurrency=16,
        )
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_OK
    starts = sorted(t.timestamp() for t in usage(out_dir)["started_at"].to_list())
    assert len(starts) == 25
    most_in_a_second = max(sum(1 for u in starts if t <= u < t + 1.0) for t in starts)
    assert most_in_a_second <= 10, starts
