"""The two evaluations: a pipeline output directory (first stage vs reranked), or run files.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "bm25.run").write_text("q1 Q0 d1 1 3.0 bm25\\nq1 Q0 d2 2 2.0 bm25\\n")
>>> _ = (folder / "qrels.txt").write_text("q1 0 d2 1\\n")
>>> summary = evaluate_run_files([folder / "bm25.run"], folder / "qrels.txt", folder / "eval", print_table=False)
>>> summary["mean"]["bm25"]["mrr"], sorted(summary["files"])
(0.5, ['per_query', 'summary'])

Both write ``per_query.parquet`` and ``summary.json`` (``summary.json`` last, so its
presence says the rest is complete); an output directory also gives ``first_stage.trec``,
``reranked.trec`` and the delta chart. Bad input raises EvalInputError before any file
is written.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import polars as pl

from pipeline.evaluate.chart import chart_file_name, chart_metric, write_delta_chart
from pipeline.evaluate.compare import compare_systems, paired
from pipeline.evaluate.errors import EvalInputError
from pipeline.evaluate.first_stage import choose_first_stage
from pipeline.evaluate.judgments import Judgments, load_judgments
from pipeline.evaluate.metrics import score_ranking
from pipeline.evaluate.report import (
    build_summary,
    coverage,
    format_table,
    write_per_query,
    write_summary,
)
from pipeline.evaluate.results import ResultRows
from pipeline.evaluate.runs import append_trec_run, read_trec_run
from pipeline.evaluate.settings import DEFAULT_K, DEFAULT_TEST, EvalSettings

FIRST_STAGE, RERANKED = "first_stage", "reranked"


def _require_overlap(ranked: pl.Series, judged: pl.Series, what: str, judgments: Judgments) -> None:
    """No shared query usually means mismatched ids: say so with examples of each."""
    if ranked.is_in(judged.implode()).any():
        return
    raise EvalInputError(
        f"no query of {what} has judgments in {judgments.source}: ranked query ids look like "
        f"{', '.join(map(repr, ranked.head(3)))}, judged ones like {', '.join(map(repr, judged.head(3)))}"
    )


def _output_folder(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EvalInputError(f"cannot create output folder {out} ({exc.strerror})") from None
    return out


def _finish(
    settings: EvalSettings,
    systems: dict[str, pl.DataFrame],
    ranked: dict[str, pl.Series],
    judgments: Judgments,
    out: Path,
    files: dict[str, str],
    print_table: bool,
    stream: TextIO | None,
    **sections: object,
) -> dict:
    """Per-query file, comparison and chart (for two systems), summary, table."""
    files = {"per_query": "per_query.parquet", **files, "summary": "summary.json"}
    write_per_query(out / files["per_query"], systems, settings.metrics)
    comparisons, notes = [], []
    if len(systems) == 2:
        baseline, candidate = systems
        before, after = paired(systems[baseline], systems[candidate])
        comparison = compare_systems(before, after, settings.metrics, settings.significance)
        comparisons.append({"baseline": baseline, "candidate": candidate, **comparison})
        metric = chart_metric(settings.ks)
        chart = chart_file_name(metric)
        deltas = before.select("query_id", after[metric] - before[metric])
        note = write_delta_chart(out / chart, deltas, metric, baseline, candidate)
        if note is None:
            files["chart"] = chart
        else:
            notes.append(note)
    judged = judgments.frame["query_id"].unique()
    summary = build_summary(
        settings,
        systems,
        {name: coverage(ranked[name], judged.sort()) for name in systems},
        comparisons,
        judgments={
            "queries": len(judged),
            "judged_documents": judgments.frame.height,
            "duplicate_judgments": judgments.duplicates.height,
        },
        files=files,
        **sections,
    )
    write_summary(out / files["summary"], summary)
    if print_table:
        stream = stream or sys.stdout
        print(format_table(summary), file=stream)
        for note in notes:
            print(note, file=stream)
        print(f"wrote {', '.join(files.values())} to {out}", file=stream)
    return summary


def evaluate_output_dir(
    outdir: Path,
    qrels: Path,
    k: str | Sequence[int] = DEFAULT_K,
    relevance_threshold: int = 1,
    print_table: bool = True,
    *,
    out: Path | None = None,
    significance: str = DEFAULT_TEST,
    stream: TextIO | None = None,
) -> dict:
    """Evaluate first stage vs reranked of a pipeline output directory; return the summary.

    Writes to ``out`` (default ``outdir/eval``). The first stage is the result rows'
    input_rank order, or the job's input lists when the results were cut to top_n
    (``first_stage.choose_first_stage``); ``summary["first_stage_source"]`` says which.
    """
    settings = EvalSettings.parse(k, relevance_threshold, significance)
    outdir = Path(outdir)
    results = ResultRows(outdir)
    judgments = load_judgments(qrels)
    judged = judgments.frame["query_id"].unique().sort()
    _require_overlap(results.query_ids, judged, f"{outdir} ({RERANKED})", judgments)
    judgments.check_duplicates(results.query_ids)
    first_stage = choose_first_stage(outdir, results)
    out = _output_folder(Path(out) if out is not None else outdir / "eval")

    scores: dict[str, list[pl.DataFrame]] = {FIRST_STAGE: [], RERANKED: []}
    files = {f"run_{system}": f"{system}.trec" for system in scores}
    with (
        open(out / files["run_first_stage"], "wb") as first,
        open(out / files["run_reranked"], "wb") as reranked,
    ):
        for rankings in results.chunks(first_stage.lists):
            for (system, frames), ranking, handle in zip(
                scores.items(), rankings, (first, reranked), strict=True
            ):
                append_trec_run(handle, ranking, system)
                frames.append(
                    score_ranking(
                        ranking, judgments.frame, settings.ks, settings.relevance_threshold
                    )
                )

    warnings = first_stage.warnings(results.cut_queries, settings.ks)
    if results.reordered_queries:
        warnings.append(
            f"{results.reordered_queries} queries: the 'rank' order differs from sorting by score "
            "(ties broken otherwise than trec_eval's doc_id order); reranked is evaluated in "
            "'rank' order and reranked.trec carries score = -rank for them so trec_eval agrees"
        )
    return _finish(
        settings,
        {system: pl.concat(frames) for system, frames in scores.items()},
        dict.fromkeys(scores, results.query_ids),
        judgments,
        out,
        files,
        print_table,
        stream,
        inputs={
            "output_dir": str(outdir),
            "qrels": str(qrels),
            "top_n": first_stage.top_n,
            "first_stage_input": first_stage.input_path,
        },
        warnings=warnings,
        first_stage_source=first_stage.source,
    )


def evaluate_run_files(
    run_files: Sequence[Path],
    qrels: Path,
    out: Path,
    k: str | Sequence[int] = DEFAULT_K,
    relevance_threshold: int = 1,
    print_table: bool = True,
    *,
    significance: str = DEFAULT_TEST,
    stream: TextIO | None = None,
) -> dict:
    """Evaluate one TREC run file, or compare two (the first is the baseline)."""
    settings = EvalSettings.parse(k, relevance_threshold, significance)
    if not 1 <= len(run_files) <= 2:
        raise EvalInputError("--run: give one run file, or two to compare (baseline first)")
    runs = [read_trec_run(path) for path in run_files]
    if len(runs) == 2 and runs[0].system == runs[1].system:
        # Same tag in both files: name the systems after the files so rows stay apart.
        for run in runs:
            run.system = f"{run.system}:{Path(run.source).name}"
        if runs[0].system == runs[1].system:
            raise EvalInputError(f"--run: the same file given twice: {run_files[0]}")
    judgments = load_judgments(qrels)
    judged = judgments.frame["query_id"].unique().sort()
    ranked = {run.system: run.frame["query_id"].unique().sort() for run in runs}
    for run in runs:
        _require_overlap(ranked[run.system], judged, f"{run.source} ({run.system})", judgments)
    judgments.check_duplicates(pl.concat(list(ranked.values())))
    out = _output_folder(Path(out))
    systems = {
        run.system: score_ranking(
            run.frame, judgments.frame, settings.ks, settings.relevance_threshold
        )
        for run in runs
    }
    return _finish(
        settings,
        systems,
        ranked,
        judgments,
        out,
        {},
        print_table,
        stream,
        inputs={"runs": [str(p) for p in run_files], "qrels": str(qrels)},
        warnings=[w for run in runs for w in run.warnings],
    )
