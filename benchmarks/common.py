"""Shared pieces of the benchmarks: the server process, generated inputs, process counters.

Generated inputs are cached in a temporary directory (never in the checkout), keyed by their
shape, so a second run does not pay for generating them again.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = Path(
    os.environ.get("RERANK_BENCH_CACHE", Path(tempfile.gettempdir()) / "rerank-pipeline-bench")
)
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- the server process ---------------------------------------------------------------
class ServerProcess:
    """benchmarks/server.py in its own process; `.url` is its root, `.stats()` its counters."""

    def __init__(self, *args: str):
        self.args = list(args)

    def __enter__(self) -> ServerProcess:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "server.py"), *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(
                f"benchmark server did not start: {line!r} {self.proc.stderr.read()[-2000:]}"
            )
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        return self

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url + "/stats", timeout=10) as resp:
            return json.loads(resp.read())

    def reset(self) -> None:
        req = urllib.request.Request(self.url + "/reset", data=b"", method="POST")
        urllib.request.urlopen(req, timeout=10).read()

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.proc.pid)

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM), in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# -- child processes -------------------------------------------------------------------
def run_child(kind: str, params: dict, timeout: float = 900) -> dict:
    """Run one measured client in a fresh interpreter (benchmarks/clients.py); its result."""
    proc = subprocess.run(
        [sys.executable, str(HERE / "clients.py"), kind, json.dumps(params)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} client failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


# -- generated inputs --------------------------------------------------------------------
def _vocabulary(n: int = 6000, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"] + ["qu", "th", "sh", "ch"]
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))))
    return sorted(words)


def grouped_parquet(
    n_queries: int,
    n_docs: int,
    words: tuple[int, int] = (15, 40),
    seed: int = 11,
    row_group_rows: int = 1024,
) -> Path:
    """A grouped Parquet file of n_queries rows x n_docs candidates (query_id, query,
    documents, doc_ids): documents of `words` words (about 6 bytes each), in row groups of
    `row_group_rows` rows (a multiple of 1,024; the default: about 1 MB each). Cached."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"grouped-{n_queries}x{n_docs}-w{words[0]}_{words[1]}-s{seed}.parquet"
    if row_group_rows != 1024:
        return _regrouped(grouped_parquet(n_queries, n_docs, words, seed), row_group_rows)
    if path.exists():
        return path
    rng = random.Random(seed)
    vocab = _vocabulary()
    lo, hi = words
    schema = pa.schema(
        [
            ("query_id", pa.string()),
            ("query", pa.string()),
            ("documents", pa.list_(pa.string())),
            ("doc_ids", pa.list_(pa.string())),
        ]
    )
    tmp = path.with_suffix(".tmp")
    group = 1024
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for start in range(0, n_queries, group):
            stop = min(n_queries, start + group)
            qids, queries, docs, ids = [], [], [], []
            for i in range(start, stop):
                qid = f"q{i:07d}"
                qids.append(qid)
                queries.append(" ".join(rng.choices(vocab, k=rng.randint(2, 6))))
                docs.append(
                    [" ".join(rng.choices(vocab, k=rng.randint(lo, hi))) for _ in range(n_docs)]
                )
                ids.append([f"{qid}-d{j:04d}" for j in range(n_docs)])
            writer.write_table(
                pa.table(
                    {"query_id": qids, "query": queries, "documents": docs, "doc_ids": ids},
                    schema=schema,
                )
            )
    tmp.rename(path)
    return path


def _regrouped(source: Path, row_group_rows: int) -> Path:
    """`source` rewritten in row groups of `row_group_rows` rows, streaming. Cached."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = source.with_name(f"{source.stem}-rg{row_group_rows}.parquet")
    if path.exists():
        return path
    tmp, held, rows = path.with_suffix(".tmp"), [], 0
    reader = pq.ParquetFile(source)
    with pq.ParquetWriter(tmp, reader.schema_arrow, compression="zstd") as writer:
        for i in range(reader.num_row_groups):
            held.append(reader.read_row_group(i))
            rows += held[-1].num_rows
            if rows >= row_group_rows or i == reader.num_row_groups - 1:
                writer.write_table(pa.concat_tables(held), row_group_size=row_group_rows)
                held, rows = [], 0
    tmp.rename(path)
    return path


def pairs_parquet(n_queries: int, n_docs: int) -> Path:
    """The same candidates as `grouped_parquet(n_queries, n_docs)`, one row per candidate
    (query_id, query, text, doc_id), a query's rows contiguous. Converted streaming. Cached."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    grouped = grouped_parquet(n_queries, n_docs)
    path = grouped.with_name("pairs-" + grouped.name.removeprefix("grouped-"))
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp")
    writer = None
    for batch in pq.ParquetFile(grouped).iter_batches(batch_size=1024):
        parents = pc.list_parent_indices(batch.column("documents"))
        table = pa.table(
            {
                "query_id": pc.take(batch.column("query_id"), parents),
                "query": pc.take(batch.column("query"), parents),
                "text": pc.list_flatten(batch.column("documents")),
                "doc_id": pc.list_flatten(batch.column("doc_ids")),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
        writer.write_table(table)
    assert writer is not None
    writer.close()
    tmp.rename(path)
    return path


def fresh_dir(name: str) -> Path:
    """An empty scratch directory for one run's outputs."""
    import shutil

    path = CACHE / "out" / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


@contextmanager
def timer():
    box = {}
    start = time.perf_counter()
    try:
        yield box
    finally:
        box["s"] = time.perf_counter() - start
