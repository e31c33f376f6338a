"""One cost rule everywhere (end table, summary.json, `report`): answered requests are billed,
unanswered ones priced apart; a missing price is "unknown", never a crash; calibration that
cannot be used says so; and the tables' wording."""

from __future__ import annotations

from collections import deque

import orjson
import pytest

from pipeline.accounting.cost import Billable, job_billing, run_cost
from pipeline.cli import main
from pipeline.estimate import run_report
from pipeline.run import EXIT_OK, EXIT_SOME_FAILED
from tests.fake_providers import CohereV2Server
from tests.fake_server import Knobs, ThreadedServer, pair_tokens
from tests.helpers import make_queries, usage, write_grouped_parquet


def write_job(tmp_path, path, base_url, kind="jina", extra="", out="out", limits="") -> str:
    """A job file against a loopback server; one request at a time with `limits`."""
    job = tmp_path / f"{out}.toml"
    job.write_text(
        f'[input]\npath = "{path}"\n[provider]\nkind = "{kind}"\nbase_url = "{base_url}"\n'
        'api_key_env = "TEST_KEY"\n[limits]\nmax_attempts = 2\nmax_retry_wait_s = 0.01\n'
        f'{limits}[output]\ndir = "{tmp_path}/{out}"\n{extra}'
    )
    return str(job)


ONE_AT_A_TIME = "max_concurrency = 1\n"  # so a script of faults hits one known query


PRICE = "[pricing]\nusd_per_million_tokens = 1000.0\n"


def test_a_server_answering_only_5xx_costs_nothing_everywhere(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TEST_KEY", "k")
    queries = make_queries(3, 10, seed=41)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    with ThreadedServer(Knobs(script=deque(["500"] * 100))) as server:
        job = write_job(tmp_path, path, server.base_url, extra=PRICE)
        assert main(["run", job]) == EXIT_SOME_FAILED
    table = capsys.readouterr().out
    summary = orjson.loads((tmp_path / "out" / "summary.json").read_bytes())
    cost = summary["cost"]
    estimated = summary["tokens"]["estimated"]
    assert cost["usd"] == 0.0 and cost["from"] == "no request answered"
    assert cost["unanswered"]["requests"] == 3
    assert cost["unanswered"]["estimated_tokens"] == estimated
    assert cost["unanswered"]["usd_if_billed"] == pytest.approx(estimated * 1000.0 / 1e6)
    assert "cost      $0.0000  (no request answered)" in table
    assert "unbilled  3 requests never answered: not priced (would be $" in table
    report = run_report(tmp_path / "out")
    assert report["cost"]["usd"] == 0.0 and report["cost"]["unanswered"] == cost["unanswered"]
    assert main(["report", str(tmp_path / "out")]) == 0
    assert "cost      $0.0000  (no request answered)" in capsys.readouterr().out


def test_only_answered_requests_are_billed_and_all_three_agree(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TEST_KEY", "k")
    queries = make_queries(4, 10, seed=42)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    # One query's two attempts both get a 500; the other three are answered (one at a time).
    with ThreadedServer(Knobs(script=deque(["500", "500"]))) as server:
        job = write_job(tmp_path, path, server.base_url, extra=PRICE, limits=ONE_AT_A_TIME)
        assert main(["run", job, "--quiet"]) == EXIT_SOME_FAILED
    u = usage(tmp_path / "out")
    answered = u.filter(u["http_status"] == 200)
    assert answered.height == 3
    billed = int(answered["total_tokens"].sum())
    summary = orjson.loads((tmp_path / "out" / "summary.json").read_bytes())
    assert summary["cost"]["billed_tokens"] == billed
    assert summary["cost"]["usd"] == pytest.approx(billed * 1000.0 / 1e6)
    assert summary["cost"]["unanswered"]["requests"] == 1
    assert run_report(tmp_path / "out")["cost"] == summary["cost"]


def test_unreported_answers_are_billed_at_the_estimate_failed_ones_are_not():
    billing = job_billing("jina", "jina-reranker-v2-base-multilingual", {})
    used = Billable(
        requests_answered=2,
        requests_without_tokens=2,
        estimated_tokens_without_report=1_000_000,
        requests_unanswered=5,
        estimated_tokens_unanswered=50_000_000,
    )
    cost = run_cost(billing, used)
    assert cost["billed_tokens"] == 1_000_000
    assert cost["from"] == "estimated: no tokens reported"
    assert cost["usd"] == pytest.approx(0.018)


# -- a price for the other basis: cost unknown, never a crash -----------------------------------
@pytest.mark.parametrize(
    "kind,pricing,needle",
    [
        (
            "cohere",
            "usd_per_million_tokens = 0.05",
            "no price per search unit in job [pricing]: set pricing.usd_per_thousand_search_units",
        ),
        (
            "jina",
            "usd_per_thousand_search_units = 2.0",
            "no price per token in job [pricing]: set pricing.usd_per_million_tokens",
        ),
    ],
)
def test_a_price_for_the_other_basis_is_cost_unknown_in_run_estimate_and_report(
    tmp_path, monkeypatch, capsys, kind, pricing, needle
):
    monkeypatch.setenv("TEST_KEY", "k")
    path = write_grouped_parquet(tmp_path / "in.parquet", make_queries(2, 5, seed=43))
    server_cls = CohereV2Server if kind == "cohere" else None
    with ThreadedServer(Knobs(), *([server_cls] if server_cls else [])) as server:
        job = write_job(tmp_path, path, server.base_url, kind, f"[pricing]\n{pricing}\n")
        assert main(["run", job]) == EXIT_OK
        summary = orjson.loads((tmp_path / "out" / "summary.json").read_bytes())
        assert summary["cost"]["usd"] is None and needle in summary["cost"]["price"]
        assert main(["estimate", job]) == EXIT_OK
        assert main(["report", str(tmp_path / "out")]) == EXIT_OK
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "TypeError" not in captured.err
    # The end table, the estimate and the report: tables go to stdout.
    assert captured.out.count("cost      unknown") == 3 and needle in captured.out


# -- calibration with nothing to calibrate from ------------------------------------------------
def test_calibrating_from_a_pilot_without_usage_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TEST_KEY", "k")
    path = write_grouped_parquet(tmp_path / "in.parquet", make_queries(3, 8, seed=44))
    with ThreadedServer(Knobs(report_usage=False)) as server:
        pilot = write_job(tmp_path, path, server.base_url, out="pilot")
        assert main(["run", pilot, "--quiet"]) == EXIT_OK
        job = write_job(tmp_path, path, server.base_url, out="full")
    assert main(["estimate", job, "--calibrate", str(tmp_path / "pilot")]) == EXIT_OK
    out = capsys.readouterr().out
    assert "tokens    " in out and "(heuristic)" in out
    assert (
        f"warning   not calibrated: none of the 3 usage/ rows of {tmp_path / 'pilot'} has "
        "reported tokens beside an estimate" in out
    )
    est = orjson.loads((tmp_path / "full" / "estimate.json").read_bytes())
    assert est["calibration"]["unusable"]["tokens"].startswith("none of the 3 usage/ rows")
    assert est["tokens"] == est["tokens_heuristic"]


def test_a_usable_pilot_prints_no_warning(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TEST_KEY", "k")
    queries = make_queries(3, 8, seed=45)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    with ThreadedServer(Knobs()) as server:
        pilot = write_job(tmp_path, path, server.base_url, out="pilot")
        assert main(["run", pilot, "--quiet"]) == EXIT_OK
    assert main(["estimate", pilot, "--calibrate", str(tmp_path / "pilot")]) == EXIT_OK
    out = capsys.readouterr().out
    assert "not calibrated" not in out and "heuristic x" in out
    est = orjson.loads((tmp_path / "pilot" / "estimate.json").read_bytes())
    assert est["tokens"] == sum(pair_tokens(q["query"], d) for q in queries for d in q["documents"])


# -- wording ---------------------------------------------------------------------------------------
def test_the_end_table_of_a_local_run_reads_right(tmp_path, capsys):
    path = write_grouped_parquet(tmp_path / "in.parquet", make_queries(1, 3, seed=46))
    job = tmp_path / "job.toml"
    job.write_text(
        f'[input]\npath = "{path}"\n[provider]\nkind = "local"\n[output]\ndir = "{tmp_path}/o"\n'
    )
    assert main(["run", str(job)]) == EXIT_OK
    table = capsys.readouterr().out
    assert "cost      none (self-hosted: no charge per request)" in table
    assert "none reported" in table and "reported not reported" not in table
    assert "(estimated)" not in table and "0 retries" in table
    assert main(["estimate", str(job)]) == EXIT_OK
    assert "cost      none (self-hosted: no charge per request)" in capsys.readouterr().out
    assert main(["report", f"{tmp_path}/o"]) == EXIT_OK
    report = capsys.readouterr().out
    assert "tokens    none reported  estimated" in report and "reported none" not in report
    assert "cost      none (self-hosted: no charge per request)" in report
    assert "1 attempt (0 retries)" in report


def test_retry_failed_says_1_query(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TEST_KEY", "k")
    path = write_grouped_parquet(tmp_path / "in.parquet", make_queries(2, 4, seed=47))
    with ThreadedServer(Knobs(script=deque(["500", "500"]))) as server:
        job = write_job(tmp_path, path, server.base_url, limits=ONE_AT_A_TIME)
        assert main(["run", job, "--quiet"]) == EXIT_SOME_FAILED
        assert main(["run", job, "--retry-failed"]) == EXIT_OK
    assert "retrying 1 query that failed with transient errors" in capsys.readouterr().err


def test_plural_wording_of_cost_lines():
    cost = run_cost(
        job_billing("voyage", "rerank-2.5", {}),
        Billable(
            requests_answered=3,
            tokens_reported=10,
            requests_without_tokens=1,
            estimated_tokens_without_report=5,
            requests_unanswered=1,
        ),
    )
    assert cost["from"] == "reported; estimated for 1 of 3 requests"
    assert cost["billed_tokens"] == 15
