"""The per-query delta chart: one bar per query, sorted, the first picture IR people ask for.

matplotlib is an optional extra, imported only here and only when a chart is
drawn; without it the chart is skipped with a one-line note.

>>> from pipeline.evaluate.chart import chart_metric
>>> chart_metric([1, 5, 20]), chart_metric([1, 3, 5, 10])
('ndcg@5', 'ndcg@10')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

MATPLOTLIB_MISSING = (
    "matplotlib is not installed: skipping the per-query delta chart "
    "(pip install 'rerank-pipeline[plot]' to get it)"
)


def chart_metric(ks: Sequence[int]) -> str:
    """nDCG@10, or the nDCG cutoff closest to 10 when 10 is not among ``ks``."""
    best = min(ks, key=lambda k: (abs(k - 10), k))
    return f"ndcg@{best}"


def chart_file_name(metric: str) -> str:
    return "delta_" + metric.replace("@", "_at_") + ".png"


def write_delta_chart(
    path: Path, deltas: Mapping[str, float], metric: str, baseline: str, candidate: str
) -> str | None:
    """Draw sorted per-query deltas to ``path``; return a note instead when it cannot."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return MATPLOTLIB_MISSING
    if not deltas:
        return "no paired queries: skipping the per-query delta chart"

    # Most improved on the left, most hurt on the right; ties in query_id order.
    ordered = sorted(deltas.items(), key=lambda item: (-item[1], item[0]))
    values = [delta for _, delta in ordered]
    better = sum(1 for v in values if v > 1e-12)
    worse = sum(1 for v in values if v < -1e-12)
    colors = ["#2a9d4b" if v > 1e-12 else "#d1495b" if v < -1e-12 else "#9a9a9a" for v in values]

    figure = Figure(figsize=(max(6.0, min(16.0, 0.12 * len(values) + 4)), 4.0), dpi=120)
    axes = figure.add_subplot()
    positions = range(len(values))
    axes.bar(positions, values, width=0.9, color=colors)
    axes.axhline(0.0, color="black", linewidth=0.8)
    axes.set_xlim(-0.6, len(values) - 0.4)
    if len(values) <= 40:
        axes.set_xticks(list(positions), [q for q, _ in ordered], rotation=90, fontsize=7)
    else:
        axes.set_xticks([])
    axes.set_xlabel(f"queries, sorted by delta (n={len(values)})")
    axes.set_ylabel(f"\u0394 {metric}")
    axes.set_title(
        f"\u0394 {metric} per query, {candidate} \u2212 {baseline} "
        f"({better} better, {worse} worse, {len(values) - better - worse} same)"
    )
    figure.tight_layout()
    figure.savefig(path)
    return None
