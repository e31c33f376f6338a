"""Crash safety with the score cache, for real: night 2 in a CLI subprocess, SIGKILLed at
random moments and resumed, ends with the output of one clean uncached run; no run sends
a pair that was in the cache when it started; the cache file stays consistent and holds
only scores the server gave."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.cache_world import cached_scores, new_pairs, night_one, night_two, pairs_sent
from tests.fake_server import Knobs, ThreadedServer, score
from tests.helpers import failures, results, write_grouped_parquet

pytestmark = pytest.mark.slow
MODEL = "jina-reranker-v2-base-multilingual"


def write_job(tmp: Path, input_path: Path, out: Path, base_url: str, cache: Path | None) -> Path:
    job = tmp / f"job-{out.name}.toml"
    job.write_text(
        f'[input]\npath = "{input_path}"\nbatch_rows = 16\n'
        f'[provider]\nkind = "jina"\nmodel = "{MODEL}"\nbase_url = "{base_url}"\n'
        "[limits]\nmax_concurrency = 3\nmax_docs_per_request = 10\nmax_attempts = 3\n"
        "timeout_s = 5\nmax_retry_wait_s = 0.05\n"
        f'[output]\ndir = "{out}"\ntop_n = 7\nflush_seconds = 0.2\n'
        + (f'[cache]\npath = "{cache}"\n' if cache else "")
    )
    return job


def start(job: Path) -> subprocess.Popen:
    env = {**os.environ, "RERANK_API_KEY": "sk-cache-kill"}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(job), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def check_cache_file(cache: Path, base_url: str, pairs: list[tuple[str, str]]) -> set:
    """integrity_check passes, every score held is the server's; returns the pairs held."""
    with sqlite3.connect(f"file:{cache}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    held = cached_scores(cache, base_url, pairs, MODEL)
    wrong = {p: s for p, s in held.items() if s != score(*p)}
    assert not wrong, f"scores the server never gave: {list(wrong.items())[:3]}"
    return set(held)


def test_sigkills_during_night_two_then_resume_equal_a_clean_run(tmp_path):
    night1 = night_one(300, [4, 12, 25, 9, 30, 17], seed=51)
    night2 = night_two(night1, seed=52)
    in1 = write_grouped_parquet(tmp_path / "night1.parquet", night1, row_group_size=16)
    in2 = write_grouped_parquet(tmp_path / "night2.parquet", night2, row_group_size=16)
    cache = tmp_path / "cache" / "scores.db"
    pairs2 = sorted({(q["query"], d) for q in night2 for d in q["documents"]})
    with ThreadedServer(Knobs(latency_s=0.03, max_docs=10)) as server:
        url = server.base_url
        assert start(write_job(tmp_path, in1, tmp_path / "n1", url, cache)).wait(120) == 0
        clean = tmp_path / "clean"
        assert start(write_job(tmp_path, in2, clean, url, None)).wait(120) == 0

        job = write_job(tmp_path, in2, tmp_path / "killed", url, cache)
        rng = random.Random(2027)
        kills, held_counts = 0, []
        while True:
            held = check_cache_file(cache, url, pairs2)
            held_counts.append(len(held))
            mark = len(server.log)
            proc = start(job)
            if kills < 10:
                # A random moment of the run's own progress (startup takes a while on a
                # busy machine): after 1 to 25 requests, plus up to 0.1 s.
                target, deadline = mark + rng.randint(1, 25), time.monotonic() + 60
                while len(server.log) < target and proc.poll() is None:
                    assert time.monotonic() < deadline, "the run sent nothing"
                    time.sleep(0.005)
                time.sleep(rng.uniform(0.0, 0.1))
            if kills < 10 and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                kills += 1
                time.sleep(0.1)  # let the server log what the killed client had in flight
            else:
                code = proc.wait(120)
                assert code == 0, proc.stderr.read().decode()
            sent = set(pairs_sent(server.log[mark:]))
            again = sent & held
            assert not again, f"run {len(held_counts)} re-sent cached pairs {sorted(again)[:3]}"
            if proc.returncode == 0:
                break
    assert kills == 10 and held_counts[-1] > held_counts[0], held_counts  # progress was made
    assert results(tmp_path / "killed").equals(results(clean))
    assert (
        not (tmp_path / "killed" / "failures").exists() or not failures(tmp_path / "killed").height
    )
    summary = orjson.loads((tmp_path / "killed" / "summary.json").read_bytes())
    assert summary["status"] == "complete" and summary["queries"]["accounted_for"]
    # Every pair of night 2 is in the cache now, with the server's score.
    assert check_cache_file(cache, url, pairs2) == set(pairs2)
    assert len(set(new_pairs(night1, night2))) == len(pairs2) - held_counts[0]
