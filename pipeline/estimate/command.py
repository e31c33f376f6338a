"""`rerank-pipeline estimate JOB.toml` and `rerank-pipeline report OUTDIR`.

    rerank-pipeline estimate jobs/jina-nightly.toml                        # plan only, nothing sent
    rerank-pipeline estimate jobs/jina-nightly.toml --calibrate out/pilot  # scaled by a real run
    rerank-pipeline report out/nightly                                     # what a run did cost

Wired into the CLI by `pipeline.cli._add_subcommands`:

    from pipeline.estimate.command import add_estimate_parser, add_report_parser
    add_estimate_parser(sub); add_report_parser(sub)

Exit status: 0 done; 2 the job, input, calibration directory or tokenizer is unusable;
130 interrupted (nothing was sent, estimate.json not written). Tables go to stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from pipeline.text import plural

if TYPE_CHECKING:
    from pipeline.estimate.plan import Estimate
    from pipeline.storage import Location

EXIT_OK, EXIT_SETUP, EXIT_INTERRUPTED = 0, 2, 130


def add_estimate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "estimate", help="plan a job's requests and price them, sending nothing"
    )
    p.add_argument("job", help="the job's TOML file, e.g. jobs/jina-nightly.toml")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a job key with a TOML value (repeatable)",
    )
    p.add_argument(
        "--calibrate",
        metavar="OUTDIR",
        help="scale the estimate by what an earlier run of the same provider reported "
        "(a folder, or an object store's URL)",
    )
    p.add_argument(
        "--latency-ms",
        type=float,
        metavar="MS",
        help="typical latency of one request, for the concurrency-bound time",
    )
    p.add_argument(
        "--tokenizer",
        metavar="TOKENIZER_JSON",
        type=Path,
        help="count tokens with this local tokenizer.json (needs the tokenizers extra)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no table; estimate.json only")
    p.set_defaults(func=cmd_estimate)
    return p


def add_report_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "report", help="requests, attempts, tokens and cost of a finished run"
    )
    p.add_argument("out_dir", help="the run's output directory (a path, or s3://bucket/prefix)")
    p.add_argument(
        "--json", action="store_true", help="print the report as JSON instead of a table"
    )
    p.set_defaults(func=cmd_report)
    return p


def cmd_estimate(args: argparse.Namespace) -> int:
    from pipeline.accounting.prices import PricingError, check_pricing
    from pipeline.config import ConfigError, load_job
    from pipeline.errors import SetupError
    from pipeline.estimate.calibrate import CalibrationError, load_calibration
    from pipeline.estimate.counters import TokenizerCounter, TokenizerError
    from pipeline.estimate.plan import estimate_job
    from pipeline.read import InputError
    from pipeline.storage import location

    try:
        cfg = load_job(args.job, args.overrides)
        check_pricing(cfg.pricing)
        if args.latency_ms is not None and args.latency_ms < 0:
            raise ConfigError(f"--latency-ms {args.latency_ms:g}: must be >= 0")
        counter = TokenizerCounter(args.tokenizer) if args.tokenizer else None
        calibration = None
        if args.calibrate:
            calibration = load_calibration(location(args.calibrate, "--calibrate", SetupError))
            if calibration.kind not in (None, cfg.provider.kind):
                raise CalibrationError(
                    f"{args.calibrate} was a run of provider {calibration.kind!r}, this job uses "
                    f"{cfg.provider.kind!r}: calibrate with a run of the same provider"
                )
        est = estimate_job(
            cfg, count_tokens=counter, calibration=calibration, latency_ms=args.latency_ms
        )
        out_dir = location(cfg.output.dir, "output.dir", SetupError)
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / "estimate.json"
        target.write_bytes(orjson.dumps(est.to_json(), option=orjson.OPT_INDENT_2))
    except (
        ConfigError,
        PricingError,
        InputError,
        CalibrationError,
        TokenizerError,
        SetupError,
        OSError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    except KeyboardInterrupt:  # planning a large input takes a while
        print("interrupted: nothing was sent; no estimate.json written", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not args.quiet:
        print(format_estimate(est, args.job, target))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from pipeline.config import ConfigError
    from pipeline.estimate.calibrate import CalibrationError
    from pipeline.estimate.report import format_report, run_report
    from pipeline.storage import location

    try:
        report = run_report(location(args.out_dir, "OUT_DIR"))
    except (CalibrationError, ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    if args.json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(format_report(report))
    return EXIT_OK


def estimate_cache_line(block: dict) -> str:
    """The cache's line of the estimate table: the run would send only the misses."""
    if not block.get("exists"):
        return f"cache     {block['path']} does not exist yet: every pair would be sent"
    from pipeline.cache.summary import cache_line

    return cache_line(block).replace(" sent;", " to send;") + "  (figures above: sent only)"


def format_estimate(est: Estimate, job: str, target: Location) -> str:
    p = est.provider
    how = "heuristic"
    if est.tokens_tokenizer is not None:
        how = "tokenizer"
    cal = est.calibration
    if cal and cal["token_ratio"] is not None:
        how = f"heuristic x {cal['token_ratio']:.4f} from {cal['source']} ({plural(cal['token_rows'], 'request')})"
    lines = [
        f"estimate  {job}  ({p['kind']}, {p['model'] or 'server default model'}): nothing was sent",
        f"queries   {est.queries:,}  documents {est.documents:,}  requests {est.requests:,}"
        + (
            f"  (+{est.input_failures:,} input rows a run would fail)" if est.input_failures else ""
        ),
        f"tokens    {est.tokens:,}  ({how})",
    ]
    if est.billing == "search_units":
        lines.append(f"search    units {est.search_units:,}")
    if cal:
        # A pilot that cannot scale this basis must not look like a calibrated estimate.
        basis = "search_units" if est.billing == "search_units" else "tokens"
        problem = (cal.get("unusable") or {}).get(basis)
        if problem:
            lines.append(f"warning   not calibrated: {problem}; the figures above are uncalibrated")
    if est.billing == "none":
        lines.append(f"cost      none ({est.price})")
    else:
        cost = "unknown" if est.cost_usd is None else f"${est.cost_usd:,.4f}"
        lines.append(f"cost      {cost}  [{est.price}]")
    if est.cache is not None:
        lines.append(estimate_cache_line(est.cache))
    if est.seconds is None:
        lines.append(
            "time      unknown: no rate limits set and no latency (--latency-ms or --calibrate)"
        )
    else:
        parts = ", ".join(f"{k} {v:,.1f}s" for k, v in est.seconds_by_limit.items())
        lines.append(f"time      {est.seconds:,.1f}s, bound by {est.binding_limit}  ({parts})")
    if not est.queries and not est.input_failures:
        lines.append("note      the input held no queries: a run would send nothing")
    lines.append(f"written   {target}  (planned in {est.elapsed_seconds:.2f}s)")
    return "\n".join(lines)
