"""The command line: `rerank-pipeline run JOB.toml [--set section.key=value ...]`.

Exit status: 0 every query ranked; 1 some queries failed; 2 the job or input is invalid
(nothing was sent); 3 the API refused the key (401/403); 130 interrupted (resumable).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from pipeline import __version__
from pipeline.allocator import limit_malloc_arenas
from pipeline.config import ConfigError, JobConfig, load_job
from pipeline.read import InputError
from pipeline.runner import EXIT_SETUP, JobRun, Outcome
from pipeline.setup import SetupError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rerank-pipeline",
        description="Rerank candidate lists through a rerank API, streamed, resumable, accounted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a job file")
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
        help="replace an output directory written by a different job",
    )
    run.add_argument(
        "--retry-failed",
        action="store_true",
        help="run again the queries in failures/ whose errors were transient",
    )
    run.set_defaults(func=cmd_run)
    _add_optional_commands(sub)
    return parser


def _add_optional_commands(sub: argparse._SubParsersAction) -> None:
    try:
        from pipeline.evaluate.command import add_eval_parser
    except ImportError:  # pragma: no cover - evaluation is part of the package
        return
    add_eval_parser(sub)
    from pipeline.estimate.command import add_estimate_parser, add_report_parser

    add_estimate_parser(sub)
    add_report_parser(sub)


def cmd_run(args: argparse.Namespace) -> int:
    limit_malloc_arenas()  # before any thread: see pipeline.allocator
    try:
        cfg = load_job(args.job, args.overrides)
        job = JobRun(
            cfg, quiet=args.quiet, overwrite=args.overwrite, retry_failed=args.retry_failed
        )
        job.prepare()
        if args.retry_failed and not args.quiet:
            print(
                f"retrying {job.resume.retrying} queries that failed with transient errors",
                file=sys.stderr,
            )
    except (ConfigError, SetupError, InputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    try:
        outcome = asyncio.run(job.run())
    except KeyboardInterrupt:  # a second Ctrl-C: give up the grace period
        print(
            "interrupted: finished work is saved; run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    except InputError as exc:  # a file that became unreadable mid-run
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    if not args.quiet:
        print_summary(outcome, cfg.output.dir)
    if outcome.message:
        print(outcome.message, file=sys.stderr)
    if cfg.eval.qrels and outcome.exit_code in (0, 1):
        code = run_job_eval(cfg, quiet=args.quiet)
        if code:
            return code
    return outcome.exit_code


def run_job_eval(cfg: JobConfig, quiet: bool) -> int:
    """The job's [eval] section: score the run against its judgments right after it."""
    from pathlib import Path

    from pipeline.evaluate import EvalInputError, evaluate_output_dir

    assert cfg.eval.qrels is not None  # cmd_run calls this only for a job that names them
    if not quiet:
        print(f"\nevaluation against {cfg.eval.qrels}:", file=sys.stderr)
    try:
        evaluate_output_dir(
            Path(cfg.output.dir),
            Path(cfg.eval.qrels),
            k=cfg.eval.k,
            relevance_threshold=cfg.eval.relevance_threshold,
            print_table=not quiet,
            stream=sys.stderr,
        )
    except EvalInputError as exc:
        print(f"error: evaluation: {exc}", file=sys.stderr)
        return EXIT_SETUP
    return 0


def print_summary(outcome: Outcome, out_dir: str) -> None:
    s = outcome.summary or outcome.stats.summary()
    q, r, t, tm = s["queries"], s["requests"], s["tokens"], s["time"]
    cost = s.get("cost") or {}
    reported = "not reported" if t["reported_total"] is None else f"{t['reported_total']:,}"
    lines = [
        f"queries   read {q['read']:,}  ranked {q['ranked']:,}  failed {q['failed']:,}"
        + (
            f"  skipped (done earlier) {q['skipped_already_done']:,}"
            if q["skipped_already_done"]
            else ""
        ),
        f"requests  {r['succeeded']:,} ok, {r['failed']:,} failed, {r['retries']:,} retries, {r['http_429']:,} x 429",
        f"tokens    estimated {t['estimated']:,}  reported {reported}"
        + (
            f"  search units {t['reported_search_units']:,}"
            if t.get("reported_search_units") is not None
            else ""
        ),
        f"cost      {_usd(cost.get('usd'))}" + (f"  ({cost['from']})" if cost.get("from") else ""),
        f"time      {tm['wall_seconds']:.1f}s  ({tm['queries_per_second'] or 0:,.1f} queries/s, "
        f"{tm['documents_per_second'] or 0:,.0f} documents/s)",
        f"output    {out_dir}/results/*.parquet  (failures/, usage/, summary.json)",
    ]
    print("\n".join(lines), file=sys.stderr)


def _usd(value: float | None) -> str:
    return "unknown (no price for this model: set [pricing])" if value is None else f"${value:,.4f}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
