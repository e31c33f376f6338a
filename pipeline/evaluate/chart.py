"""The per-query delta chart: where reranking helped and where it hurt, at any number of queries.

Up to ``BAR_QUERIES`` queries, one bar per query, sorted; beyond that the sorted deltas as
a curve over the share of queries (at most ``CURVE_POINTS`` points), which costs the same
at a million queries as at a thousand and stays readable.

matplotlib is an optional extra, imported only here and only when a chart is drawn;
without it the chart is skipped with a one-line note.

>>> chart_metric([1, 5, 20]), chart_metric([1, 3, 5, 10]), chart_file_name("ndcg@10")
('ndcg@5', 'ndcg@10', 'delta_ndcg_at_10.png')
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from pipeline.evaluate.compare import UNCHANGED_TOLERANCE

BAR_QUERIES = 300
CURVE_POINTS = 2_000
BETTER, WORSE, SAME = "#2a9d4b", "#d1495b", "#9a9a9a"
MATPLOTLIB_MISSING = (
    "matplotlib is not installed: skipping the per-query delta chart "
    "(pip install 'rerank-pipeline[plot]' to get it)"
)


def chart_metric(ks: Sequence[int]) -> str:
    """nDCG@10, or the nDCG cutoff closest to 10 when 10 is not among ``ks``."""
    return f"ndcg@{min(ks, key=lambda k: (abs(k - 10), k))}"


def chart_file_name(metric: str) -> str:
    return "delta_" + metric.replace("@", "_at_") + ".png"


def write_delta_chart(
    path: Path, deltas: pl.DataFrame, metric: str, baseline: str, candidate: str
) -> str | None:
    """Draw ``deltas`` (``query_id`` and ``metric`` columns) sorted to ``path``; return a
    note instead when it cannot be drawn."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return MATPLOTLIB_MISSING
    if not deltas.height:
        return "no paired queries: skipping the per-query delta chart"
    # Most improved on the left, most hurt on the right; ties in query_id order.
    ordered = deltas.sort([metric, "query_id"], descending=[True, False])
    values = ordered[metric]
    n = len(values)
    better = int((values > UNCHANGED_TOLERANCE).sum())
    worse = int((values < -UNCHANGED_TOLERANCE).sum())

    figure = Figure(figsize=(max(6.0, min(16.0, 0.12 * min(n, BAR_QUERIES) + 4)), 4.0), dpi=120)
    axes = figure.add_subplot()
    if n <= BAR_QUERIES:
        heights = values.to_list()
        colors = [
            BETTER if v > UNCHANGED_TOLERANCE else WORSE if v < -UNCHANGED_TOLERANCE else SAME
            for v in heights
        ]
        axes.bar(range(n), heights, width=0.9, color=colors)
        axes.set_xlim(-0.6, n - 0.4)
        if n <= 40:
            axes.set_xticks(range(n), ordered["query_id"].to_list(), rotation=90, fontsize=7)
        else:
            axes.set_xticks([])
        axes.set_xlabel(f"queries, sorted by delta (n={n})")
    else:
        # Evenly spaced ranks of the sorted deltas, the first and last always included.
        ranks = sorted({round(i * (n - 1) / (CURVE_POINTS - 1)) for i in range(CURVE_POINTS)})
        shares = [100.0 * r / (n - 1) for r in ranks]
        curve = values.gather(ranks).to_list()
        axes.fill_between(
            shares, curve, 0.0, where=[v > 0 for v in curve], color=BETTER, interpolate=True
        )
        axes.fill_between(
            shares, curve, 0.0, where=[v < 0 for v in curve], color=WORSE, interpolate=True
        )
        axes.plot(shares, curve, color="black", linewidth=0.8)
        axes.set_xlim(0.0, 100.0)
        axes.set_xlabel(f"% of queries, sorted by delta (n={n:,})")
    axes.axhline(0.0, color="black", linewidth=0.8)
    axes.set_ylabel(f"\u0394 {metric}")
    axes.set_title(
        f"\u0394 {metric} per query, {candidate} \u2212 {baseline} "
        f"({better:,} better, {worse:,} worse, {n - better - worse:,} same)"
    )
    figure.tight_layout()
    figure.savefig(path)
    return None
