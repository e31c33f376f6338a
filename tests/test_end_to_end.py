"""The whole path on real HTTP: a Jina-format server on 127.0.0.1, the real client."""

from __future__ import annotations

from collections import deque

import orjson
import pytest

from pipeline.run import EXIT_AUTH, EXIT_OK, EXIT_SOME_FAILED
from tests.fake_server import Knobs, reference_ranking, running_server
from tests.helpers import (
    failures,
    job_config,
    make_queries,
    results,
    run,
    usage,
    write_grouped_jsonl,
    write_grouped_parquet,
    write_pairs_jsonl,
    write_pairs_parquet,
)


def expected_rows(
    queries: list[dict], top_n: int | None
) -> dict[str, list[tuple[str, float, int]]]:
    out = {}
    for q in queries:
        ranked = reference_ranking(q["query"], q["documents"], top_n)
        out[q["query_id"]] = [(q["doc_ids"][i], s, i + 1) for i, s in ranked]
    return out


def actual_rows(out_dir) -> dict[str, list[tuple[str, float, int]]]:
    df = results(out_dir)
    got: dict[str, list] = {}
    for row in df.iter_rows(named=True):
        got.setdefault(row["query_id"], []).append((row["doc_id"], row["score"], row["input_rank"]))
    return got


async def test_chunked_equals_unchunked_for_1000_candidates(tmp_path, out_dir):
    queries = make_queries(3, [1000, 1000, 999], seed=1)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(max_docs=40)) as server:
        cfg = job_config(
            path, out_dir, server.base_url, limits__max_docs_per_request=40, output__top_n=25
        )
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_OK
    assert actual_rows(out_dir) == expected_rows(queries, 25)
    assert max(r.n_docs for r in server.log) == 40
    assert all(r.top_n == min(25, r.n_docs) for r in server.log)
    assert len(server.log) == 3 * 25  # ceil(1000/40) chunks each


async def test_full_ranking_without_top_n_and_ranks_are_dense(tmp_path, out_dir):
    queries = make_queries(5, [7, 130, 64, 65, 1], seed=2)
    path = write_grouped_jsonl(tmp_path / "in.jsonl", queries)
    async with running_server(Knobs(max_docs=64)) as server:
        outcome = await run(
            job_config(path, out_dir, server.base_url, limits__max_docs_per_request=64)
        )
    assert outcome.exit_code == EXIT_OK
    assert actual_rows(out_dir) == expected_rows(queries, None)
    df = results(out_dir)
    for _qid, group in df.group_by("query_id"):
        assert sorted(group["rank"].to_list()) == list(range(1, group.height + 1))


@pytest.mark.parametrize(
    "writer,name,layout",
    [
        (write_grouped_parquet, "in.parquet", "grouped"),
        (write_grouped_jsonl, "in.jsonl.gz", "grouped"),
        (write_pairs_parquet, "pairs.parquet", "pairs"),
        (write_pairs_jsonl, "pairs.jsonl", "pairs"),
    ],
)
async def test_both_layouts_and_formats_give_the_same_ranking(
    tmp_path, out_dir, writer, name, layout
):
    queries = make_queries(12, [3, 50, 17, 120], seed=3)
    path = writer(tmp_path / name, queries)
    async with running_server(Knobs(max_docs=32)) as server:
        cfg = job_config(
            path,
            out_dir,
            server.base_url,
            input__layout=f'"{layout}"',
            limits__max_docs_per_request=32,
            output__top_n=10,
        )
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_OK
    assert actual_rows(out_dir) == expected_rows(queries, 10)
    summary = orjson.loads((out_dir / "summary.json").read_bytes())
    assert summary["queries"]["read"] == 12 and summary["queries"]["ranked"] == 12


async def test_struct_documents_keep_their_ids_and_text_is_written_when_asked(tmp_path, out_dir):
    queries = make_queries(4, 30, seed=4)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries, structs=True)
    async with running_server() as server:
        await run(
            job_config(path, out_dir, server.base_url, output__include_text="true", output__top_n=5)
        )
    df = results(out_dir)
    by_id = {i: t for q in queries for i, t in zip(q["doc_ids"], q["documents"], strict=True)}
    assert df.height == 20
    assert all(by_id[row["doc_id"]] == row["text"] for row in df.iter_rows(named=True))


async def test_rate_limited_server_still_gets_every_query_done(tmp_path, out_dir):
    queries = make_queries(30, [10, 45], seed=5)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(max_rps=15, retry_after="1")) as server:
        cfg = job_config(
            path,
            out_dir,
            server.base_url,
            limits__max_docs_per_request=20,
            limits__max_concurrency=8,
            limits__max_attempts=20,
        )
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_OK
    assert 429 in server.statuses()
    assert actual_rows(out_dir) == expected_rows(queries, None)
    summary = orjson.loads((out_dir / "summary.json").read_bytes())
    assert summary["requests"]["http_429"] == server.statuses().count(429)


async def test_configured_rate_avoids_429s(tmp_path, out_dir):
    queries = make_queries(12, 5, seed=6)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(max_rps=20)) as server:
        cfg = job_config(
            path,
            out_dir,
            server.base_url,
            limits__requests_per_minute=600,
            limits__max_concurrency=8,
        )
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_OK
    assert 429 not in server.statuses()  # 10/s configured, server allows 20 in any second


@pytest.mark.parametrize(
    "fault",
    [
        "429",
        "500",
        "503",
        "408",
        "garbage",
        "truncated",
        "bad_index",
        "dup_index",
        "nan",
        "short",
        "reset",
        "hang",
    ],
)
async def test_transient_faults_are_retried(tmp_path, out_dir, fault):
    queries = make_queries(3, 12, seed=8)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(script=deque([fault, fault]), hang_s=30)) as server:
        cfg = job_config(
            path, out_dir, server.base_url, limits__max_concurrency=1, limits__timeout_s=0.5
        )
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_OK
    assert actual_rows(out_dir) == expected_rows(queries, None)
    u = usage(out_dir)
    assert u["attempts"].sum() == 3 + 2  # two faulty attempts, then every request succeeded
    assert outcome.stats.retries == 2


async def test_persistent_bad_answers_fail_the_query_with_the_reason(tmp_path, out_dir):
    queries = make_queries(2, 8, seed=9)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(script=deque(["bad_index"] * 4))) as server:
        cfg = job_config(path, out_dir, server.base_url, limits__max_concurrency=1)
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_SOME_FAILED
    f = failures(out_dir)
    assert f.height == 1 and f["query_id"][0] == "q0000"
    assert "outside 0..7" in f["message"][0] and "gave up after 4 attempts" in f["message"][0]
    assert f["retryable"][0] is True
    assert results(out_dir)["query_id"].unique().to_list() == ["q0001"]
    assert len(server.log) == 5


async def test_a_400_fails_one_query_and_the_rest_finish(tmp_path, out_dir):
    queries = make_queries(6, [30, 90], seed=10)
    bad = queries[3]
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(reject_queries={bad["query"]})) as server:
        cfg = job_config(path, out_dir, server.base_url, limits__max_docs_per_request=40)
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_SOME_FAILED
    f = failures(out_dir)
    assert f["query_id"].to_list() == [bad["query_id"]]
    assert f["error"][0] == "http_400" and "query rejected by policy" in f["message"][0]
    assert f["stage"][0] == "request" and f["retryable"][0] is False
    assert sum(1 for r in server.log if r.query == bad["query"] and r.status == 400) >= 1
    assert sum(1 for r in server.log if r.query == bad["query"]) <= 3  # no retries of a 400
    got = actual_rows(out_dir)
    assert set(got) == {q["query_id"] for q in queries} - {bad["query_id"]}


async def test_document_limit_exceeded_is_not_retried(tmp_path, out_dir):
    queries = make_queries(2, 50, seed=11)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(max_docs=40)) as server:
        cfg = job_config(path, out_dir, server.base_url, limits__max_docs_per_request=50)
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_SOME_FAILED
    assert server.statuses() == [413, 413]
    assert failures(out_dir)["error"].to_list() == ["http_413", "http_413"]


async def test_401_stops_the_job_and_names_the_variable(tmp_path, out_dir, monkeypatch):
    secret = "sk-test-SECRET-0123456789"
    monkeypatch.setenv("MY_RERANK_KEY", secret)
    queries = make_queries(40, 5, seed=12)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(require_key="the-right-key")) as server:
        cfg = job_config(
            path,
            out_dir,
            server.base_url,
            provider__api_key_env="MY_RERANK_KEY",
            limits__max_concurrency=2,
        )
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_AUTH
    assert "MY_RERANK_KEY" in outcome.message and secret not in outcome.message
    assert len(server.log) <= 2  # stopped at once: no further requests
    assert server.log[0].authorization == f"Bearer {secret}"


async def test_the_key_never_appears_in_any_output(tmp_path, out_dir, monkeypatch, capsys):
    secret = "sk-live-DO-NOT-LEAK-9f8e7d6c"
    monkeypatch.setenv("RERANK_API_KEY", secret)
    queries = make_queries(8, 20, seed=13)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    knobs = Knobs(script=deque(["500", "garbage", "reset"]), reject_queries={queries[2]["query"]})
    async with running_server(knobs) as server:
        cfg = job_config(
            path,
            out_dir,
            server.base_url,
            provider__api_key_env="RERANK_API_KEY",
            limits__max_docs_per_request=8,
        )
        await run(cfg)
    assert all(r.authorization == f"Bearer {secret}" for r in server.log)
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err
    files = [p for p in out_dir.rglob("*") if p.is_file()]
    assert len(files) >= 6
    for p in files:
        assert secret.encode() not in p.read_bytes(), p
    import polars as pl

    for name in ("results", "usage", "failures"):  # compressed Parquet: check decoded values too
        for p in (out_dir / name).glob("*.parquet"):
            df = pl.read_parquet(p)
            for col in df.columns:
                assert not df[col].cast(pl.String).str.contains(secret, literal=True).any()


async def test_usage_rows_keep_reported_and_null_tokens(tmp_path, out_dir):
    queries = make_queries(3, 30, seed=14)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(report_usage=False)) as server:
        await run(job_config(path, out_dir / "a", server.base_url, limits__max_docs_per_request=10))
    u = usage(out_dir / "a")
    assert (
        u.height == 9
        and u["total_tokens"].null_count() == 9
        and u["prompt_tokens"].null_count() == 9
    )
    assert (u["estimated_tokens"] > 0).all() and (u["http_status"] == 200).all()
    summary = orjson.loads((out_dir / "a" / "summary.json").read_bytes())
    assert summary["tokens"]["reported_total"] is None
    async with running_server() as server:
        await run(job_config(path, out_dir / "b", server.base_url, limits__max_docs_per_request=10))
    u = usage(out_dir / "b")
    assert u["total_tokens"].null_count() == 0
    summary = orjson.loads((out_dir / "b" / "summary.json").read_bytes())
    assert summary["tokens"]["reported_total"] == u["total_tokens"].sum()


async def test_listwise_model_warns_and_final_pass_reranks_the_leaders_in_one_request(
    tmp_path, out_dir, capsys
):
    queries = make_queries(4, [150, 30, 64, 65], seed=15)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(max_docs=64)) as server:
        cfg = job_config(
            path,
            out_dir / "plain",
            server.base_url,
            provider__model='"jina-reranker-v3"',
            limits__max_docs_per_request=64,
            output__top_n=10,
        )
        await run(cfg)
        assert "jina-reranker-v3: listwise" in capsys.readouterr().err
        plain_requests = len(server.log)
        cfg = job_config(
            path,
            out_dir / "final",
            server.base_url,
            provider__model='"jina-reranker-v3"',
            limits__max_docs_per_request=64,
            output__top_n=10,
            limits__final_pass="true",
        )
        outcome = await run(cfg)
    assert outcome.exit_code == EXIT_OK
    final_requests = server.log[plain_requests:]
    # 150 -> 3 chunks + final pass; 30 -> 1; 64 -> 1; 65 -> 2 + final pass
    assert len(final_requests) == 3 + 1 + 1 + 1 + 2 + 1
    finals = [r for r in final_requests if r.n_docs == 64 and r.top_n == 10]
    assert len(finals) >= 2
    # The fake scorer is pointwise, so the final pass must reproduce the reference ranking:
    # a wrong position mapping would put scores on the wrong documents.
    assert actual_rows(out_dir / "final") == expected_rows(queries, 10)
    u = usage(out_dir / "final")
    assert u.filter(u["query_id"] == "q0000")["chunk"].to_list() == [0, 1, 2, 3]


async def test_401_on_a_final_pass_stops_the_job_as_on_any_request(tmp_path, out_dir):
    queries = make_queries(1, 65, seed=16)  # 2 chunks of at most 64, then a final pass
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    knobs = Knobs(max_docs=64, script=deque(["none", "none", "401"]))
    async with running_server(knobs) as server:
        cfg = job_config(
            path,
            out_dir,
            server.base_url,
            provider__model='"jina-reranker-v3"',
            limits__max_docs_per_request=64,
            limits__max_concurrency=1,
            limits__final_pass="true",
        )
        outcome = await run(cfg)
    assert server.statuses() == [200, 200, 401]
    assert outcome.exit_code == EXIT_AUTH and "HTTP 401" in outcome.message
    summary = orjson.loads((out_dir / "summary.json").read_bytes())
    assert summary["status"] == "auth_error" and summary["queries"]["ranked"] == 0
    assert not list((out_dir / "results").glob("*.parquet"))
