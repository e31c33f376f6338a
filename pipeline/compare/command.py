"""``rerank-pipeline compare``: which reranker is worth its price on your judgments.

    rerank-pipeline compare OUT_A OUT_B [OUT_C ...] --qrels qrels.txt [--out DIR] [--k 1,5,10]
                            [--names a,b,c] [--relevance-threshold N] [--significance TEST] [-q]

>>> parser = argparse.ArgumentParser(prog="rerank-pipeline")
>>> add_compare_parser(parser.add_subparsers())
>>> args = parser.parse_args(["compare", "out/a", "out/b", "--qrels", "q.txt", "--names", "x,y"])
>>> args.outdirs, args.names, args.k, args.out
(['out/a', 'out/b'], 'x,y', '1,3,5,10,20,100', None)

Exit status: 0 done; 2 bad input (directories of other queries or candidates, a malformed
qrels line...: one line saying what); 130 interrupted. Building the parser imports no
polars: the comparison does, when it runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from pipeline.evaluate.errors import EvalInputError
from pipeline.evaluate.settings import DEFAULT_K, DEFAULT_TEST, SIGNIFICANCE_TESTS


def add_compare_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``compare`` subcommand to an argparse ``subparsers`` object."""
    parser = subparsers.add_parser(
        "compare",
        help="compare output directories of the same input on quality and cost",
        description="Compare several pipeline output directories over the same queries and "
        "candidates (and their shared first stage) against qrels: metrics, deltas, paired "
        "tests, the queries they disagree on, and what each cost; writes per_query.parquet, "
        "summary.json and a quality-against-cost chart.",
    )
    add = parser.add_argument
    add("outdirs", nargs="+", metavar="OUTDIR", help="pipeline output directories (or URLs)")
    add("--qrels", required=True, type=Path, help="judgments: TREC qrels, .parquet or .jsonl")
    add("--out", type=Path, help="output folder (default: compare/ beside the first OUTDIR)")
    add("--names", help="comma-separated system names, one per OUTDIR (default: their names)")
    add("--k", default=",".join(map(str, DEFAULT_K)), help="cutoffs (default %(default)s)")
    add(
        "--relevance-threshold",
        type=int,
        default=1,
        metavar="N",
        help="the least label binary metrics count as relevant, like trec_eval -l "
        "(default %(default)s)",
    )
    add(
        "--significance",
        choices=SIGNIFICANCE_TESTS,
        default=DEFAULT_TEST,
        help="the paired test of each difference (default %(default)s)",
    )
    add("-q", "--quiet", action="store_true", help="do not print the table")
    parser.set_defaults(func=run_compare_command)


def _stop_on_interrupt(signum: int, frame: object) -> None:
    # As eval does: polars may swallow a KeyboardInterrupt raised inside its own work, or
    # panic on it; ending the process here is what always stops cleanly.
    print("interrupted: compare stopped; its output folder may be incomplete", file=sys.stderr)
    sys.stderr.flush()
    os._exit(130)


def run_compare_command(args: argparse.Namespace) -> int:
    """Run ``compare`` from parsed arguments; returns the exit status."""
    from pipeline.compare.comparison import compare_output_dirs

    interrupt = signal.signal(signal.SIGINT, _stop_on_interrupt)
    try:
        compare_output_dirs(
            args.outdirs,
            args.qrels,
            out=args.out,
            names=args.names,
            k=args.k,
            relevance_threshold=args.relevance_threshold,
            significance=args.significance,
            print_table=not args.quiet,
        )
    except EvalInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGINT, interrupt)
    return 0
