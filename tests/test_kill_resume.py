"""Crash safety, for real: the CLI in a subprocess, killed with SIGKILL at random moments
and resumed, must end with output identical to one uninterrupted run; SIGINT/SIGTERM stop
gracefully. The server runs in a thread of the test process, so it outlives each kill."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import polars as pl
import pytest

from pipeline.write import committed_parts
from tests.fake_server import Knobs, ThreadedServer
from tests.helpers import make_queries, write_grouped_parquet

SECRET = "sk-kill-test-SECRET-5a4b3c2d1e"
pytestmark = pytest.mark.slow


def write_job(tmp: Path, input_path: Path, out: Path, base_url: str) -> Path:
    job = tmp / f"job-{out.name}.toml"
    job.write_text(
        f'[input]\npath = "{input_path}"\nbatch_rows = 16\n'
        f'[provider]\nkind = "jina"\nbase_url = "{base_url}"\n'
        "[limits]\nmax_concurrency = 3\nmax_docs_per_request = 10\nmax_attempts = 3\ntimeout_s = 5\n"
        "max_retry_wait_s = 0.05\n"
        f'[output]\ndir = "{out}"\ntop_n = 7\nflush_seconds = 0.2\n'
    )
    return job


def start(job: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "RERANK_API_KEY": SECRET}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(job), "--quiet", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def wait_for_requests(server, count: int, proc: subprocess.Popen) -> None:
    """Until the server has logged `count` requests (or the run ended): bounded, so a
    broken run fails."""
    deadline = time.monotonic() + 60
    while len(server.log) < count and proc.poll() is None:
        assert time.monotonic() < deadline, "the run sent too few requests within 60 s"
        time.sleep(0.01)


def committed_ids(out: Path) -> set[str]:
    parts = committed_parts(out)
    ids: set[str] = set()
    for name in ("results", "failures"):
        for p in parts[name]:
            ids.update(
                x for x in pl.read_parquet(p, columns=["query_id"])["query_id"].to_list() if x
            )
    return ids


def final_tables(out: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    r = pl.read_parquet(str(out / "results" / "*.parquet")).sort("query_id", "rank")
    f = (
        pl.read_parquet(str(out / "failures" / "*.parquet"))
        .select("query_id", "stage", "error", "message")
        .sort("query_id")
    )
    return r, f


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kill")
    queries = make_queries(800, [4, 12, 25, 9], seed=41)
    path = write_grouped_parquet(tmp / "in.parquet", queries, row_group_size=16)
    rejected = {queries[i]["query"] for i in (5, 77, 150)}
    with ThreadedServer(Knobs(latency_s=0.02, reject_queries=rejected)) as server:
        clean = tmp / "clean"
        proc = start(write_job(tmp, path, clean, server.base_url))
        assert proc.wait(120) == 1, proc.stderr.read().decode()  # three queries fail by design
        yield {"tmp": tmp, "queries": queries, "path": path, "server": server, "clean": clean}


def test_twenty_sigkills_at_random_moments_then_resume_equals_one_clean_run(world):
    tmp, server = world["tmp"], world["server"]
    out = tmp / "killed"
    job = write_job(tmp, world["path"], out, server.base_url)
    qid_of = {q["query"]: q["query_id"] for q in world["queries"]}
    rng = random.Random(2026)
    kills = 0
    logs = []
    while kills < 20:
        done_before = committed_ids(out) if out.exists() else set()
        log_start = len(server.log)
        proc = start(job)
        # Random moments measured in this run's own requests (1 to 120 sent), not seconds:
        # on a loaded machine a clock-based moment falls before any work is committed.
        wait_for_requests(server, log_start + rng.randint(1, 120), proc)
        if proc.poll() is not None:
            break  # finished before the kill
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        kills += 1
        time.sleep(0.05)  # let the server log what the killed client had in flight
        # Work committed before this run started is never sent again.
        resent = {qid_of[r.query] for r in server.log[log_start:]} & done_before
        assert not resent, f"run {kills} re-sent finished queries {sorted(resent)[:5]}"
        logs.append(len(done_before))
    final = start(job)
    code = final.wait(120)
    stderr = final.stderr.read().decode()
    assert code == 1, stderr
    assert kills == 20 and logs[-1] > logs[0], (kills, logs)  # progress was made across kills
    got_r, got_f = final_tables(out)
    want_r, want_f = final_tables(world["clean"])
    assert got_r.equals(want_r)
    assert got_f.equals(want_f)
    assert got_r["query_id"].n_unique() + got_f.height == len(world["queries"])
    assert not set(got_r["query_id"].to_list()) & set(got_f["query_id"].to_list())
    summary = orjson.loads((out / "summary.json").read_bytes())
    assert summary["queries"]["accounted_for"] and summary["status"] == "complete"
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers
    for p in out.rglob("*"):
        if p.is_file():
            assert SECRET.encode() not in p.read_bytes()
    assert SECRET not in stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_graceful_stop_saves_work_and_says_how_to_resume(world, sig):
    tmp, server = world["tmp"], world["server"]
    out = tmp / f"stopped-{sig.name}"
    job = write_job(tmp, world["path"], out, server.base_url)
    proc = start(job)
    deadline = time.monotonic() + 30
    while not (out / "_manifest.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    code = proc.wait(60)
    stderr = proc.stderr.read().decode()
    assert code == 130, stderr
    assert "run the same command again to resume" in stderr
    assert "Traceback" not in stderr
    summary = orjson.loads((out / "summary.json").read_bytes())
    assert summary["status"] == "interrupted"
    saved = committed_ids(out)
    assert 0 < len(saved) < len(world["queries"])
    n = len(server.log)
    resumed = start(job)
    assert resumed.wait(120) == 1
    qid_of = {q["query"]: q["query_id"] for q in world["queries"]}
    assert not {qid_of[r.query] for r in server.log[n:]} & saved
    got_r, got_f = final_tables(out)
    want_r, want_f = final_tables(world["clean"])
    assert got_r.equals(want_r) and got_f.equals(want_f)


def test_a_second_ctrl_c_gives_up_the_grace_period(tmp_path):
    path = write_grouped_parquet(tmp_path / "in.parquet", make_queries(20, 5, seed=42))
    with ThreadedServer(Knobs(latency_s=120)) as server:  # every request hangs
        out = tmp_path / "out"
        proc = start(write_job(tmp_path, path, out, server.base_url))
        deadline = time.monotonic() + 30
        while not (out / "_job.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # requests are in flight now
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(15)  # the grace period alone would be 30 s
        stderr = proc.stderr.read().decode()
    assert code == 130, stderr
    assert (
        "stopping now" in stderr and "Traceback" not in stderr and "never retrieved" not in stderr
    )
    summary = orjson.loads((out / "summary.json").read_bytes())
    assert summary["status"] == "interrupted"
