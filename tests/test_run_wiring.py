"""The runner's seams: a transport handed in, and the same plan for `run` and `estimate`."""

from __future__ import annotations

import polars as pl

from pipeline.config import load_job
from pipeline.estimate import estimate_job
from pipeline.providers.local import LocalTransport
from pipeline.run import EXIT_OK, prepare_job, run_job
from pipeline.transport import Reply
from tests.helpers import job_config, make_queries, results, run, usage, write_grouped_parquet


class RecordingTransport:
    """A `pipeline.transport.Transport`: the local scorer, with every body kept."""

    url = "recording://local"

    def __init__(self) -> None:
        self.inner = LocalTransport()
        self.bodies: list[bytes] = []
        self.closed = False

    async def post(self, body: bytes) -> Reply:
        self.bodies.append(body)
        return await self.inner.post(body)

    async def close(self) -> None:
        self.closed = True


async def test_a_transport_handed_in_carries_every_request_and_stays_the_callers(tmp_path):
    queries = make_queries(9, [3, 70, 140], seed=21)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    own = await run(job_config(path, tmp_path / "own", kind="local"))
    transport = RecordingTransport()
    job = prepare_job(job_config(path, tmp_path / "handed", kind="local"))
    handed = await run_job(job, transport=transport, quiet=True)
    assert own.exit_code == handed.exit_code == EXIT_OK
    assert len(transport.bodies) == usage(tmp_path / "handed").height == handed.stats.requests
    assert not transport.closed  # the caller opened it: the caller closes it
    assert results(tmp_path / "handed").equals(results(tmp_path / "own"))


async def test_estimate_plans_the_requests_a_run_sends_final_passes_included(tmp_path):
    queries = make_queries(12, [5, 64, 65, 200], seed=22)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    cfg = job_config(path, tmp_path / "out", kind="local", limits__final_pass="true")
    est = estimate_job(cfg)
    outcome = await run(cfg)
    # local: 64 documents a request; 65 -> 2 + a final pass, 200 -> 4 + a final pass
    assert est.requests == outcome.stats.requests == 3 * (1 + 1 + 3 + 5)
    assert est.queries == outcome.stats.queries_ranked == 12


async def test_estimate_plans_the_final_pass_a_run_sends_when_top_n_cuts_the_chunks(tmp_path):
    # Every document the same length, so a final pass's tokens do not depend on which
    # documents lead: the estimate must then equal the run's own estimate to the token.
    # With top_n = 5 a chunk answers 5 documents, so 200 candidates (4 chunks) re-send
    # 20 leaders and 65 (64 + 1) re-send 6, not the 64 of the window.
    words = ["solar", "panel", "grids", "roofs", "costs", "flour", "bread", "visas"]
    queries = []
    for i, size in enumerate([200, 65, 10, 130]):
        docs = [" ".join(words[(j + k) % 8] for k in range(12)) for j in range(size)]
        ids = [f"q{i}-d{j}" for j in range(size)]
        queries.append(
            {"query_id": f"q{i}", "query": "solar panel costs", "documents": docs, "doc_ids": ids}
        )
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    cfg = job_config(
        path, tmp_path / "out", kind="local", limits__final_pass="true", output__top_n=5
    )
    est = estimate_job(cfg)
    outcome = await run(cfg)
    # the final passes: 200 -> 4 chunks x 5; 65 -> 5 + 1; 130 (64 + 64 + 2) -> 5 + 5 + 2
    finals = usage(tmp_path / "out").filter(pl.col("n_docs").is_in([20, 6, 12]))
    assert sorted(finals["n_docs"].to_list()) == [6, 12, 20]
    assert est.requests == outcome.stats.requests
    assert est.tokens_heuristic == outcome.stats.estimated_tokens


async def test_estimate_of_the_sample_with_top_n_is_within_3_percent_of_the_run(tmp_path):
    cfg = load_job(
        "jobs/sample.toml", [f"output.dir={tmp_path / 'out'}", "output.top_n=5"]
    )  # the sample's own job: local BM25 with the final pass
    est = estimate_job(cfg)
    outcome = await run(cfg)
    assert est.requests == outcome.stats.requests
    assert abs(est.tokens_heuristic / outcome.stats.estimated_tokens - 1) < 0.03
