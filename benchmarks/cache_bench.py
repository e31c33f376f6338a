"""The score cache's speed: lookups and inserts at 10M entries, and night 2 against night 1.

    python benchmarks/cache_bench.py                    # both parts, ~6 min on 2 cores
    python benchmarks/cache_bench.py --only store       # lookups / inserts at 10M entries
    python benchmarks/cache_bench.py --only nights      # night 1 vs night 2, rate limited
    python benchmarks/cache_bench.py --entries 1000000 --queries 300   # a quick look

**store**: a cache of `--entries` entries (100 documents per query, 200-character
documents, as a night of a search index gives them) is built once and kept in
`$TMPDIR/rerank-pipeline-bench/` (about 45 bytes an entry); each run works on a fresh copy.
Measured through the run's own code path (`ScoreCache.look_up` with key hashing, and
`ScoreCache.remember` through the writer thread until `close()` has committed all):
lookups of queries all in the cache, none in it, and 90% in it, with the file's pages in
the OS page cache (warm) and dropped from it first (cold, `posix_fadvise(DONTNEED)`), the
per-query lookup time (what the event loop waits for each 100-document query), inserts,
and the peak memory of a fresh process doing the same lookups and inserts against a cache
a tenth the size and the full size (memory must not grow with the cache).

**nights**: the loopback server (`server.py`, its own process) enforces a rate limit with
429s, and the job is set to stay under it. Night 1 fills the cache; night 2 has 10% of
each list's document texts changed (a 90% hit rate). Timed: each `rerank-pipeline run`
from start to exit (a process: interpreter start and job preparation included; "in run":
summary.json's wall time, from the first row read to the last written). Three limits: tokens per second (the usual binding limit of hosted
APIs for long lists: Jina's 1M tokens/min against 500 requests/min binds at 67 requests of
15k tokens), requests per second with the changes spread over every list, and requests per
second with the changes concentrated in 10% of the queries.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from common import CACHE, ServerProcess, peak_rss_mb  # noqa: E402

from pipeline.cache import ScoreCache, ScoreStore, ScoringIdentity, pair_keys  # noqa: E402
from pipeline.chunk import estimate_tokens_many  # noqa: E402
from pipeline.records import Chunk, ChunkScores, Query  # noqa: E402

IDENT = ScoringIdentity("jina", "http://127.0.0.1/v1/rerank", "bench-reranker", "{}")
DOCS = 100
FILLER = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor " * 3


def doc_text(q: int, d: int, version: int = 0) -> str:
    return f"doc {q} {d} v{version} {FILLER}"[:200]


def query_of(q: int, version: int = 0) -> Query:
    docs = [doc_text(q, d, version) for d in range(DOCS)]
    return Query(f"q{q}", f"bench query {q} about things", docs, [], "bench")


# -- store ------------------------------------------------------------------------------
def built_cache(entries: int) -> Path:
    """A cache of `entries` entries (queries 0.. of DOCS documents each), built once."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"score-cache-{entries}.db"
    if path.exists():
        return path
    tmp = path.with_suffix(".building")
    for p in tmp.parent.glob(tmp.name + "*"):
        p.unlink()
    store = ScoreStore.open(tmp)
    model = store.model_id(IDENT)
    assert model is not None
    rng = random.Random(5)
    started = time.perf_counter()
    n_queries = entries // DOCS
    step = 200
    for first in range(0, n_queries, step):
        rows = []
        for q in range(first, min(n_queries, first + step)):
            query = query_of(q)
            rows.extend(
                (k, rng.random()) for k in pair_keys(IDENT.digest, query.text, query.documents)
            )
        store.put(model, rows, created=int(time.time()))
        if first % 10_000 == 0:
            print(f"  building: {first * DOCS:,} entries", file=sys.stderr)
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    tmp.rename(path)
    print(f"  built {entries:,} entries in {time.perf_counter() - started:.0f}s", file=sys.stderr)
    return path


def drop_from_page_cache(path: Path) -> None:
    for p in (path, path.with_name(path.name + "-wal")):
        if p.exists():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def lookups(cache: ScoreCache, queries: list[Query]) -> tuple[float, list[float], int]:
    """(pairs/s, per-query seconds, hits) through the run's own lookup path."""
    tokens = [estimate_tokens_many(q.documents) for q in queries]
    per_query = []
    hits = 0
    started = time.perf_counter()
    for q, t in zip(queries, tokens, strict=True):
        t0 = time.perf_counter()
        hits += len(cache.look_up(q, t).positions)
        per_query.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    return len(queries) * DOCS / elapsed, per_query, hits


def insert_rate(work: Path, queries: range, out: dict, name: str, rng: random.Random) -> None:
    """Pairs/s from the first remember() until every row is committed ("sustained"), and
    until close() returned (the final checkpoint too: once per run)."""
    cache = ScoreCache.create(work, IDENT)
    writer = cache.writer
    assert writer is not None
    answers = []
    for q in queries:
        query = query_of(q)
        chunk = Chunk(query, 0, 0, DOCS, 0, DOCS)
        answers.append(ChunkScores(chunk, list(range(DOCS)), [rng.random() for _ in range(DOCS)]))
    total = len(answers) * DOCS
    started = time.perf_counter()
    for answer in answers:
        cache.remember(answer)
    queued = time.perf_counter() - started
    while writer.stored < total and writer.error is None:
        time.sleep(0.002)
    sustained = time.perf_counter() - started
    cache.close()
    closed = time.perf_counter() - started
    assert writer.stored == total, writer.error
    out[f"{name}_pairs"] = total
    out[f"{name}_pairs_per_s"] = round(total / sustained)
    out[f"{name}_pairs_per_s_with_close"] = round(total / closed)
    out[f"{name}_loop_us_per_query"] = round(queued / len(answers) * 1e6, 1)


def store_figures(entries: int, n: int) -> dict:
    source = built_cache(entries)
    work = Path(tempfile.mkdtemp(prefix="cache-bench-")) / "scores.db"
    shutil.copyfile(source, work)
    size = work.stat().st_size
    rng = random.Random(9)
    n_queries = entries // DOCS
    out: dict = {"entries": entries, "bytes": size, "queries_per_case": n}
    try:
        cache = ScoreCache.create(work, IDENT)
        present = [query_of(q) for q in rng.sample(range(n_queries), n)]
        absent = [query_of(q) for q in range(n_queries + 10, n_queries + 10 + n)]
        mixed = []
        for q in rng.sample(range(n_queries), n):
            query = query_of(q)
            for d in rng.sample(range(DOCS), DOCS // 10):
                query.documents[d] = doc_text(q, d, version=1)
            mixed.append(query)
        lookups(cache, present[: n // 10])  # the file's pages into the OS page cache
        for name, qs in (("hits", present), ("misses", absent), ("mixed_90", mixed)):
            rate, per_query, hits = lookups(cache, qs)
            out[f"lookup_{name}_pairs_per_s"] = round(rate)
            out[f"lookup_{name}_ms_per_query_median"] = round(statistics.median(per_query) * 1e3, 3)
            out[f"lookup_{name}_hit_rate"] = round(hits / (len(qs) * DOCS), 4)
        cache.close()
        # Inserts: new queries' answers through remember() -> the writer thread -> commits,
        # with the file's pages warm (as after a night's lookups), then cold.
        first = 2 * n_queries
        insert_rate(work, range(first, first + 5 * n), out, "insert", rng)
        drop_from_page_cache(work)
        insert_rate(work, range(first + 5 * n, first + 6 * n), out, "insert_cold", rng)
        cache = ScoreCache.create(work, IDENT)
        cold_qs = [query_of(q) for q in rng.sample(range(n_queries), n)]
        drop_from_page_cache(work)
        rate, per_query, _ = lookups(cache, cold_qs)
        per_query.sort()
        out["lookup_cold_pairs_per_s"] = round(rate)
        out["lookup_cold_ms_per_query_median"] = round(statistics.median(per_query) * 1e3, 3)
        out["lookup_cold_ms_per_query_p99"] = round(per_query[int(len(per_query) * 0.99)] * 1e3, 3)
        cache.close()
        out["bytes_after"] = work.stat().st_size
    finally:
        shutil.rmtree(work.parent, ignore_errors=True)
    out["peak_rss_mb"] = memory_figures(sorted({entries // 10, entries}))
    return out


def memory_child(path: Path, entries: int) -> None:
    """In a fresh process: look up 3,000 queries (300k pairs) and store 100k new pairs,
    then print the peak resident memory."""
    rng = random.Random(3)
    cache = ScoreCache.create(path, IDENT)
    qs = rng.sample(range(entries // DOCS), 3000)
    for q in qs:
        query = query_of(q)
        cache.look_up(query, estimate_tokens_many(query.documents))
    for q in range(entries, entries + 1000):
        query = query_of(q)
        chunk = Chunk(query, 0, 0, DOCS, 0, DOCS)
        cache.remember(ChunkScores(chunk, list(range(DOCS)), [0.5] * DOCS))
    cache.close()
    print(f"PEAK {peak_rss_mb():.1f}")


def memory_figures(sizes: list[int]) -> dict:
    """Peak memory of the same work against caches of different sizes (fresh copies)."""
    out = {}
    for entries in sizes:
        work = Path(tempfile.mkdtemp(prefix="cache-mem-")) / "scores.db"
        shutil.copyfile(built_cache(entries), work)
        try:
            proc = subprocess.run(
                [sys.executable, __file__, "--memory-child", str(work), "--entries", str(entries)],
                capture_output=True,
                text=True,
                check=True,
            )
        finally:
            shutil.rmtree(work.parent, ignore_errors=True)
        out[entries] = float(proc.stdout.split("PEAK")[-1])
    return out


# -- nights -----------------------------------------------------------------------------
def write_nights(tmp: Path, n_queries: int) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(21)
    words = FILLER.split() + [f"w{i}" for i in range(200)]

    def docs_for(q: int) -> list[str]:
        r = random.Random(q)
        return [" ".join(r.choices(words, k=30)) for _ in range(DOCS)]

    def table(queries: list[tuple[str, str, list[str]]]) -> pa.Table:
        return pa.table(
            {
                "query_id": [q[0] for q in queries],
                "query": [q[1] for q in queries],
                "documents": [q[2] for q in queries],
            }
        )

    night1 = [
        (f"q{q}", f"query {q} " + " ".join(rng.choices(words, k=4)), docs_for(q))
        for q in range(n_queries)
    ]
    spread, concentrated = [], []
    changed = set(rng.sample(range(n_queries), n_queries // 10))
    for i, (qid, text, docs) in enumerate(night1):
        new = list(docs)
        for d in rng.sample(range(DOCS), DOCS // 10):
            new[d] = docs[d] + " changed"
        spread.append((qid, text, new))
        concentrated.append((qid, text, [d + " changed" for d in docs] if i in changed else docs))
    paths = {}
    for name, queries in (("night1", night1), ("spread", spread), ("concentrated", concentrated)):
        paths[name] = tmp / f"{name}.parquet"
        pq.write_table(table(queries), paths[name], row_group_size=128)
    return paths


def run_night(tmp: Path, name: str, data: Path, url: str, cache: Path, limits: str) -> dict:
    job = tmp / f"{name}.toml"
    job.write_text(
        f'[input]\npath = "{data}"\n'
        f'[provider]\nkind = "jina"\nmodel = "jina-reranker-v2-base-multilingual"\nbase_url = "{url}"\n'
        f"[limits]\nmax_concurrency = 16\nmax_docs_per_request = {DOCS}\n{limits}\n"
        f'[output]\ndir = "{tmp / name}"\ntop_n = 10\n'
        f'[cache]\npath = "{cache}"\n'
    )
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", str(job), "--quiet"],
        capture_output=True,
        text=True,
        env={**os.environ, "RERANK_API_KEY": "bench"},
        cwd=HERE.parent,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    s = orjson.loads((tmp / name / "summary.json").read_bytes())
    return {
        "wall_s": round(wall, 2),
        "run_s": s["time"]["wall_seconds"],
        "requests": s["requests"]["succeeded"],
        "http_429": s["requests"]["http_429"],
        "tokens": s["tokens"]["reported_total"],
        "hit_rate": s["cache"]["hit_rate"],
    }


def night_figures(n_queries: int, tps: float, rps: float) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="cache-nights-"))
    out: dict = {"queries": n_queries, "docs_per_query": DOCS, "server_tps": tps, "server_rps": rps}
    try:
        data = write_nights(tmp, n_queries)
        # The job stays 10% under the server's limit (the limiter paces; the server enforces:
        # on a busy 2-core machine a stalled client sends a few starts together).
        tpm = f"tokens_per_minute = {int(tps * 60 * 0.9)}"
        rpm = f"requests_per_minute = {int(rps * 60 * 0.9)}"
        with (
            ServerProcess("--max-tps", str(tps)) as tok_server,
            ServerProcess("--max-rps", str(rps)) as req_server,
        ):
            tc, rc = tmp / "tokens.db", tmp / "requests.db"
            out["tokens_night1"] = run_night(tmp, "t1", data["night1"], tok_server.url, tc, tpm)
            out["tokens_night2"] = run_night(tmp, "t2", data["spread"], tok_server.url, tc, tpm)
            out["requests_night1"] = run_night(tmp, "r1", data["night1"], req_server.url, rc, rpm)
            rc2 = tmp / "requests-copy.db"
            shutil.copyfile(rc, rc2)
            out["requests_night2_spread"] = run_night(
                tmp, "r2", data["spread"], req_server.url, rc, rpm
            )
            out["requests_night2_concentrated"] = run_night(
                tmp, "r3", data["concentrated"], req_server.url, rc2, rpm
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def print_table(store: dict | None, nights: dict | None) -> None:
    if store:
        s = store
        print(
            f"\nstore: {s['entries']:,} entries, {s['bytes'] / 1e6:,.0f} MB on disk "
            f"({s['bytes'] / s['entries']:.0f} bytes/entry), {s['queries_per_case']:,} queries x {DOCS} per case"
        )
        print(f"{'case':<28} {'pairs/s':>10} {'ms/query':>9}  target")
        for name, label in (
            ("hits", "lookup, all in cache"),
            ("misses", "lookup, none in cache"),
            ("mixed_90", "lookup, 90% in cache"),
            ("cold", "lookup, cold pages"),
        ):
            target = ">= 200,000/s" if name != "cold" else ""
            print(
                f"{label:<28} {s[f'lookup_{name}_pairs_per_s']:>10,} "
                f"{s[f'lookup_{name}_ms_per_query_median']:>9.3f}  {target}"
            )
        print(f"{'  cold p99 ms/query':<28} {'':>10} {s['lookup_cold_ms_per_query_p99']:>9.3f}")
        print(
            f"{'insert (writer thread)':<28} {s['insert_pairs_per_s']:>10,} "
            f"{'':>9}  >= 100,000/s  (event loop: {s['insert_loop_us_per_query']} us/query)"
        )
        print(
            f"{'  with the final close':<28} {s['insert_pairs_per_s_with_close']:>10,}"
            f"  ({s['insert_pairs']:,} pairs, then checkpoint and close)"
        )
        print(
            f"{'insert, cold pages':<28} {s['insert_cold_pairs_per_s']:>10,}"
            f"  ({s['insert_cold_pairs']:,} pairs)"
        )
        peaks = ", ".join(f"{e:,} entries {mb:.0f} MB" for e, mb in s["peak_rss_mb"].items())
        print(f"peak memory, 300k lookups + 100k inserts: {peaks}")
    if nights:
        n = nights
        print(
            f"\nnights: {n['queries']:,} queries x {DOCS} documents, 10% of texts changed on night 2"
        )
        print(
            f"{'limit':<34} {'night 1 s':>9} {'night 2 s':>9} {'speedup':>8} {'in run':>8} "
            f"{'req 1':>6} {'req 2':>6} {'hit':>6} {'429s':>5}"
        )
        for label, a, b in (
            (f"tokens, {n['server_tps']:,.0f}/s", "tokens_night1", "tokens_night2"),
            (
                f"requests {n['server_rps']:,.0f}/s, changes spread",
                "requests_night1",
                "requests_night2_spread",
            ),
            (
                f"requests {n['server_rps']:,.0f}/s, 10% of queries",
                "requests_night1",
                "requests_night2_concentrated",
            ),
        ):
            one, two = n[a], n[b]
            print(
                f"{label:<34} {one['wall_s']:>9.1f} {two['wall_s']:>9.1f} {one['wall_s'] / two['wall_s']:>7.1f}x "
                f"{one['run_s'] / two['run_s']:>7.1f}x "
                f"{one['requests']:>6,} {two['requests']:>6,} {two['hit_rate']:>6.1%} {one['http_429'] + two['http_429']:>5}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("store", "nights"))
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--lookup-queries", type=int, default=2_000)
    parser.add_argument("--queries", type=int, default=1000, help="queries per night")
    parser.add_argument("--tps", type=float, default=150_000, help="server tokens per second")
    parser.add_argument("--rps", type=float, default=30, help="server requests per second")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--memory-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.entries)
        return
    store = nights = None
    if args.only in (None, "store"):
        store = store_figures(args.entries, args.lookup_queries)
    if args.only in (None, "nights"):
        nights = night_figures(args.queries, args.tps, args.rps)
    print_table(store, nights)
    if args.json:
        args.json.write_bytes(
            orjson.dumps(
                {"store": store, "nights": nights},
                option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS,
            )
        )


if __name__ == "__main__":
    main()
