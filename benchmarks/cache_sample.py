"""The score cache on the sample: night 1 fills it, night 2 (10% of texts changed) pays for
the rest. The README's "Nightly re-scoring" figures come from here.

    python benchmarks/cache_sample.py          # ~15 s

Night 2 is `sample_data/candidates.parquet` with every list shuffled and 10% of the
document texts changed (seeded). Both nights go to the loopback Jina-format server
(`server.py`, its own process; it reports usage tokens as request bytes / 4), with the job
of the README's section: jina-reranker-v2-base-multilingual, 64 documents a request,
top 20, `[cache] path`. `rerank-pipeline estimate` is run for night 2 first, then the run,
and the cache's stats at the end. Outputs go to a temporary directory.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from common import ServerProcess  # noqa: E402

SAMPLE = REPO / "sample_data" / "candidates.parquet"


def night_two(path: Path, seed: int = 2) -> None:
    rng = random.Random(seed)
    rows = pq.read_table(SAMPLE).to_pylist()
    for row in rows:
        docs = row["documents"]
        for doc in docs:
            if rng.random() < 0.10:
                doc["text"] = doc["text"] + " (updated)"
        rng.shuffle(docs)
    pq.write_table(pa.Table.from_pylist(rows), path)


def job(tmp: Path, name: str, data: Path, url: str) -> Path:
    path = tmp / f"{name}.toml"
    path.write_text(
        f'[input]\npath = "{data}"\n'
        f'[provider]\nkind = "jina"\nmodel = "jina-reranker-v2-base-multilingual"\nbase_url = "{url}"\n'
        "[limits]\nmax_docs_per_request = 64\n"
        f'[output]\ndir = "{tmp / name}"\ntop_n = 20\n'
        f'[cache]\npath = "{tmp / "cache" / "scores.db"}"\n'
    )
    return path


def cli(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "RERANK_API_KEY": "sample"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{args} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return proc.stdout + proc.stderr


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="cache-sample-"))
    night2 = tmp / "night2.parquet"
    night_two(night2)
    with ServerProcess() as server:
        print(cli("run", str(job(tmp, "night1", SAMPLE, server.url))))
        print(cli("estimate", str(job(tmp, "night2", night2, server.url))))
        print(cli("run", str(job(tmp, "night2", night2, server.url))))
        print(cli("cache", "stats", str(tmp / "cache" / "scores.db")))
    rows = []
    for name in ("night1", "night2"):
        s = orjson.loads((tmp / name / "summary.json").read_bytes())
        c = s["cache"]
        rows.append(
            (
                name,
                s["requests"]["succeeded"],
                c["sent"],
                c["from_cache"],
                s["tokens"]["reported_total"],
                s["tokens"]["estimated"],
                s["cost"]["usd"],
                c["saved"]["usd"],
            )
        )
    print(
        f"{'':<8} {'requests':>8} {'pairs sent':>10} {'from cache':>10} "
        f"{'tokens (reported)':>17} {'tokens (est.)':>13} {'cost':>9} {'saved':>9}"
    )
    for name, req, sent, hit, rep, est, usd, saved in rows:
        print(
            f"{name:<8} {req:>8,} {sent:>10,} {hit:>10,} {rep:>17,} {est:>13,} "
            f"{f'${usd:.4f}':>9} {f'${saved:.4f}':>9}"
        )


if __name__ == "__main__":
    main()
