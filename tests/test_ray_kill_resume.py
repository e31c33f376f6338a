"""The Ray engine's crash safety, for real: the CLI with `engine.kind=ray` in a subprocess
(its own Ray started on this machine), its driver killed with SIGKILL half-way and a
client actor killed mid-run; the rerun ends with results identical to a clean run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fake_server import Knobs, ThreadedServer
from tests.helpers import make_queries, write_grouped_parquet
from tests.test_kill_resume import SECRET, committed_ids, final_tables, start, write_job

pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]


def start_group(job: Path) -> subprocess.Popen:
    """The CLI in a session of its own: a kill of the group takes the Ray it started too
    (the whole driver machine gone), and leaves no Ray process behind."""
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(job), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "RERANK_API_KEY": SECRET},
        start_new_session=True,
    )


def test_driver_killed_half_way_then_rerun_equals_a_clean_run(tmp_path):
    queries = make_queries(400, [4, 12, 25, 9], seed=43)
    path = write_grouped_parquet(tmp_path / "in.parquet", queries, row_group_size=16)
    rejected = {queries[i]["query"] for i in (3, 99)}
    with ThreadedServer(Knobs(latency_s=0.02, reject_queries=rejected)) as server:
        clean = tmp_path / "clean"
        proc = start(write_job(tmp_path, path, clean, server.base_url))
        assert proc.wait(120) == 1, proc.stderr.read().decode()
        out = tmp_path / "ray"
        job = write_job(tmp_path, path, out, server.base_url)
        job.write_text(job.read_text() + '[engine]\nkind = "ray"\nworkers = 2\n')
        proc = start_group(job)
        deadline = time.monotonic() + 120
        # Half-way: once some work is committed, and well before the end.
        while proc.poll() is None and time.monotonic() < deadline:
            if out.exists() and len(committed_ids(out)) >= 60:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        half = committed_ids(out)
        assert 0 < len(half) < len(queries)
        log_start = len(server.log)
        final = start_group(job)
        code = final.wait(180)
        assert code == 1, final.stderr.read().decode()
        qid_of = {q["query"]: q["query_id"] for q in queries}
        resent = {qid_of[r.query] for r in server.log[log_start:]} & half
        assert not resent, sorted(resent)[:5]
    got_r, got_f = final_tables(out)
    want_r, want_f = final_tables(clean)
    assert got_r.equals(want_r)
    assert got_f.equals(want_f)
