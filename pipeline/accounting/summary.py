"""summary.json: the job's counters, its provider, cost and status, written at the end.

>>> from pipeline.accounting.stats import JobStats
>>> stats = JobStats(queries_read=3, queries_ranked=2, queries_failed=1)
>>> s = job_summary(stats, {"kind": "local", "model": None}, {}, status="complete",
...                 in_flight=0, ranked_earlier=5, failed_earlier=0)
>>> s["status"], s["cost"]["usd"], s["output_dir_totals"]
('complete', 0.0, {'ranked': 7, 'failed': 1})
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import orjson

from pipeline.accounting.cost import summary_cost
from pipeline.accounting.prices import Pricing
from pipeline.accounting.stats import JobStats
from pipeline.storage import Location, ObjectPath


def job_summary(
    stats: JobStats,
    provider: dict[str, Any],
    pricing: Pricing,
    *,
    status: str,
    in_flight: int,
    ranked_earlier: int,
    failed_earlier: int,
) -> dict:
    """`provider`: the block shown as is; its `kind` and `model` also price the run.
    `ranked_earlier`, `failed_earlier`: what earlier runs left in the output directory."""
    summary = stats.summary()
    summary["provider"] = provider
    summary["cost"] = summary_cost(summary, provider["kind"], provider["model"], pricing)
    summary["status"] = status
    summary["queries"]["in_flight_not_written"] = in_flight
    summary["output_dir_totals"] = {
        "ranked": ranked_earlier + stats.queries_ranked,
        "failed": failed_earlier + stats.queries_failed,
    }
    return summary


def write_summary(out_dir: Location, summary: dict) -> None:
    """Written whole or not at all: a full disk leaves the earlier summary.json, never half
    a file (the caller reports the OSError). On an object store: one PUT, whole or not."""
    if isinstance(out_dir, ObjectPath):
        (out_dir / "summary.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        return
    target, tmp = out_dir / "summary.json", out_dir / ".summary.json.tmp"
    try:
        tmp.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
        os.replace(tmp, target)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
