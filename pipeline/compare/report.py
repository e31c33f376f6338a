"""What ``compare`` shows and writes: the table, the quality-against-cost chart, summary.json.

>>> depth_note(20, {"jina": 20, "cohere": None})
'every ranking, the first stage too, evaluated at its top 20 (the least top_n: jina 20, cohere all)'
>>> depth_note(None, {"jina": None, "cohere": None})
'full lists: no job cut its output'

``format_table`` rebuilds the table from a summary dict, so what is printed is what
``summary.json`` holds: all metrics (each system's mean, its delta against the first stage
and the paired test's mark, and the two best systems' difference with its p-value), then
one row per system (the primary metric, deltas, p-value, cost, billed tokens or search
units, requests, wall time, cost per 1,000 queries and per +0.01 gained), then the queries
where the systems disagree most.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from pipeline.compare.systems import FIRST_STAGE
from pipeline.evaluate.compare import UNCHANGED_TOLERANCE
from pipeline.evaluate.report import SIGNIFICANCE_LEVEL

DISAGREEMENTS, SHOWN = 10, 5  # queries kept in summary.json, shown in the table
FIRST_COLOR, SYSTEM_COLOR = "#9a9a9a", "#1f5f9e"


def depth_note(depth: int | None, top_n: dict[str, int | None]) -> str:
    if depth is None:
        return "full lists: no job cut its output"
    cuts = ", ".join(f"{name} {'all' if n is None else n}" for name, n in top_n.items())
    return f"every ranking, the first stage too, evaluated at its top {depth} (the least top_n: {cuts})"


def disagreements(frames: dict[str, pl.DataFrame], names: list[str], metric: str) -> list[dict]:
    """The queries whose ``metric`` differs most between the systems (max - min), largest
    first; each with every ranking's value, the first stage's included."""
    # Every frame holds the same queries in query_id order (the directories were checked).
    columns = {f"s{i}": frames[n][metric] for i, n in enumerate([FIRST_STAGE, *names])}
    table = frames[FIRST_STAGE].select("query_id").with_columns(**columns)
    systems = [f"s{i + 1}" for i in range(len(names))]
    spread = pl.max_horizontal(systems) - pl.min_horizontal(systems)
    top = (
        table.with_columns(spread=spread)
        .filter(pl.col("spread") > UNCHANGED_TOLERANCE)
        .sort(["spread", "query_id"], descending=[True, False])
        .head(DISAGREEMENTS)
    )
    return [
        {
            "query_id": row["query_id"],
            "spread": row["spread"],
            "values": {n: row[f"s{i}"] for i, n in enumerate([FIRST_STAGE, *names])},
        }
        for row in top.iter_rows(named=True)
    ]


def cost_chart(
    path: Path, quality: dict[str, float], costs: dict[str, dict], metric: str
) -> str | None:
    """One point per system (the first stage at no reranking cost): ``metric`` against the
    cost per 1,000 queries. Returns a note instead when it cannot be drawn."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return (
            "matplotlib is not installed: skipping the quality-against-cost chart "
            "(pip install 'rerank-pipeline[plot]' to get it)"
        )
    priced = {n: c["usd_per_1000_queries"] for n, c in costs.items()}
    points = {FIRST_STAGE: 0.0} | {n: usd for n, usd in priced.items() if usd is not None}
    figure = Figure(figsize=(7.0, 4.5), dpi=120)
    axes = figure.add_subplot()
    for name, usd in points.items():
        color = FIRST_COLOR if name == FIRST_STAGE else SYSTEM_COLOR
        axes.scatter([usd], [quality[name]], s=48, color=color, zorder=3)
        axes.annotate(name, (usd, quality[name]), textcoords="offset points", xytext=(6, 4))
    axes.set_xlabel("cost per 1,000 queries (USD; answered requests, at each job's price)")
    axes.set_ylabel(metric)
    unknown = sorted(set(priced) - set(points))
    title = f"{metric} against cost per 1,000 queries"
    axes.set_title(title + (f" (price unknown: {', '.join(unknown)})" if unknown else ""))
    axes.grid(True, linewidth=0.4, alpha=0.5)
    axes.margins(x=0.3, y=0.15)  # room for the rightmost point's name
    figure.tight_layout()
    figure.savefig(path)
    return None


def write_summary(path: Path, summary: dict) -> None:
    # allow_nan=False: a NaN here would be a bug, and must not produce invalid JSON.
    path.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return ("<0.0001" if p < 0.0001 else f"{p:.4f}") + (" *" if p < SIGNIFICANCE_LEVEL else "")


def _mark(p: float | None) -> str:
    return "*" if p is not None and p < SIGNIFICANCE_LEVEL else " "


def _money(usd: float | None) -> str:
    return "unknown" if usd is None else f"${usd:,.4f}"


def _delta(value: float) -> str:
    # What rounds to nothing shows as nothing, not as "-0.0000" (float noise included).
    return f"{0.0 if round(value, 4) == 0 else value:+.4f}"


def _render(rows: list[list[str]]) -> list[str]:
    """Columns padded; the first left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "   ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]


def _metric_rows(summary: dict) -> list[str]:
    names, mean = summary["systems"][1:], summary["mean"]
    versus = {t["candidate"]: t["metrics"] for t in summary["tests"]["vs_first_stage"]}
    two = summary["tests"]["best_two"]
    rows = [["metric", FIRST_STAGE, *names, f"{two['candidate']} - {two['baseline']}", "p"]]
    for metric in summary["settings"]["metrics"]:
        cells = [metric, f"{mean[FIRST_STAGE][metric]:.4f}"]
        for name in names:
            test = versus[name][metric]
            cells.append(
                f"{mean[name][metric]:.4f} {_delta(test['delta'])}{_mark(test['p_value'])}"
            )
        cells += [_delta(two["metrics"][metric]["delta"]), _p(two["metrics"][metric]["p_value"])]
        rows.append(cells)
    return _render(rows)


def _system_rows(summary: dict) -> list[str]:
    primary, mean = summary["settings"]["primary_metric"], summary["mean"]
    versus = {t["candidate"]: t["metrics"][primary] for t in summary["tests"]["vs_first_stage"]}
    best = summary["best"][primary]
    header = [
        "system", primary, "vs first", "p (vs first)", "vs best", "cost", "billed", "requests", "wall",
        "$/1k queries", "$/1k q per +0.01",
    ]  # fmt: skip
    rows = [header]
    for name in summary["systems"]:
        delta = summary["delta"]["vs_best"][name][primary]
        row = [name, f"{mean[name][primary]:.4f}"]
        if name == FIRST_STAGE:
            rows.append(row + ["", "", _delta(delta)] + ["-"] * 6)
            continue
        c = summary["costs"][name]
        if c["basis"] == "search_units" and c["search_units"] is not None:
            billed = f"{c['search_units']:,.0f} search units"
        else:
            billed = "?" if c["tokens"] is None else f"{c['tokens']:,} tokens"
        wall = "?" if c["wall_seconds"] is None else f"{c['wall_seconds']:,.1f}s"
        requests = "?" if c["requests"] is None else f"{c['requests']:,}"
        cost = "$0 (self-hosted)" if c["basis"] == "none" else _money(c["usd"])
        per_gain = c["usd_per_1000_queries_per_0.01_gain"]
        if c["usd_per_1000_queries"] is not None and per_gain is None:
            per_gain_text = "-"  # a known cost, but nothing gained to pay for
        else:
            per_gain_text = _money(per_gain)
        row += [_delta(versus[name]["delta"]), _p(versus[name]["p_value"])]
        row += ["best" if name == best else _delta(delta), cost, billed]
        row += [requests, wall, _money(c["usd_per_1000_queries"]), per_gain_text]
        rows.append(row)
    return _render(rows)


def _disagreement_rows(summary: dict) -> list[str]:
    found = summary["disagreement"]["queries"][:SHOWN]
    if not found:
        return [f"no query where the systems' {summary['disagreement']['metric']} differ"]
    rows = [["query_id", *summary["systems"], "spread"]]
    for q in found:
        rows.append(
            [q["query_id"], *(f"{v:.4f}" for v in q["values"].values()), f"{q['spread']:.4f}"]
        )
    return _render(rows)


def format_table(summary: dict) -> str:
    """The table printed to the terminal, rebuilt from a summary dict."""
    s = summary["settings"]
    test, primary, threshold = s["significance_test"], s["primary_metric"], s["relevance_threshold"]
    q = summary["queries"]
    lines = _metric_rows(summary)
    lines.append(
        f"({q['evaluated']:,} paired queries; relevant = label >= {threshold}; per system: mean, "
        f"delta vs {FIRST_STAGE}, * p < {SIGNIFICANCE_LEVEL},\n two-sided {test}, not corrected "
        f"for the number of metrics or systems; last two columns: the two best by {primary})"
    )
    lines += ["", *_system_rows(summary)]
    lines.append(
        "(cost: answered requests only, at each job's price; $/1k q per +0.01: the cost per "
        f"1,000 queries\n for each +0.01 of {primary} over {FIRST_STAGE}; -: no gain)"
    )
    lines += ["", f"queries where the systems disagree most ({primary}, spread = max - min):"]
    lines += _disagreement_rows(summary)
    lines += ["", f"depth: {summary['depth']['note']}"]
    first = summary["inputs"]["first_stage"]
    origin = "job input" if first["source"] == "input" else "result rows, in input order"
    lines.append(
        f"first stage: {first['from']}'s candidate lists ({origin}); "
        + ("the same in every directory" if not first["unchecked"] else "see the warnings")
    )
    if q["ranked_without_judgments"] or q["judged_not_ranked"]:
        lines.append(
            f"note: {q['ranked_without_judgments']} ranked queries have no judgments and "
            f"{q['judged_not_ranked']} judged queries were not ranked; both are left out of "
            "the means, as trec_eval does without -c"
        )
    return "\n".join(lines + [f"warning: {w}" for w in summary["warnings"]])
