"""``rerank-pipeline eval``: did reranking help, by how much, and where.

Library use (what the job runner calls for an ``[eval]`` section)::

    >>> from pipeline.evaluate.command import evaluate_output_dir  # doctest: +SKIP
    >>> summary = evaluate_output_dir(Path("out"), Path("qrels.txt"))  # doctest: +SKIP
    >>> summary["comparisons"][0]["metrics"]["ndcg@10"]["delta"]  # doctest: +SKIP
    0.0889

Command line::

    rerank-pipeline eval OUTDIR --qrels qrels.txt [--k 1,3,5,10] [--out DIR]
                         [--first-stage auto|input|results]
    rerank-pipeline eval --run bm25.run [--run other.run] --qrels qrels.txt --out DIR

Standalone, until the CLI wires it: ``python -m pipeline.evaluate.command eval ...``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from pipeline.evaluate.chart import chart_file_name, chart_metric, write_delta_chart
from pipeline.evaluate.errors import EvalInputError
from pipeline.evaluate.judgments import Judgments, load_judgments
from pipeline.evaluate.metrics import DEFAULT_K, metric_names, normalize_ks
from pipeline.evaluate.output_dir import FIRST_STAGE_SOURCES, read_output_dir
from pipeline.evaluate.report import build_summary, format_table, write_per_query, write_summary
from pipeline.evaluate.runs import RankedRun, read_trec_run, write_trec_run
from pipeline.evaluate.scoring import check_duplicates, compare, require_overlap, score_run
from pipeline.evaluate.significance import DEFAULT_TEST, SIGNIFICANCE_TESTS


def parse_k(value: str | Sequence[int]) -> list[int]:
    """Cutoffs from ``"1,3,5"`` (CLI) or ``[1, 3, 5]`` (job TOML).

    >>> parse_k("10, 1,5")
    [1, 5, 10]
    """
    if isinstance(value, str):
        try:
            value = [int(part) for part in value.split(",") if part.strip()]
        except ValueError:
            raise EvalInputError(
                f"k: {value!r} is not a comma-separated list of positive integers"
            ) from None
    return normalize_ks(value)


def _check_threshold(relevance_threshold: object) -> int:
    if isinstance(relevance_threshold, bool) or not isinstance(relevance_threshold, int):
        raise EvalInputError(f"relevance threshold {relevance_threshold!r} is not an integer")
    if relevance_threshold < 1:
        # 0 would make judged non-relevant documents relevant; trec_eval allows it, nobody means it.
        raise EvalInputError(f"relevance threshold must be >= 1, got {relevance_threshold}")
    return relevance_threshold


def _evaluate(
    runs: list[RankedRun],
    judgments: Judgments,
    out: Path,
    *,
    k: str | Sequence[int],
    relevance_threshold: int,
    significance: str,
    inputs: dict,
    warnings: list[str],
    write_run_files: bool,
    print_table: bool,
    stream: TextIO | None,
    first_stage_source: str | None = None,
) -> dict:
    ks = parse_k(k)
    threshold = _check_threshold(relevance_threshold)
    if significance not in SIGNIFICANCE_TESTS:
        raise EvalInputError(
            f"significance test {significance!r} unknown; choose {' or '.join(SIGNIFICANCE_TESTS)}"
        )
    metrics = metric_names(ks)
    systems = [score_run(run, judgments, ks, threshold) for run in runs]
    for run, scores in zip(runs, systems, strict=True):
        require_overlap(run, scores, judgments)
    evaluated = set().union(*(s.coverage.evaluated for s in systems))
    duplicates = check_duplicates(judgments, evaluated)
    comparisons = (
        [compare(systems[0], systems[1], metrics, significance)] if len(systems) == 2 else []
    )

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EvalInputError(f"cannot create output folder {out} ({exc.strerror})") from None
    files = {"per_query": "per_query.parquet", "summary": "summary.json"}
    write_per_query(out / files["per_query"], systems, metrics)
    if write_run_files:
        for run in runs:
            files[f"run_{run.system}"] = f"{run.system}.trec"
            write_trec_run(run, out / f"{run.system}.trec")
    warnings = [w for run in runs for w in run.warnings] + list(warnings)
    notes: list[str] = []
    if comparisons:
        comparison, metric = comparisons[0], chart_metric(ks)
        name = chart_file_name(metric)
        note = write_delta_chart(
            out / name, comparison.deltas[metric], metric, comparison.baseline, comparison.candidate
        )
        if note is None:
            files["chart"] = name
        else:
            notes.append(note)

    summary = build_summary(
        systems=systems,
        comparisons=comparisons,
        metrics=metrics,
        ks=ks,
        relevance_threshold=threshold,
        test=significance,
        inputs=inputs,
        judgments={
            "queries": len(judgments.by_query),
            "judged_documents": sum(len(d) for d in judgments.by_query.values()),
            "duplicate_judgments": duplicates,
        },
        warnings=warnings,
        files=files,
        first_stage_source=first_stage_source,
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
    k: list[int] = DEFAULT_K,
    relevance_threshold: int = 1,
    print_table: bool = True,
    *,
    out: Path | None = None,
    significance: str = DEFAULT_TEST,
    stream: TextIO | None = None,
    first_stage: str = "auto",
) -> dict:
    """Evaluate first stage vs reranked of a pipeline output directory; return the summary.

    Writes ``per_query.parquet``, ``summary.json``, ``first_stage.trec``,
    ``reranked.trec`` and the delta chart to ``out`` (default ``outdir/eval``).
    ``first_stage``: ``auto`` (the job's input when results are cut to top_n and the
    input is readable and unchanged, else the results), ``input`` or ``results``; the
    summary's ``first_stage_source`` says which was used. Raises EvalInputError on bad input.
    """
    outdir = Path(outdir)
    runs = read_output_dir(outdir, first_stage=first_stage)
    judgments = load_judgments(qrels)
    warnings = list(runs.warnings)
    deeper = [n for n in parse_k(k) if runs.top_n is not None and n > runs.top_n]
    if runs.first_stage_source == "input" and runs.cut_queries and deeper:
        warnings.append(
            f"reranked holds only the top {runs.top_n} docs per query, first_stage the full "
            f"input list: at k = {', '.join(map(str, deeper))} the reranked metrics count "
            f"no docs below rank {runs.top_n}"
        )
    return _evaluate(
        [runs.first_stage, runs.reranked],
        judgments,
        Path(out) if out is not None else outdir / "eval",
        k=k,
        relevance_threshold=relevance_threshold,
        significance=significance,
        inputs={
            "output_dir": str(outdir),
            "qrels": str(qrels),
            "top_n": runs.top_n,
            "first_stage_input": runs.input_path,
        },
        warnings=warnings,
        write_run_files=True,
        print_table=print_table,
        stream=stream,
        first_stage_source=runs.first_stage_source,
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
    return _evaluate(
        runs,
        judgments,
        Path(out),
        k=k,
        relevance_threshold=relevance_threshold,
        significance=significance,
        inputs={"runs": [str(p) for p in run_files], "qrels": str(qrels)},
        warnings=[],
        write_run_files=False,
        print_table=print_table,
        stream=stream,
    )


def add_eval_parser(subparsers) -> None:
    """Add the ``eval`` subcommand to an argparse ``subparsers`` object."""
    parser = subparsers.add_parser(
        "eval",
        help="evaluate rankings against relevance judgments (trec_eval conventions)",
        description="Evaluate a pipeline output directory (first stage vs reranked) "
        "or TREC run files against qrels; writes per_query.parquet and summary.json.",
    )
    parser.add_argument("outdir", nargs="?", type=Path, help="pipeline output directory")
    parser.add_argument(
        "--run",
        action="append",
        type=Path,
        metavar="RUNFILE",
        help="TREC run file to evaluate instead of OUTDIR; give twice to compare (baseline first)",
    )
    parser.add_argument(
        "--qrels", required=True, type=Path, help="judgments: TREC qrels, .parquet or .jsonl"
    )
    parser.add_argument(
        "--out", type=Path, help="output folder (default OUTDIR/eval; required with --run)"
    )
    parser.add_argument(
        "--k",
        default=",".join(map(str, DEFAULT_K)),
        help="comma-separated cutoffs (default %(default)s)",
    )
    parser.add_argument(
        "--relevance-threshold",
        type=int,
        default=1,
        metavar="N",
        help="minimum label counted relevant by binary metrics, like trec_eval -l (default 1)",
    )
    parser.add_argument(
        "--significance",
        choices=SIGNIFICANCE_TESTS,
        default=DEFAULT_TEST,
        help="paired test for the comparison (default %(default)s)",
    )
    parser.add_argument(
        "--first-stage",
        choices=FIRST_STAGE_SOURCES,
        default="auto",
        help="OUTDIR only: where the first-stage ranking comes from. 'input': the job's input "
        "(full candidate lists); 'results': the input_rank order of the result rows (only the "
        "reranked top docs when top_n was set); 'auto' (default): input when the results are "
        "cut and the input is readable and unchanged, else results",
    )
    parser.add_argument("--quiet", action="store_true", help="do not print the table")
    parser.set_defaults(func=run_eval_command)


def run_eval_command(args: argparse.Namespace) -> int:
    """Run ``eval`` from parsed arguments; returns the exit status (2 on bad input)."""
    try:
        if args.outdir is not None and args.run:
            raise EvalInputError("give either OUTDIR or --run, not both")
        common = dict(
            k=args.k,
            relevance_threshold=args.relevance_threshold,
            print_table=not args.quiet,
            significance=args.significance,
        )
        if args.run:
            if args.out is None:
                raise EvalInputError(
                    "--run needs --out DIR: where to write per_query.parquet and summary.json"
                )
            evaluate_run_files(args.run, args.qrels, args.out, **common)
        elif args.outdir is not None:
            evaluate_output_dir(
                args.outdir, args.qrels, out=args.out, first_stage=args.first_stage, **common
            )
        else:
            raise EvalInputError("give a pipeline output directory (OUTDIR) or --run RUNFILE")
    except EvalInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rerank-pipeline")
    add_eval_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
