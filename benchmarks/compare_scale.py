"""Peak memory and wall time of `rerank-pipeline compare A B ... --qrels Q` at scale.

    python benchmarks/compare_scale.py                               # 1,000,000 queries, 2 systems
    python benchmarks/compare_scale.py --queries 100000 --systems 3  # smaller, one more system
    python benchmarks/compare_scale.py --queries 2000 --keep /tmp/c  # keep the files to look at

Generates, streaming (one part in memory at a time), ``--systems`` output directories over
the same candidates (10 per query, eval_scale.py's): each exactly as the writer commits it
(`results/` and `usage/` parts named by `_manifest.jsonl` lines, `job.resolved.toml`), each
system another per-query order of the same lists, one usage row per query (its tokens
reported) and a token price per job; and eval_scale.py's qrels (3 judgments per query).
Then runs the real CLI in a fresh interpreter and prints its peak RSS (`RUSAGE_CHILDREN`)
and wall time. Target (issue 15): like `eval`, 1M queries in well under 2 GB.
Nothing is asserted: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson
import polars as pl

REPO = Path(__file__).resolve().parents[1]
RUN_ID = "20250101T000000-bench0"
PRICES = [0.02, 0.05, 0.10, 0.18]  # USD per million tokens, system by system


def _eval_scale():
    """eval_scale.py's generators: the same candidates, ranks and qrels."""
    spec = importlib.util.spec_from_file_location(
        "eval_scale", Path(__file__).with_name("eval_scale.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _reorder(part: pl.DataFrame, system: int, candidates: int) -> pl.DataFrame:
    """System 0 keeps eval_scale's ranks; system s rotates each query's ranks by s * 3."""
    if system:
        shifted = (pl.col("rank") - 1 + system * 3) % candidates + 1
        part = part.with_columns(rank=shifted.cast(pl.Int32))
    score = (1.0 - pl.col("rank") / 16.0).cast(pl.Float64)
    return part.with_columns(score=score).sort("query_id", "rank")


def _usage(part: pl.DataFrame, system: int, candidates: int) -> pl.DataFrame:
    """One answered request per query, its tokens reported (and estimated a little lower)."""
    queries = part.select(pl.col("query_id").unique(maintain_order=True))
    tokens = pl.lit(800 + 40 * system) + pl.col("query_id").str.slice(-2).cast(pl.Int64)
    return queries.select(
        "query_id",
        chunk=pl.lit(0, pl.Int32),
        n_docs=pl.lit(candidates, pl.Int32),
        attempts=pl.lit(1, pl.Int32),
        http_status=pl.lit(200, pl.Int32),
        latency_ms=pl.lit(40.0),
        prompt_tokens=tokens,
        total_tokens=tokens,
        search_units=pl.lit(None, pl.Float64),
        estimated_tokens=(tokens * 0.9).cast(pl.Int64),
        billing=pl.lit("tokens"),
        started_at=pl.lit(datetime(2025, 1, 1, tzinfo=timezone.utc)).dt.cast_time_unit("ms"),
    )


def write_output_dirs(root: Path, systems: int, queries: int, rows_per_part: int) -> list[Path]:
    from pipeline.config import JobConfig, to_toml

    bench = _eval_scale()
    candidates = bench.CANDIDATES
    dirs = [root / f"system{s}" for s in range(systems)]
    manifests = []
    for s, out in enumerate(dirs):
        shutil.rmtree(out, ignore_errors=True)
        for name in ("results", "usage", "failures"):
            (out / name).mkdir(parents=True)
        cfg = JobConfig()
        cfg.input.path, cfg.output.dir, cfg.provider.kind = "in.parquet", str(out), "local"
        cfg.pricing = {"billing": "tokens", "usd_per_million_tokens": PRICES[s % len(PRICES)]}
        (out / "job.resolved.toml").write_text(to_toml(cfg), encoding="utf-8")
        manifests.append(open(out / "_manifest.jsonl", "wb"))  # noqa: SIM115 (closed below)
    per_part = max(1, rows_per_part // candidates)
    try:
        for seq, first in enumerate(range(0, queries, per_part)):
            last = min(queries, first + per_part)
            base = bench._part(first, last)
            for s, (out, manifest) in enumerate(zip(dirs, manifests, strict=True)):
                name = f"part-{seq:06d}-{RUN_ID}.parquet"
                part, usage = _reorder(base, s, candidates), _usage(base, s, candidates)
                part.write_parquet(out / "results" / name, compression="zstd")
                usage.write_parquet(out / "usage" / name, compression="zstd")
                entry = {"seq": seq, "run": RUN_ID, "queries": last - first, "at": time.time()}
                entry |= {"results": name, "results_rows": part.height}
                entry |= {"usage": name, "usage_rows": usage.height, "failures": None}
                manifest.write(orjson.dumps(entry) + b"\n")
    finally:
        for manifest in manifests:
            manifest.close()
    return dirs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=1_000_000)
    parser.add_argument("--systems", type=int, default=2, help="output directories (>= 2)")
    parser.add_argument("--rows-per-part", type=int, default=20_000, help="writer flush_rows")
    parser.add_argument("--keep", type=Path, help="write here and keep it (default: temp dir)")
    parser.add_argument("--significance", default="t-test", help="compare --significance")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="compare-scale-"))
    qrels, out = root / "qrels.txt", root / "compare"
    try:
        start = time.perf_counter()
        dirs = write_output_dirs(root, args.systems, args.queries, args.rows_per_part)
        _eval_scale().write_qrels(qrels, args.queries)
        print(
            f"generated {args.systems} systems x {args.queries:,} queries x 10 candidates and "
            f"{3 * args.queries:,} judgments in {time.perf_counter() - start:.1f} s ({root})"
        )
        command = [sys.executable, "-m", "pipeline", "compare", *map(str, dirs)]
        command += ["--qrels", str(qrels), "--out", str(out), "--quiet"]
        command += ["--significance", args.significance]
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_mb, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime  # KiB on Linux
        if proc.returncode != 0:
            print(f"compare exited {proc.returncode}:\n{proc.stderr[-3000:]}", file=sys.stderr)
            return 1
        files = sorted(p.name for p in out.iterdir())
        print(
            f"compare {args.systems} systems x {args.queries:,} queries: peak RSS "
            f"{peak_mb:,.0f} MB, wall {seconds:.1f} s (CPU {cpu:.1f} s; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
        )
        print(f"  wrote {', '.join(files)}")
        print("  target at 1,000,000 queries: well under 2,048 MB")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
