"""What a run cost, from its output directory: summary.json, usage/ and job.resolved.toml.

    report = run_report(Path("out/sample"))
    report["requests"], report["attempts"], report["tokens"]["reported"], report["cost"]["usd"]

One usage/ row is one request (chunk). Billed quantities are summed over *answered*
requests (HTTP 2xx): what the provider reported where it reported it, our estimate where it
did not (`tokens.estimated_for_rows` says how many rows, so a cost is never silently low or
0). Requests never answered are priced apart (`cost.unanswered`), never added: the same
rule as summary.json (`accounting.cost.run_cost`). `attempts` counts every HTTP attempt:
no supported provider documents billing for retried 429s and 5xx, but they cost time and
rate allowance.

The sums are polars expressions evaluated over the committed usage/ parts a batch of rows
at a time (`calibrate.sum_parts`): memory stays bounded and time linear however large the run.

Per query, with polars (sort explicitly: scans keep no row order):

    pl.scan_parquet("OUT/usage/*.parquet").group_by("query_id").agg(
        pl.len().alias("requests"), pl.col("attempts").sum(),
        pl.col("total_tokens").sum(), pl.col("search_units").sum(),
        pl.col("estimated_tokens").sum()).sort("query_id").collect()
"""

from __future__ import annotations

import orjson

from pipeline.accounting.cost import (
    DOCS_PER_SEARCH_UNIT,
    Billable,
    cost_lines,
    job_billing,
    run_cost,
)
from pipeline.estimate.calibrate import CalibrationError, sum_parts, usage_parts
from pipeline.storage import Location
from pipeline.text import plural


def run_report(out_dir: Location) -> dict:
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
    ok = pl.col("http_status").is_between(200, 299).fill_null(False)
    reported = ok & pl.col("total_tokens").is_not_null()
    unreported = ok & pl.col("total_tokens").is_null()
    with_units = ok & pl.col("search_units").is_not_null()
    u = sum_parts(
        _usage_parts(out_dir, summary),
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
        unanswered_estimated=pl.col("estimated_tokens").filter(~ok).sum(),
        unanswered_units=((pl.col("n_docs") + DOCS_PER_SEARCH_UNIT - 1) // DOCS_PER_SEARCH_UNIT)
        .filter(~ok)
        .sum(),
    )
    requests, answered = int(u["requests"]), int(u["answered"])
    tokens_reported = int(u["reported"]) if u["reported_rows"] else None
    billed_tokens = (tokens_reported or 0) + int(u["unreported_estimated"])
    units_reported = float(u["units"]) if u["unit_rows"] else None
    report = {
        "output_dir": str(out_dir),
        "provider": {"kind": kind, "model": model},
        # The whole directory (earlier runs included, as usage/ is); `last_run` is the
        # last invocation's own counts (a resume that found everything done ranks 0).
        "queries": _directory_queries(summary),
        "requests": requests,
        "requests_answered": answered,
        "requests_failed": requests - answered,
        "attempts": int(u["attempts"]),
        "retries": int(u["attempts"]) - requests,
        "tokens": {
            "reported": tokens_reported,
            "estimated": int(u["estimated"]),
            "billed": billed_tokens,
            "estimated_for_rows": int(u["unreported_rows"]),
            "reported_over_estimated": (
                round(u["reported"] / u["reported_estimated"], 4)
                if u["reported_rows"] and u["reported_estimated"]
                else None
            ),
        },
        "search_units": {
            "reported": units_reported,
            "unreported_rows": answered - int(u["unit_rows"]),
        },
        "latency_ms_mean": round(u["latency_sum"] / u["latency_rows"], 3)
        if u["latency_rows"]
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
    used = Billable(
        requests_answered=answered,
        tokens_reported=tokens_reported,
        requests_without_tokens=int(u["unreported_rows"]),
        estimated_tokens_without_report=int(u["unreported_estimated"]),
        search_units_reported=units_reported,
        requests_without_search_units=answered - int(u["unit_rows"]),
        requests_unanswered=requests - answered,
        estimated_tokens_unanswered=int(u["unanswered_estimated"]),
        estimated_search_units_unanswered=int(u["unanswered_units"]),
    )
    report["cost"] = run_cost(job_billing(kind, model, pricing), used)
    return report


def _usage_parts(out_dir: Location, summary: dict) -> list[Location]:
    """usage/'s committed parts; none at all is a run that sent nothing (every pair came
    from the score cache, or every query was done earlier): fine when it wrote its
    summary.json, and every sum is then 0."""
    try:
        return usage_parts(out_dir)
    except CalibrationError:
        if not summary:
            raise
    return []


def _directory_queries(summary: dict) -> dict | None:
    last = summary.get("queries")
    if last is None:
        return None
    totals = summary.get("output_dir_totals") or {}
    return {
        "ranked": totals.get("ranked", last.get("ranked")),
        "failed": totals.get("failed", last.get("failed")),
        "last_run": last,
    }


def _queries_line(q: dict) -> str:
    line = f"queries   ranked {q['ranked']:,}  failed {q['failed']:,}  (the whole directory)"
    last = q.get("last_run") or {}
    if last.get("skipped_already_done"):
        line += (
            f"; last run: read {last['read']:,}, ranked {last['ranked']:,}, "
            f"skipped {last['skipped_already_done']:,} done earlier"
        )
    return line


def format_report(report: dict) -> str:
    t, su, cost = report["tokens"], report["search_units"], report["cost"]
    q = report.get("queries") or {}
    p = report["provider"]
    lines = [
        f"run       {report['output_dir']}  ({p['kind']}, {p['model'] or 'server default model'})",
        _queries_line(q) if q else "queries   (no summary.json)",
        f"requests  {report['requests']:,} ({report['requests_failed']:,} not answered), "
        f"{plural(report['attempts'], 'attempt')} ({plural(report['retries'], 'retry')})",
        f"tokens    {_reported(t['reported'])}  estimated {t['estimated']:,}"
        + (f"  billed {cost['billed_tokens']:,}" if cost.get("billed_tokens") is not None else "")
        + (
            f" ({plural(t['estimated_for_rows'], 'answered request')} without a count: "
            "estimate used)"
            if t["estimated_for_rows"] and cost.get("billed_tokens") is not None
            else ""
        ),
    ]
    if su["reported"] is not None or cost["basis"] == "search_units":
        lines.append(f"search    units {_reported(su['reported'])}")
    lines.extend(cost_lines(cost))
    if report.get("cache"):
        from pipeline.cache.summary import cache_line

        lines.append(cache_line(report["cache"]))
    return "\n".join(lines)


def _reported(value: float | None) -> str:
    return "none reported" if value is None else f"reported {value:,}"
