"""Memory and time at scale: `run`, a no-op resume, `estimate` and `report`, small vs large.

    python benchmarks/scale.py                                # 100,000 and 3,000,000 queries
    python benchmarks/scale.py --queries 100000,1000000
    python benchmarks/scale.py --baseline ../wt-base          # another checkout, side by side
    python benchmarks/scale.py --layout pairs                 # one row per candidate

Inputs: grouped Parquet of N queries x 10 candidates (query_id, query, documents,
doc_ids), generated streaming, 1,024 rows at a time, then rewritten in row groups of
32,768 rows (`--row-group-rows`; benchmarks/common.py, cached under $RERANK_BENCH_CACHE);
with `--layout pairs` the same candidates one row each (query_id, query, text, doc_id), so
N queries are 10 N rows. Row groups of some tens of MB are what common writers produce
(DuckDB's default is 122,880 rows, Spark's 128 MB). With 1,024-row groups (~1 MB) the 3M
file has 2,930 of them, and pyarrow holds the file's parsed footer (3-5 KB per row group
here, 8-13 MB in all) while the file is read: memory that grows with the input file's row
groups, not with anything the pipeline keeps. Every figure is one command of the real
CLI in a fresh interpreter, the `local` provider (BM25 in process), default settings; peak
RSS is that child's own (its VmHWM, read as it exits), so no figure includes another's
memory. For each N, in order:

1. `run` into an empty directory (wall time, queries/s, peak RSS, part files per folder);
2. the same `run` again: everything is done, a no-op resume (wall time, peak RSS);
3. `estimate` of the same job (wall time, peak RSS);
4. `report` of the output directory (wall time, peak RSS).

Then `eval OUT --qrels Q` of a 1,000,000-query output (10 candidates, 3,000,000
judgments; `--eval-queries`, 0 skips it), written streaming as the writer commits parts
(benchmarks/eval_scale.py builds it), measured the same way.

The table puts the sizes side by side with the growth from the smallest to the largest
and the bounds of issue 12: run and estimate peak RSS grow <= 10%; the resume's peak RSS
<= the run's. With `--baseline DIR` every command is also run from that checkout (its
`pipeline` package) and its columns are printed next to ours. Nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, REPO, grouped_parquet, pairs_parquet  # noqa: E402
from eval_scale import write_output_dir, write_qrels  # noqa: E402

DOCS = 10


def say(*args) -> None:
    print(*args, flush=True)


# Runs `python -m pipeline ARGS` and, at its exit, writes its own VmHWM (peak resident set)
# to the file named first. Not rusage: Linux carries ru_maxrss across fork and exec, so a
# child that starts from this (large) benchmark process would report at least our size.
LAUNCH = """
import atexit, runpy, sys
out = sys.argv[1]
def peak():
    with open("/proc/self/status") as fh:
        kb = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))
    with open(out, "w") as fh:
        fh.write(str(kb))
atexit.register(peak)
sys.argv = ["pipeline", *sys.argv[2:]]
runpy.run_module("pipeline", run_name="__main__", alter_sys=True)
"""


def measure(code: Path, *args: str) -> dict:
    """`python -m pipeline ARGS` with `code`'s package first on the path: wall s, peak MB."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    peak_file = CACHE / f"peak-{os.getpid()}.txt"
    peak_file.unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCH, str(peak_file), *args],
        cwd=code,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]!r}")
    rss_mb = int(peak_file.read_text()) / 1024
    peak_file.unlink()
    return {"wall_s": wall, "rss_mb": rss_mb}


def folder_counts(out: Path) -> dict[str, int]:
    return {
        name: sum(1 for p in (out / name).glob("*.parquet"))
        for name in ("results", "usage", "failures")
    }


def folder_mb(out: Path) -> float:
    return sum(p.stat().st_size for p in out.rglob("*.parquet")) / 1e6


def measure_size(code: Path, label: str, n: int, data: Path, work: Path, layout: str) -> dict:
    out = work / f"{label}-{n}"
    shutil.rmtree(out, ignore_errors=True)
    job = work / f"{label}-{n}.toml"
    job.write_text(
        f'[input]\npath = "{data}"\nlayout = "{layout}"\n[provider]\nkind = "local"\n[output]\ndir = "{out}"\n'
    )
    r = {"run": measure(code, "run", str(job), "--quiet")}
    r["parts"] = folder_counts(out)
    r["output_mb"] = folder_mb(out)
    say(
        f"    {label:8s} {n:>10,}  run      {r['run']['wall_s']:8.1f} s  {r['run']['rss_mb']:6.0f} MB"
        f"  {n / r['run']['wall_s']:8,.0f} q/s  parts {r['parts']}  {r['output_mb']:.0f} MB"
    )
    r["resume"] = measure(code, "run", str(job), "--quiet")
    say(
        f"    {label:8s} {n:>10,}  resume   {r['resume']['wall_s']:8.1f} s  {r['resume']['rss_mb']:6.0f} MB"
    )
    r["estimate"] = measure(code, "estimate", str(job), "--quiet")
    say(
        f"    {label:8s} {n:>10,}  estimate {r['estimate']['wall_s']:8.1f} s  {r['estimate']['rss_mb']:6.0f} MB"
    )
    r["report"] = measure(code, "report", str(out))
    say(
        f"    {label:8s} {n:>10,}  report   {r['report']['wall_s']:8.1f} s  {r['report']['rss_mb']:6.0f} MB"
    )
    shutil.rmtree(out, ignore_errors=True)
    return r


def table(sizes: list[int], results: dict[str, dict[int, dict]]) -> str:
    small, big = sizes[0], sizes[-1]
    labels = list(results)
    head = "".join(
        "".join(f"{f'{label} {n:,}':>20}" for n in sizes) + f"{label + ' growth':>20}"
        for label in labels
    )
    lines = [f"{'figure':28}{head}  bound (issue 12)"]

    def row(name: str, get, fmt: str, growth: bool = False, bound: str = "") -> None:
        cells = ""
        for label in labels:
            by_size = results[label]
            cells += "".join(f"{fmt.format(get(by_size[n])):>20}" for n in sizes)
            change = ""
            if growth and get(by_size[small]):
                change = f"{100 * (get(by_size[big]) / get(by_size[small]) - 1):+.1f}%"
            cells += f"{change:>20}"
        lines.append(f"{name:28}{cells}  {bound}")

    row("run peak RSS MB", lambda r: r["run"]["rss_mb"], "{:,.0f}", True, "growth <= 10%")
    row("run wall s", lambda r: r["run"]["wall_s"], "{:,.1f}")
    row("run queries/s", lambda r: r["n"] / r["run"]["wall_s"], "{:,.0f}")
    row("resume (no-op) peak RSS MB", lambda r: r["resume"]["rss_mb"], "{:,.0f}", True, "<= run's")
    row("resume (no-op) wall s", lambda r: r["resume"]["wall_s"], "{:,.1f}")
    row("estimate peak RSS MB", lambda r: r["estimate"]["rss_mb"], "{:,.0f}", True, "growth <= 10%")
    row("estimate wall s", lambda r: r["estimate"]["wall_s"], "{:,.1f}")
    row("report peak RSS MB", lambda r: r["report"]["rss_mb"], "{:,.0f}", True)
    row("report wall s", lambda r: r["report"]["wall_s"], "{:,.1f}")
    for name in ("results", "usage", "failures"):
        row(f"part files in {name}/", lambda r, name=name: r["parts"][name], "{:,}")
    row("output MB (all parts)", lambda r: r["output_mb"], "{:,.0f}")
    lines.append("")
    for label in labels:
        ok = all(
            results[label][n]["resume"]["rss_mb"] <= results[label][n]["run"]["rss_mb"]
            for n in sizes
        )
        lines.append(
            f"{label}: no-op resume peak RSS <= run peak RSS at every size: {'yes' if ok else 'no'}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", default="100000,3000000", help="comma-separated sizes")
    parser.add_argument("--layout", choices=("grouped", "pairs"), default="grouped")
    parser.add_argument(
        "--row-group-rows",
        type=int,
        default=32_768,
        help="grouped input's Parquet row groups (a multiple of 1,024; default 32,768: ~30 MB, "
        "fewer rows than DuckDB's default 122,880; 1,024: ~1 MB groups, whose parsed footer "
        "pyarrow holds while the file is read, 3-5 KB per row group)",
    )
    parser.add_argument("--eval-queries", type=int, default=1_000_000, help="0: no eval")
    parser.add_argument("--baseline", type=Path, help="another checkout to measure the same way")
    args = parser.parse_args()
    sizes = sorted(int(x) for x in args.queries.split(","))
    work = CACHE / f"scale-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    codes = {"this": REPO}
    if args.baseline:
        codes["baseline"] = args.baseline.resolve()
    say(f"inputs: {args.layout} Parquet, {DOCS} candidates per query, in {CACHE}")
    data = {}
    for n in sizes:
        start = time.perf_counter()
        data[n] = (
            pairs_parquet(n, DOCS)
            if args.layout == "pairs"
            else grouped_parquet(n, DOCS, row_group_rows=args.row_group_rows)
        )
        say(f"    {n:>10,} queries: {data[n]} ({time.perf_counter() - start:.0f} s to have it)")
    results: dict[str, dict[int, dict]] = {label: {} for label in codes}
    try:
        for label, code in codes.items():
            say(f"\n{label}: {code}")
            for n in sizes:
                results[label][n] = {
                    "n": n,
                    **measure_size(code, label, n, data[n], work, args.layout),
                }
        evals = {
            label: measure_eval(code, args.eval_queries, work) for label, code in codes.items()
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say("\n" + table(sizes, results))
    for label, r in evals.items():
        if r:
            say(
                f"{label}: eval of {args.eval_queries:,} queries ({3 * args.eval_queries:,} "
                f"judgments): peak RSS {r['rss_mb']:,.0f} MB, wall {r['wall_s']:.1f} s"
                "  (bound: <= 1,536 MB and <= 120 s)"
            )


def measure_eval(code: Path, queries: int, work: Path) -> dict | None:
    if not queries:
        return None
    out, qrels = work / "eval-out", work / "eval-qrels.txt"
    shutil.rmtree(out, ignore_errors=True)
    write_output_dir(out, queries, rows_per_part=20_000)
    write_qrels(qrels, queries)
    r = measure(code, "eval", str(out), "--qrels", str(qrels), "--quiet")
    say(f"    eval     {queries:>10,}           {r['wall_s']:8.1f} s  {r['rss_mb']:6.0f} MB")
    shutil.rmtree(out, ignore_errors=True)
    return r


if __name__ == "__main__":
    main()
