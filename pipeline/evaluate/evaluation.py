"""The two evaluations: a pipeline output directory (first stage vs reranked), or run files.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "bm25.run").write_text("q1 Q0 d1 1 3.0 bm25\\nq1 Q0 d2 2 2.0 bm25\\n")
>>> _ = (folder / "qrels.txt").write_text("q1 0 d2 1\\n")
>>> summary = evaluate_run_files([folder / "bm25.run"], folder / "qrels.txt", folder / "e", print_table=False)
>>> summary["mean"]["bm25"]["mrr"], list(summary["files"].values())
(0.5, ['per_query.parquet', 'summary.json'])

Bad input raises EvalInputError before any file is written, but for a bad result row (found
as its range is read). ``summary.json`` is written last: it says the rest is complete.

An output directory on an object store (``s3://...``, ``pipeline.storage``) is read there;
its evaluation is written to a local temporary folder and then uploaded to ``OUTDIR/eval/``
(``summary.json`` last), unless ``out`` names a local folder.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TextIO

import polars as pl

from pipeline.evaluate.errors import EvalInputError
from pipeline.evaluate.judgments import Judgments, load_judgments
from pipeline.evaluate.metrics import score_rankings
from pipeline.evaluate.output_dir import ResultRows, first_stage_source
from pipeline.evaluate.report import write_reports
from pipeline.evaluate.runs import append_trec_run, read_trec_run
from pipeline.evaluate.settings import DEFAULT_K, DEFAULT_TEST, EvalSettings
from pipeline.storage import Location, local_folder, location
from pipeline.text import plural

FIRST_STAGE, RERANKED = "first_stage", "reranked"


def _judgments(qrels: Path, ranked: dict[str, pl.Series]) -> Judgments:
    """Judgments sharing queries with each ranking (``what it is`` -> its query ids)."""
    judgments = load_judgments(qrels)
    judged = judgments.frame["query_id"]
    for what, query_ids in ranked.items():
        if not query_ids.is_in(judged.implode()).any():
            # No shared query usually means mismatched ids: show some of each.
            raise EvalInputError(
                f"no query of {what} has judgments in {judgments.source}: ranked query ids look "
                f"like {', '.join(map(repr, query_ids.head(3)))}, judged ones like "
                f"{', '.join(map(repr, judged.unique().sort().head(3)))}"
            )
    judgments.check_duplicates(pl.concat(list(ranked.values())))
    return judgments


def _output_folder(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EvalInputError(f"cannot create output folder {out} ({exc.strerror})") from None
    return out


def evaluate_output_dir(
    outdir: str | Location,
    qrels: Path,
    k: str | Sequence[int] = DEFAULT_K,
    relevance_threshold: int = 1,
    print_table: bool = True,
    *,
    out: Path | None = None,
    significance: str = DEFAULT_TEST,
    stream: TextIO | None = None,
) -> dict:
    """First stage vs reranked of a pipeline output directory, written to ``out`` (default
    ``outdir/eval``); returns the summary, whose ``first_stage_source`` says where the first
    stage came from."""
    settings = EvalSettings.parse(k, relevance_threshold, significance)
    outdir = location(outdir, "OUTDIR", EvalInputError)
    target = Path(out) if out is not None else outdir / "eval"
    with local_folder(target) as folder:  # on an object store: uploaded at the end
        return _evaluate(outdir, qrels, settings, print_table, folder, stream)


def _evaluate(
    outdir: Location,
    qrels: Path,
    settings: EvalSettings,
    print_table: bool,
    out: Path,
    stream: TextIO | None,
) -> dict:
    rows = ResultRows(outdir)
    judgments = _judgments(qrels, {f"{outdir} ({RERANKED})": rows.query_ids})
    source = first_stage_source(outdir, rows)
    out = _output_folder(out)
    scored: dict[str, list[pl.DataFrame]] = {FIRST_STAGE: [], RERANKED: []}
    files = {f"run_{system}": f"{system}.trec" for system in scored}
    with ExitStack() as stack:
        runs = {s: stack.enter_context(open(out / files[f"run_{s}"], "wb")) for s in scored}
        for chunk in rows.chunks(source.lists):
            rankings = dict(zip(scored, chunk, strict=True))
            threshold = settings.relevance_threshold
            scores = score_rankings(rankings, judgments.frame, settings.ks, threshold)
            for system, ranking in rankings.items():
                append_trec_run(runs[system], ranking, system)
                scored[system].append(scores[system])
    warnings = source.warnings(rows.cut_queries, settings.ks)
    if rows.score_rises:
        warnings.append(
            f"{plural(rows.score_rises, 'query')}: a lower-ranked document has a higher score; "
            "reranked is evaluated in 'rank' order (reranked.trec carries score = -rank so "
            "trec_eval agrees)"
        )
    return write_reports(
        settings,
        {system: pl.concat(frames) for system, frames in scored.items()},
        dict.fromkeys(scored, rows.query_ids),
        judgments,
        out,
        files,
        (stream or sys.stdout) if print_table else None,
        inputs={
            "output_dir": str(outdir),
            "qrels": str(qrels),
            "top_n": source.top_n,
            "first_stage_input": source.input_path,
        },
        warnings=warnings,
        first_stage_source=source.name,
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
    ranked = {run.system: run.frame["query_id"].unique().sort() for run in runs}
    judgments = _judgments(qrels, {f"{r.source} ({r.system})": ranked[r.system] for r in runs})
    out = _output_folder(Path(out))
    rankings = {run.system: run.frame for run in runs}
    systems = score_rankings(rankings, judgments.frame, settings.ks, settings.relevance_threshold)
    return write_reports(
        settings,
        systems,
        ranked,
        judgments,
        out,
        {},
        (stream or sys.stdout) if print_table else None,
        inputs={"runs": [str(p) for p in run_files], "qrels": str(qrels)},
        warnings=[w for run in runs for w in run.warnings],
    )
