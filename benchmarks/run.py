"""Benchmarks of rerank-pipeline against a loopback Jina-format server in its own process.

    python benchmarks/run.py                     # every figure, full sizes (~5-8 min, 2 cores)
    python benchmarks/run.py --quick             # smaller sizes: a smoke check, < 60 s
    python benchmarks/run.py --only overhead,latency --repeat 5
    python benchmarks/run.py --profile /tmp/prof # also a pyinstrument profile of figure 1

Figures (see benchmarks/README.md): overhead, latency, rate, memory, merge, peers, vaswani.
Each prints its measurement next to its bound; a final table gives figure, measured,
bound/target, ratio and pass/fail. Benchmarks are not tests: nothing here asserts.

Run it with the benchmark environment's Python (benchmarks/requirements.txt) to get the
LiteLLM row; without litellm importable that row is skipped and says why.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, ServerProcess, fresh_dir, grouped_parquet, run_child  # noqa: E402

FIGURES = ("overhead", "latency", "rate", "memory", "merge", "peers", "vaswani")

FULL = {
    "overhead_queries": 20_000,
    "overhead_docs": 100,
    "concurrency": 32,
    "latency_queries": 12_000,
    "latency_s": 0.05,
    "latency_concurrency": 64,
    "rate_rps": 200,
    "rate_seconds": 30,
    "rate_docs": 20,
    "memory_sizes": (10_000, 200_000),
    "memory_docs": 10,
    "merge_queries": 2_000,
    "merge_docs": 1000,
    "merge_chunk": 100,
    "peers_queries": 4_000,
}
QUICK = {
    "overhead_queries": 2_000,
    "overhead_docs": 100,
    "concurrency": 32,
    "latency_queries": 1_500,
    "latency_s": 0.05,
    "latency_concurrency": 64,
    "rate_rps": 50,
    "rate_seconds": 5,
    "rate_docs": 20,
    "memory_sizes": (2_000, 20_000),
    "memory_docs": 10,
    "merge_queries": 200,
    "merge_docs": 1000,
    "merge_chunk": 100,
    "peers_queries": 500,
}


@dataclass
class Row:
    figure: str
    measured: str
    bound: str
    ratio: float | None
    ok: bool | None  # None: informational or skipped
    note: str = ""
    data: dict = field(default_factory=dict)


def say(*args) -> None:
    print(*args, flush=True)


def spread(values: list[float]) -> str:
    if len(values) < 2:
        return ""
    med = statistics.median(values)
    return f" (n={len(values)}, min {min(values):,.0f}, max {max(values):,.0f}, spread {100 * (max(values) - min(values)) / med:.1f}%)"


def repeat_runs(n: int, fn) -> list[dict]:
    return [fn(i) for i in range(n)]


def rate_of(r: dict, key: str = "requests") -> float:
    return r[key] / r["wall_s"]


# -- 1. client overhead ----------------------------------------------------------------
def fig_overhead(cfg: dict, args) -> list[Row]:
    nq, nd, conc = cfg["overhead_queries"], cfg["overhead_docs"], cfg["concurrency"]
    say(
        f"\n[1] client overhead: {nq:,} queries x {nd} candidates, zero-latency server, concurrency {conc}"
    )
    data = grouped_parquet(nq, nd)
    pipe, ceil = [], []
    with ServerProcess() as srv:
        for i in range(args.repeat):
            for kind, sink in (("ceiling", ceil), ("pipeline", pipe)):
                c0 = srv.cpu_seconds()
                r = run_child(
                    kind,
                    {
                        "input": str(data),
                        "out": str(fresh_dir(kind)),
                        "url": srv.url,
                        "concurrency": conc,
                    },
                )
                r["server_cpu_share"] = (srv.cpu_seconds() - c0) / r["wall_s"]
                sink.append(r)
                say(
                    f"    run {i + 1} {kind:8s} {rate_of(r):8,.0f} req/s {rate_of(r, 'documents'):10,.0f} docs/s"
                    f"  wall {r['wall_s']:.2f}s  client CPU {r['cpu_s'] / r['wall_s']:.0%}"
                    f"  server CPU {r['server_cpu_share']:.0%}"
                )
        if args.profile:
            prof = Path(args.profile)
            prof.mkdir(parents=True, exist_ok=True)
            run_child(
                "pipeline",
                {
                    "input": str(data),
                    "out": str(fresh_dir("profile")),
                    "url": srv.url,
                    "concurrency": conc,
                    "profile": str(prof / "overhead.txt"),
                },
            )
            say(f"    profile written to {prof / 'overhead.txt'} (and .html)")
    p = statistics.median(rate_of(r) for r in pipe)
    c = statistics.median(rate_of(r) for r in ceil)
    pd = statistics.median(rate_of(r, "documents") for r in pipe)
    cpu_req_pipe = statistics.median(r["cpu_s"] / r["requests"] * 1e6 for r in pipe)
    cpu_req_ceil = statistics.median(r["cpu_s"] / r["requests"] * 1e6 for r in ceil)
    say(f"    pipeline {p:,.0f} req/s ({pd:,.0f} docs/s){spread([rate_of(r) for r in pipe])}")
    say(f"    ceiling  {c:,.0f} req/s{spread([rate_of(r) for r in ceil])}")
    say(
        f"    client CPU per request: pipeline {cpu_req_pipe:.0f} us, ceiling {cpu_req_ceil:.0f} us"
    )
    ratio = p / c
    return [
        Row(
            "1 client overhead",
            f"{p:,.0f} req/s, {pd:,.0f} docs/s",
            f"ceiling {c:,.0f} req/s; >= 90%",
            ratio,
            ratio >= 0.9,
            data={
                "pipeline": pipe,
                "ceiling": ceil,
                "cpu_us_per_request": [cpu_req_pipe, cpu_req_ceil],
            },
        )
    ]


# -- 2. latency hiding -------------------------------------------------------------------
def fig_latency(cfg: dict, args) -> list[Row]:
    nq, lat, conc = cfg["latency_queries"], cfg["latency_s"], cfg["latency_concurrency"]
    bound = conc / lat
    say(
        f"\n[2] latency hiding: server latency {lat * 1000:.0f} ms, max_concurrency {conc}, {nq:,} queries x 100"
    )
    data = grouped_parquet(nq, 100)
    pipe, ceil = [], []
    with ServerProcess("--latency", str(lat)) as srv:
        for i in range(args.repeat):
            for kind, sink in (("ceiling", ceil), ("pipeline", pipe)):
                r = run_child(
                    kind,
                    {
                        "input": str(data),
                        "out": str(fresh_dir(kind)),
                        "url": srv.url,
                        "concurrency": conc,
                    },
                )
                sink.append(r)
                say(f"    run {i + 1} {kind:8s} {rate_of(r):8,.0f} req/s  wall {r['wall_s']:.2f}s")
    p = statistics.median(rate_of(r) for r in pipe)
    c = statistics.median(rate_of(r) for r in ceil)
    say(
        f"    pipeline {p:,.0f} req/s{spread([rate_of(r) for r in pipe])}; ceiling loop {c:,.0f} req/s;"
        f" bound {conc}/{lat} = {bound:,.0f} req/s"
    )
    return [
        Row(
            "2 latency hiding",
            f"{p:,.0f} req/s",
            f"{conc}/{lat}s = {bound:,.0f} req/s; >= 90%",
            p / bound,
            p / bound >= 0.9,
            note=f"ceiling loop {c:,.0f} req/s ({c / bound:.0%})",
            data={"pipeline": pipe, "ceiling": ceil},
        )
    ]


# -- 3. rate adherence -------------------------------------------------------------------
def fig_rate(cfg: dict, args) -> list[Row]:
    rps, secs, nd = cfg["rate_rps"], cfg["rate_seconds"], cfg["rate_docs"]
    nq = rps * secs
    grace = 3.0
    say(
        f"\n[3] rate adherence: server 429s above R={rps} req/s (sliding 1 s window, Retry-After 1);"
        f" job requests_per_minute={rps * 60}; {nq:,} queries x {nd}"
    )
    data = grouped_parquet(nq, nd)
    with ServerProcess("--max-rps", str(rps), "--retry-after", "1") as srv:
        r = run_child(
            "pipeline",
            {
                "input": str(data),
                "out": str(fresh_dir("rate")),
                "url": srv.url,
                "concurrency": 16,
                "rpm": rps * 60,
            },
        )
        st = srv.stats()
    achieved = r["requests"] / r["wall_s"]
    server_rate = (st["ok"] - 1) / st["last_ok_s"] if st["last_ok_s"] else float("nan")
    late = [t for t in st["times_429_s"] if t > grace]
    say(
        f"    achieved {achieved:.1f} req/s over the whole job ({r['wall_s']:.2f}s wall), server-side"
        f" {server_rate:.1f} req/s first to last request; 429s: {st['http_429']}"
        f" (last at {st['last_429_s']}s; after {grace:.0f}s: {len(late)})"
    )
    ratio = achieved / rps
    return [
        Row(
            "3 rate adherence",
            f"{achieved:.1f} req/s, {st['http_429']} x 429 ({len(late)} after {grace:.0f}s)",
            f"R = {rps} req/s; >= 97%, no late 429",
            ratio,
            ratio >= 0.97 and not late,
            note=f"server-side {server_rate:.1f} req/s",
            data={"job": r, "server": st},
        )
    ]


# -- 4. memory ----------------------------------------------------------------------------
def fig_memory(cfg: dict, args) -> list[Row]:
    sizes, nd = cfg["memory_sizes"], cfg["memory_docs"]
    say(
        f"\n[4] memory: peak RSS (VmHWM) of a fresh process, {sizes[0]:,} and {sizes[1]:,} grouped queries x {nd}"
    )
    job, reader = {}, {}
    with ServerProcess() as srv:
        for n in sizes:
            data = grouped_parquet(n, nd)
            reader[n] = run_child("reader", {"input": str(data)})
            job[n] = run_child(
                "pipeline",
                {
                    "input": str(data),
                    "out": str(fresh_dir("memory")),
                    "url": srv.url,
                    "concurrency": cfg["concurrency"],
                },
            )
            say(
                f"    {n:>9,} queries: job {job[n]['peak_rss_mb']:.0f} MB ({job[n]['wall_s']:.1f}s,"
                f" {rate_of(job[n]):,.0f} req/s), reader alone {reader[n]['peak_rss_mb']:.0f} MB;"
                f" after imports {job[n]['rss_after_imports_mb']:.0f} MB"
            )
    rows = []
    small, big = sizes
    for label, res in (("job", job), ("reader", reader)):
        growth = res[big]["peak_rss_mb"] / res[small]["peak_rss_mb"] - 1
        peak = res[big]["peak_rss_mb"]
        rows.append(
            Row(
                f"4 memory ({label})",
                f"{res[small]['peak_rss_mb']:.0f} -> {peak:.0f} MB (+{growth:.0%})",
                "growth <= 20%, < 500 MB",
                (1 + growth) / 1.2,
                growth <= 0.2 and peak < 500,
                data={"small": res[small], "big": res[big]},
            )
        )
    return rows


# -- 5. merge and write ----------------------------------------------------------------------
def fig_merge(cfg: dict, args) -> list[Row]:
    nq, nd, chunk = cfg["merge_queries"], cfg["merge_docs"], cfg["merge_chunk"]
    n_chunks = nd // chunk
    say(f"\n[5] merge and write: {nq:,} queries x {nd} candidates in {n_chunks} chunks of {chunk}")
    data = grouped_parquet(nq, nd)
    off = run_child(
        "offline",
        {
            "input": str(data),
            "out": str(fresh_dir("offline")),
            "max_docs": chunk,
            "concurrency": cfg["concurrency"],
        },
    )
    with ServerProcess() as srv:
        ceil = run_child(
            "ceiling",
            {
                "input": str(data),
                "out": str(fresh_dir("ceiling")),
                "url": srv.url,
                "concurrency": cfg["concurrency"],
                "max_docs": chunk,
            },
        )
        pipe = run_child(
            "pipeline",
            {
                "input": str(data),
                "out": str(fresh_dir("pipeline")),
                "url": srv.url,
                "concurrency": cfg["concurrency"],
                "max_docs": chunk,
            },
        )
    per_q = off["wall_s"] / off["queries"] * 1000
    wire_q = ceil["wall_s"] / nq * 1000
    stages = {k: v / nq * 1000 for k, v in off["stages_s"].items()}
    merge_write = stages["merge"] + stages["write"]
    say(
        f"    outside the network (network replaced by instant answers): {per_q:.2f} ms/query"
        f" ({off['documents'] / off['wall_s']:,.0f} docs/s)"
    )
    say(
        "    per query, stage by stage (ms): "
        + ", ".join(f"{k} {v:.3f}" for k, v in stages.items())
    )
    say(
        f"    the wire (ceiling loop, {n_chunks} requests per query): {wire_q:.2f} ms/query;"
        f" the pipeline end to end: {pipe['wall_s'] / nq * 1000:.2f} ms/query"
    )
    bound = 0.1 * wire_q
    return [
        Row(
            "5 merge+write",
            f"{merge_write:.2f} ms/query",
            f"<= 10% of wire {wire_q:.2f} ms = {bound:.2f} ms",
            merge_write / bound,
            merge_write <= bound,
            data={"stages_ms": stages},
        ),
        Row(
            "5 all outside network",
            f"{per_q:.2f} ms/query",
            f"<= {bound:.2f} ms (10% of wire)",
            per_q / bound,
            per_q <= bound,
            data={"offline": off, "ceiling": ceil, "pipeline": pipe},
        ),
    ]


# -- 6. peers ------------------------------------------------------------------------------------
def fig_peers(cfg: dict, args) -> list[Row]:
    nq, conc = cfg["peers_queries"], cfg["concurrency"]
    say(
        f"\n[6] against peers: {nq:,} queries x 100 candidates, zero-latency server, concurrency {conc}"
    )
    data = grouped_parquet(nq, 100)
    have_litellm = importlib.util.find_spec("litellm") is not None
    kinds = ["pipeline", "hand"] + (["litellm"] if have_litellm else [])
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    with ServerProcess() as srv:
        for i in range(args.repeat):
            for kind in kinds:
                if kind == "litellm" and i > 0:
                    continue  # slow; once is enough to see the ratio
                r = run_child(
                    kind,
                    {
                        "input": str(data),
                        "out": str(fresh_dir(kind)),
                        "url": srv.url,
                        "concurrency": conc,
                    },
                )
                runs[kind].append(r)
                say(
                    f"    run {i + 1} {kind:8s} {rate_of(r, 'documents'):10,.0f} docs/s  wall {r['wall_s']:.2f}s"
                    f"  peak RSS {r['peak_rss_mb']:.0f} MB"
                )
    med = {k: statistics.median(rate_of(r, "documents") for r in v) for k, v in runs.items()}
    rows = [
        Row(
            "6 vs hand-written loop",
            f"{med['pipeline'] / med['hand']:.2f}x",
            f"hand {med['hand']:,.0f} docs/s; >= 1.0x",
            med["pipeline"] / med["hand"],
            med["pipeline"] >= med["hand"],
            data={"runs": runs},
        )
    ]
    if have_litellm:
        rows.append(
            Row(
                "6 vs LiteLLM arerank",
                f"{med['pipeline'] / med['litellm']:.2f}x",
                f"litellm {med['litellm']:,.0f} docs/s; >= 1.0x",
                med["pipeline"] / med["litellm"],
                med["pipeline"] >= med["litellm"],
            )
        )
    else:
        why = (
            f"litellm is not importable by {sys.executable}; it is installed only in the benchmark "
            "environment (pip install -r benchmarks/requirements.txt)"
        )
        say(f"    LiteLLM row skipped: {why}")
        rows.append(Row("6 vs LiteLLM arerank", "skipped", "-", None, None, note=why))
    say(
        f"    pipeline {med['pipeline']:,.0f} docs/s; "
        + ", ".join(f"{k} {v:,.0f}" for k, v in med.items() if k != "pipeline")
    )
    return rows


# -- 7. real data ---------------------------------------------------------------------------------
def fig_vaswani(cfg: dict, args) -> list[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from vaswani import BM25, default_root, read_docs, read_queries

    from pipeline.evaluate import evaluate_output_dir, evaluate_run_files

    root = Path(args.vaswani) if args.vaswani else default_root()
    say(f"\n[7] real data: Vaswani (NPL) from {root}")
    if not (root / "qrels").exists():
        why = f"{root} is absent (it lives in ../shared/data beside the checkout)"
        say(f"    skipped: {why}")
        return [Row("7 Vaswani", "skipped", "-", None, None, note=why)]
    t0 = time.perf_counter()
    docs = read_docs(root / "corpus/doc-text.trec")
    queries = read_queries(root / "query-text.trec")
    index = BM25(docs)
    work = CACHE / "vaswani"
    work.mkdir(parents=True, exist_ok=True)
    rows = {"query_id": [], "query": [], "documents": [], "doc_ids": []}
    with open(work / "bm25.run", "w") as run:
        for qid, text in queries.items():
            hits = index.search(text, 100)
            if not hits:
                continue
            rows["query_id"].append(qid)
            rows["query"].append(text)
            rows["documents"].append([docs[d] for d, _ in hits])
            rows["doc_ids"].append([d for d, _ in hits])
            for rank, (d, s) in enumerate(hits, start=1):
                run.write(f"{qid} Q0 {d} {rank} {s:.6f} bm25\n")
    pq.write_table(pa.table(rows), work / "candidates.parquet")
    (work / "idf.json").write_text(json.dumps(index.idf))
    first_stage_s = time.perf_counter() - t0
    n_docs = sum(len(d) for d in rows["documents"])
    say(
        f"    BM25 top-100 for {len(rows['query_id'])} queries over {len(docs):,} documents: {first_stage_s:.1f}s"
    )
    out = fresh_dir("vaswani")
    with ServerProcess("--scorer", "lexical", "--idf", str(work / "idf.json")) as srv:
        r = run_child(
            "pipeline",
            {
                "input": str(work / "candidates.parquet"),
                "out": str(out),
                "url": srv.url,
                "concurrency": 16,
            },
        )
    summary = evaluate_output_dir(out, root / "qrels", print_table=False)
    bm25 = evaluate_run_files(
        [work / "bm25.run"], root / "qrels", work / "eval-bm25", print_table=False
    )
    before = summary["mean"]["first_stage"]["ndcg@10"]
    after = summary["mean"]["reranked"]["ndcg@10"]
    direct = next(iter(bm25["mean"].values()))["ndcg@10"]
    same = abs(before - direct) < 1e-9
    say(
        f"    pipeline: {r['queries']} queries, {n_docs:,} candidates, {rate_of(r):,.0f} req/s,"
        f" {rate_of(r, 'documents'):,.0f} docs/s; exit {r['exit_code']}"
    )
    say(
        f"    nDCG@10: BM25 {before:.4f} (the BM25 run evaluated directly: {direct:.4f}),"
        f" after loopback lexical rerank {after:.4f}"
    )
    return [
        Row(
            "7 Vaswani nDCG@10",
            f"{before:.4f} -> {after:.4f}",
            "first stage == BM25 run",
            None,
            same and r["exit_code"] == 0 and r["failed"] == 0,
            note=f"{rate_of(r, 'documents'):,.0f} docs/s; the loopback scorer is lexical, not a neural model",
            data={
                "job": r,
                "ndcg10_first_stage": before,
                "ndcg10_reranked": after,
                "ndcg10_bm25_direct": direct,
            },
        )
    ]


RUNNERS = {
    "overhead": fig_overhead,
    "latency": fig_latency,
    "rate": fig_rate,
    "memory": fig_memory,
    "merge": fig_merge,
    "peers": fig_peers,
    "vaswani": fig_vaswani,
}


def machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def table(rows: list[Row]) -> str:
    head = ("figure", "measured", "bound / target", "ratio", "result")
    body = [
        (
            r.figure,
            r.measured,
            r.bound,
            "-" if r.ratio is None else f"{r.ratio:.2f}",
            "skip"
            if r.ok is None and r.measured == "skipped"
            else "info"
            if r.ok is None
            else "PASS"
            if r.ok
            else "FAIL",
        )
        for r in rows
    ]
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(5)]
    fmt = "  ".join(f"{{:{w}}}" for w in widths)
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))] + [
        fmt.format(*b) for b in body
    ]
    notes = [f"  {r.figure}: {r.note}" for r in rows if r.note]
    return "\n".join(lines + (["notes:"] + notes if notes else []))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--only", default=",".join(FIGURES), help=f"comma-separated subset of {','.join(FIGURES)}"
    )
    ap.add_argument(
        "--quick", action="store_true", help="smaller sizes: a smoke check in under a minute"
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="runs of figures 1, 2 and 6 (median); default 3, quick 1",
    )
    ap.add_argument(
        "--profile",
        default=None,
        help="directory: also profile figure 1's pipeline with pyinstrument",
    )
    ap.add_argument(
        "--vaswani",
        default=None,
        help="the vaswani_npl folder (default ../shared/data/vaswani_npl)",
    )
    ap.add_argument("--json", default=None, help="also write every measurement to this JSON file")
    args = ap.parse_args(argv)
    only = [f.strip() for f in args.only.split(",") if f.strip()]
    unknown = [f for f in only if f not in FIGURES]
    if unknown:
        ap.error(f"unknown figure {unknown[0]!r}; choose from {', '.join(FIGURES)}")
    if args.profile and importlib.util.find_spec("pyinstrument") is None:
        ap.error("--profile needs pyinstrument (pip install -r benchmarks/requirements.txt)")
    cfg = QUICK if args.quick else FULL
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    info = machine()
    say(
        f"rerank-pipeline benchmarks, {info['date']}, {info['cpu']} ({info['cores']} cores), Python {info['python']}"
        f"{' [quick]' if args.quick else ''}; inputs cached in {CACHE}"
    )
    t0 = time.perf_counter()
    rows: list[Row] = []
    for name in FIGURES:
        if name in only:
            rows.extend(RUNNERS[name](cfg, args))
    say(f"\nsummary ({time.perf_counter() - t0:.0f}s{', quick sizes' if args.quick else ''}):")
    say(table(rows))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": info,
                    "quick": args.quick,
                    "config": cfg,
                    "rows": [r.__dict__ for r in rows],
                },
                indent=1,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
