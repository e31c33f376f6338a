"""Jobs through a loopback LiteLLM proxy (tests/fake_providers.py answers as its source does):
usage read from `meta`, every route it serves, its error bodies, and billing by upstream."""

from __future__ import annotations

import orjson
import pytest

from pipeline.cli import main
from pipeline.estimate import run_report
from pipeline.providers import get_adapter
from pipeline.records import ProviderUsage
from pipeline.run import EXIT_OK, EXIT_SOME_FAILED
from tests.fake_providers import LiteLLMCohereServer, LiteLLMServer, LiteLLMVoyageServer
from tests.fake_server import Knobs, ThreadedServer, pair_tokens, reference_ranking, running_server
from tests.helpers import failures, job_config, make_queries, results, run, usage
from tests.helpers import write_grouped_parquet as write

PRICED = {"pricing__usd_per_million_tokens": "2.0"}


def tokens_of(queries) -> int:
    return sum(pair_tokens(q["query"], d) for q in queries for d in q["documents"])


# -- the adapter on the proxy's own bodies ------------------------------------------------------
# What a LiteLLM proxy answers for each upstream (its RerankResponse, rebuilt by the
# upstream's transformation; see pipeline/providers/litellm.py for the sources).
LITELLM_RESULTS = [
    {"index": 2, "relevance_score": 0.91},
    {"index": 0, "relevance_score": 0.12},
]
LITELLM_META = {
    # Jina: `usage` copied into both typed dicts; only billed_units keeps a known key.
    "jina": ({"billed_units": {"total_tokens": 38}, "tokens": {}}, ProviderUsage(None, 38, None)),
    # Cohere: its own meta, passed through.
    "cohere": (
        {
            "api_version": {"version": "2"},
            "billed_units": {"search_units": 1},
            "tokens": {"input_tokens": 38, "output_tokens": 0},
        },
        ProviderUsage(38, 38, 1.0),
    ),
    # Voyage: total_tokens in both places, output 0.
    "voyage": (
        {"billed_units": {"total_tokens": 38}, "tokens": {"input_tokens": 38, "output_tokens": 0}},
        ProviderUsage(38, 38, None),
    ),
    # An upstream that reported nothing: LiteLLM's Voyage transformation writes zeros.
    "nothing": (
        {"billed_units": {"total_tokens": 0}, "tokens": {"input_tokens": 0, "output_tokens": 0}},
        ProviderUsage(None, None, None),
    ),
    "no meta": (None, ProviderUsage()),
}


@pytest.mark.parametrize("upstream", sorted(LITELLM_META))
def test_litellm_reads_usage_from_meta_billed_units_and_tokens(upstream):
    meta, want = LITELLM_META[upstream]
    body = {"id": "f2a1", "results": LITELLM_RESULTS, "meta": meta}
    answer = get_adapter("litellm").parse_answer(orjson.dumps(body), 3, 2)
    assert answer.results == [(2, 0.91), (0, 0.12)]
    assert answer.usage == want


PROXY_ERRORS = [
    # LiteLLM's ProxyException body: `code` is the status again, `type` the reason.
    (
        400,
        {
            "error": {
                "message": "No connected db.",
                "type": "no_db_connection",
                "param": "None",
                "code": "400",
            }
        },
        "No connected db. (no_db_connection): the proxy has no key database, so it accepts "
        "only its master key; check the key",
    ),
    (
        429,
        {
            "error": {
                "message": "litellm.RateLimitError: Jina_aiException - rate limit",
                "type": "throttling_error",
                "param": None,
                "code": "429",
            }
        },
        "litellm.RateLimitError: Jina_aiException - rate limit (throttling_error)",
    ),
]


@pytest.mark.parametrize("status,body,message", PROXY_ERRORS)
def test_proxy_error_bodies_name_the_reason(status, body, message):
    assert get_adapter("litellm").parse_error(status, orjson.dumps(body)).message == message


# -- whole jobs through the proxy ---------------------------------------------------------------
@pytest.mark.parametrize(
    "route", ["base_url", "base_url/v1", "endpoint /rerank", "endpoint /v2/rerank"]
)
async def test_tokens_reported_through_litellm_are_read_and_billed(tmp_path, out_dir, route):
    queries = make_queries(4, [30, 7, 130, 12], seed=31)
    path = write(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(), LiteLLMServer) as server:
        where = {"base_url": server.base_url}
        if route == "base_url/v1":
            where = {"base_url": server.base_url + "/v1"}
        elif route.startswith("endpoint"):
            where = {"provider__endpoint": f'"{server.base_url}{route.split()[1]}"'}
        base = where.pop("base_url", None)
        cfg = job_config(
            path, out_dir, base, kind="litellm", provider__model='"jina-rerank"', **where, **PRICED
        )
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_OK, outcome.message
    assert all(r.body["return_documents"] is False for r in server.log)
    u = usage(out_dir)
    assert u["total_tokens"].null_count() == 0  # no longer lost: every row as reported
    assert int(u["total_tokens"].sum()) == tokens_of(queries)
    cost = outcome.summary["cost"]
    assert cost["from"] == "reported" and cost["billed_tokens"] == tokens_of(queries)
    assert cost["usd"] == pytest.approx(tokens_of(queries) * 2.0 / 1e6)
    assert run_report(out_dir)["cost"]["usd"] == pytest.approx(cost["usd"])
    for q in queries:
        got = results(out_dir).filter(results(out_dir)["query_id"] == q["query_id"])
        want = [q["doc_ids"][i] for i, _ in reference_ranking(q["query"], q["documents"])]
        assert got["doc_id"].to_list() == want


async def test_without_a_price_a_litellm_run_costs_unknown_not_zero(tmp_path, out_dir):
    path = write(tmp_path / "in.parquet", make_queries(2, 5, seed=32))
    async with running_server(Knobs(), LiteLLMServer) as server:
        cfg = job_config(path, out_dir, server.base_url, kind="litellm", provider__model="m")
        outcome = await run(cfg)
    cost = outcome.summary["cost"]
    assert cost["usd"] is None and cost["basis"] == "tokens"
    assert "no known price for model 'm': set [pricing]" in cost["price"]


async def test_a_cohere_upstream_bills_search_units_when_the_job_says_so(tmp_path, out_dir):
    queries = make_queries(3, [150, 20, 101], seed=33)
    path = write(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(), LiteLLMCohereServer) as server:
        cfg = job_config(
            path,
            out_dir,
            server.base_url,
            kind="litellm",
            provider__model='"cohere-rerank"',
            limits__max_docs_per_request=200,
            pricing__billing='"search_units"',
            pricing__usd_per_thousand_search_units="2.0",
        )
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_OK
    u = usage(out_dir)
    assert u["search_units"].to_list() == [2.0, 1.0, 2.0]
    assert u["total_tokens"].to_list() == [
        sum(pair_tokens(q["query"], d) for d in q["documents"]) for q in queries
    ]
    cost = outcome.summary["cost"]
    assert (cost["basis"], cost["from"], cost["usd"]) == ("search_units", "reported", 0.01)


def test_a_wrong_key_and_no_key_show_the_proxys_own_text(tmp_path, monkeypatch, capsys):
    path = write(tmp_path / "in.parquet", make_queries(2, 4, seed=34))
    with ThreadedServer(Knobs(require_key="sk-master"), LiteLLMServer) as server:
        job = tmp_path / "job.toml"
        job.write_text(
            f'[input]\npath = "{path}"\n[provider]\nkind = "litellm"\nmodel = "m"\n'
            f'base_url = "{server.base_url}"\n[limits]\nmax_attempts = 2\n'
            f'max_retry_wait_s = 0.01\n[output]\ndir = "{tmp_path}/wrong"\n'
        )
        monkeypatch.setenv("LITELLM_API_KEY", "sk-not-the-master")
        assert main(["run", str(job), "--quiet"]) == EXIT_SOME_FAILED
        wrong = failures(tmp_path / "wrong")["message"].to_list()
        assert (
            wrong
            == [
                "chunk 0 (4 documents): HTTP 400: No connected db. (no_db_connection): the proxy "
                "has no key database, so it accepts only its master key; check the key"
            ]
            * 2
        )
        monkeypatch.delenv("LITELLM_API_KEY")
        monkeypatch.delenv("RERANK_API_KEY", raising=False)
        out = f"output.dir={tmp_path}/none"
        assert main(["run", str(job), "--quiet", "--set", out]) == EXIT_SOME_FAILED
        none = failures(tmp_path / "none")["message"].to_list()
        assert (
            none
            == ["chunk 0 (4 documents): HTTP 500: Internal Server Error (gave up after 2 attempts)"]
            * 2
        )
        assert {r.authorization for r in server.log} == {"Bearer sk-not-the-master", None}
    assert "Traceback" not in capsys.readouterr().err


# -- billing basis chosen by the job, not by the wire format -------------------------------------
async def test_a_token_billed_upstream_behind_a_cohere_shaped_gateway(tmp_path, out_dir, capsys):
    queries = make_queries(3, [64, 10, 70], seed=35)
    path = write(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(), LiteLLMVoyageServer) as server:
        cfg = job_config(
            path,
            out_dir,
            None,
            kind="cohere",
            provider__endpoint=f'"{server.base_url}/v2/rerank"',
            limits__max_docs_per_request=64,
            pricing__billing='"tokens"',
            pricing__usd_per_million_tokens="1.0",
        )
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_OK
    assert "not a multiple of 100" not in capsys.readouterr().err
    cost = outcome.summary["cost"]
    assert (cost["basis"], cost["from"]) == ("tokens", "reported")
    assert cost["usd"] == pytest.approx(tokens_of(queries) / 1e6)
    summary = orjson.loads((out_dir / "summary.json").read_bytes())
    assert summary["cost"]["usd"] == pytest.approx(cost["usd"])
    report = run_report(out_dir)
    assert (report["cost"]["basis"], report["cost"]["usd"]) == (
        "tokens",
        pytest.approx(cost["usd"]),
    )
