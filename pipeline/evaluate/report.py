"""What an evaluation writes: per_query.parquet, the delta chart, summary.json, the table.

>>> summary = {
...     "settings": {"metrics": ["ndcg@10"], "relevance_threshold": 1, "significance_test": "t-test"},
...     "systems": ["bm25"], "mean": {"bm25": {"ndcg@10": 0.5}},
...     "queries": {"bm25": {"evaluated": 2, "ranked_without_judgments": 0, "judged_not_ranked": 0}},
...     "comparisons": [], "warnings": [],
... }
>>> print(format_table(summary))
metric    bm25
ndcg@10   0.5000
(2 queries evaluated; relevant = label >= 1)

The files are described in the README ("Outputs"). ``per_query.parquet`` is written by
system, metric and query_id, but lazy polars queries keep no row order: readers should sort.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

import polars as pl

from pipeline.evaluate.compare import UNCHANGED_TOLERANCE, compare_systems, paired
from pipeline.evaluate.judgments import Judgments
from pipeline.evaluate.settings import EvalSettings

SIGNIFICANCE_LEVEL = 0.05
BAR_QUERIES, CURVE_POINTS = 300, 2_000
BETTER, WORSE, SAME = "#2a9d4b", "#d1495b", "#9a9a9a"
FIRST_STAGE_TEXT = {
    "input": "input (each query's full candidate list, in the job's input order)",
    "results": "results (the input_rank order of the result rows)",
}


def write_per_query(path: Path, systems: dict[str, pl.DataFrame], metrics: list[str]) -> None:
    """Streamed from the per-system frames: the long form is never held in memory whole."""
    pl.concat(
        [
            frame.lazy().select(
                "query_id", system=pl.lit(system), metric=pl.lit(metric), value=pl.col(metric)
            )
            for system, frame in systems.items()
            for metric in metrics
        ]
    ).sink_parquet(path)


def write_delta_chart(
    path: Path, deltas: pl.Series, query_ids: pl.Series, title: str
) -> str | None:
    """Draw the sorted ``deltas`` to ``path``; return a note instead when it cannot."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return (
            "matplotlib is not installed: skipping the per-query delta chart "
            "(pip install 'rerank-pipeline[plot]' to get it)"
        )
    if not len(deltas):
        return "no paired queries: skipping the per-query delta chart"
    # Most improved on the left, most hurt on the right; ties in query_id order.
    ordered = pl.DataFrame({"delta": deltas, "query_id": query_ids}).sort(
        ["delta", "query_id"], descending=[True, False]
    )
    values, n = ordered["delta"], len(deltas)
    better = int((values > UNCHANGED_TOLERANCE).sum())
    worse = int((values < -UNCHANGED_TOLERANCE).sum())
    width = max(6.0, min(16.0, 0.12 * n + 4)) if n <= BAR_QUERIES else 10.0
    figure = Figure(figsize=(width, 4.0), dpi=120)
    axes = figure.add_subplot()
    if n <= BAR_QUERIES:
        heights = values.to_list()
        colors = [
            BETTER if v > UNCHANGED_TOLERANCE else WORSE if v < -UNCHANGED_TOLERANCE else SAME
            for v in heights
        ]
        axes.bar(range(n), heights, width=0.9, color=colors)
        axes.set_xlim(-0.6, n - 0.4)
        labels = ordered["query_id"].to_list() if n <= 40 else []
        axes.set_xticks(range(n) if labels else [], labels, rotation=90, fontsize=7)
        axes.set_xlabel(f"queries, sorted by delta (n={n})")
    else:
        # Evenly spaced ranks of the sorted deltas, the first and the last included.
        ranks = sorted({round(i * (n - 1) / (CURVE_POINTS - 1)) for i in range(CURVE_POINTS)})
        shares, curve = [100.0 * r / (n - 1) for r in ranks], values.gather(ranks).to_list()
        for color, side in ((BETTER, [v > 0 for v in curve]), (WORSE, [v < 0 for v in curve])):
            axes.fill_between(shares, curve, 0.0, where=side, color=color, interpolate=True)
        axes.plot(shares, curve, color="black", linewidth=0.8)
        axes.set_xlim(0.0, 100.0)
        axes.set_xlabel(f"% of queries, sorted by delta (n={n:,})")
    axes.axhline(0.0, color="black", linewidth=0.8)
    axes.set_ylabel(title.split(" per query")[0])
    axes.set_title(f"{title} ({better:,} better, {worse:,} worse, {n - better - worse:,} same)")
    figure.tight_layout()
    figure.savefig(path)
    return None


def coverage(ranked: pl.Series, judged: pl.Series) -> dict:
    """Query counts of one system (trec_eval without -c): only ranked and judged ones count."""
    unjudged = ranked.filter(~ranked.is_in(judged.implode()))
    unranked = judged.filter(~judged.is_in(ranked.implode()))
    return {
        "evaluated": len(ranked) - len(unjudged),
        "ranked_without_judgments": len(unjudged),
        "judged_not_ranked": len(unranked),
        "examples_ranked_without_judgments": unjudged.head(10).to_list(),
        "examples_judged_not_ranked": unranked.head(10).to_list(),
    }


def write_reports(
    settings: EvalSettings,
    systems: dict[str, pl.DataFrame],
    ranked: dict[str, pl.Series],
    judgments: Judgments,
    out: Path,
    files: dict[str, str],
    table_to: TextIO | None,
    **sections: object,
) -> dict:
    """per_query.parquet; for two systems the comparison and its chart; summary.json (last);
    the table on ``table_to``. ``systems``: per-query frames; ``ranked``: their query ids."""
    files = {"per_query": "per_query.parquet", **files}
    write_per_query(out / files["per_query"], systems, settings.metrics)
    comparisons, notes = [], []
    if len(systems) == 2:
        baseline, candidate = systems
        before, after = paired(systems[baseline], systems[candidate])
        comparison = compare_systems(before, after, settings.metrics, settings.significance)
        comparisons.append({"baseline": baseline, "candidate": candidate, **comparison})
        # nDCG@10, or the nDCG cutoff closest to 10 when 10 is not among the cutoffs.
        metric = f"ndcg@{min(settings.ks, key=lambda k: (abs(k - 10), k))}"
        chart = "delta_" + metric.replace("@", "_at_") + ".png"
        title = f"\u0394 {metric} per query, {candidate} \u2212 {baseline}"
        note = write_delta_chart(
            out / chart, after[metric] - before[metric], before["query_id"], title
        )
        if note is None:
            files["chart"] = chart
        else:
            notes.append(note)
    judged = judgments.frame["query_id"].unique().sort()
    summary: dict[str, Any] = {
        "schema_version": 1,
        "settings": {
            "k": settings.ks,
            "relevance_threshold": settings.relevance_threshold,
            "significance_test": settings.significance,
            "metrics": settings.metrics,
            "conventions": "trec_eval: score desc / doc_id desc ties, unjudged = non-relevant, "
            "linear-gain nDCG, mean over queries both ranked and judged",
        },
        "judgments": {
            "queries": len(judged),
            "judged_documents": judgments.frame.height,
            "duplicate_judgments": judgments.duplicates.height,
        },
        "systems": list(systems),
        "queries": {name: coverage(ranked[name], judged) for name in systems},
        "mean": {  # over one chunk: the same sums however the rows were read
            name: {m: frame[m].rechunk().mean() or 0.0 for m in settings.metrics}
            for name, frame in systems.items()
        },
        "comparisons": comparisons,
        "files": {**files, "summary": "summary.json"},
        **sections,
    }
    # allow_nan=False: a NaN here would be a bug, and must not produce invalid JSON.
    text = json.dumps(summary, indent=2, allow_nan=False)
    (out / "summary.json").write_text(text + "\n", encoding="utf-8")
    if table_to is not None:
        print(format_table(summary), *notes, sep="\n", file=table_to)
        print(f"wrote {', '.join(summary['files'].values())} to {out}", file=table_to)
    return summary


def _p_text(p: float | None) -> str:
    if p is None:
        return "n/a"
    return ("<0.0001" if p < 0.0001 else f"{p:.4f}") + (" *" if p < SIGNIFICANCE_LEVEL else "")


def _render(rows: list[list[str]], right_from: int) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "   ".join(
            cell.rjust(widths[i]) if i >= right_from else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]


def format_table(summary: dict) -> str:
    """The before/after table printed to the terminal, rebuilt from a summary dict."""
    settings = summary["settings"]
    metrics, threshold = settings["metrics"], settings["relevance_threshold"]
    if summary["comparisons"]:
        comparison = summary["comparisons"][0]
        base, cand, test = comparison["baseline"], comparison["candidate"], comparison["test"]
        rows = [["metric", base, cand, "delta", f"p ({test})", "better/worse/same"]]
        for metric in metrics:
            m = comparison["metrics"][metric]
            rows.append(
                [metric, f"{m['baseline']:.4f}", f"{m['candidate']:.4f}", f"{m['delta']:+.4f}"]
                + [_p_text(m["p_value"]), f"{m['improved']}/{m['worse']}/{m['unchanged']}"]
            )
        lines = _render(rows, right_from=1)
        lines.append(
            f"({comparison['queries']} paired queries; relevant = label >= {threshold}; "
            f"* p < {SIGNIFICANCE_LEVEL}, two-sided {test}, not corrected for the number of metrics)"
        )
    else:
        names = summary["systems"]
        rows = [["metric", *names]]
        rows += [[m, *(f"{summary['mean'][n][m]:.4f}" for n in names)] for m in metrics]
        lines = _render(rows, right_from=99)
        counts = ", ".join(str(summary["queries"][n]["evaluated"]) for n in names)
        lines.append(f"({counts} queries evaluated; relevant = label >= {threshold})")
    source = summary.get("first_stage_source")
    if source is not None:
        lines.append(f"first stage: {FIRST_STAGE_TEXT.get(source, source)}")
    # Systems of one output directory share their queries: one note, without a name.
    left_out = {
        name: (q["ranked_without_judgments"], q["judged_not_ranked"])
        for name, q in summary["queries"].items()
        if q["ranked_without_judgments"] or q["judged_not_ranked"]
    }
    shared = len(set(left_out.values())) == 1 and len(left_out) == len(summary["queries"])
    for name, (unjudged, unranked) in list(left_out.items())[: 1 if shared else None]:
        lines.append(
            f"note: {'' if shared else name + ': '}{unjudged} ranked queries have no judgments "
            f"and {unranked} judged queries were not ranked; both are left out of the means, "
            "as trec_eval does without -c"
        )
    duplicates = summary.get("judgments", {}).get("duplicate_judgments", 0)
    if duplicates:
        lines.append(
            f"note: {duplicates} duplicate judgments, all for queries not evaluated here (ignored)"
        )
    return "\n".join(lines + [f"warning: {w}" for w in summary["warnings"]])
