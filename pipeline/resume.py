"""Resume: what an earlier run of the same job into the same directory already finished.

    state = prepare_resume(Path("out"), cfg, overwrite=False, retry_failed=False)
    state.is_done("q17")  # True when q17 is in a committed results/ or failures/ part
    state.ledger          # the run's QueryLedger: finished ids, then this run's seen ids

Only parts named in `_manifest.jsonl` count (see `pipeline.write`); anything else in the
dataset folders was cut off by a crash and is removed here, before the run starts. A
directory written by a *different* job (input, provider, model, top_n...) is refused
unless `--overwrite` is given, so outputs of two jobs are never mixed.

Finished ids go straight from each part's `query_id` column into the run's `QueryLedger`
(on disk, one row per id), a row group at a time: there is one copy of them, not a set per
purpose, and no Python string per id. The same ledger then records the ids this run sees,
and lets the reader skip finished rows unread.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.config import JobConfig
from pipeline.ledger import QueryLedger
from pipeline.read import resolve_sources
from pipeline.setup import SetupError
from pipeline.write import DATASETS, committed_parts, drop_retryable_failures
from pipeline.write.parts import MANIFEST

JOB_FILE = "_job.json"
ID_BATCH_ROWS = 65_536  # rows of a part read at a time when loading finished ids


def job_identity(cfg: JobConfig) -> dict:
    """What must match for a directory to be resumed: everything that changes the output."""
    sources = resolve_sources(cfg.input.path, cfg.input.format)
    files = [[str(p), p.stat().st_size] for p, _ in sources]
    identity = {
        "input": {
            "files": files,
            "layout": cfg.input.layout,
            "columns": sorted(vars_of(cfg.input.columns).items()),
            "truncate": cfg.input.truncate,
        },
        "provider": {
            "kind": cfg.provider.kind,
            "model": cfg.provider.model,
            "url": cfg.provider.endpoint or cfg.provider.base_url,
        },
        "output": {"top_n": cfg.output.top_n, "include_text": cfg.output.include_text},
    }
    return orjson.loads(orjson.dumps(identity))  # JSON-native, as it is stored


def vars_of(obj: object) -> dict:
    return {name: getattr(obj, name) for name in getattr(obj, "__slots__", ())}


def fingerprint(identity: dict) -> str:
    return hashlib.sha256(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


@dataclass(slots=True)
class ResumeState:
    ledger: QueryLedger = field(default_factory=QueryLedger)
    resumed: bool = False
    retrying: int = 0  # transient failures taken out of failures/ to be run again
    ranked_earlier: int = 0  # queries in results/ before this run
    failed_earlier: int = 0  # rows in failures/ before this run

    def is_done(self, query_id: str | None) -> bool:
        return self.ledger.is_done(query_id)

    def failure_recorded(self, source: str) -> bool:
        return self.ledger.failure_recorded(source)


def prepare_resume(
    out_dir: Path, cfg: JobConfig, *, overwrite: bool, retry_failed: bool
) -> ResumeState:
    identity = job_identity(cfg)
    job_file = out_dir / JOB_FILE
    if job_file.exists():
        earlier = orjson.loads(job_file.read_bytes())
        if overwrite:
            clear_outputs(out_dir)
        elif earlier.get("fingerprint") != fingerprint(identity):
            diff = _differences(earlier.get("identity", {}), identity)
            raise SetupError(
                f"output.dir {str(out_dir)!r} holds the output of a different job ({diff}); "
                "choose another output.dir, or pass --overwrite to replace it"
            )
    elif overwrite:
        clear_outputs(out_dir)
    elif any((out_dir / name).exists() and any((out_dir / name).iterdir()) for name in DATASETS):
        raise SetupError(
            f"output.dir {str(out_dir)!r} already holds files not written by this tool's job "
            "record; choose another output.dir, or pass --overwrite to replace it"
        )
    job_file.write_bytes(
        orjson.dumps(
            {"fingerprint": fingerprint(identity), "identity": identity}, option=orjson.OPT_INDENT_2
        )
    )
    _repair_manifest(out_dir)
    _remove_uncommitted(out_dir, committed_parts(out_dir))
    retrying: list[str] = []
    if retry_failed:
        retrying = drop_retryable_failures(out_dir)
    parts = committed_parts(out_dir)
    state = ResumeState(resumed=any(parts.values()), retrying=len(retrying))
    _load_finished(state, parts)
    return state


def _load_finished(state: ResumeState, parts: dict[str, list[Path]]) -> None:
    ledger = state.ledger
    for path in parts["results"]:
        for batch in _batches(path, ["query_id"]):
            ledger.load_ids(batch.column(0), QueryLedger.RANKED)
    state.ranked_earlier = ledger.count(QueryLedger.RANKED)
    for path in parts["failures"]:
        for batch in _batches(path, ["query_id", "source", "error"]):
            state.failed_earlier += batch.num_rows
            ledger.load_sources(batch.column(1))
            # A duplicate's failure row is about a later occurrence, not the query: the first
            # occurrence may still be unranked (it was in flight when the run stopped).
            not_duplicate = pc.fill_null(pc.not_equal(batch.column(2), "duplicate_query_id"), True)
            ledger.load_ids(batch.column(0).filter(not_duplicate), QueryLedger.FAILED)


def _batches(path: Path, columns: list[str]) -> Iterator[pa.RecordBatch]:
    return pq.ParquetFile(path).iter_batches(batch_size=ID_BATCH_ROWS, columns=columns)


def clear_outputs(out_dir: Path) -> None:
    for name in DATASETS:
        shutil.rmtree(out_dir / name, ignore_errors=True)
    for name in (MANIFEST, JOB_FILE, "summary.json", "job.resolved.toml"):
        (out_dir / name).unlink(missing_ok=True)
    shutil.rmtree(out_dir / "eval", ignore_errors=True)


def _repair_manifest(out_dir: Path) -> None:
    """Drop a last line cut off mid-write, so the next append starts on a fresh line."""
    manifest = out_dir / MANIFEST
    if not manifest.exists():
        return
    data = manifest.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data[: data.rfind(b"\n") + 1]
        with open(manifest, "r+b") as fh:
            fh.truncate(len(keep))


def _remove_uncommitted(out_dir: Path, parts: dict[str, list[Path]]) -> None:
    for name in DATASETS:
        folder = out_dir / name
        if not folder.exists():
            continue
        keep = {p.name for p in parts[name]}
        for path in folder.iterdir():
            if path.is_file() and path.name not in keep:
                path.unlink()


def _differences(old: dict, new: dict, prefix: str = "") -> str:
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            inner = _differences(a, b, f"{prefix}{key}.")
            if inner:
                diffs.append(inner)
        elif a != b:
            diffs.append(f"{prefix}{key}: was {a!r}, now {b!r}")
    return "; ".join(diffs)
