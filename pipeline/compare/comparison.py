"""Compare reranked output directories of the same input: quality, significance and cost.

>>> import asyncio, tempfile, pathlib
>>> from pipeline.config import JobConfig, to_toml
>>> from pipeline.records import Query
>>> from pipeline.write import OutputWriter
>>> root, query = pathlib.Path(tempfile.mkdtemp()), Query("q1", "?", list("abc"), ["d1", "d2", "d3"], "")
>>> for name, order in (("bm25", [2, 0, 1]), ("dense", [1, 2, 0])):  # two jobs' outputs
...     writer = OutputWriter(root / name, include_text=False)
...     writer.add_ranked_columns(query, order, [0.9, 0.5, 0.1])
...     asyncio.run(writer.close())
...     cfg = JobConfig()
...     cfg.input.path, cfg.output.dir, cfg.provider.kind = "in.jsonl", str(root / name), "local"
...     _ = (root / name / "job.resolved.toml").write_text(to_toml(cfg))
>>> _ = (root / "qrels.txt").write_text("q1 0 d2 1\\n")
>>> summary = compare_output_dirs([root / "bm25", root / "dense"], root / "qrels.txt", k=[1], print_table=False)
>>> [round(summary["mean"][name]["mrr"], 4) for name in summary["systems"]]
[0.5, 0.3333, 1.0]

``compare_output_dirs`` loads every directory (``systems.load_system``), refuses ones
that ranked other queries or other candidate lists, scores each system's ranking and the
shared first stage with ``pipeline.evaluate``'s ``score_rankings`` (a system's values are
exactly ``eval``'s for that directory, unless a cut made the depth shallower), tests each
system against the first stage and the two best against each other, prices each run, and
writes ``per_query.parquet``, the chart and ``summary.json`` (last: it says the rest is
complete). The first stage comes from one directory: an uncut one if any (its rows hold
every candidate), else a cut one's job input (``first_stage_source``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import polars as pl

from pipeline.compare.costs import system_cost
from pipeline.compare.report import (
    cost_chart,
    depth_note,
    disagreements,
    format_table,
    write_summary,
)
from pipeline.compare.systems import (
    FIRST_STAGE,
    System,
    check_candidates,
    check_same_input,
    check_same_queries,
    load_system,
    result_lists,
    score_system,
    signatures,
    system_names,
)
from pipeline.evaluate import EvalInputError, load_judgments
from pipeline.evaluate.compare import compare_systems
from pipeline.evaluate.judgments import Judgments
from pipeline.evaluate.output_dir import first_stage_source
from pipeline.evaluate.report import coverage, write_per_query
from pipeline.evaluate.settings import DEFAULT_K, DEFAULT_TEST, EvalSettings
from pipeline.storage import Location, local_folder, location
from pipeline.text import plural

CHART = "quality_vs_cost.png"


def primary_metric(ks: Sequence[int]) -> str:
    """nDCG@10, or the nDCG cutoff closest to 10 (as ``eval``'s chart picks it).

    >>> primary_metric([1, 3, 5, 10]), primary_metric([5, 20])
    ('ndcg@10', 'ndcg@5')
    """
    return f"ndcg@{min(ks, key=lambda k: (abs(k - 10), k))}"


def _judgments(qrels: Path, query_ids: pl.Series) -> Judgments:
    judgments = load_judgments(qrels)
    judged = judgments.frame["query_id"]
    if not query_ids.is_in(judged.implode()).any():
        # No shared query usually means mismatched ids: show some of each.
        raise EvalInputError(
            f"no ranked query has judgments in {judgments.source}: ranked query ids look like "
            f"{', '.join(map(repr, query_ids.head(3)))}, judged ones like "
            f"{', '.join(map(repr, judged.unique().sort().head(3)))}"
        )
    judgments.check_duplicates(query_ids)
    return judgments


def _score_all(
    systems: list[System], judgments: Judgments, settings: EvalSettings, depth: int | None
) -> tuple[dict[str, pl.DataFrame], dict, list[str]]:
    """Check the candidate lists and score every system, one directory at a time (a cut
    one's input lists are held only while it is scored). The reference, scored first with
    the first stage, is an uncut directory when there is one."""
    ordered = sorted(systems, key=lambda s: s.top_n is not None)  # stable: uncut ones first
    reference = ordered[0]
    ours = signatures(result_lists(reference), "input_rank") if reference.top_n is None else None
    # Uncut directories first, from their rows alone: a mismatch stops before any scoring.
    checked = {s.name for s in ordered[1:] if s.top_n is None}
    for other in ordered[1:]:
        if other.name in checked and ours is not None:  # ours: the reference is uncut too
            theirs = signatures(result_lists(other), "input_rank")
            check_candidates(reference, ours, other, theirs, {})
    scored: dict[str, pl.DataFrame] = {}
    shortened: dict[str, int] = {}
    first_stage: dict = {"from": reference.name, "unchecked": []}
    warnings: list[str] = []
    for i, system in enumerate(ordered):
        source = first_stage_source(system.outdir, system.rows)  # a cut job's: its input
        if not i:
            first_stage |= {"source": source.name, "input": source.input_path}
            first_stage["why_not"] = source.why_not_input
            if source.lists is not None:
                ours = signatures(source.lists.lazy(), "position")
            if source.why_not_input:
                warnings.append(
                    f"first_stage is not the full first-stage ranking: {reference.name}'s job "
                    f"cut its results to top_n = {reference.top_n} and its input cannot be "
                    f"read ({source.why_not_input}); it is the input order of the kept docs"
                )
        elif system.name not in checked and source.lists is not None and ours is not None:
            theirs = signatures(source.lists.lazy(), "position")
            check_candidates(reference, ours, system, theirs, {system.name: source.lists})
        elif system.name not in checked:
            # Its lists, or the reference's, cannot be read: only the jobs' inputs can vouch.
            if source.lists is None:
                warnings.append(check_same_input(reference, system, str(source.why_not_input)))
            else:
                warnings.append(check_same_input(system, reference, str(first_stage["why_not"])))
            first_stage["unchecked"].append(system.name)
        frames, cut = score_system(system, source.lists, judgments, settings, depth, not i)
        scored |= frames
        shortened |= cut
        del source  # a cut job's input lists: not alive while the next directory's are read
        if system.rows.score_rises:
            warnings.append(
                f"{system.name}: {plural(system.rows.score_rises, 'query')} where a lower-"
                "ranked document has a higher score; evaluated in 'rank' order, as delivered"
            )
    ranked = [FIRST_STAGE, *(s.name for s in systems)]
    return (
        {name: scored[name] for name in ranked},
        {"shortened": shortened, **first_stage},
        warnings,
    )


def compare_output_dirs(
    outdirs: Sequence[str | Location],
    qrels: Path,
    out: Path | None = None,
    names: str | None = None,
    k: str | Sequence[int] = DEFAULT_K,
    relevance_threshold: int = 1,
    significance: str = DEFAULT_TEST,
    print_table: bool = True,
    stream: TextIO | None = None,
) -> dict:
    """Compare the output directories ``outdirs`` (see the module docstring); write to
    ``out`` (default: ``compare/`` beside the first directory) and return the summary."""
    settings = EvalSettings.parse(k, relevance_threshold, significance)
    dirs = [location(d, "OUTDIR", EvalInputError) for d in outdirs]
    if len(dirs) < 2:
        raise EvalInputError("give at least two output directories to compare (eval evaluates one)")
    systems = [load_system(n, d) for n, d in zip(system_names(dirs, names), dirs, strict=True)]
    check_same_queries(systems)
    query_ids = systems[0].rows.query_ids
    judgments = _judgments(Path(qrels), query_ids)
    cuts = [s.top_n for s in systems if s.top_n is not None]
    depth = min(cuts) if cuts else None
    frames, first_stage, warnings = _score_all(systems, judgments, settings, depth)
    metrics, primary, test = settings.metrics, primary_metric(settings.ks), settings.significance
    names_ = [s.name for s in systems]
    mean = {n: {m: f[m].rechunk().mean() or 0.0 for m in metrics} for n, f in frames.items()}
    best = {m: max(names_, key=lambda n: mean[n][m]) for m in metrics}  # ties: the first given
    by_primary = sorted(names_, key=lambda n: -mean[n][primary])
    tests = {
        "vs_first_stage": [
            {"baseline": FIRST_STAGE, "candidate": n}
            | compare_systems(frames[FIRST_STAGE], frames[n], metrics, test)
            for n in names_
        ],
        "best_two": {"baseline": by_primary[1], "candidate": by_primary[0], "by": primary}
        | compare_systems(frames[by_primary[1]], frames[by_primary[0]], metrics, test),
    }
    gains = {n: mean[n][primary] - mean[FIRST_STAGE][primary] for n in names_}
    costs = {s.name: system_cost(s.outdir, len(query_ids), gains[s.name]) for s in systems}
    warnings += [f"{n}: cost unknown, {c['from']}" for n, c in costs.items() if c["basis"] is None]

    # Every check passed: only now is anything written.
    target = Path(out) if out is not None else dirs[0].parent / "compare"
    with local_folder(target) as out:  # on an object store: uploaded at the end
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EvalInputError(f"cannot create output folder {out} ({exc.strerror})") from None
        files = {"per_query": "per_query.parquet"}
        write_per_query(out / files["per_query"], frames, metrics)
        note = cost_chart(out / CHART, {n: mean[n][primary] for n in frames}, costs, primary)
        if note is None:
            files["chart"] = CHART
        judged = judgments.frame["query_id"].unique().sort()
        summary: dict[str, Any] = {
            "schema_version": 1,
            "settings": {
                "k": settings.ks,
                "relevance_threshold": settings.relevance_threshold,
                "significance_test": test,
                "metrics": metrics,
                "primary_metric": primary,
                "conventions": "trec_eval, as eval: score desc / doc_id desc ties, unjudged = "
                "non-relevant, linear-gain nDCG, mean over queries both ranked and judged",
            },
            "depth": {
                "evaluated_at": depth,
                "top_n": {s.name: s.top_n for s in systems},
                "queries_cut": first_stage.pop("shortened"),
                "note": depth_note(depth, {s.name: s.top_n for s in systems}),
            },
            "judgments": {
                "queries": len(judged),
                "judged_documents": judgments.frame.height,
                "duplicate_judgments": judgments.duplicates.height,
            },
            "systems": list(frames),
            "output_dirs": {s.name: str(s.outdir) for s in systems},
            "inputs": {
                "qrels": str(qrels),
                "job_inputs": {s.name: s.describe_input() for s in systems},
                "candidates": "the same queries and candidate lists (ids, input order) in every "
                "directory: "
                + (
                    "checked"
                    if not first_stage["unchecked"]
                    else f"lists not checked for {', '.join(first_stage['unchecked'])} (warnings)"
                ),
                "first_stage": first_stage,
            },
            "queries": coverage(query_ids, judged),
            "mean": mean,
            "best": best,
            "delta": {
                "vs_first_stage": {
                    n: {m: mean[n][m] - mean[FIRST_STAGE][m] for m in metrics} for n in names_
                },
                "vs_best": {n: {m: mean[n][m] - mean[best[m]][m] for m in metrics} for n in frames},
            },
            "tests": tests,
            "disagreement": {
                "metric": primary,
                "queries": disagreements(frames, names_, primary),
            },
            "costs": costs,
            "files": {**files, "summary": "summary.json"},
            "warnings": warnings,
        }
        write_summary(out / "summary.json", summary)
        if print_table:
            table_to = stream or sys.stdout
            print(format_table(summary), *([note] if note else []), sep="\n", file=table_to)
            print(f"wrote {', '.join(summary['files'].values())} to {out}", file=table_to)
        return summary
