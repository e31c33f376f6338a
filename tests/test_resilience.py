"""Faults, storms, bad servers, retry-failed, truncation, refusing a different job."""

from __future__ import annotations

import random

import orjson
import pytest

from pipeline.chunk import estimate_tokens
from pipeline.errors import SetupError
from pipeline.preflight import warn_plain_http
from pipeline.run import EXIT_OK, EXIT_SOME_FAILED
from tests.fake_server import FakeRerankServer, Knobs, reference_ranking, running_server
from tests.helpers import (
    failures,
    job_config,
    make_queries,
    results,
    run,
    usage,
    write_grouped_parquet,
)

FAULTS = [
    "429",
    "500",
    "503",
    "408",
    "hang",
    "garbage",
    "truncated",
    "bad_index",
    "dup_index",
    "nan",
    "short",
    "reset",
]


class ChaosServer(FakeRerankServer):
    """Injects a random fault into a share of requests (seeded), and can fail chosen
    queries with a 503 on every attempt."""

    def __init__(self, knobs: Knobs | None = None):
        super().__init__(knobs)
        self.rng = random.Random(1234)
        self.fault_rate = 0.0
        self.always_503: set[str] = set()

    async def handle(self, request):
        body = orjson.loads(await request.read())
        if body.get("query") in self.always_503:
            self.knobs.script.appendleft("503")
        elif self.rng.random() < self.fault_rate:
            self.knobs.script.appendleft(self.rng.choice(FAULTS))
        return await super().handle(request)


def accounted(queries, out_dir) -> tuple[set, set]:
    ranked = set(results(out_dir)["query_id"].unique().to_list())
    failed = failures(out_dir)["query_id"].to_list()
    assert len(failed) == len(set(failed)), "a query failed twice"
    assert not ranked & set(failed), "a query is both ranked and failed"
    assert ranked | set(failed) == {q["query_id"] for q in queries}
    return ranked, set(failed)


async def test_fault_storm_ends_with_every_query_accounted_for(tmp_path, out_dir):
    queries = make_queries(60, [5, 23], seed=31)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(hang_s=5), server_cls=ChaosServer) as server:
        server.fault_rate = 0.45
        cfg = job_config(
            path,
            out_dir,
            server.base_url,
            limits__max_docs_per_request=10,
            limits__timeout_s=0.3,
            limits__max_attempts=6,
            limits__max_concurrency=8,
        )
        outcome = await run(cfg)
    ranked, failed = accounted(queries, out_dir)
    assert outcome.stats.accounted_for()
    # A 45% fault rate is trouble on a healthy endpoint: the breaker must not stop the job.
    assert outcome.exit_code in (EXIT_OK, EXIT_SOME_FAILED)
    assert outcome.summary is not None and outcome.summary["status"] == "complete"
    statuses = set(server.statuses())
    assert {429, 500, 503, 200}.issubset(statuses)
    assert len(ranked) >= 50  # most survive 6 attempts at a 45% fault rate
    for q in queries:  # what was ranked is exactly right, whatever the faults
        if q["query_id"] in ranked:
            got = (
                results(out_dir)
                .filter(results(out_dir)["query_id"] == q["query_id"])["input_rank"]
                .to_list()
            )
            assert got == [i + 1 for i, _ in reference_ranking(q["query"], q["documents"])]
    f = failures(out_dir)
    assert all("gave up" in m for m in f["message"].to_list())
    assert (usage(out_dir)["attempts"] >= 1).all()


async def test_retry_failed_moves_transient_failures_into_results(tmp_path, out_dir):
    queries = make_queries(10, 12, seed=32)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    flaky = {queries[1]["query"], queries[6]["query"]}
    rejected = queries[4]["query"]
    async with running_server(Knobs(reject_queries={rejected}), server_cls=ChaosServer) as server:
        server.always_503 = set(flaky)
        cfg = job_config(path, out_dir, server.base_url, limits__max_attempts=2)
        first = await run(cfg)
        assert first.exit_code == EXIT_SOME_FAILED
        f = failures(out_dir)
        assert sorted(f["query_id"].to_list()) == ["q0001", "q0004", "q0006"]
        assert dict(zip(f["query_id"].to_list(), f["retryable"].to_list(), strict=True)) == {
            "q0001": True,
            "q0004": False,
            "q0006": True,
        }

        server.always_503 = set()  # the outage is over
        sent_before = len(server.log)
        second = await run(cfg, retry_failed=True)
    assert second.exit_code == EXIT_SOME_FAILED  # q0004's 400 stays a failure
    assert {r.query for r in server.log[sent_before:]} == flaky  # only the transient ones re-ran
    assert failures(out_dir)["query_id"].to_list() == ["q0004"]
    ranked, failed = accounted(queries, out_dir)
    assert {"q0001", "q0006"} <= ranked and failed == {"q0004"}


async def test_a_different_job_into_the_same_directory_is_refused(tmp_path, out_dir):
    queries = make_queries(4, 6, seed=33)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server() as server:
        assert (await run(job_config(path, out_dir, server.base_url))).exit_code == EXIT_OK
        with pytest.raises(
            SetupError, match=r"different job \(output.top_n: was None, now 3\).*--overwrite"
        ):
            await run(job_config(path, out_dir, server.base_url, output__top_n=3))
        with pytest.raises(SetupError, match=r"provider.model: was None, now 'other'"):
            await run(job_config(path, out_dir, server.base_url, provider__model='"other"'))
        again = await run(
            job_config(path, out_dir, server.base_url)
        )  # same job: resumes, sends nothing
        assert again.stats.queries_skipped == 4 and again.stats.attempts == 0
        n = len(server.log)
        replaced = await run(
            job_config(path, out_dir, server.base_url, output__top_n=3), overwrite=True
        )
        assert replaced.exit_code == EXIT_OK and len(server.log) == n + 4
    assert results(out_dir).height == 12


@pytest.mark.parametrize("truncate", ["none", "end"])
async def test_over_long_documents_are_truncated_or_fail_never_dropped(tmp_path, out_dir, truncate):
    queries = make_queries(3, 5, seed=34)
    queries[1]["documents"][2] = "long words " * 100  # well over 100 estimated tokens
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server() as server:
        cfg = job_config(
            path,
            out_dir,
            server.base_url,
            limits__max_doc_tokens=100,
            input__truncate=f'"{truncate}"',
        )
        outcome = await run(cfg)
    if truncate == "none":
        assert outcome.exit_code == EXIT_SOME_FAILED
        f = failures(out_dir)
        assert f["error"].to_list() == ["document_too_long"]
        tokens = estimate_tokens("long words " * 100)
        assert tokens > 100
        assert f"document 2 (doc_id 'q0001-d0002') is about {tokens} tokens" in f["message"][0]
        assert "row 2" in f["message"][0]
    else:
        assert outcome.exit_code == EXIT_OK
        assert results(out_dir).filter(results(out_dir)["query_id"] == "q0001").height == 5
        assert len(server.log) == 3


def test_plain_http_to_a_public_host_warns(capsys):
    for url in (
        "http://127.0.0.1:8080/v1/rerank",
        "http://10.1.2.3/v1/rerank",
        "http://localhost/x",
        "https://api.jina.ai/v1/rerank",
    ):
        warn_plain_http(url)
    assert capsys.readouterr().err == ""
    warn_plain_http("http://api.example.com/v1/rerank")
    assert "plain HTTP to a non-local host" in capsys.readouterr().err


class EchoingServer(FakeRerankServer):
    """A broken proxy: answers 200 with a page that echoes the request's headers."""

    async def handle(self, request):
        from aiohttp import web

        self._record(request, 200, 0, None, "")
        return web.Response(status=200, text=f"<pre>{request.headers.get('Authorization')}</pre>")


async def test_a_key_echoed_in_a_bad_answer_is_redacted_from_failures(
    tmp_path, out_dir, monkeypatch
):
    secret = "sk-echo-SECRET-77aa88bb"
    monkeypatch.setenv("RERANK_API_KEY", secret)
    path = write_grouped_parquet(tmp_path / "in.parquet", make_queries(2, 4, seed=35))
    async with running_server(server_cls=EchoingServer) as server:
        cfg = job_config(
            path,
            out_dir,
            server.base_url,
            provider__api_key_env="RERANK_API_KEY",
            limits__max_attempts=2,
        )
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_SOME_FAILED
    f = failures(out_dir)
    assert f.height == 2 and all("answer is not JSON" in m for m in f["message"].to_list())
    assert all("***" in m and secret not in m for m in f["message"].to_list())
    for p in out_dir.rglob("*"):
        if p.is_file():
            assert secret.encode() not in p.read_bytes()


async def test_a_huge_retry_after_cannot_stall_the_job(tmp_path, out_dir):
    queries = make_queries(6, 4, seed=36)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(max_rps=1, retry_after="3600")) as server:
        cfg = job_config(
            path, out_dir, server.base_url, limits__max_retry_time_s=2, limits__max_concurrency=2
        )
        outcome = await run(cfg)  # would sleep an hour if the 429 paused everyone for 3600 s
    ranked, failed = accounted(queries, out_dir)
    assert failed and all(
        "limits.max_retry_time_s" in m for m in failures(out_dir)["message"].to_list()
    )
    assert outcome.stats.http_429 >= len(failed)


def test_retry_after_parsing():
    from pipeline.call.client import parse_retry_after

    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({"Retry-After": "inf"}) is None
    assert parse_retry_after({"Retry-After": "nan"}) is None
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert parse_retry_after({"Retry-After": "Fri, 31 Dec 2100 23:59:59 -0000"}) > 3000


async def test_retry_failed_ranks_a_query_whose_later_duplicate_failed(tmp_path, out_dir):
    queries = make_queries(2, 6, seed=37)
    dup = dict(queries[0])
    path = write_grouped_parquet(tmp_path / "in.parquet", [queries[0], dup, queries[1]])
    async with running_server(server_cls=ChaosServer) as server:
        server.always_503 = {queries[0]["query"]}
        cfg = job_config(path, out_dir, server.base_url, limits__max_attempts=1)
        await run(cfg)
        assert sorted(failures(out_dir)["error"].to_list()) == ["duplicate_query_id", "http_503"]
        server.always_503 = set()
        second = await run(cfg, retry_failed=True)
    assert second.exit_code == EXIT_SOME_FAILED  # the duplicate stays a failure
    assert sorted(results(out_dir)["query_id"].unique().to_list()) == ["q0000", "q0001"]
    assert failures(out_dir)["error"].to_list() == ["duplicate_query_id"]
