"""The Ray engine's crash safety, for real: the CLI with `engine.kind=ray` in a subprocess
(its own Ray started on this machine), its driver killed with SIGKILL half-way, and a
client actor's process killed with SIGKILL mid-run (Ray started in this process); either
way the job ends with results identical to a clean run, nothing doubled, nothing lost."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.run import prepare_job, ray_engine, run_job
from tests.fake_server import Knobs, ThreadedServer, running_server
from tests.helpers import (
    failures,
    job_config,
    make_queries,
    results,
    start_small_ray,
    usage,
    write_grouped_parquet,
)
from tests.test_kill_resume import SECRET, committed_ids, final_tables, start, write_job

ray = pytest.importorskip("ray")
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


def _pid(actor_self: object) -> int:
    return os.getpid()


async def test_client_actor_killed_mid_run_has_its_batch_rerun_without_doubling(
    tmp_path, monkeypatch
):
    queries = make_queries(600, [4, 12, 25, 9], seed=44)
    src = write_grouped_parquet(tmp_path / "in.parquet", queries, row_group_size=32)
    # Answered 400, each a one-chunk query (a failed query's other chunks are not sent,
    # so how many of them went out before the 400 depends on timing, not on the engine).
    rejected = {queries[i]["query"] for i in (3, 300, 555)}
    common = dict(limits__max_docs_per_request=10, limits__max_concurrency=4, output__top_n=7)
    started: list[list] = []  # the client actors of the Ray run, as the engine made them
    to_first: set[str] = set()  # the queries the driver sent to the first actor

    def recording(ray_module, job):
        workers, desk, n = start_workers(ray_module, job)
        submit = workers[0].run_batch

        class Noting:
            def remote(self, queries):
                to_first.update(q.text for q in queries)
                return submit.remote(queries)

        workers[0].run_batch = Noting()  # the handle itself stays Ray's (ray.kill takes it)
        started.append(workers)
        return workers, desk, n

    start_workers = ray_engine.start_workers
    monkeypatch.setattr(ray_engine, "start_workers", recording)
    start_small_ray()
    try:
        async with running_server(Knobs(latency_s=0.01, reject_queries=rejected)) as server:
            clean = await run_job(
                prepare_job(job_config(src, tmp_path / "clean", server.base_url, **common)),
                quiet=True,
            )
            assert clean.exit_code == 1  # the three rejected queries, by design
            log_start = len(server.log)

            async def kill_one_actor() -> tuple[int, int]:
                """SIGKILL the first actor's process mid-run, once the server has answered
                5 requests of its batches (counted in requests, not seconds: robust on a
                loaded machine, where one actor may start seconds after the other); its
                PID before and after Ray restarted it."""
                seen, mine = log_start, 0
                while mine < 5:
                    await asyncio.sleep(0.01)
                    log = server.log
                    mine += sum(r.query in to_first for r in log[seen:])
                    seen = len(log)
                actor = started[0][0]
                old = await actor.__ray_call__.remote(_pid)
                os.kill(old, signal.SIGKILL)
                # Queued behind the death: answered by the restarted actor.
                new = await actor.__ray_call__.remote(_pid)
                return old, new

            cfg = job_config(
                src,
                tmp_path / "ray",
                server.base_url,
                engine__kind="ray",
                engine__workers=2,
                **common,
            )
            job = asyncio.ensure_future(run_job(prepare_job(cfg), quiet=True))
            killer = asyncio.ensure_future(kill_one_actor())
            done, _ = await asyncio.wait(
                {job, killer}, timeout=240, return_when=asyncio.FIRST_COMPLETED
            )
            if killer not in done:
                killer.cancel()
                ended = job.result() if job.done() else "still running after 240 s"
                pytest.fail(f"the first actor was not killed and restarted mid-run: {ended}")
            old, new = killer.result()
            on_ray = await asyncio.wait_for(job, 240)
            sent = server.log[log_start:]
    finally:
        ray.shutdown()
    # The kill was real: another process runs the actor now ...
    assert new != old
    # ... and the dead actor's requests were sent again by its restarted self.
    per_query: dict[str, int] = {}
    for r in sent:
        per_query[r.query] = per_query.get(r.query, 0) + 1
    got_u, want_u = usage(tmp_path / "ray"), usage(tmp_path / "clean")
    qid_of = {q["query"]: q["query_id"] for q in queries}
    asked = got_u.group_by("query_id").len()
    asked_of = dict(zip(asked["query_id"].to_list(), asked["len"].to_list(), strict=True))
    resent = {q for q, n in per_query.items() if n > asked_of[qid_of[q]]}
    assert resent, "no query was sent twice: the killed actor had no batch in progress"
    assert resent <= to_first  # only the killed actor's queries were sent again
    # The job ended as the clean run did, row for row.
    assert on_ray.exit_code == clean.exit_code == 1
    got_r, want_r = results(tmp_path / "ray"), results(tmp_path / "clean")
    assert got_r.equals(want_r)
    cols = ["query_id", "stage", "error", "message"]
    got_f = failures(tmp_path / "ray").select(cols)
    assert got_f.equals(failures(tmp_path / "clean").select(cols))
    assert set(got_f["query_id"]) == {qid_of[q] for q in rejected}
    # Every query exactly once, in results or in failures.
    ranked = set(got_r["query_id"].to_list())
    assert len(ranked) + got_f.height == len(queries)
    assert not ranked & set(got_f["query_id"].to_list())
    # usage: one row per request of the run that counted, none of the dead attempt's.
    keys = ["query_id", "chunk"]
    assert not got_u.select(keys).is_duplicated().any()
    cols = ["query_id", "chunk", "n_docs", "estimated_tokens"]
    assert got_u.select(cols).equals(want_u.select(cols))
    assert len(sent) > got_u.height  # the server did see the lost attempt's requests
