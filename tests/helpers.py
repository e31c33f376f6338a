"""Input files, job configs and output readers shared by the tests."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import JobConfig, load_job_text
from pipeline.run import Outcome, prepare_job, run_job

WORDS = [
    "solar",
    "panel",
    "battery",
    "inverter",
    "grid",
    "roof",
    "cost",
    "install",
    "warranty",
    "efficiency",
    "voltage",
    "recipe",
    "oven",
    "flour",
    "sugar",
    "butter",
    "bake",
    "bread",
    "dough",
    "yeast",
    "crust",
    "travel",
    "visa",
    "passport",
    "flight",
    "hotel",
    "train",
    "ticket",
    "border",
    "museum",
    "tax",
    "refund",
    "income",
    "deduction",
    "receipt",
]


def make_queries(n: int, sizes: list[int] | int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        size = sizes if isinstance(sizes, int) else sizes[i % len(sizes)]
        query = " ".join(rng.choice(WORDS) for _ in range(3)) + f" #{i}"
        docs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30))) for _ in range(size)]
        out.append(
            {
                "query_id": f"q{i:04d}",
                "query": query,
                "documents": docs,
                "doc_ids": [f"q{i:04d}-d{j:04d}" for j in range(size)],
            }
        )
    return out


def write_grouped_parquet(
    path: Path, queries: list[dict], structs: bool = False, row_group_size: int = 16
) -> Path:
    if structs:
        rows = {
            "query_id": [q["query_id"] for q in queries],
            "query": [q["query"] for q in queries],
            "documents": [
                [{"id": i, "text": t} for i, t in zip(q["doc_ids"], q["documents"], strict=True)]
                for q in queries
            ],
        }
    else:
        rows = {k: [q[k] for q in queries] for k in ("query_id", "query", "documents", "doc_ids")}
    pq.write_table(pa.table(rows), path, row_group_size=row_group_size)
    return path


def write_grouped_jsonl(path: Path, queries: list[dict]) -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wb") as fh:
        for q in queries:
            fh.write(orjson.dumps(q) + b"\n")
    return path


def pairs_rows(queries: list[dict]) -> list[dict]:
    return [
        {"query_id": q["query_id"], "query": q["query"], "doc_id": i, "text": t}
        for q in queries
        for i, t in zip(q["doc_ids"], q["documents"], strict=True)
    ]


def write_pairs_parquet(path: Path, queries: list[dict]) -> Path:
    rows = pairs_rows(queries)
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=500)
    return path


def write_pairs_jsonl(path: Path, queries: list[dict]) -> Path:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wb") as fh:
        for row in pairs_rows(queries):
            fh.write(orjson.dumps(row) + b"\n")
    return path


def job_config(
    input_path: Path, out_dir: Path, base_url: str | None = None, kind: str = "jina", **sets
) -> JobConfig:
    lines = [
        f'[input]\npath = "{input_path}"',
        f'[provider]\nkind = "{kind}"',
        f'[output]\ndir = "{out_dir}"',
        "[limits]\nmax_attempts = 4\ntimeout_s = 5.0",
    ]
    # A value of None leaves the key unset (its default), as if the job file did not name it.
    overrides = [f"{k.replace('__', '.')}={v}" for k, v in sets.items() if v is not None]
    if kind != "local" and "provider__api_key_env" not in sets:
        # The test servers need no key unless a test says so (a hosted kind needs one).
        overrides.append('provider.api_key_env=""')
    if base_url:
        overrides.append(f"provider.base_url={base_url}")
    overrides.append("limits.max_retry_wait_s=0.05")
    return load_job_text("\n".join(lines), overrides)


async def run(cfg: JobConfig, **kwargs) -> Outcome:
    """Prepare and run a job as the CLI does (kwargs: overwrite, retry_failed), quietly."""
    return await run_job(prepare_job(cfg, **kwargs), quiet=True)


def results(out_dir: Path) -> pl.DataFrame:
    return pl.read_parquet(str(out_dir / "results" / "*.parquet")).sort("query_id", "rank")


def failures(out_dir: Path) -> pl.DataFrame:
    files = list((out_dir / "failures").glob("*.parquet"))
    if not files:
        return pl.DataFrame(
            schema={
                "query_id": pl.String,
                "source": pl.String,
                "stage": pl.String,
                "error": pl.String,
                "message": pl.String,
                "retryable": pl.Boolean,
            }
        )
    return pl.read_parquet(files).sort("query_id", nulls_last=True)


def usage(out_dir: Path) -> pl.DataFrame:
    return pl.read_parquet(str(out_dir / "usage" / "*.parquet")).sort("query_id", "chunk")


def start_small_ray() -> None:
    """Ray in this process with the small resources the tests' 2-core machine affords."""
    import ray

    ray.init(
        num_cpus=2,
        object_store_memory=200 * 2**20,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
