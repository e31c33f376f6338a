"""The score cache on real HTTP: a Jina-format server on 127.0.0.1 with a documents-per-request
limit counts every pair it is sent; the cache is a real SQLite file."""

from __future__ import annotations

import sqlite3
import time

import orjson
import polars as pl

from pipeline.cache import pair_keys, scoring_identity
from pipeline.cache.admin import cache_stats
from pipeline.cli import main
from pipeline.estimate import estimate_job
from pipeline.providers import get_adapter
from pipeline.run import EXIT_OK
from tests.cache_world import (
    cached_scores,
    new_pairs,
    night_one,
    night_two,
    pairs_of,
    pairs_sent,
)
from tests.fake_server import Knobs, ThreadedServer, reference_ranking, running_server, score
from tests.helpers import job_config, make_queries, results, run, write_grouped_parquet

MAX_DOCS = 10


def nightly(path, out, base_url, cache, **sets):
    sets.setdefault("provider__model", "jina-reranker-v2-base-multilingual")  # a priced model
    return job_config(
        path,
        out,
        base_url,
        limits__max_docs_per_request=MAX_DOCS,
        output__top_n=5,
        cache__path=str(cache),
        **sets,
    )


def summary(out) -> dict:
    return orjson.loads((out / "summary.json").read_bytes())


def ranked(out) -> pl.DataFrame:
    return results(out).select("query_id", "doc_id", "rank", "score", "input_rank")


def reference(queries: list[dict], top_n: int) -> dict[str, list[tuple[str, float]]]:
    return {
        q["query_id"]: [
            (q["doc_ids"][i], s) for i, s in reference_ranking(q["query"], q["documents"], top_n)
        ]
        for q in queries
    }


def as_reference(out) -> dict[str, list[tuple[str, float]]]:
    got: dict[str, list[tuple[str, float]]] = {}
    for row in results(out).iter_rows(named=True):
        got.setdefault(row["query_id"], []).append((row["doc_id"], row["score"]))
    return got


async def test_night_two_sends_exactly_the_new_pairs_and_ranks_like_an_uncached_run(tmp_path):
    night1, cache = night_one(), tmp_path / "cache" / "scores.db"
    night2 = night_two(night1)
    in1 = write_grouped_parquet(tmp_path / "night1.parquet", night1)
    in2 = write_grouped_parquet(tmp_path / "night2.parquet", night2)
    async with running_server(Knobs(max_docs=MAX_DOCS)) as server:
        first = await run(nightly(in1, tmp_path / "n1", server.base_url, cache))
        assert first.exit_code == EXIT_OK
        # With the cache on, every chunk asks for every score (top_n = its size).
        assert all(r.top_n == r.n_docs <= MAX_DOCS for r in server.log)
        assert pairs_sent(server.log) == pairs_of(night1)
        assert as_reference(tmp_path / "n1") == reference(night1, 5)

        plain = await run(
            job_config(
                in2,
                tmp_path / "uncached",
                server.base_url,
                limits__max_docs_per_request=MAX_DOCS,
                output__top_n=5,
            )
        )
        assert plain.exit_code == EXIT_OK
        mark = len(server.log)
        second = await run(nightly(in2, tmp_path / "n2", server.base_url, cache))
        assert second.exit_code == EXIT_OK
        night2_log = server.log[mark:]

        mark = len(server.log)
        again = await run(nightly(in2, tmp_path / "n2-again", server.base_url, cache))
        assert again.exit_code == EXIT_OK
        assert len(server.log) == mark  # everything is in the cache: nothing is sent

    expected = new_pairs(night1, night2)
    assert 0 < sum(expected.values()) < sum(pairs_of(night2).values()) // 3
    assert pairs_sent(night2_log) == expected  # exactly the new pairs, each once
    assert all(r.status == 200 and r.n_docs <= MAX_DOCS for r in night2_log)
    assert ranked(tmp_path / "n2").equals(ranked(tmp_path / "uncached"))
    assert ranked(tmp_path / "n2-again").equals(ranked(tmp_path / "uncached"))
    assert as_reference(tmp_path / "n2") == reference(night2, 5)

    block = summary(tmp_path / "n2")["cache"]
    total = sum(len(q["documents"]) for q in night2)
    assert block["pairs"] == total
    assert block["sent"] == sum(expected.values())
    assert block["from_cache"] == total - block["sent"]
    assert block["stored"] == block["sent"]
    assert block["saved"]["tokens"] > 0 and block["saved"]["usd"] > 0
    again_block = summary(tmp_path / "n2-again")["cache"]
    assert again_block["sent"] == 0 and again_block["queries_all_cached"] == len(night2)
    assert summary(tmp_path / "n2-again")["requests"]["succeeded"] == 0


async def test_estimate_consults_the_cache_and_plans_what_the_run_sends(tmp_path):
    night1, cache = night_one(30), tmp_path / "scores.db"
    night2 = night_two(night1, seed=5)
    in1 = write_grouped_parquet(tmp_path / "night1.parquet", night1)
    in2 = write_grouped_parquet(tmp_path / "night2.parquet", night2)
    async with running_server(Knobs(max_docs=MAX_DOCS)) as server:
        await run(nightly(in1, tmp_path / "n1", server.base_url, cache))
        cfg = nightly(in2, tmp_path / "n2", server.base_url, cache)
        before = cache_stats(cache)["entries"]
        est = estimate_job(cfg)
        assert cache_stats(cache)["entries"] == before  # read-only
        mark = len(server.log)
        await run(cfg)
        sent = server.log[mark:]
    assert est.requests == len(sent)
    assert est.tokens_heuristic == summary(tmp_path / "n2")["tokens"]["estimated"]
    assert est.cache["sent"] == sum(pairs_sent(sent).values())
    assert est.cache["hit_rate"] == summary(tmp_path / "n2")["cache"]["hit_rate"]


async def test_a_changed_model_misses_everything(tmp_path):
    queries, cache = make_queries(12, [5, 14], seed=8), tmp_path / "scores.db"
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(max_docs=MAX_DOCS)) as server:
        v2 = "jina-reranker-v2-base-multilingual"
        await run(nightly(path, tmp_path / "a", server.base_url, cache, provider__model=v2))
        mark = len(server.log)
        await run(nightly(path, tmp_path / "b", server.base_url, cache, provider__model=v2))
        assert len(server.log) == mark
        await run(
            nightly(
                path,
                tmp_path / "c",
                server.base_url,
                cache,
                provider__model="jina-reranker-v1-turbo-en",
            )
        )
        assert pairs_sent(server.log[mark:]) == pairs_of(queries)
    block = summary(tmp_path / "c")["cache"]
    assert block["from_cache"] == 0 and block["sent"] == block["pairs"]
    models = {m["model"]: m["entries"] for m in cache_stats(cache)["models"]}
    assert models == {
        v2: sum(pairs_of(queries).values()),
        "jina-reranker-v1-turbo-en": sum(pairs_of(queries).values()),
    }


async def test_entries_older_than_max_age_days_are_sent_again_and_refreshed(tmp_path):
    queries, cache = make_queries(10, [6, 13], seed=9), tmp_path / "scores.db"
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    n_pairs = sum(len(q["documents"]) for q in queries)
    async with running_server(Knobs(max_docs=MAX_DOCS)) as server:
        await run(nightly(path, tmp_path / "a", server.base_url, cache))
        # Age every entry by ten days, in the file itself.
        with sqlite3.connect(cache) as db:
            db.execute("UPDATE scores SET created = created - 10 * 86400")
        db.close()
        mark = len(server.log)
        await run(nightly(path, tmp_path / "b", server.base_url, cache, cache__max_age_days=30))
        assert len(server.log) == mark  # ten days old, thirty allowed: all hits
        await run(nightly(path, tmp_path / "c", server.base_url, cache, cache__max_age_days=7))
        assert pairs_sent(server.log[mark:]) == pairs_of(queries)
        mark = len(server.log)
        await run(nightly(path, tmp_path / "d", server.base_url, cache, cache__max_age_days=7))
        assert len(server.log) == mark  # refreshed by the last run
    block = summary(tmp_path / "c")["cache"]
    assert block["expired"] == n_pairs and block["from_cache"] == 0
    assert ranked(tmp_path / "c").equals(ranked(tmp_path / "a"))
    stats = cache_stats(cache)
    assert stats["entries"] == n_pairs and stats["oldest"] >= time.time() - 3600


async def test_read_only_uses_the_cache_and_never_writes_it(tmp_path):
    queries, cache = make_queries(16, [8, 21, 3], seed=10), tmp_path / "shared.db"
    half = write_grouped_parquet(tmp_path / "half.parquet", queries[::2])
    full = write_grouped_parquet(tmp_path / "full.parquet", queries)
    async with running_server(Knobs(max_docs=MAX_DOCS)) as server:
        await run(nightly(half, tmp_path / "a", server.base_url, cache))
        before = (cache_stats(cache)["entries"], cache.read_bytes())
        for out in ("b", "c"):  # twice: read-only stores nothing, so the misses go again
            mark = len(server.log)
            outcome = await run(
                nightly(full, tmp_path / out, server.base_url, cache, cache__read_only="true")
            )
            assert outcome.exit_code == EXIT_OK
            assert pairs_sent(server.log[mark:]) == pairs_of(queries[1::2])
            # Without storing, chunks need not return every score: top_n as usual.
            assert all(r.top_n == min(5, r.n_docs) for r in server.log[mark:])
    assert (cache_stats(cache)["entries"], cache.read_bytes()) == before
    assert as_reference(tmp_path / "c") == reference(queries, 5)
    assert summary(tmp_path / "b")["cache"]["stored"] == 0


def test_read_only_needs_an_existing_cache_file(tmp_path, capsys):
    path = write_grouped_parquet(tmp_path / "in.parquet", make_queries(2, 3))
    job = tmp_path / "job.toml"
    job.write_text(
        f'[input]\npath = "{path}"\n[provider]\nkind = "jina"\nbase_url = "http://127.0.0.1:9"\n'
        'api_key_env = ""\n'
        f'[output]\ndir = "{tmp_path / "out"}"\n[cache]\npath = "{tmp_path / "none.db"}"\nread_only = true\n'
    )
    assert main(["run", str(job), "--quiet"]) == 2
    assert "no such cache file" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


def test_a_listwise_model_is_refused_unless_the_job_opts_in(tmp_path, capsys):
    path = write_grouped_parquet(tmp_path / "in.parquet", make_queries(3, 4))
    for kind, model in (("jina", "jina-reranker-v3"), ("local", None)):
        job = tmp_path / f"{kind}.toml"
        text = (
            f'[input]\npath = "{path}"\n[provider]\nkind = "{kind}"\n'
            + (
                f'model = "{model}"\nbase_url = "http://127.0.0.1:9"\napi_key_env = ""\n'
                if model
                else ""
            )
            + f'[output]\ndir = "{tmp_path / kind}"\n[cache]\npath = "{tmp_path / "c.db"}"\n'
        )
        job.write_text(text)
        assert main(["run", str(job), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "cache.allow_listwise" in err and "listwise" in err
        assert main(["estimate", str(job), "--quiet"]) == 2
        assert "cache.allow_listwise" in capsys.readouterr().err
        assert not (tmp_path / "c.db").exists()
    # Opting in: the local job runs, and is told what that means.
    job = tmp_path / "local.toml"
    job.write_text(job.read_text() + "allow_listwise = true\n")
    assert main(["run", str(job), "--quiet"]) == 0
    assert "cached scores made in other requests" in capsys.readouterr().err
    assert cache_stats(tmp_path / "c.db")["entries"] == 12


async def test_keys_ignore_ids_and_positions_and_the_cache_holds_no_text_or_key(
    tmp_path, monkeypatch
):
    adapter = get_adapter("jina")
    ident = scoring_identity(
        adapter, "https://user:SECRET-1@gw.example.com/v1/rerank?key=SECRET-2", "m"
    )
    assert "SECRET" not in ident.url
    same = pair_keys(ident.digest, "q", ["a", "b"]) == pair_keys(ident.digest, "q", ["a", "b"])
    assert same and pair_keys(ident.digest, "q", ["b", "a"])[::-1] == pair_keys(
        ident.digest, "q", ["a", "b"]
    )
    assert pair_keys(ident.digest, "q", ["a"]) != pair_keys(ident.digest, "q", ["a "])
    assert pair_keys(ident.digest, "q", ["a"]) != pair_keys(ident.digest, "q2", ["a"])
    other = scoring_identity(adapter, "https://gw.example.com/v1/rerank", "m2")
    assert pair_keys(other.digest, "q", ["a"]) != pair_keys(ident.digest, "q", ["a"])
    # Options in the request body are part of the identity (TEI's raw_scores, truncate).
    tei = scoring_identity(get_adapter("tei"), "http://127.0.0.1:8080/rerank", None)
    assert '"raw_scores":false' in tei.options and '"truncate":true' in tei.options

    secret = "sk-cache-test-SECRET-77"
    monkeypatch.setenv("CACHE_TEST_KEY", secret)
    queries, cache = make_queries(5, [6], seed=12), tmp_path / "scores.db"
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(require_key=secret)) as server:
        cfg = nightly(
            path, tmp_path / "out", server.base_url, cache, provider__api_key_env="CACHE_TEST_KEY"
        )
        assert (await run(cfg)).exit_code == EXIT_OK
    data = b"".join(p.read_bytes() for p in tmp_path.glob("scores.db*"))
    assert secret.encode() not in data
    assert not any(d.encode() in data for q in queries for d in q["documents"])
    assert not any(q["query"].encode() in data for q in queries)
    pairs = [(q["query"], d) for q in queries for d in q["documents"]]
    got = cached_scores(cache, server.base_url, pairs, "jina-reranker-v2-base-multilingual")
    assert got == {(q["query"], d): score(q["query"], d) for q in queries for d in q["documents"]}


async def test_cache_stats_and_drop_from_the_command_line(tmp_path, capsys):
    queries, cache = make_queries(6, [5], seed=13), tmp_path / "scores.db"
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    async with running_server(Knobs(max_docs=MAX_DOCS)) as server:
        for model in ("jina-reranker-v2-base-multilingual", "jina-reranker-v1-turbo-en"):
            await run(
                nightly(path, tmp_path / model, server.base_url, cache, provider__model=model)
            )
    assert main(["cache", "stats", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "entries   60" in out and "jina-reranker-v1-turbo-en" in out
    assert main(["cache", "stats", str(cache), "--json"]) == 0
    stats = orjson.loads(capsys.readouterr().out)
    assert stats["entries"] == 60 and len(stats["models"]) == 2 and stats["bytes"] > 0
    assert main(["cache", "drop", str(cache), "--model", "jina-reranker-v1-turbo-en"]) == 0
    assert "dropped 30 entries" in capsys.readouterr().out
    assert [m["model"] for m in cache_stats(cache)["models"]] == [
        "jina-reranker-v2-base-multilingual"
    ]
    assert main(["cache", "drop", str(cache)]) == 2
    assert main(["cache", "stats", str(tmp_path / "missing.db")]) == 2
    (tmp_path / "not-a-cache.db").write_bytes(b"hello")
    assert main(["cache", "stats", str(tmp_path / "not-a-cache.db")]) == 2
    assert "error" in capsys.readouterr().err
    # Someone else's SQLite file is refused and left as it was (not even switched to WAL).
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    db.close()
    assert main(["cache", "drop", str(other), "--model", "m"]) == 2
    assert "not a score cache" in capsys.readouterr().err
    with sqlite3.connect(other) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["t"]
    db.close()


def test_the_end_table_report_and_estimate_show_the_cache(tmp_path, capsys):
    queries, cache = make_queries(8, [6, 15], seed=14), tmp_path / "scores.db"
    path = write_grouped_parquet(tmp_path / "in.parquet", queries)
    with ThreadedServer(Knobs(max_docs=MAX_DOCS)) as server:
        job = tmp_path / "job.toml"
        job.write_text(
            f'[input]\npath = "{path}"\n[provider]\nkind = "jina"\n'
            f'model = "jina-reranker-v2-base-multilingual"\nbase_url = "{server.base_url}"\n'
            'api_key_env = ""\n'
            f"[limits]\nmax_docs_per_request = {MAX_DOCS}\n"
            f'[output]\ndir = "{tmp_path / "n1"}"\n[cache]\npath = "{cache}"\n'
        )
        assert main(["estimate", str(job)]) == 0  # no cache file yet: all would be sent
        assert "does not exist yet: every pair would be sent" in capsys.readouterr().out
        assert not cache.exists()  # estimate never creates it
        assert main(["run", str(job)]) == 0
        assert "cache     84 pairs: 0 from cache (0.0%), 84 sent" in capsys.readouterr().out
        assert main(["estimate", str(job), "--set", f"output.dir={tmp_path / 'n2'}"]) == 0
        out = capsys.readouterr().out
        assert "requests 0" in out and "84 from cache (100.0%), 0 to send" in out
        assert main(["run", str(job), "--set", f"output.dir={tmp_path / 'n2'}"]) == 0
        assert "84 from cache (100.0%), 0 sent; saved ~" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "n2")]) == 0
    assert "84 from cache (100.0%)" in capsys.readouterr().out
