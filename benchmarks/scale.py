"""Memory and time at scale: `run`, a no-op resume, `estimate` and `report`, small vs large.

    python benchmarks/scale.py                                # 100,000 and 3,000,000 queries
    python benchmarks/scale.py --queries 100000,1000000
    python benchmarks/scale.py --baseline ../wt-base          # another checkout, side by side
    python benchmarks/scale.py --layout pairs                 # one row per candidate

Inputs: grouped Parquet of N queries x 10 candidates (query_id, query, documents,
doc_ids), generated streaming, 1,024 rows at a time (benchmarks/common.py, cached under
$RERANK_BENCH_CACHE); with `--layout pairs` the same candidates one row each (query_id,
query, text, doc_id), so N queries are 10 N rows. Every figure is one command of the real
CLI in a fresh interpreter, the `local` provider (BM25 in process), default settings; peak
RSS is that child's own (`os.wait4` rusage), so no figure includes another's memory. For
each N, in order:

1. `run` into an empty directory (wall time, queries/s, peak RSS, part files per folder);
2. the same `run` again: everything is done, a no-op resume (wall time, peak RSS);
3. `estimate` of the same job (wall time, peak RSS);
4. `report` of the output directory (wall time, peak RSS).

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

DOCS = 10


def say(*args) -> None:
    print(*args, flush=True)


def measure(code: Path, *args: str) -> dict:
    """`python -m pipeline ARGS` with `code`'s package first on the path: wall s, peak MB."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", *args],
        cwd=code,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{stderr[-2000:]!r}")
    return {"wall_s": wall, "rss_mb": usage.ru_maxrss / 1024}


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
    parser.add_argument("--baseline", type=Path, help="another checkout to measure the same way")
    args = parser.parse_args()
    sizes = sorted(int(x) for x in args.queries.split(","))
    work = CACHE / f"scale-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    codes = {"this": REPO}
    if args.baseline:
        codes["baseline"] = args.baseline.resolve()
    make = pairs_parquet if args.layout == "pairs" else grouped_parquet
    say(f"inputs: {args.layout} Parquet, {DOCS} candidates per query, in {CACHE}")
    data = {}
    for n in sizes:
        start = time.perf_counter()
        data[n] = make(n, DOCS)
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
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say("\n" + table(sizes, results))


if __name__ == "__main__":
    main()
