"""Peak memory and wall time of `rerank-pipeline eval OUT --qrels Q` at scale.

    python benchmarks/eval_scale.py                    # 1,000,000 queries x 10 candidates
    python benchmarks/eval_scale.py --queries 100000   # smaller
    python benchmarks/eval_scale.py --queries 2000 --keep /tmp/e   # keep the files to look at

Generates, streaming (one part in memory at a time), an output directory exactly as the
writer commits it (`results/part-NNNNNN-RUN.parquet` files of `--rows-per-part` rows, each
named by a `_manifest.jsonl` line, plus `job.resolved.toml` without `top_n`) and a TREC
qrels file with 3 judgments per query: two retrieved documents with labels 0-3, one never
retrieved. Then runs the real CLI in a fresh interpreter and prints its peak RSS (from
`resource.getrusage(RUSAGE_CHILDREN)`, the only child this process waits for) and wall time.
Target (issue 12): at 1M queries, <= 1.5 GB and <= 120 s on the project's 2-core VM.
Nothing is asserted: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import polars as pl

REPO = Path(__file__).resolve().parents[1]
CANDIDATES = 10
RUN_ID = "20250101T000000-bench0"


def _part(first: int, last: int) -> pl.DataFrame:
    """Result rows of queries [first, last), each query's rows in rank order, as written."""
    q = pl.col("q")
    j = pl.col("j")
    return (
        pl.DataFrame({"q": pl.int_range(first, last, eager=True)})
        .join(pl.DataFrame({"j": list(range(CANDIDATES))}), how="cross")
        # A per-query permutation of the input order (multipliers coprime to 10).
        .with_columns(rank=((j * (q % 4 * 2 + 1 + q % 4 // 2 * 2) + q * 7) % CANDIDATES + 1))
        .with_columns(pl.col("rank").cast(pl.Int32))
        .sort("q", "rank")
        .select(
            query_id=pl.format("q{}", q.cast(pl.String).str.zfill(7)),
            # A bijection of (q, j) onto 32-bit integers: unique per query, shared across none.
            doc_id=pl.format("D{}", (q * CANDIDATES + j) * 2654435761 % 4294967296),
            rank=pl.col("rank"),
            score=(1.0 - pl.col("rank") / 16.0 + (q % 97) / 1e4).cast(pl.Float64),
            input_rank=(j + 1).cast(pl.Int32),
        )
    )


def write_output_dir(out: Path, queries: int, rows_per_part: int) -> None:
    from pipeline.config import JobConfig, to_toml

    for name in ("results", "usage", "failures"):
        (out / name).mkdir(parents=True, exist_ok=True)
    per_part = max(1, rows_per_part // CANDIDATES)
    with open(out / "_manifest.jsonl", "wb") as manifest:
        for seq, first in enumerate(range(0, queries, per_part)):
            last = min(queries, first + per_part)
            name = f"part-{seq:06d}-{RUN_ID}.parquet"
            part = _part(first, last)
            part.write_parquet(out / "results" / name, compression="zstd")
            entry = {"seq": seq, "run": RUN_ID, "queries": last - first, "at": time.time()}
            entry |= {"results": name, "results_rows": part.height}
            entry |= {"usage": None, "failures": None}
            manifest.write(orjson.dumps(entry) + b"\n")
    cfg = JobConfig()
    cfg.input.path, cfg.output.dir, cfg.provider.kind = "in.parquet", str(out), "local"
    (out / "job.resolved.toml").write_text(to_toml(cfg), encoding="utf-8")


def write_qrels(path: Path, queries: int, chunk: int = 100_000) -> None:
    q = pl.col("q")
    with open(path, "wb") as handle:
        for first in range(0, queries, chunk):
            block = pl.DataFrame(
                {"q": pl.int_range(first, min(queries, first + chunk), eager=True)}
            )
            qid = pl.format("q{}", q.cast(pl.String).str.zfill(7))
            retrieved = [
                block.select(
                    qid.alias("query_id"),
                    pl.lit("0").alias("iteration"),
                    pl.format("D{}", (q * CANDIDATES + j) * 2654435761 % 4294967296).alias("doc"),
                    label.cast(pl.Int64).alias("relevance"),
                )
                for j, label in (((q * 3) % CANDIDATES, q % 4), ((q * 3 + 4) % CANDIDATES, q % 3))
            ]
            unretrieved = block.select(
                qid.alias("query_id"),
                pl.lit("0").alias("iteration"),
                pl.format("U{}", q).alias("doc"),
                pl.lit(1, pl.Int64).alias("relevance"),
            )
            lines = pl.concat([*retrieved, unretrieved]).sort("query_id", maintain_order=True)
            lines.write_csv(handle, separator=" ", include_header=False, quote_style="never")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=1_000_000)
    parser.add_argument("--rows-per-part", type=int, default=20_000, help="writer flush_rows")
    parser.add_argument("--keep", type=Path, help="write here and keep it (default: temp dir)")
    parser.add_argument("--significance", default="t-test", help="eval --significance")
    args = parser.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="eval-scale-"))
    out, qrels = root / "out", root / "qrels.txt"
    try:
        start = time.perf_counter()
        shutil.rmtree(out, ignore_errors=True)
        write_output_dir(out, args.queries, args.rows_per_part)
        write_qrels(qrels, args.queries)
        print(
            f"generated {args.queries:,} queries x {CANDIDATES} candidates and "
            f"{3 * args.queries:,} judgments in {time.perf_counter() - start:.1f} s ({root})"
        )
        command = [sys.executable, "-m", "pipeline", "eval", str(out), "--qrels", str(qrels)]
        command += ["--quiet", "--significance", args.significance]
        start = time.perf_counter()
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_mb, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime  # KiB on Linux
        if proc.returncode != 0:
            print(f"eval exited {proc.returncode}:\n{proc.stderr[-3000:]}", file=sys.stderr)
            return 1
        files = sorted(p.name for p in (out / "eval").iterdir())
        print(
            f"eval {args.queries:,} queries: peak RSS {peak_mb:,.0f} MB, wall {seconds:.1f} s "
            f"(CPU {cpu:.1f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
        )
        print(f"  wrote {', '.join(files)}")
        print("  target at 1,000,000 queries: <= 1,536 MB and <= 120 s")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
