"""Every job file shipped in jobs/ is valid, and the pairs sample runs end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import load_job
from pipeline.run import EXIT_OK
from tests.helpers import results, run

JOBS = sorted((Path(__file__).resolve().parents[1] / "jobs").glob("*.toml"))


@pytest.mark.parametrize("path", JOBS, ids=[p.name for p in JOBS])
def test_shipped_job_files_are_valid(path):
    cfg = load_job(path)
    assert cfg.input.path and cfg.output.dir


async def test_the_pairs_sample_ranks_the_same_queries_as_the_grouped_one(tmp_path, monkeypatch):
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)  # job files take relative paths from the current directory
    grouped = load_job(
        root / "jobs" / "sample.toml", [f"output.dir={tmp_path}/g", "output.top_n=20"]
    )
    pairs = load_job(root / "jobs" / "sample-pairs.toml", [f"output.dir={tmp_path}/p"])
    assert (await run(grouped)).exit_code == EXIT_OK
    assert (await run(pairs)).exit_code == EXIT_OK
    assert results(tmp_path / "g").equals(results(tmp_path / "p"))
    assert results(tmp_path / "g")["query_id"].n_unique() == 36
