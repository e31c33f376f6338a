"""Evaluation outputs: ``per_query.parquet``, ``summary.json`` and the terminal table.

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

``per_query.parquet`` is long form, one row per (query, system, metric): ``query_id``,
``system``, ``metric`` (strings) and ``value`` (float64). Rows are written by system, then
metric in report order, then query_id; readers should sort explicitly (polars lazy and
streaming queries keep no row order).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from pipeline.evaluate.settings import EvalSettings

SIGNIFICANCE_LEVEL = 0.05
FIRST_STAGE_TEXT = {
    "input": "input (each query's full candidate list, in the job's input order)",
    "results": "results (the input_rank order of the result rows)",
}


def write_per_query(path: Path, systems: dict[str, pl.DataFrame], metrics: list[str]) -> None:
    """Streamed from the per-system frames: the long form is never held in memory whole."""
    long = [
        frame.lazy().select(
            "query_id", system=pl.lit(system), metric=pl.lit(metric), value=pl.col(metric)
        )
        for system, frame in systems.items()
        for metric in metrics
    ]
    pl.concat(long).sink_parquet(path)


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


def build_summary(
    settings: EvalSettings,
    systems: dict[str, pl.DataFrame],
    queries: dict[str, dict],
    comparisons: list[dict],
    **sections: object,
) -> dict:
    """The summary.json dict; ``sections`` (inputs, judgments, warnings, files, ...) as given."""
    return {
        "schema_version": 1,
        "settings": {
            "k": settings.ks,
            "relevance_threshold": settings.relevance_threshold,
            "significance_test": settings.significance,
            "metrics": settings.metrics,
            "conventions": "trec_eval: score desc / doc_id desc ties, unjudged = non-relevant, "
            "linear-gain nDCG, mean over queries both ranked and judged",
        },
        "systems": list(systems),
        "queries": queries,
        "mean": {
            name: frame.select(pl.col(settings.metrics).mean()).fill_null(0.0).row(0, named=True)
            for name, frame in systems.items()
        },
        "comparisons": comparisons,
        **sections,
    }


def write_summary(path: Path, summary: dict) -> None:
    # allow_nan=False: a NaN here would be a bug, and must not produce invalid JSON.
    path.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _p_text(p: float | None) -> str:
    if p is None:
        return "n/a"
    mark = " *" if p < SIGNIFICANCE_LEVEL else ""
    return ("<0.0001" if p < 0.0001 else f"{p:.4f}") + mark


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
    lines: list[str] = []
    if summary["comparisons"]:
        comparison = summary["comparisons"][0]
        base, cand, test = comparison["baseline"], comparison["candidate"], comparison["test"]
        rows = [["metric", base, cand, "delta", f"p ({test})", "better/worse/same"]]
        for metric in metrics:
            m = comparison["metrics"][metric]
            rows.append(
                [
                    metric,
                    f"{m['baseline']:.4f}",
                    f"{m['candidate']:.4f}",
                    f"{m['delta']:+.4f}",
                    _p_text(m["p_value"]),
                    f"{m['improved']}/{m['worse']}/{m['unchanged']}",
                ]
            )
        lines += _render(rows, right_from=1)
        lines.append(
            f"({comparison['queries']} paired queries; relevant = label >= {threshold}; "
            f"* p < {SIGNIFICANCE_LEVEL}, two-sided {test}, not corrected for the number of metrics)"
        )
    else:
        names = summary["systems"]
        rows = [["metric", *names]]
        rows += [[m, *(f"{summary['mean'][n][m]:.4f}" for n in names)] for m in metrics]
        lines += _render(rows, right_from=99)
        counts = ", ".join(str(summary["queries"][n]["evaluated"]) for n in names)
        lines.append(f"({counts} queries evaluated; relevant = label >= {threshold})")
    source = summary.get("first_stage_source")
    if source is not None:
        lines.append(f"first stage: {FIRST_STAGE_TEXT.get(source, source)}")
    lines += _coverage_notes(summary)
    lines += [f"warning: {w}" for w in summary["warnings"]]
    return "\n".join(lines)


def _coverage_notes(summary: dict) -> list[str]:
    notes = []
    counts = {
        name: (q["ranked_without_judgments"], q["judged_not_ranked"])
        for name, q in summary["queries"].items()
    }
    # Systems of one output directory share their queries: one note, without a name.
    shared = len(set(counts.values())) == 1
    for name, (unjudged, unranked) in counts.items():
        if (unjudged, unranked) == (0, 0):
            continue
        notes.append(
            f"note: {'' if shared else name + ': '}{unjudged} ranked queries have no judgments and "
            f"{unranked} judged queries were not ranked; both are left out of the "
            "means, as trec_eval does without -c"
        )
        if shared:
            break
    duplicates = summary.get("judgments", {}).get("duplicate_judgments", 0)
    if duplicates:
        notes.append(
            f"note: {duplicates} duplicate judgments, all for queries not evaluated here (ignored)"
        )
    return notes
