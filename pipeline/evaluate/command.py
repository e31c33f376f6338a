"""``rerank-pipeline eval``: did reranking help, by how much, and where (README, "Evaluation").

>>> parser = argparse.ArgumentParser(prog="rerank-pipeline")
>>> add_eval_parser(parser.add_subparsers())
>>> args = parser.parse_args(["eval", "out", "--qrels", "q.txt", "-q"])
>>> args.outdir, args.quiet, args.k, args.significance
('out', True, '1,3,5,10,20,100', 't-test')

Exit status: 0 done; 2 bad input (one line naming the file, line or row, and field);
130 interrupted. Building the parser imports no polars.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from pipeline.evaluate.errors import EvalInputError
from pipeline.evaluate.settings import DEFAULT_K, DEFAULT_TEST, SIGNIFICANCE_TESTS


def add_eval_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``eval`` subcommand to an argparse ``subparsers`` object."""
    parser = subparsers.add_parser(
        "eval",
        help="evaluate rankings against relevance judgments (trec_eval conventions)",
        description="Evaluate a pipeline output directory (first stage vs reranked) or TREC "
        "run files against qrels; writes per_query.parquet and summary.json.",
    )
    add = parser.add_argument
    add("outdir", nargs="?", help="pipeline output directory (a path, or s3://bucket/prefix)")
    add(
        "--run",
        action="append",
        type=Path,
        metavar="RUNFILE",
        help="a TREC run file to "
        "evaluate instead of OUTDIR; give two to compare them (baseline first)",
    )
    add("--qrels", required=True, type=Path, help="judgments: TREC qrels, .parquet or .jsonl")
    add("--out", type=Path, help="output folder (default OUTDIR/eval; required with --run)")
    add("--k", default=",".join(map(str, DEFAULT_K)), help="cutoffs (default %(default)s)")
    add(
        "--relevance-threshold",
        type=int,
        default=1,
        metavar="N",
        help="the least label "
        "binary metrics count as relevant, like trec_eval -l (default %(default)s)",
    )
    add(
        "--significance",
        choices=SIGNIFICANCE_TESTS,
        default=DEFAULT_TEST,
        help="the paired test of each difference (default %(default)s)",
    )
    add("-q", "--quiet", action="store_true", help="do not print the table")
    parser.set_defaults(func=run_eval_command)


def _stop_on_interrupt(signum: int, frame: object) -> None:
    # polars looks for signals inside its own work and may swallow the KeyboardInterrupt (the
    # run then goes on) or panic on it: ending the process here is what always stops cleanly.
    print("interrupted: eval stopped; its output folder may be incomplete", file=sys.stderr)
    sys.stderr.flush()
    os._exit(130)


def run_eval_command(args: argparse.Namespace) -> int:
    """Run ``eval`` from parsed arguments; returns the exit status (Ctrl-C exits with 130)."""
    from pipeline.evaluate.evaluation import evaluate_output_dir, evaluate_run_files

    options = {"k": args.k, "relevance_threshold": args.relevance_threshold}
    options |= {"print_table": not args.quiet, "significance": args.significance}
    interrupt = signal.signal(signal.SIGINT, _stop_on_interrupt)
    try:
        if args.outdir is not None and args.run:
            raise EvalInputError("give either OUTDIR or --run, not both")
        if args.run and args.out is None:
            raise EvalInputError("--run needs --out DIR: where to write the evaluation's files")
        if args.run:
            evaluate_run_files(args.run, args.qrels, args.out, **options)
        elif args.outdir is not None:
            evaluate_output_dir(args.outdir, args.qrels, out=args.out, **options)
        else:
            raise EvalInputError("give a pipeline output directory (OUTDIR) or --run RUNFILE")
    except EvalInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGINT, interrupt)
    return 0
