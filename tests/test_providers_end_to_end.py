"""Real jobs against a loopback server for every provider kind, each in its own wire format."""

from __future__ import annotations

import math
from collections import deque

import pytest

from pipeline.run import EXIT_OK, EXIT_SOME_FAILED
from tests.fake_providers import SERVERS
from tests.fake_server import Knobs, pair_tokens, reference_ranking, running_server
from tests.helpers import (
    failures,
    job_config,
    make_queries,
    results,
    run,
    usage,
    write_grouped_parquet,
)

KINDS = sorted(SERVERS)

# The exact request fields each kind must send (model only where the job names one or the
# API requires it).
FIELDS = {
    "jina": {"query", "documents", "top_n", "return_documents"},
    "cohere": {"model", "query", "documents", "top_n"},
    "cohere-v1": {"model", "query", "documents", "top_n", "return_documents"},
    "voyage": {"model", "query", "documents", "top_k", "return_documents", "truncation"},
    "xinference": {"model", "query", "documents", "top_n", "return_documents", "return_len"},
    "tei": {"query", "texts", "raw_scores", "truncate", "return_text"},
    "vllm": {"query", "documents", "top_n"},
    "infinity": {"query", "documents", "top_n", "return_documents"},
    "llamacpp": {"query", "documents", "top_n"},
    "litellm": {"model", "query", "documents", "top_n", "return_documents"},
}
MODEL_NEEDED = {
    "xinference": '"bge-reranker-v2-m3"',
    "litellm": '"jina-rerank"',
}  # self-hosted and required: no default


def config(kind, path, out_dir, base_url, **sets):
    if kind in MODEL_NEEDED:
        sets.setdefault("provider__model", MODEL_NEEDED[kind])
    return job_config(path, out_dir, base_url, kind=kind, **sets)


def expected_rows(queries, top_n):
    return {
        q["query_id"]: [
            (q["doc_ids"][i], s) for i, s in reference_ranking(q["query"], q["documents"], top_n)
        ]
        for q in queries
    }


def actual_rows(out_dir):
    got: dict[str, list] = {}
    for row in results(out_dir).iter_rows(named=True):
        got.setdefault(row["query_id"], []).append((row["doc_id"], row["score"]))
    return got


def expected_usage(kind: str, tokens: int, n_docs: int) -> dict:
    """What usage/ must hold for one request, as each API reports it (None: not reported)."""
    both = {"prompt_tokens": tokens, "total_tokens": tokens, "search_units": None}
    if kind in ("cohere", "cohere-v1"):
        return {**both, "search_units": float(math.ceil(n_docs / 100))}
    if kind in ("voyage", "vllm", "litellm"):
        return {"prompt_tokens": None, "total_tokens": tokens, "search_units": None}
    if kind == "tei":  # in a response header: needs the client to pass reply.headers
        return {"prompt_tokens": None, "total_tokens": None, "search_units": None}
    return both


@pytest.mark.parametrize("kind", KINDS)
async def test_chunked_equals_unchunked_and_usage_is_recorded_as_reported(tmp_path, out_dir, kind):
    queries = make_queries(3, [150, 101, 37], seed=21)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(max_docs=40), SERVERS[kind]) as server:
        cfg = config(
            kind, path, out_dir, server.base_url, limits__max_docs_per_request=40, output__top_n=10
        )
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_OK, outcome.message
    assert actual_rows(out_dir) == expected_rows(queries, 10)
    assert len(server.log) == 4 + 3 + 1 and max(r.n_docs for r in server.log) == 40
    assert all(set(r.body) == FIELDS[kind] for r in server.log), server.log[0].body
    u = usage(out_dir)
    texts = {q["query_id"]: q for q in queries}
    for row in u.iter_rows(named=True):
        q = texts[row["query_id"]]
        docs = q["documents"][row["chunk"] * 40 : row["chunk"] * 40 + row["n_docs"]]
        tokens = sum(pair_tokens(q["query"], d) for d in docs)
        want = expected_usage(kind, tokens, row["n_docs"])
        if kind == "tei" and row["total_tokens"] is not None:  # the client passes headers now
            want = {**want, "prompt_tokens": tokens, "total_tokens": tokens}
        assert {k: row[k] for k in want} == want, (kind, row)
    assert set(u["billing"].to_list()) == {
        "search_units" if kind.startswith("cohere") else "tokens"
    }


async def test_tei_tokens_come_from_the_response_header(tmp_path, out_dir):
    queries = make_queries(2, 20, seed=22)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(), SERVERS["tei"]) as server:
        await run(config("tei", path, out_dir, server.base_url))
    u = usage(out_dir)
    want = [sum(pair_tokens(q["query"], d) for d in q["documents"]) for q in queries]
    assert u["total_tokens"].to_list() == want


@pytest.mark.parametrize("kind", KINDS)
async def test_429s_5xx_and_bad_answers_are_retried(tmp_path, out_dir, kind):
    queries = make_queries(3, 12, seed=23)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    faults = ["429", "429_bare", "500", "garbage", "bad_index", "nan"]
    async with running_server(Knobs(script=deque(faults)), SERVERS[kind]) as server:
        cfg = config(
            kind, path, out_dir, server.base_url, limits__max_concurrency=1, limits__max_attempts=8
        )
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_OK, outcome.message
    assert actual_rows(out_dir) == expected_rows(queries, None)
    assert usage(out_dir)["attempts"].sum() == 3 + len(faults)
    assert server.statuses().count(429) == 2 and outcome.stats.http_429 == 2


# The message each API's 400 body must turn into (the error envelope differs per kind).
REJECTION = {
    "jina": "query rejected by policy (invalid_request)",
    "cohere": "query rejected by policy",
    "cohere-v1": "query rejected by policy",
    "voyage": "query rejected by policy",
    "xinference": "query rejected by policy",
    "tei": "query rejected by policy (empty)",
    "vllm": "query rejected by policy (400)",
    "infinity": "query rejected by policy (400)",
    "llamacpp": "query rejected by policy (400)",
    "litellm": "query rejected by policy (invalid_request_error)",
}


@pytest.mark.parametrize("kind", KINDS)
async def test_error_bodies_become_the_failure_message(tmp_path, out_dir, kind):
    queries = make_queries(3, 8, seed=24)
    bad = queries[1]
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server(
        Knobs(reject_queries={bad["query"]}, script=deque(["bad_index"] * 4)), SERVERS[kind]
    ) as server:
        cfg = config(kind, path, out_dir, server.base_url, limits__max_concurrency=1)
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_SOME_FAILED
    f = {row["query_id"]: row for row in failures(out_dir).iter_rows(named=True)}
    assert set(f) == {"q0000", bad["query_id"]}
    assert (
        f["q0000"]["message"].endswith("gave up after 4 attempts)")
        and "outside 0..7" in f["q0000"]["message"]
    )
    assert f[bad["query_id"]]["message"].endswith(f"HTTP 400: {REJECTION[kind]}")
    assert f[bad["query_id"]]["retryable"] is False
    assert sum(1 for r in server.log if r.query == bad["query"]) == 1  # a 400 is not retried
    assert set(actual_rows(out_dir)) == {"q0002"}


@pytest.mark.parametrize(
    "kind,server_kind,path,message",
    [
        # Jina's `return_documents` is not a Cohere v2 field: the strict fake refuses it.
        (
            "jina",
            "cohere",
            "/v2/rerank",
            "HTTP 400: invalid request: unknown field 'return_documents'",
        ),
        # `documents` instead of `texts`: TEI's JSON extractor answers 422 in plain text.
        (
            "infinity",
            "tei",
            "/rerank",
            "HTTP 422: Failed to deserialize the JSON body into the target type: "
            "missing field `texts`",
        ),
    ],
)
async def test_the_fakes_refuse_another_formats_request(
    tmp_path, out_dir, kind, server_kind, path, message
):
    queries = make_queries(1, 5, seed=25)
    path_in = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(), SERVERS[server_kind]) as server:
        cfg = config(kind, path_in, out_dir, None, provider__endpoint=f'"{server.base_url}{path}"')
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_SOME_FAILED
    assert failures(out_dir)["message"][0].endswith(message)


class HtmlErrorServer(SERVERS["jina"]):
    """A proxy in front of the API whose own error page, not the API's body, comes back."""

    def error_payload(self, status: int, error: dict) -> object:
        padding = "<p>An error occurred while processing your request.</p>\n" * 60
        return (
            f"<!DOCTYPE html>\n<html><head><title>{status} Bad Gateway</title></head>\n"
            f"<body><h1>Bad Gateway</h1>\n{padding}<hr><address>nginx</address></body></html>"
        )


async def test_an_html_error_page_is_a_short_excerpt_in_failures(tmp_path, out_dir):
    path = write_grouped_parquet(tmp_path / "in.parquet", make_queries(1, 5, seed=26))
    async with running_server(Knobs(script=deque(["503"] * 2)), HtmlErrorServer) as server:
        outcome = await run(config("jina", path, out_dir, server.base_url, limits__max_attempts=2))
    assert outcome.exit_code == EXIT_SOME_FAILED
    assert failures(out_dir)["message"].to_list() == [
        "chunk 0 (5 documents): HTTP 503: 503 Bad Gateway (gave up after 2 attempts)"
    ]
