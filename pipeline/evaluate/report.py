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

``per_query.parquet`` is long form, one row per (query, system, metric):
``query_id`` (string), ``system`` (string), ``metric`` (string), ``value``
(float64). Rows are written sorted by system, query_id, metric, but readers
should sort explicitly (polars lazy/streaming queries keep no row order).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pipeline.evaluate.scoring import Comparison, SystemScores

SIGNIFICANCE_LEVEL = 0.05
FIRST_STAGE_TEXT = {
    "input": "input (each query's full candidate list, in the job's input order)",
    "results": "results (the input_rank order of the result rows)",
}


def write_per_query(path: Path, systems: Sequence[SystemScores], metrics: Sequence[str]) -> None:
    import polars as pl

    columns: dict[str, list] = {"query_id": [], "system": [], "metric": [], "value": []}
    for scores in systems:
        for query_id in scores.coverage.evaluated:
            values = scores.per_query[query_id]
            for metric in metrics:
                columns["query_id"].append(query_id)
                columns["system"].append(scores.system)
                columns["metric"].append(metric)
                columns["value"].append(values[metric])
    frame = pl.DataFrame(
        columns,
        schema={
            "query_id": pl.String,
            "system": pl.String,
            "metric": pl.String,
            "value": pl.Float64,
        },
    )
    frame.write_parquet(path)


def build_summary(
    *,
    systems: Sequence[SystemScores],
    comparisons: Sequence[Comparison],
    metrics: Sequence[str],
    ks: Sequence[int],
    relevance_threshold: int,
    test: str,
    inputs: dict,
    judgments: dict,
    warnings: Sequence[str],
    files: dict,
    first_stage_source: str | None = None,
) -> dict:
    summary = {
        "schema_version": 1,
        "settings": {
            "k": list(ks),
            "relevance_threshold": relevance_threshold,
            "significance_test": test,
            "metrics": list(metrics),
            "conventions": "trec_eval: score desc / doc_id desc ties, unjudged = non-relevant, "
            "linear-gain nDCG, mean over queries both ranked and judged",
        },
        "inputs": inputs,
        "judgments": judgments,
        "systems": [s.system for s in systems],
        "queries": {
            s.system: {
                "evaluated": len(s.coverage.evaluated),
                "ranked_without_judgments": len(s.coverage.run_without_judgments),
                "judged_not_ranked": len(s.coverage.judged_not_in_run),
                "examples_ranked_without_judgments": s.coverage.run_without_judgments[:10],
                "examples_judged_not_ranked": s.coverage.judged_not_in_run[:10],
            }
            for s in systems
        },
        "mean": {s.system: {m: s.mean(m) for m in metrics} for s in systems},
        "comparisons": [c.as_dict() for c in comparisons],
        "warnings": list(warnings),
        "files": files,
    }
    if first_stage_source is not None:  # output directories only: "input" or "results"
        summary["first_stage_source"] = first_stage_source
    return summary


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
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i >= right_from else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("   ".join(cells).rstrip())
    return lines


def format_table(summary: dict) -> str:
    """The before/after table printed to the terminal, rebuilt from a summary dict."""
    settings = summary["settings"]
    metrics = settings["metrics"]
    lines: list[str] = []
    if summary["comparisons"]:
        comparison = summary["comparisons"][0]
        base, cand = comparison["baseline"], comparison["candidate"]
        test = comparison["test"]
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
            f"({comparison['queries']} paired queries; relevant = label >= "
            f"{settings['relevance_threshold']}; * p < {SIGNIFICANCE_LEVEL}, two-sided {test}, "
            "not corrected for the number of metrics)"
        )
    else:
        names = summary["systems"]
        rows = [["metric", *names]]
        for metric in metrics:
            rows.append([metric, *(f"{summary['mean'][n][metric]:.4f}" for n in names)])
        lines += _render(rows, right_from=99)
        counts = ", ".join(str(summary["queries"][n]["evaluated"]) for n in names)
        lines.append(
            f"({counts} queries evaluated; relevant = label >= {settings['relevance_threshold']})"
        )
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
