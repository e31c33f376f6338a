"""A dead or misconfigured endpoint stops the job (exit 4) with a message that says what to
fix; a healthy but flaky one never does. Real servers on 127.0.0.1, the real client."""

from __future__ import annotations

import asyncio
import socket
from collections import deque

import orjson
import pytest

from pipeline.cli import main
from pipeline.run import EXIT_ENDPOINT, EXIT_OK
from tests.fake_server import FakeRerankServer, Knobs, running_server
from tests.helpers import (
    failures,
    job_config,
    make_queries,
    results,
    run,
    usage,
    write_grouped_parquet,
)

BREAKER_FAILURES = 8  # the default


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summary_of(out_dir) -> dict:
    return orjson.loads((out_dir / "summary.json").read_bytes())


@pytest.fixture
def input_path(tmp_path):
    return write_grouped_parquet(tmp_path / "in.parquet", make_queries(36, [5, 12], seed=51))


def assert_stopped(outcome, out_dir, says: str) -> None:
    """Exit 4, the message, summary.json's status, and not every query failed one by one."""
    assert outcome.exit_code == EXIT_ENDPOINT, outcome.message
    assert says in outcome.message, outcome.message
    assert "finished work is saved" in outcome.message
    summary = summary_of(out_dir)
    assert summary["status"] == "endpoint_unusable"
    assert summary["queries"]["failed"] < BREAKER_FAILURES  # the rest are left for a resume
    assert summary["queries"]["ranked"] == 0


async def test_a_refused_connection_stops_the_job(input_path, out_dir):
    url = f"http://127.0.0.1:{free_port()}"
    cfg = job_config(input_path, out_dir, url, limits__max_concurrency=4, limits__max_attempts=6)
    outcome = await run(cfg)
    assert_stopped(
        outcome, out_dir, f"connection refused at {url}/v1/rerank: is the server running?"
    )
    # N failed attempts in a row, plus at most the others already sent: not 36 x 6.
    assert outcome.stats.attempts < BREAKER_FAILURES + 4
    assert failures(out_dir).height == 0  # connection errors are retried, never failed early


async def test_https_to_a_plain_http_server_says_use_http(input_path, out_dir):
    async with running_server() as server:
        tls_url = server.base_url.replace("http://", "https://")
        outcome = await run(job_config(input_path, out_dir, tls_url))
    assert_stopped(
        outcome,
        out_dir,
        f"the server at {tls_url} speaks plain HTTP: use {server.base_url}/v1/rerank",
    )
    assert not server.log


async def test_a_base_url_ending_in_the_api_path_says_give_the_server_root(input_path, out_dir):
    async with running_server() as server:
        outcome = await run(job_config(input_path, out_dir, f"{server.base_url}/v1/rerank"))
    assert_stopped(
        outcome,
        out_dir,
        f"404 from {server.base_url}/v1/rerank/v1/rerank: provider.base_url should be the "
        f"server root ({server.base_url})",
    )


async def test_a_redirect_says_which_url_to_use(input_path, out_dir):
    elsewhere = "https://rerank.example.com/v1/rerank"
    async with running_server(Knobs(redirect_to=elsewhere)) as server:
        outcome = await run(job_config(input_path, out_dir, server.base_url))
    assert_stopped(outcome, out_dir, f"redirected to {elsewhere}: use that URL")
    assert set(server.statuses()) == {301}
    f = failures(out_dir)  # the few queries failed before the stop say it too
    assert all(f"HTTP 301: redirected to {elsewhere}" in m for m in f["message"].to_list())


async def test_a_server_whose_every_answer_is_malformed_stops_the_job(input_path, out_dir):
    async with running_server(Knobs(default_fault="garbage")) as server:
        outcome = await run(job_config(input_path, out_dir, server.base_url))
    assert_stopped(outcome, out_dir, f"no valid answer from {server.base_url}/v1/rerank")
    assert "answer is not JSON" in outcome.message and "provider.kind" in outcome.message


@pytest.mark.parametrize(
    "key, knobs, says",
    [
        # A gateway without a database answers a key it does not know with a 400...
        (
            "sk-wrong-0451",
            Knobs(require_key="sk-right", wrong_key_reply=(400, "No connected db.")),
            "answered HTTP 400: No connected db. (some gateways answer an unknown key this "
            "way: check the key in $GATEWAY_KEY)",
        ),
        # ...and a request with no Authorization header with a plain-text 500.
        (
            None,
            Knobs(require_key="sk-right", no_key_reply=(500, "Internal Server Error")),
            "answered HTTP 500: Internal Server Error; no API key was sent: if the server "
            "needs one, set provider.api_key_env",
        ),
    ],
    ids=["400-no-connected-db", "500-without-a-key"],
)
async def test_gateway_answers_to_a_bad_or_missing_key_stop_the_job(
    input_path, out_dir, monkeypatch, key, knobs, says
):
    if key:
        monkeypatch.setenv("GATEWAY_KEY", key)
    async with running_server(knobs) as server:
        cfg = job_config(
            input_path,
            out_dir,
            server.base_url,
            provider__api_key_env="GATEWAY_KEY" if key else '""',
        )
        outcome = await run(cfg)
    assert_stopped(outcome, out_dir, says)
    assert not key or key not in outcome.message
    assert len(server.log) < BREAKER_FAILURES + 16  # not 36 queries x max_attempts


async def test_a_healthy_but_flaky_server_never_trips_it(tmp_path, out_dir):
    """Runs of five failures between answers, longer than breaker_failures = 3: after an
    answer it also takes breaker_seconds (120 s) with none, which never comes."""
    queries = make_queries(12, 5, seed=52)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    script: deque = deque()
    for _ in queries:
        script.extend(["none", "500", "hang", "garbage", "reset", "503"])
    async with running_server(Knobs(hang_s=5, script=script)) as server:
        cfg = job_config(
            path,
            out_dir,
            server.base_url,
            limits__max_concurrency=1,
            limits__max_attempts=8,
            limits__timeout_s=0.3,
            limits__breaker_failures=3,
        )
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_OK, outcome.message
    assert results(out_dir)["query_id"].n_unique() == 12
    assert outcome.stats.retries == 11 * 5  # every query after the first: five failures
    assert summary_of(out_dir)["status"] == "complete"


async def test_once_answers_stop_it_trips_after_breaker_seconds(tmp_path, out_dir):
    queries = make_queries(6, 5, seed=53)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    knobs = Knobs(script=deque(["none"]), default_fault="503")  # one answer, then 503s
    async with running_server(knobs) as server:
        cfg = job_config(
            path,
            out_dir,
            server.base_url,
            limits__max_concurrency=1,
            limits__max_attempts=1000,
            limits__breaker_failures=3,
            limits__breaker_seconds=0.5,
        )
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_ENDPOINT
    assert f"{server.base_url}/v1/rerank answered HTTP 503: injected 503" in outcome.message
    assert "attempts in a row failed, no answer for" in outcome.message
    assert results(out_dir)["query_id"].unique().to_list() == ["q0000"]  # kept
    assert outcome.stats.attempts >= 1 + 3
    assert failures(out_dir).height == 0


class SlowOrBroken(FakeRerankServer):
    """Answers one query slowly and correctly, every other with a 500."""

    slow_query = ""

    async def handle(self, request):
        body = orjson.loads(await request.read())
        if body.get("query") == self.slow_query:
            await asyncio.sleep(2.0)
        else:
            self.knobs.script.appendleft("500")
        return await super().handle(request)


async def test_an_answer_on_the_wire_when_it_trips_is_kept(tmp_path, out_dir):
    queries = make_queries(2, 5, seed=57)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server(server_cls=SlowOrBroken) as server:
        server.slow_query = queries[0]["query"]
        cfg = job_config(
            path,
            out_dir,
            server.base_url,
            limits__max_concurrency=2,
            limits__max_attempts=50,
            limits__breaker_failures=3,
        )
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_ENDPOINT  # q0001's 500s tripped it, q0000 in flight
    assert results(out_dir)["query_id"].unique().to_list() == ["q0000"]
    assert server.statuses().count(500) == 3 and server.statuses()[-1] == 200


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


def test_the_command_line_exits_4(tmp_path, capsys):
    path = write_grouped_parquet(tmp_path / "in.parquet", make_queries(4, 3, seed=56))
    job = tmp_path / "job.toml"
    job.write_text(
        f'[input]\npath = "{path}"\n[provider]\nkind = "vllm"\n'
        f'base_url = "http://127.0.0.1:{free_port()}"\n[output]\ndir = "{tmp_path}/out"\n'
        "[limits]\nmax_retry_wait_s = 0.05\n"
    )
    assert main(["run", str(job), "--quiet"]) == EXIT_ENDPOINT
    err = capsys.readouterr().err
    assert "stopped: endpoint unusable: connection refused at" in err and "Traceback" not in err
    assert "finished work is saved" in err
