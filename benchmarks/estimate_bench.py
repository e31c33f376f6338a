"""How much faster `estimate` is than a run, and how close its calibrated tokens come.

    python benchmarks/estimate_bench.py                       # 100,000 queries x 20 candidates
    python benchmarks/estimate_bench.py --queries 10000 --server-queries 2000

Generates a grouped Parquet corpus (benchmarks/common.py, cached in a temp dir), then times
with the real CLI, each in a fresh interpreter:

1. `estimate` of the whole corpus (no request);
2. a full `run` with the built-in `local` provider (BM25 in process);
3. a pilot `run` against the tests' loopback Jina server (tests/fake_server.py, in its own
   process: it reports usage.total_tokens = words(query) + words(document) + 2 per pair),
   `estimate --calibrate PILOT`, then a `run` of `--server-queries` queries against the
   same server, whose reported tokens the calibrated estimate of the same queries is
   compared with.

Prints each time, the ratios, and the calibrated estimate's error against reported tokens.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, fresh_dir, grouped_parquet  # noqa: E402

SERVER = """
import asyncio, sys
sys.path.insert(0, {repo!r})
from tests.fake_server import running_server
async def main():
    async with running_server() as server:
        print("PORT", server.base_url.rsplit(":", 1)[1], flush=True)
        await asyncio.Event().wait()
asyncio.run(main())
"""


def cli(*args: str) -> float:
    """Run `python -m pipeline ARGS` from the checkout; its wall seconds."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", *args], cwd=REPO, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return seconds


def write_job(path: Path, data: Path, out: Path, kind: str, base_url: str | None = None) -> Path:
    provider = f'kind = "{kind}"'
    if base_url:  # the loopback server needs no key (a hosted kind asks for one)
        provider += f'\nbase_url = "{base_url}"\napi_key_env = ""'

    path.write_text(
        f'[input]\npath = "{data}"\n[provider]\n{provider}\n'
        f'[limits]\nmax_concurrency = 16\n[output]\ndir = "{out}"\ntop_n = 10\n'
    )
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=100_000)
    ap.add_argument("--docs", type=int, default=20, help="candidates per query")
    ap.add_argument(
        "--server-queries",
        type=int,
        default=None,
        help="queries of the loopback server run (default: all)",
    )
    ap.add_argument("--pilot-queries", type=int, default=2_000)
    args = ap.parse_args()
    n_server = args.server_queries or args.queries

    t0 = time.perf_counter()
    corpus = grouped_parquet(args.queries, args.docs)
    server_corpus = corpus if n_server == args.queries else grouped_parquet(n_server, args.docs)
    pilot = grouped_parquet(args.pilot_queries, args.docs, seed=99)  # another sample, same shape
    print(
        f"corpus    {args.queries:,} queries x {args.docs} candidates ({corpus.stat().st_size / 1e6:.0f} MB, "
        f"ready in {time.perf_counter() - t0:.1f}s)",
        flush=True,
    )

    work = fresh_dir("estimate-bench")
    local_job = write_job(work / "local.toml", corpus, work / "local", "local")
    est_local = cli("estimate", str(local_job), "--quiet")
    run_local = cli("run", str(local_job), "--quiet")
    print(
        f"local     estimate {est_local:.1f}s   run {run_local:.1f}s   ratio {est_local / run_local:.3f}",
        flush=True,
    )

    server = subprocess.Popen(
        [sys.executable, "-c", SERVER.format(repo=str(REPO))], stdout=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{int(server.stdout.readline().split()[1])}"
        pilot_job = write_job(work / "pilot.toml", pilot, work / "pilot", "jina", url)
        cli("run", str(pilot_job), "--quiet")
        full_job = write_job(work / "server.toml", server_corpus, work / "server", "jina", url)
        est_server = cli("estimate", str(full_job), "--quiet", "--calibrate", str(work / "pilot"))
        run_server = cli("run", str(full_job), "--quiet")
    finally:
        server.terminate()
        server.wait(10)
    est = json.loads((work / "server" / "estimate.json").read_text())
    reported = json.loads((work / "server" / "summary.json").read_text())["tokens"][
        "reported_total"
    ]
    error = (est["tokens"] - reported) / reported
    print(
        f"loopback  {n_server:,} queries: estimate {est_server:.1f}s   run {run_server:.1f}s   "
        f"ratio {est_server / run_server:.3f}",
        flush=True,
    )
    print(
        f"tokens    reported {reported:,}   calibrated estimate {est['tokens']:,} ({error:+.2%})   "
        f"uncalibrated {est['tokens_heuristic']:,} "
        f"({(est['tokens_heuristic'] - reported) / reported:+.2%})   ratio {est['calibration']['token_ratio']}"
    )


if __name__ == "__main__":
    main()
