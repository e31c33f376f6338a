"""Several jobs on one cache file at once, as real processes: two writing (overlapping
inputs), one read-only, and `cache stats` reading while they run. None fails or waits
forever; each ranks exactly; the file stays consistent and holds each pair once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import pytest

from pipeline.cache.admin import cache_stats
from tests.cache_world import cached_scores, pairs_of
from tests.fake_server import Knobs, ThreadedServer, reference_ranking, score
from tests.helpers import make_queries, results, write_grouped_parquet
from tests.test_cache_kill_resume import MODEL, start, write_job

pytestmark = pytest.mark.slow


def ranking_of(out) -> dict[str, list[tuple[str, float]]]:
    got: dict[str, list[tuple[str, float]]] = {}
    for row in results(out).iter_rows(named=True):
        got.setdefault(row["query_id"], []).append((row["doc_id"], row["score"]))
    return got


def reference(queries: list[dict]) -> dict[str, list[tuple[str, float]]]:
    return {
        q["query_id"]: [
            (q["doc_ids"][i], s) for i, s in reference_ranking(q["query"], q["documents"], 7)
        ]
        for q in queries
    }


def test_two_writers_and_a_reader_share_one_cache(tmp_path):
    every = make_queries(360, [6, 25, 13, 40], seed=61)
    a, b = every[:240], every[120:]  # a third of the queries in both
    seed = every[:20]
    paths = {
        name: write_grouped_parquet(tmp_path / f"{name}.parquet", qs, row_group_size=16)
        for name, qs in (("a", a), ("b", b), ("seed", seed), ("all", every))
    }
    cache = tmp_path / "shared" / "scores.db"
    with ThreadedServer(Knobs(latency_s=0.01, max_docs=10)) as server:
        url = server.base_url
        # The read-only job needs the file to exist: a small writing run creates it.
        assert (
            start(write_job(tmp_path, paths["seed"], tmp_path / "seed", url, cache)).wait(60) == 0
        )
        jobs = {
            "a": write_job(tmp_path, paths["a"], tmp_path / "a", url, cache),
            "b": write_job(tmp_path, paths["b"], tmp_path / "b", url, cache),
            "reader": write_job(tmp_path, paths["a"], tmp_path / "reader", url, cache),
        }
        jobs["reader"].write_text(jobs["reader"].read_text() + "read_only = true\n")
        procs = {name: start(job) for name, job in jobs.items()}
        looks = 0
        while any(p.poll() is None for p in procs.values()):
            stats = subprocess.run(
                [sys.executable, "-m", "pipeline", "cache", "stats", str(cache), "--json"],
                capture_output=True,
                timeout=60,
            )
            assert stats.returncode == 0, stats.stderr.decode()
            looks += 1
            time.sleep(0.05)
        for name, proc in procs.items():
            assert proc.wait(120) == 0, (name, proc.stderr.read().decode())
        mark = len(server.log)
        everything = write_job(tmp_path, paths["all"], tmp_path / "all", url, cache)
        assert start(everything).wait(60) == 0
        assert len(server.log) == mark  # the two writers stored every pair between them
    assert looks >= 1
    assert ranking_of(tmp_path / "a") == reference(a)
    assert ranking_of(tmp_path / "b") == reference(b)
    assert ranking_of(tmp_path / "reader") == reference(a)
    assert ranking_of(tmp_path / "all") == reference(every)
    with sqlite3.connect(cache) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    unique = set(pairs_of(every))
    assert cache_stats(cache)["entries"] == len(unique)
    held = cached_scores(cache, url, sorted(unique), MODEL)
    assert held == {p: score(*p) for p in unique}
