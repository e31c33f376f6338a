"""Estimates on hand-checked inputs: billing rules, prices, token heuristic, timing, CLI."""

from __future__ import annotations

import math

import orjson
import pytest

from pipeline.accounting.cost import cost_usd, job_billing, search_units, summary_cost, token_units
from pipeline.accounting.prices import Price, PricingError, check_pricing, price_for
from pipeline.chunk.tokens import estimate_tokens, truncate_to_tokens
from pipeline.cli import main
from pipeline.config import LimitsConfig
from pipeline.estimate import TokenizerCounter, TokenizerError, estimate_job
from pipeline.estimate.timing import time_estimate
from tests.helpers import job_config, write_grouped_jsonl


# -- billing rules ---------------------------------------------------------------------
def test_per_token_rule_is_query_plus_document_per_document_which_is_voyages_formula():
    q, docs = 7, [10, 0, 33]
    assert token_units(q, docs) == (7 + 10) + (7 + 0) + (7 + 33) == 64
    assert token_units(q, docs) == q * len(docs) + sum(docs)  # Voyage's published formula
    assert token_units(q, []) == 0


@pytest.mark.parametrize(
    "q,docs,kwargs,units",
    [
        (10, [20] * 100, {}, 1),  # one query, up to 100 documents: one unit
        (10, [20] * 101, {}, 2),
        (10, [20] * 250, {}, 3),
        (10, [], {}, 0),  # nothing sent, nothing billed
        (10, [490], {}, 1),  # 500 tokens with the query: still one document
        (10, [491], {}, 1),  # 501: counts as 2 documents, still within 100
        (10, [20] * 99 + [491], {}, 2),  # 99 + 2 = 101 counted documents
        (100, [1000] * 40, {}, 2),  # 1,100 tokens each: 3 documents each = 120
        (100, [1000] * 40, {"tokens_per_document": 4096}, 1),  # the other reading of the FAQ
    ],
)
def test_cohere_search_units(q, docs, kwargs, units):
    assert search_units(q, docs, **kwargs) == units


def test_cost_is_unknown_without_a_price_never_zero_and_zero_when_self_hosted():
    assert cost_usd("tokens", 1_000_000, None, None) is None
    assert cost_usd("search_units", None, 10, Price(usd_per_million_tokens=1.0)) is None
    assert cost_usd("none", 5_000_000, None, None) == 0.0
    assert cost_usd("tokens", 3_000_000, None, Price(usd_per_million_tokens=0.05)) == pytest.approx(
        0.15
    )
    assert cost_usd(
        "search_units", None, 1500, Price(usd_per_thousand_search_units=2.0)
    ) == pytest.approx(3.0)


def test_job_billing_by_provider_kind_and_price_source():
    assert job_billing("cohere", None, {}).basis == "search_units"
    assert (
        job_billing("cohere", None, {}).price.usd_per_thousand_search_units == 2.0
    )  # rerank-v3.5 default
    voyage = job_billing("voyage", "rerank-2.5-lite", {})
    assert (voyage.basis, voyage.price.usd_per_million_tokens) == ("tokens", 0.02)
    assert job_billing("jina", "someone/custom-reranker", {}).price is None
    assert (
        job_billing("jina", None, {}).price is None
    )  # the gateway's default model is unknown to us
    assert job_billing("vllm", "bge-reranker-v2-m3", {}).basis == "none"  # self-hosted
    assert (
        job_billing("vllm", "x", {"usd_per_million_tokens": 0.1}).basis == "tokens"
    )  # behind a paid gateway
    assert job_billing("local", None, {}).basis == "none"
    assert (
        job_billing("cohere", None, {"search_unit_document_tokens": 4096}).tokens_per_document
        == 4096
    )


def test_pricing_section_overrides_list_prices_and_is_checked():
    assert (
        price_for("voyage", "rerank-2.5", {"usd_per_million_tokens": 0.04}).usd_per_million_tokens
        == 0.04
    )
    assert (
        price_for("jina", "jinaai/jina-reranker-v2-base-multilingual", {}).usd_per_million_tokens
        == 0.018
    )
    check_pricing({"usd_per_million_tokens": 0.5, "search_unit_document_tokens": 4096})
    with pytest.raises(PricingError, match="unknown key pricing.usd_per_token"):
        check_pricing({"usd_per_token": 1.0})
    with pytest.raises(PricingError, match="pricing.usd_per_million_tokens"):
        check_pricing({"usd_per_million_tokens": -1.0})


def test_summary_cost_prefers_reported_and_says_when_it_used_the_estimate():
    billable = {"requests_answered": 4, "requests_without_tokens": 4}
    summary = {"billable": billable | {"estimated_tokens_without_report": 2_000_000}}
    assert summary_cost(summary, "voyage", "rerank-2.5", {})["usd"] == pytest.approx(0.1)
    assert summary_cost(summary, "voyage", "rerank-2.5", {})["from"] == (
        "estimated: no tokens reported"
    )
    summary["billable"] = {"requests_answered": 4, "tokens_reported": 1_000_000}
    cost = summary_cost(summary, "voyage", "rerank-2.5", {})
    assert (cost["usd"], cost["from"]) == (pytest.approx(0.05), "reported")
    assert summary_cost(summary, "cohere", None, {})["usd"] is None  # no units reported


# -- the token heuristic ------------------------------------------------------------------
def test_cjk_counts_one_token_per_character_not_bytes_over_four():
    zh = "太阳能电池板的安装成本是多少"  # 14 characters, 42 bytes
    assert estimate_tokens(zh) == 14
    assert -(-len(zh.encode()) // 4) == 11  # what bytes/4 said: a 21% under-count
    assert estimate_tokens("東京タワーの高さ") == 8  # Han + kana
    assert estimate_tokens("서울 지하철 노선도") == 8  # Hangul syllables; spaces free
    assert estimate_tokens("Tokyo 東京 station") == 2 + 4  # "Tokyo  station" = 13 chars -> 4
    assert estimate_tokens("Ελληνικά κείμενα") == 4  # 16 characters / 4, not 31 bytes / 4


def test_truncate_to_tokens_cuts_cjk_within_the_limit():
    text = "検索" * 50
    cut = truncate_to_tokens(text, 30)
    assert estimate_tokens(cut) == 30 and text.startswith(cut)
    assert truncate_to_tokens("short", 30) == "short"


# -- time ---------------------------------------------------------------------------------
def test_time_is_the_binding_limit_and_unknown_without_any():
    lim = LimitsConfig(requests_per_minute=60, tokens_per_minute=None, max_concurrency=2)
    assert time_estimate(120, 10**9, lim, None) == (
        120.0,
        "requests_per_minute",
        {"requests_per_minute": 120.0},
    )
    seconds, binding, _ = time_estimate(120, 10**9, lim, latency_ms=3000)
    assert (seconds, binding) == (180.0, "concurrency")  # 120 x 3 s / 2 in flight
    assert time_estimate(120, 10, LimitsConfig(), None) == (None, None, {})


# -- the whole estimate on a hand-checked input ----------------------------------------------
QUERIES = [
    {
        "query_id": "a",
        "query": "abcd efg",
        "documents": ["x" * 8, "y" * 12, "z" * 4],
        "doc_ids": ["1", "2", "3"],
    },
    {
        "query_id": "b",
        "query": "日本語",
        "documents": ["東京", "大阪 hotel"],
        "doc_ids": ["1", "2"],
    },
]
# query tokens: a = ceil(8/4) = 2, b = 3. Documents: 2, 3, 1; 2, 2 + ceil(5/4) = 4.
# pairs: a = (2+2) + (2+3) + (2+1) = 12; b = (3+2) + (3+4) = 12; total 24.


def test_estimate_plans_the_runs_chunks_and_sums_the_billing_rules(tmp_path):
    path = write_grouped_jsonl(tmp_path / "in.jsonl", QUERIES)
    cfg = job_config(
        path, tmp_path / "out", "http://127.0.0.1:9", kind="voyage", limits__max_docs_per_request=2
    )
    est = estimate_job(cfg)
    assert (est.queries, est.documents, est.requests) == (2, 5, 3)  # a: 2 + 1 chunks, b: 1
    assert est.tokens == est.tokens_heuristic == 24
    assert est.search_units is None and est.billing == "tokens"
    assert est.cost_usd == pytest.approx(24 * 0.05 / 1e6)  # rerank-2.5 default
    cohere = estimate_job(
        job_config(
            path,
            tmp_path / "out",
            "http://127.0.0.1:9",
            kind="cohere",
            limits__max_docs_per_request=2,
        )
    )
    assert cohere.search_units == 3 and cohere.cost_usd == pytest.approx(3 * 2.0 / 1000)
    unknown = estimate_job(
        job_config(
            path,
            tmp_path / "out",
            "http://127.0.0.1:9",
            kind="jina",
            provider__model='"in-house-reranker"',
        )
    )
    assert unknown.cost_usd is None and unknown.tokens == 24


def test_tokenizer_counts_from_a_local_tokenizer_json(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    vocab = {"[UNK]": 0, "solar": 1, "panel": 2, "cost": 3}
    tok = tokenizers.Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    tok.enable_truncation(2)  # must be switched off by the counter
    tok.save(str(tmp_path / "tokenizer.json"))
    counter = TokenizerCounter(tmp_path / "tokenizer.json")
    assert counter(["solar panel cost", "solar, panel"]) == [3, 3]  # "," is its own word
    queries = [
        {
            "query_id": "q",
            "query": "solar panel",
            "documents": ["cost cost cost", "panel"],
            "doc_ids": ["1", "2"],
        }
    ]
    path = write_grouped_jsonl(tmp_path / "in.jsonl", queries)
    est = estimate_job(
        job_config(path, tmp_path / "out", "http://127.0.0.1:9", kind="voyage"),
        count_tokens=counter,
    )
    assert est.tokens == est.tokens_tokenizer == 2 * 2 + 3 + 1


def test_tokenizer_errors_name_the_fix(tmp_path):
    with pytest.raises(TokenizerError, match="no such tokenizer file|tokenizers package"):
        TokenizerCounter(tmp_path / "missing.json")


def test_cli_estimate_writes_estimate_json_and_sends_nothing(tmp_path, capsys):
    path = write_grouped_jsonl(tmp_path / "in.jsonl", QUERIES)
    out = tmp_path / "out"
    job = tmp_path / "job.toml"
    job.write_text(
        f'[input]\npath = "{path}"\n[provider]\nkind = "jina"\nbase_url = "http://127.0.0.1:9"\n'
        f'model = "jina-reranker-v2-base-multilingual"\n[limits]\nrequests_per_minute = 60\n'
        f'[output]\ndir = "{out}"\n[pricing]\nusd_per_million_tokens = 1_000_000.0\n'
    )
    assert main(["estimate", str(job), "--latency-ms", "250"]) == 0
    est = orjson.loads((out / "estimate.json").read_bytes())
    for key in (
        "queries",
        "documents",
        "requests",
        "tokens",
        "search_units",
        "cost_usd",
        "seconds",
    ):
        assert key in est
    assert (est["queries"], est["requests"], est["tokens"], est["search_units"]) == (2, 2, 24, None)
    assert est["cost_usd"] == pytest.approx(24.0)
    assert est["seconds"] == pytest.approx(2.0) and est["binding_limit"] == "requests_per_minute"
    assert "nothing was sent" in capsys.readouterr().out  # a table: stdout
    assert not (out / "usage").exists()
    job.write_text(job.read_text() + "usd_per_token = 1.0\n")
    assert main(["estimate", str(job)]) == 2
    assert "unknown key pricing.usd_per_token" in capsys.readouterr().err


def test_cjk_heavy_input_estimates_near_characters(tmp_path):
    rows = [
        {
            "query_id": f"q{i}",
            "query": "上海的天气怎么样",
            "documents": ["今天上海天气晴朗，气温二十度。" * (1 + i % 3)] * 10,
            "doc_ids": [str(j) for j in range(10)],
        }
        for i in range(6)
    ]
    path = write_grouped_jsonl(tmp_path / "in.jsonl", rows)
    est = estimate_job(job_config(path, tmp_path / "out", "http://127.0.0.1:9", kind="voyage"))
    chars = sum(len(r["query"]) * 10 + sum(len(d) for d in r["documents"]) for r in rows)
    assert est.tokens == chars  # every character here is Han or full-width punctuation
    assert math.isclose(
        est.tokens
        / (
            sum(
                len(r["query"].encode()) * 10 + sum(len(d.encode()) for d in r["documents"])
                for r in rows
            )
            / 4
        ),
        4 / 3,
        rel_tol=0.01,
    )
