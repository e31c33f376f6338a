"""Estimate versus real runs against loopback servers that report usage each provider's way.

The servers (tests/fake_server.py, tests/fake_providers.py) bill a pair as words(query) +
words(document) + 2, which no byte or character heuristic matches request by request;
calibrated on a small pilot run of another sample of the same kind of corpus, the estimate
must come within 5% of what the full run reports.
"""

from __future__ import annotations

import random

import pytest

from pipeline.cli import main
from pipeline.estimate import estimate_job, load_calibration, run_report
from pipeline.run import EXIT_OK
from tests.fake_providers import SERVERS
from tests.fake_server import running_server
from tests.helpers import job_config, make_queries, run, write_grouped_parquet

SIZES = [5, 17, 40, 64, 120, 3, 90]
TOKEN_KINDS = ["jina", "voyage", "vllm", "tei", "cohere"]  # cohere reports meta.tokens too


async def _run(kind, queries, path, out_dir, **sets):
    write_grouped_parquet(path, queries)
    async with running_server(server_cls=SERVERS[kind]) as server:
        cfg = job_config(path, out_dir, server.base_url, kind=kind, **sets)
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_OK
    return cfg, outcome.stats


@pytest.mark.parametrize("kind", TOKEN_KINDS)
async def test_calibrated_estimate_within_5_percent_of_reported_tokens(tmp_path, kind):
    _, pilot = await _run(
        kind, make_queries(15, SIZES, seed=11), tmp_path / "pilot.parquet", tmp_path / "pilot"
    )
    cal = load_calibration(tmp_path / "pilot")
    assert cal.kind == kind and cal.token_rows == pilot.requests and cal.latency_ms is not None
    full_queries = make_queries(70, SIZES, seed=12)
    cfg, full = await _run(kind, full_queries, tmp_path / "full.parquet", tmp_path / "full")
    est = estimate_job(cfg, calibration=cal)
    assert est.requests == full.requests and est.queries == 70
    assert est.tokens_heuristic == full.estimated_tokens  # the very plan the run sent
    reported = full.reported_total_tokens
    assert abs(est.tokens - reported) / reported < 0.05, (est.tokens, reported)
    uncalibrated = est.tokens_heuristic
    assert abs(uncalibrated - reported) / reported > abs(est.tokens - reported) / reported


async def test_cohere_search_units_estimate_equals_reported_and_costs_the_same(tmp_path):
    queries = make_queries(20, [150, 99, 100, 101, 1, 250], seed=5)
    cfg, stats = await _run(
        "cohere",
        queries,
        tmp_path / "in.parquet",
        tmp_path / "out",
        limits__max_docs_per_request=200,
    )
    est = estimate_job(cfg)
    assert est.search_units == stats.reported_search_units  # short documents: 1 unit / 100 docs
    report = run_report(tmp_path / "out")
    assert report["search_units"]["reported"] == est.search_units
    assert (
        report["cost"]["usd"]
        == pytest.approx(est.cost_usd)
        == pytest.approx(est.search_units * 2.0 / 1000)
    )
    assert report["attempts"] == report["requests"] == stats.requests


def _cjk_queries(n: int, seed: int) -> list[dict]:
    # Words of 1-4 Han characters separated by spaces, so the loopback server's word count
    # means something; the heuristic counts characters.
    rng = random.Random(seed)
    han = [chr(c) for c in range(0x4E00, 0x4E00 + 400)]

    def words(k):
        return " ".join(
            "".join(rng.choice(han) for _ in range(rng.randint(1, 4))) for _ in range(k)
        )

    return [
        {
            "query_id": f"q{i}",
            "query": words(3),
            "documents": [words(rng.randint(5, 40)) for _ in range(30)],
            "doc_ids": [str(j) for j in range(30)],
        }
        for i in range(n)
    ]


async def test_cjk_heavy_corpus_calibrates_within_5_percent(tmp_path):
    await _run("jina", _cjk_queries(10, 1), tmp_path / "pilot.parquet", tmp_path / "pilot")
    cfg, full = await _run(
        "jina", _cjk_queries(40, 2), tmp_path / "full.parquet", tmp_path / "full"
    )
    est = estimate_job(cfg, calibration=load_calibration(tmp_path / "pilot"))
    reported = full.reported_total_tokens
    assert abs(est.tokens - reported) / reported < 0.05, (est.tokens, reported)


async def test_report_command_prints_the_runs_accounting(tmp_path, capsys):
    await _run("voyage", make_queries(8, SIZES, seed=3), tmp_path / "in.parquet", tmp_path / "out")
    assert main(["report", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    assert "attempts" in text and "$" in text and "rerank-2.5" in text
    assert main(["report", str(tmp_path / "out"), "--json"]) == 0
    assert '"cost"' in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nothing-here")]) == 2
