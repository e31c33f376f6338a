"""``rerank-pipeline eval``: did reranking help, by how much, and where.

    rerank-pipeline eval OUTDIR --qrels qrels.txt [--k 1,3,5,10] [--out DIR] [-q]
    rerank-pipeline eval --run bm25.run [--run other.run] --qrels qrels.txt --out DIR

>>> parser = argparse.ArgumentParser(prog="rerank-pipeline")
>>> add_eval_parser(parser.add_subparsers())
>>> args = parser.parse_args(["eval", "out", "--qrels", "q.txt", "-q"])
>>> args.outdir.name, args.quiet, args.k, args.significance
('out', True, '1,3,5,10,20,100', 't-test')

Exit status: 0 done; 2 bad input (one line naming the file, line or row, and field);
130 interrupted. Building the parser imports no polars: the evaluation does, when it runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.evaluate.errors import EvalInputError
from pipeline.evaluate.settings import DEFAULT_K, DEFAULT_TEST, SIGNIFICANCE_TESTS


def add_eval_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    parser.add_argument("-q", "--quiet", action="store_true", help="do not print the table")
    parser.set_defaults(func=run_eval_command)


def run_eval_command(args: argparse.Namespace) -> int:
    """Run ``eval`` from parsed arguments; returns the exit status."""
    from pipeline.evaluate.evaluation import evaluate_output_dir, evaluate_run_files

    common = {
        "k": args.k,
        "relevance_threshold": args.relevance_threshold,
        "print_table": not args.quiet,
        "significance": args.significance,
    }
    try:
        if args.outdir is not None and args.run:
            raise EvalInputError("give either OUTDIR or --run, not both")
        if args.run:
            if args.out is None:
                raise EvalInputError(
                    "--run needs --out DIR: where to write per_query.parquet and summary.json"
                )
            evaluate_run_files(args.run, args.qrels, args.out, **common)
        elif args.outdir is not None:
            evaluate_output_dir(args.outdir, args.qrels, out=args.out, **common)
        else:
            raise EvalInputError("give a pipeline output directory (OUTDIR) or --run RUNFILE")
    except EvalInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted: evaluation stopped; its output folder may be incomplete "
            "(summary.json is written last)",
            file=sys.stderr,
        )
        return 130
    return 0
