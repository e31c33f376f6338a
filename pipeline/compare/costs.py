"""What each system cost: ``rerank-pipeline report``'s figures, per 1,000 queries and per gain.

>>> per_gain(usd_per_1000=0.45, gain=0.0240)  # each +0.01 of nDCG@10 costs $0.1875 per 1,000 queries
0.1875
>>> per_gain(usd_per_1000=0.45, gain=-0.01) is None  # no gain: nothing to pay for
True

One rule, the run's own (``pipeline.estimate.report.run_report``, ``accounting.cost``):
only answered requests are billed, at the job's ``[pricing]`` or list price; what the
provider reported where it did, the estimate for answered requests it did not report.
A cost per gain is scale-free: the cost per 1,000 queries divided by the metric's gain
over the first stage in hundredths; None when the gain is not positive or the cost unknown.
A directory whose cost cannot be accounted (no usage/ and no summary.json) has an unknown
cost, ``from`` saying why, rather than stopping the comparison.
"""

from __future__ import annotations

from pipeline.config import ConfigError
from pipeline.estimate.calibrate import CalibrationError
from pipeline.estimate.report import run_report
from pipeline.storage import Location

GAIN_STEP = 0.01
PER_GAIN = "usd_per_1000_queries_per_0.01_gain"


def per_gain(usd_per_1000: float | None, gain: float | None) -> float | None:
    if usd_per_1000 is None or gain is None or gain <= 0:
        return None
    return round(usd_per_1000 * GAIN_STEP / gain, 9)


def system_cost(outdir: Location, queries: int, gain: float | None) -> dict:
    """The cost block of one output directory: money, what it was billed by, requests,
    wall time, and the two ratios (``queries``: those it ranked; ``gain``: of the metric
    ``summary["settings"]["primary_metric"]`` over the first stage)."""
    try:
        report = run_report(outdir)
    except (CalibrationError, ConfigError, OSError, ValueError) as exc:
        # The rankings still compare: the cost is unknown (never $0), and says why.
        fields = ["usd", "basis", "price", "tokens", "search_units", "requests"]
        fields += ["requests_unanswered", "unanswered_usd_if_billed", "wall_seconds"]
        unknown = dict.fromkeys(fields) | {"from": f"cannot account it: {exc}"}
        return unknown | {"queries": queries, "usd_per_1000_queries": None} | {PER_GAIN: None}
    cost = report["cost"]
    usd = cost.get("usd")
    per_1000 = None if usd is None else round(usd * 1000 / queries, 9)
    unanswered = cost.get("unanswered") or {}
    return {
        "usd": usd,
        "basis": cost.get("basis"),
        "from": cost.get("from"),
        "price": cost.get("price"),
        # Tokens of answered requests count even when free (self-hosted): they are the work.
        "tokens": report["tokens"]["billed"],
        "search_units": report["search_units"]["reported"],
        "requests": report["requests_answered"],
        "requests_unanswered": report["requests_failed"],
        "unanswered_usd_if_billed": unanswered.get("usd_if_billed"),
        "wall_seconds": report["wall_seconds"],
        "queries": queries,
        "usd_per_1000_queries": per_1000,
        PER_GAIN: per_gain(per_1000, gain),
    }
