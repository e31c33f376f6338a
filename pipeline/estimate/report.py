"""What a run cost, from its output directory: summary.json, usage/ and job.resolved.toml.

    report = run_report(Path("out/sample"))
    report["requests"], report["attempts"], report["tokens"]["reported"], report["cost"]["usd"]

One usage/ row is one request (chunk). Billed quantities are summed over *answered*
requests: what the provider reported where it reported it, our estimate where it did not
(`tokens.estimated_for_rows` says how many rows, so a cost is never silently low or 0).
`attempts` counts every HTTP attempt: retries of 429s and 5xx are not billed by any API in
/work/notes/providers.md as far as their docs say, but they cost time and rate allowance.

The sums are polars expressions evaluated over the committed usage/ parts a batch of rows
at a time (`usage_sums`): memory stays bounded and time linear however large the run.

Per query, with polars (sort explicitly: scans keep no row order):

    pl.scan_parquet("OUT/usage/*.parquet").group_by("query_id").agg(
        pl.len().alias("requests"), pl.col("attempts").sum(),
        pl.col("total_tokens").sum(), pl.col("search_units").sum(),
        pl.col("estimated_tokens").sum()).sort("query_id").collect()
"""

from __future__ import annotations

from pathlib import Path

import orjson

from pipeline.accounting.cost import cost_usd, job_billing
from pipeline.estimate.calibrate import usage_sums


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
    ok = pl.col("http_status").is_between(200, 299)
    reported = ok & pl.col("total_tokens").is_not_null()
    unreported = ok & pl.col("total_tokens").is_null()
    with_units = ok & pl.col("search_units").is_not_null()
    u = usage_sums(
        out_dir,
        requests=pl.len(),
        answered=ok.sum(),
        attempts=pl.col("attempts").sum(),
        estimated=pl.col("estimated_tokens").sum(),
        reported_rows=reported.sum(),
        reported=pl.col("total_tokens").filter(reported).sum(),
        reported_estimated=pl.col("estimated_tokens").filter(reported).sum(),
        unreported_rows=unreported.sum(),
        unreported_estimated=pl.col("estimated_tokens").filter(unreported).sum(),
        unit_rows=with_units.sum(),
        units=pl.col("search_units").filter(with_units).sum(),
        latency_sum=pl.col("latency_ms").filter(ok).sum(),
        latency_rows=pl.col("latency_ms").filter(ok).count(),
    )
    billed_tokens = int(u["reported"] + u["unreported_estimated"])
    report = {
        "output_dir": str(out_dir),
        "provider": {"kind": kind, "model": model},
        "queries": summary.get("queries"),
        "requests": u["requests"],
        "requests_answered": u["answered"],
        "requests_failed": u["requests"] - u["answered"],
        "attempts": int(u["attempts"]),
        "retries": int(u["attempts"]) - u["requests"],
        "tokens": {
            "reported": int(u["reported"]) if u["reported_rows"] else None,
            "estimated": int(u["estimated"]),
            "billed": billed_tokens,
            "estimated_for_rows": u["unreported_rows"],
            "reported_over_estimated": (
                round(u["reported"] / u["reported_estimated"], 4)
                if u["reported_rows"] and u["reported_estimated"]
                else None
            ),
        },
        "search_units": {
            "reported": float(u["units"]) if u["unit_rows"] else None,
            "unreported_rows": u["answered"] - u["unit_rows"],
        },
        "latency_ms_mean": round(u["latency_sum"] / u["latency_rows"], 3)
        if u["latency_rows"]
        else None,
        "wall_seconds": (summary.get("time") or {}).get("wall_seconds"),
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
    return "\n".join(lines)


def _n(value: float | None) -> str:
    return "not reported" if value is None else f"{value:,}"


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.4f}"
