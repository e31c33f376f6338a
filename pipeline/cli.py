"""The command line: `rerank-pipeline run JOB.toml [--set section.key=value ...]`.

Exit status: see EXIT_STATUSES (printed by --help). Tables go to stdout, diagnostics
(warnings, errors, progress) to stderr; a reader that closes stdout early (`| head`)
changes neither the exit status nor what is written (`pipeline.console`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from pipeline import __version__
from pipeline.accounting.cost import cost_lines
from pipeline.allocator import fix_mmap_threshold, limit_malloc_arenas, use_system_arrow_pool
from pipeline.cache.summary import cache_line
from pipeline.config import JobConfig, load_job
from pipeline.console import guarded_streams
from pipeline.errors import ConfigError, InputError, SetupError
from pipeline.run import EXIT_INTERRUPTED, EXIT_SETUP, Outcome, prepare_job, run_job
from pipeline.run.failure_table import failure_kinds, format_failures
from pipeline.text import plural

EXIT_STATUSES = """\
exit status:
  0    every query ranked (estimate, report, eval, compare: done)
  1    some queries failed: see OUTDIR/failures/; --retry-failed runs the transient ones again
  2    the job, input or setup is invalid (nothing was sent), or the output could not be
       written (the work committed before is saved: run again to resume)
  3    the API refused the key (401/403): the job stopped at once
  4    the endpoint is unusable: it kept failing and the job stopped (circuit breaker)
  130  interrupted (Ctrl-C, SIGTERM): finished work is saved; run again to resume
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rerank-pipeline",
        description="Rerank candidate lists through a rerank API, streamed, resumable, accounted.",
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="run a job file",
        description="Run a job file: rank every query of its input, resumable.",
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("job", help="the job's TOML file, e.g. jobs/sample.toml")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a job key with a TOML value (repeatable)",
    )
    run.add_argument(
        "--quiet", "-q", action="store_true", help="no progress bar or end-of-run table"
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="start over: delete this tool's earlier outputs in output.dir (never other files)",
    )
    run.add_argument(
        "--accept-changed-input",
        action="store_true",
        help="resume although the input files changed (repaired): finished queries are kept",
    )
    run.add_argument(
        "--retry-failed",
        action="store_true",
        help="run again the queries in failures/ whose errors were transient",
    )
    run.set_defaults(func=cmd_run)
    _add_subcommands(sub)
    return parser


def _add_subcommands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from pipeline.compare.command import add_compare_parser
    from pipeline.estimate.command import add_estimate_parser, add_report_parser
    from pipeline.evaluate.command import add_eval_parser

    add_eval_parser(sub)
    add_compare_parser(sub)
    add_estimate_parser(sub)
    add_report_parser(sub)
    from pipeline.cache.command import add_cache_parser

    add_cache_parser(sub)


def cmd_run(args: argparse.Namespace) -> int:
    try:
        cfg = load_job(args.job, args.overrides)
        job = prepare_job(
            cfg,
            overwrite=args.overwrite,
            retry_failed=args.retry_failed,
            accept_changed_input=args.accept_changed_input,
        )
        if args.retry_failed and not args.quiet:
            print(
                f"retrying {plural(job.resume.retrying, 'query')} that failed with transient errors",
                file=sys.stderr,
            )
    except (ConfigError, SetupError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    except OSError as exc:  # the output directory's own files (job record, earlier parts)
        where = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
        print(f"error: {where}", file=sys.stderr)
        return EXIT_SETUP
    except KeyboardInterrupt:
        print("interrupted before the first request: nothing was sent", file=sys.stderr)
        return EXIT_INTERRUPTED
    try:
        outcome = asyncio.run(run_job(job, quiet=args.quiet))
    except KeyboardInterrupt:  # a second Ctrl-C: give up the grace period
        print(
            "interrupted: finished work is saved; run the same command again to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except InputError as exc:  # a file that became unreadable mid-run
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    totals = (outcome.summary or {}).get("output_dir_totals", {})
    if not args.quiet:
        print_summary(outcome, cfg.output.dir)
        if totals.get("failed"):
            print_failures(cfg.output.dir, earlier=totals["failed"] - outcome.stats.queries_failed)
    if outcome.message:
        print(outcome.message, file=sys.stderr)
    if cfg.eval.qrels and outcome.exit_code in (0, 1):
        if not totals.get("ranked"):
            print("evaluation skipped: no query has been ranked", file=sys.stderr)
            return outcome.exit_code
        code = run_job_eval(cfg, cfg.eval.qrels, quiet=args.quiet)
        if code:
            return code
    return outcome.exit_code


def print_failures(out_dir: str, earlier: int) -> None:
    """Why queries failed: failures/ by error kind (`pipeline.run.failure_table`)."""
    from pipeline.storage import location

    try:
        kinds = failure_kinds(location(out_dir, "output.dir"))
    except (OSError, ValueError) as exc:  # unreadable: the counts above still stand
        print(f"warning: {out_dir}/failures/ cannot be read: {exc}", file=sys.stderr)
        return
    if kinds:
        print("\n".join(format_failures(kinds, out_dir, earlier)))


def run_job_eval(cfg: JobConfig, qrels: str, quiet: bool) -> int:
    """The job's [eval] section: score the run against its judgments right after it."""
    from pathlib import Path

    from pipeline.evaluate import EvalInputError, evaluate_output_dir

    if not quiet:
        print(f"\nevaluation against {qrels}:")
    try:
        evaluate_output_dir(
            cfg.output.dir,  # a path, or an object store's URL
            Path(qrels),
            k=cfg.eval.k,
            relevance_threshold=cfg.eval.relevance_threshold,
            print_table=not quiet,
            stream=sys.stdout,
        )
    except EvalInputError as exc:
        print(f"error: evaluation: {exc}", file=sys.stderr)
        return EXIT_SETUP
    return 0


def print_summary(outcome: Outcome, out_dir: str) -> None:
    s = outcome.summary or outcome.stats.summary()
    q, r, t, tm = s["queries"], s["requests"], s["tokens"], s["time"]
    reported = (
        "none reported" if t["reported_total"] is None else f"reported {t['reported_total']:,}"
    )
    lines = [
        f"queries   read {q['read']:,}  ranked {q['ranked']:,}  failed {q['failed']:,}"
        + (
            f"  skipped (done earlier) {q['skipped_already_done']:,}"
            if q["skipped_already_done"]
            else ""
        ),
        f"requests  {r['succeeded']:,} ok, {r['failed']:,} failed, "
        f"{plural(r['retries'], 'retry')}, {r['http_429']:,} x 429",
        f"tokens    estimated {t['estimated']:,}  {reported}"
        + (
            f"  search units {t['reported_search_units']:,}"
            if t.get("reported_search_units") is not None
            else ""
        ),
        *_cost_lines(s.get("cost")),
        f"time      {tm['wall_seconds']:.1f}s  ({tm['queries_per_second'] or 0:,.1f} queries/s, "
        f"{tm['documents_per_second'] or 0:,.0f} documents/s)",
        f"output    {out_dir}/results/*.parquet  (failures/, usage/, summary.json)",
    ]
    if s.get("cache"):
        lines.insert(-2, cache_line(s["cache"]))
    print("\n".join(lines))


def _cost_lines(cost: dict | None) -> list[str]:
    if not cost:  # a run that ended before its summary was made
        return ["cost      unknown (no summary)"]
    return cost_lines(cost)


def main(argv: list[str] | None = None) -> int:
    # Flat resident memory (see pipeline.allocator); the arenas before our threads start.
    limit_malloc_arenas()
    fix_mmap_threshold()
    use_system_arrow_pool()
    with guarded_streams():
        try:
            args = build_parser().parse_args(argv)
            return args.func(args)
        except KeyboardInterrupt:  # a command that did not catch it itself
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
