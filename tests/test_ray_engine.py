"""The Ray engine (`[engine] kind = "ray"`): Ray started in this process with small
resources, a loopback server, the same job run by both engines.

Skipped when Ray is not installed (`pip install -e ".[ray]"`); CI installs it (.ci/run)."""

from __future__ import annotations

import random

import orjson
import pytest

from pipeline.errors import SetupError
from pipeline.run import prepare_job, run_job
from tests.fake_server import FakeRerankServer, Knobs, running_server
from tests.helpers import (
    failures,
    job_config,
    make_queries,
    results,
    start_small_ray,
    usage,
    write_grouped_parquet,
    write_pairs_jsonl,
)

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module", autouse=True)
def ray_here():
    start_small_ray()
    yield
    ray.shutdown()


class FlakyServer(FakeRerankServer):
    """A 5xx for a seeded share of requests."""

    def __init__(self, knobs: Knobs | None = None):
        super().__init__(knobs)
        self.rng = random.Random(99)
        self.fault_rate = 0.1

    async def handle(self, request):
        if self.rng.random() < self.fault_rate:
            self.knobs.script.appendleft(self.rng.choice(["500", "503"]))
        return await super().handle(request)


def _summary(out) -> dict:
    return orjson.loads((out / "summary.json").read_bytes())


async def _run(cfg):
    return await run_job(prepare_job(cfg), quiet=True)


async def test_ray_run_equals_local_run_row_for_row(tmp_path):
    queries = make_queries(2000, [3, 12, 25, 7])
    src = write_grouped_parquet(tmp_path / "in.parquet", queries, row_group_size=256)
    async with running_server(Knobs(max_docs=10), FlakyServer) as server:
        common = dict(
            limits__max_docs_per_request=10,
            limits__max_attempts=8,
            limits__max_concurrency=8,
            output__top_n=5,
        )
        local = await _run(job_config(src, tmp_path / "local", server.base_url, **common))
        on_ray = await _run(
            job_config(
                src,
                tmp_path / "ray",
                server.base_url,
                engine__kind="ray",
                engine__workers=2,
                **common,
            )
        )
        assert server.statuses().count(500) + server.statuses().count(503) > 20
    assert local.exit_code == on_ray.exit_code == 0
    expected, got = results(tmp_path / "local"), results(tmp_path / "ray")
    assert got.height == expected.height > 0
    assert got.equals(expected)
    assert failures(tmp_path / "ray").height == 0
    # usage: one row per request, the same requests
    cols = ["query_id", "chunk", "n_docs", "estimated_tokens"]
    assert usage(tmp_path / "ray").select(cols).equals(usage(tmp_path / "local").select(cols))
    a, b = _summary(tmp_path / "local"), _summary(tmp_path / "ray")
    assert a["engine"] == {"kind": "local"}
    assert b["engine"]["kind"] == "ray" and b["engine"]["workers"] == 2
    assert a["queries"] == b["queries"]
    for d in ("local", "ray"):
        assert sorted(p.name for p in (tmp_path / d).iterdir() if not p.name.startswith(".")) == [
            "_job.json",
            "_manifest.jsonl",
            "failures",
            "job.resolved.toml",
            "results",
            "summary.json",
            "usage",
        ]


async def test_pairs_failures_duplicates_and_resume_on_ray(tmp_path):
    queries = make_queries(120, [4, 30])
    queries.append(dict(queries[5]))  # a duplicate query_id: a failure, as in a local run
    src = write_pairs_jsonl(tmp_path / "in.jsonl", queries)
    async with running_server(Knobs(max_docs=10, reject_queries={queries[7]["query"]})) as server:
        common = dict(
            limits__max_docs_per_request=10, input__layout="pairs", input__allow_ungrouped="true"
        )
        local = await _run(job_config(src, tmp_path / "local", server.base_url, **common))
        cfg = job_config(src, tmp_path / "ray", server.base_url, engine__kind="ray", **common)
        on_ray = await _run(cfg)
        assert local.exit_code == on_ray.exit_code == 1
        assert results(tmp_path / "ray").equals(results(tmp_path / "local"))
        cols = ["query_id", "stage", "error", "message"]
        f_ray, f_local = failures(tmp_path / "ray"), failures(tmp_path / "local")
        assert f_ray.select(cols).equals(f_local.select(cols))
        assert set(f_ray["error"]) == {"duplicate_query_id", "http_400"}
        # Run again: everything is done, nothing is sent.
        sent = len(server.log)
        again = await _run(cfg)
        assert len(server.log) == sent
        assert again.exit_code == 1
        assert _summary(tmp_path / "ray")["queries"]["skipped_already_done"] == len(queries)


async def test_ray_run_resumes_a_local_run_without_doubling(tmp_path):
    queries = make_queries(200, [6, 15])
    src = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(max_docs=10)) as server:
        common = dict(limits__max_docs_per_request=10)
        await _run(job_config(src, tmp_path / "clean", server.base_url, **common))
        # A local run whose endpoint failed half-way ...
        out = tmp_path / "out"
        cfg = job_config(src, out, server.base_url, **common)
        cfg.limits.breaker_failures = 3
        cfg.limits.max_attempts = 2
        server.knobs.script.extend(["none"] * 60 + ["500"] * 400)
        first = await _run(cfg)
        assert first.exit_code != 0 and first.stats.queries_ranked < len(queries)
        server.knobs.script.clear()
        # ... completed by the Ray engine, then its transient failures retried on Ray too.
        cfg = job_config(src, out, server.base_url, engine__kind="ray", **common)
        await _run(cfg)
        retried = await run_job(prepare_job(cfg, retry_failed=True), quiet=True)
    assert retried.exit_code == 0
    assert results(out).equals(results(tmp_path / "clean"))


def test_ray_missing_is_a_setup_error_naming_the_install(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a)
    )
    src = write_grouped_parquet(tmp_path / "in.parquet", make_queries(3, 4))
    cfg = job_config(src, tmp_path / "out", "http://127.0.0.1:9", engine__kind="ray")
    with pytest.raises(SetupError, match=r'pip install -e "\.\[ray\]"'):
        prepare_job(cfg)


def test_engine_keys_are_validated(tmp_path):
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="engine.kind"):
        job_config(tmp_path / "x.parquet", tmp_path / "o", engine__kind="spark")
    with pytest.raises(ConfigError, match="engine.workers"):
        job_config(tmp_path / "x.parquet", tmp_path / "o", engine__workers=0)
