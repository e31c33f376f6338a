"""What a run cost, from its output directory: summary.json, usage/ and job.resolved.toml.

    report = run_report(Path("out/sample"))
    report["requests"], report["attempts"], report["tokens"]["reported"], report["cost"]["usd"]

One usage/ row is one request (chunk). Billed quantities are summed over *answered*
requests: what the provider reported where it reported it, our estimate where it did not
(`tokens.estimated_for_rows` says how many rows, so a cost is never silently low or 0).
`attempts` counts every HTTP attempt: no supported provider documents billing for
retried 429s and 5xx, but they cost time and rate allowance.

Per query, with polars (sort explicitly: scans keep no row order):

    pl.scan_parquet("OUT/usage/*.parquet").group_by("query_id").agg(
        pl.len().alias("requests"), pl.col("attempts").sum(),
        pl.col("total_tokens").sum(), pl.col("search_units").sum(),
        pl.col("estimated_tokens").sum()).sort("query_id").collect()
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from pipeline.accounting.cost import cost_usd, job_billing
from pipeline.estimate.calibrate import CalibrationError, read_usage


def run_report(out_dir: Path) -> dict:
    import polars as pl

    from pipeline.config import load_job

    summary_path = out_dir / "summary.json"
    summary = orjson.loads(summary_path.read_bytes()) if summary_path.exists() else {}
    job_path = out_dir / "job.resolved.toml"
    cfg = load_job(job_path) if job_path.exists() else None
    provider = summary.get("provider") or {}
    kind = provider.get("kind") or (cfg.provider.kind if cfg else None)
    model = provider.get("model") or (cfg.provider.model if cfg else None)
    pricing = cfg.pricing if cfg else {}
    usage = _usage(out_dir, summary)
    answered = usage.filter(pl.col("http_status").is_between(200, 299))
    reported_rows = answered.filter(pl.col("total_tokens").is_not_null())
    unreported = answered.filter(pl.col("total_tokens").is_null())
    billed_tokens = int(reported_rows["total_tokens"].sum() + unreported["estimated_tokens"].sum())
    su_rows = answered.filter(pl.col("search_units").is_not_null())
    report = {
        "output_dir": str(out_dir),
        "provider": {"kind": kind, "model": model},
        "queries": summary.get("queries"),
        "requests": usage.height,
        "requests_answered": answered.height,
        "requests_failed": usage.height - answered.height,
        "attempts": int(usage["attempts"].sum()),
        "retries": int(usage["attempts"].sum()) - usage.height,
        "tokens": {
            "reported": int(reported_rows["total_tokens"].sum()) if reported_rows.height else None,
            "estimated": int(usage["estimated_tokens"].sum()),
            "billed": billed_tokens,
            "estimated_for_rows": unreported.height,
            "reported_over_estimated": (
                round(
                    reported_rows["total_tokens"].sum() / reported_rows["estimated_tokens"].sum(), 4
                )
                if reported_rows.height and reported_rows["estimated_tokens"].sum()
                else None
            ),
        },
        "search_units": {
            "reported": float(su_rows["search_units"].sum()) if su_rows.height else None,
            "unreported_rows": answered.height - su_rows.height,
        },
        "latency_ms_mean": round(float(answered["latency_ms"].mean()), 3)
        if answered.height
        else None,
        "wall_seconds": (summary.get("time") or {}).get("wall_seconds"),
        "cache": summary.get("cache"),  # the score cache's pairs and savings, if used
    }
    if kind is None:
        report["cost"] = {
            "usd": None,
            "basis": None,
            "price": "unknown provider: no summary.json or job file",
        }
        return report
    billing = job_billing(kind, model, pricing)
    units = report["search_units"]["reported"]
    if (
        billing.basis == "search_units"
        and units is not None
        and report["search_units"]["unreported_rows"]
    ):
        units = None  # part of the bill is unknown: say so rather than under-count
    report["cost"] = {
        "usd": cost_usd(billing.basis, billed_tokens, units, billing.price),
        "basis": billing.basis,
        "price": billing.describe(),
    }
    return report


def _usage(out_dir: Path, summary: dict) -> Any:  # a polars DataFrame, typed as read_usage's
    """usage/ rows; none at all is a run that sent nothing (every pair came from the score
    cache, or every query was done earlier): fine when it wrote its summary.json."""
    import polars as pl

    try:
        return read_usage(out_dir)
    except CalibrationError:
        if not summary:
            raise
    return pl.DataFrame(
        schema={
            "http_status": pl.Int64,
            "attempts": pl.Int64,
            "latency_ms": pl.Float64,
            "total_tokens": pl.Int64,
            "estimated_tokens": pl.Int64,
            "search_units": pl.Float64,
        }
    )


def format_report(report: dict) -> str:
    t, su, cost = report["tokens"], report["search_units"], report["cost"]
    q = report.get("queries") or {}
    p = report["provider"]
    lines = [
        f"run       {report['output_dir']}  ({p['kind']}, {p['model'] or 'server default model'})",
        f"queries   ranked {q.get('ranked', '?'):,}  failed {q.get('failed', '?'):,}"
        if q
        else "queries   (no summary.json)",
        f"requests  {report['requests']:,} ({report['requests_failed']:,} failed), "
        f"attempts {report['attempts']:,} ({report['retries']:,} retries)",
        f"tokens    reported {_n(t['reported'])}  estimated {t['estimated']:,}  billed {t['billed']:,}"
        + (
            f" ({t['estimated_for_rows']:,} requests unreported: estimate used)"
            if t["estimated_for_rows"]
            else ""
        ),
    ]
    if su["reported"] is not None or cost["basis"] == "search_units":
        lines.append(f"search    units reported {_n(su['reported'])}")
    lines.append(f"cost      {_usd(cost['usd'])}  [{cost['price']}]")
    if report.get("cache"):
        from pipeline.cache.summary import cache_line

        lines.append(cache_line(report["cache"]))
    return "\n".join(lines)


def _n(value: float | None) -> str:
    return "not reported" if value is None else f"{value:,}"


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.4f}"
