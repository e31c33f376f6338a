"""`rerank-pipeline cache stats PATH` and `rerank-pipeline cache drop PATH --model NAME`.

    rerank-pipeline cache stats cache/scores.db            # entries, size, ages, per model
    rerank-pipeline cache stats cache/scores.db --json
    rerank-pipeline cache drop cache/scores.db --model jina-reranker-v2-base-multilingual
    rerank-pipeline cache drop cache/scores.db --older-than-days 90

Wired into the CLI by `pipeline.cli._add_optional_commands` (`add_cache_parser(sub)`).
Exit status: 0 done; 2 the file is missing or not a score cache, or `drop` matched nothing
it could match on.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import orjson

EXIT_OK, EXIT_SETUP = 0, 2


def add_cache_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser("cache", help="see what a score cache holds, or drop entries")
    sub = p.add_subparsers(dest="cache_command", required=True)
    stats = sub.add_parser("stats", help="entries, size, oldest/newest, per model")
    stats.add_argument("path", type=Path, help="the cache file ([cache] path of a job)")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.set_defaults(func=cmd_stats)
    drop = sub.add_parser("drop", help="delete the entries of a model, or old entries")
    drop.add_argument("path", type=Path, help="the cache file")
    drop.add_argument("--model", help="the model name, as `cache stats` shows it")
    drop.add_argument("--kind", help="only entries of this provider kind")
    drop.add_argument(
        "--older-than-days", type=float, metavar="DAYS", help="only entries older than this"
    )
    drop.set_defaults(func=cmd_drop)
    return p


def cmd_stats(args: argparse.Namespace) -> int:
    from pipeline.cache.admin import cache_stats
    from pipeline.cache.store import CacheFileError

    try:
        stats = cache_stats(args.path)
    except CacheFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    if args.json:
        sys.stdout.write(orjson.dumps(stats, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(format_stats(stats))
    return EXIT_OK


def cmd_drop(args: argparse.Namespace) -> int:
    from pipeline.cache.admin import drop_entries
    from pipeline.cache.store import CacheFileError

    if args.model is None and args.kind is None and args.older_than_days is None:
        print(
            "error: cache drop needs --model, --kind or --older-than-days "
            "(to drop everything, delete the file)",
            file=sys.stderr,
        )
        return EXIT_SETUP
    if not args.path.is_file():
        print(f"error: {args.path}: no such cache file", file=sys.stderr)
        return EXIT_SETUP
    try:
        n = drop_entries(
            args.path, model=args.model, kind=args.kind, older_than_days=args.older_than_days
        )
    except CacheFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_SETUP
    print(f"dropped {n:,} entries from {args.path}")
    return EXIT_OK


def format_stats(stats: dict) -> str:
    lines = [
        f"cache     {stats['path']}  ({stats['bytes'] / 1e6:,.1f} MB on disk)",
        f"entries   {stats['entries']:,}  oldest {_when(stats['oldest'])}  "
        f"newest {_when(stats['newest'])}",
    ]
    for m in stats["models"]:
        lines.append(
            f"  {m['entries']:>12,}  {m['kind']} {m['model'] or '(server default model)'}  "
            f"{m['url']}  {_when(m['oldest'])} .. {_when(m['newest'])}"
            + (f"  options {m['options']}" if m["options"] not in (None, "{}") else "")
        )
    return "\n".join(lines)


def _when(ts: int | None) -> str:
    if ts is None:
        return "-"
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
