"""The Ray engine against the local one: documents/s, and rate adherence across actors.

    python benchmarks/ray_bench.py [--queries N] [--docs D] [--rps R] [--skip-rate]

Needs the `ray` extra. The loopback server (benchmarks/server.py) runs in its own process.
Throughput: the same job (N queries of D documents, 64 per request) on the local engine,
then on Ray with 1 and 2 client actors, against a fast server (no latency, hash scores).
Each line gives documents/s over the whole job (Ray's actor start-up included), and over
the span from the server's first request to its last; below it, the CPU seconds each kind
of process used meanwhile (read from /proc; Linux only), other processes on the machine
included, so what the cores were busy with is measured, not guessed.
Rate: 4 actors against a server that answers 429 above R requests in any 1 s window,
`requests_per_minute = 60 R`: the job's observed rate and when the last 429 came.
A benchmark, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from pipeline.config import load_job_text  # noqa: E402
from pipeline.run import prepare_job, run_job  # noqa: E402


def start_server(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "server.py"), *args], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    return proc, f"http://127.0.0.1:{line[1]}"


def stats(base: str) -> dict:
    with urllib.request.urlopen(base + "/stats") as r:
        return json.loads(r.read())


def reset(base: str) -> None:
    urllib.request.urlopen(urllib.request.Request(base + "/reset", method="POST")).read()


def make_input(path: Path, n: int, docs: int) -> None:
    words = [
        "solar",
        "panel",
        "grid",
        "oven",
        "flour",
        "visa",
        "hotel",
        "tax",
        "refund",
        "bread",
        "travel",
        "cost",
    ]
    rows = {
        "query_id": [f"q{i:06d}" for i in range(n)],
        "query": [f"{words[i % 12]} {words[(i * 7) % 12]}" for i in range(n)],
        "documents": [
            [" ".join(words[(i + j + k) % 12] for k in range(12)) for j in range(docs)]
            for i in range(n)
        ],
    }
    pq.write_table(pa.table(rows), path)


def job(src: Path, out: Path, base: str, extra: str = "") -> str:
    return (
        f'[input]\npath = "{src}"\n[provider]\nkind = "jina"\nbase_url = "{base}"\n'
        'api_key_env = ""\n[limits]\nmax_concurrency = 32\nmax_docs_per_request = 64\n'
        f'[output]\ndir = "{out}"\ntop_n = 10\n{extra}'
    )


class CpuMeter(threading.Thread):
    """CPU seconds used by each kind of process while a job runs, sampled from /proc every
    0.1 s (an actor's process is gone once the job ends: its last sample counts)."""

    def __init__(self, server_pid: int):
        super().__init__(daemon=True)
        self.server_pid = server_pid
        self.tick = os.sysconf("SC_CLK_TCK")
        self.ours = {os.getpid()}  # and its descendants: another job's Ray is "other"
        self.before = self.sample()
        self.last: dict[int, tuple[str, float, int]] = {}
        self.actors: set[int] = set()  # a process once seen as an actor stays one
        self.done = threading.Event()

    def sample(self) -> dict[int, tuple[str, float, int]]:
        """pid -> (command line, CPU seconds, start time)."""
        out, parent = {}, {}
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    cmd = f.read(200).replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            cpu = (int(fields[11]) + int(fields[12])) / self.tick
            out[int(name)] = (cmd, cpu, int(fields[19]))
            parent[int(name)] = int(fields[1])
        for pid in out:  # this benchmark's own processes: the Ray it started, the server
            p = pid
            while p > 1 and p not in self.ours:
                p = parent.get(p, 0)
            if p in self.ours:
                self.ours.add(pid)
        return out

    def run(self) -> None:
        while not self.done.wait(0.1):
            now = self.sample()
            self.actors.update(
                p for p, (cmd, _, _) in now.items() if p in self.ours and "ClientWorker" in cmd
            )
            self.last.update(now)

    def role(self, pid: int) -> str:
        if pid == os.getpid():
            return "driver"
        if pid == self.server_pid:
            return "server"
        if pid in self.actors:
            return "actors"
        if pid in self.ours:
            return "ray"  # the desk, raylet, GCS, idle workers
        return "other processes"

    def stop(self) -> str:
        self.done.set()
        self.join()
        self.last.update(self.sample())
        used = dict.fromkeys(["driver", "actors", "server", "ray", "other processes"], 0.0)
        for pid, (_, cpu, start) in self.last.items():
            was = self.before.get(pid)
            base = was[1] if was is not None and was[2] == start else 0.0  # the same process
            used[self.role(pid)] += cpu - base
        return ", ".join(f"{k} {v:.1f}" for k, v in used.items() if v >= 0.05 or k == "actors")


async def timed(text: str) -> tuple[float, int]:
    prepared = prepare_job(load_job_text(text), overwrite=True)
    t0 = time.perf_counter()
    outcome = await run_job(prepared, quiet=True)
    return time.perf_counter() - t0, outcome.stats.documents_ranked


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--queries", type=int, default=4000)
    p.add_argument("--docs", type=int, default=100)
    p.add_argument("--rps", type=float, default=40)
    p.add_argument("--skip-rate", action="store_true")
    args = p.parse_args()
    import ray

    ray.init(
        num_cpus=2,
        object_store_memory=200 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    tmp = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    src = tmp / "in.parquet"
    make_input(src, args.queries, args.docs)
    server, base = start_server()
    try:
        print(f"throughput: {args.queries} queries x {args.docs} documents, fast loopback server")
        runs = [
            ("local", ""),
            ("ray, 1 worker", '[engine]\nkind = "ray"\nworkers = 1\n'),
            ("ray, 2 workers", '[engine]\nkind = "ray"\nworkers = 2\n'),
        ]
        for name, extra in runs:
            reset(base)
            meter = CpuMeter(server.pid) if sys.platform == "linux" else None
            if meter is not None:
                meter.start()
            secs, docs = await timed(job(src, tmp / "out", base, extra))
            span = stats(base)["last_request_s"] or secs
            print(
                f"  {name:<15} {docs / secs:>10,.0f} documents/s  ({secs:.1f} s; "
                f"{docs / span:,.0f}/s over the {span:.1f} s from first request to last)"
            )
            if meter is not None:
                print(f"  {'':<15} cpu s: {meter.stop()}")
    finally:
        server.kill()
    if args.skip_rate:
        return
    server, base = start_server("--max-rps", str(args.rps), "--retry-after", "1")
    try:
        n = int(args.rps * 20)  # about 20 s of requests at the limit
        make_input(src, n, 10)
        extra = '[engine]\nkind = "ray"\nworkers = 4\n'
        text = job(src, tmp / "rate", base, extra).replace(
            "[limits]\n", f"[limits]\nrequests_per_minute = {args.rps * 60}\n"
        )
        reset(base)
        secs, _ = await timed(text)
        s = stats(base)
        span = s["last_request_s"] or secs  # from the first request to the last
        print(f"rate: 4 actors, server limit {args.rps:g} requests in any 1 s window")
        print(
            f"  {s['ok']} answered in {span:.1f} s: {s['ok'] / span:.1f}/s "
            f"= {100 * s['ok'] / span / args.rps:.1f}% of the limit; 429s: {s['http_429']}, "
            f"last at {s['last_429_s']} s"
        )
    finally:
        server.kill()
        ray.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
