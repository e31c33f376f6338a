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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import JobConfig
from pipeline.errors import SetupError
from pipeline.ledger import QueryLedger
from pipeline.read import resolve_sources
from pipeline.storage import Location, parquet_file
from pipeline.write import DATASETS, committed_parts, drop_retryable_failures
from pipeline.write.ownership import clear_our_outputs, foreign_files
from pipeline.write.parts import MANIFEST

JOB_FILE = "_job.json"
ID_BATCH_ROWS = 65_536  # rows of a part read at a time when loading finished ids


def job_identity(cfg: JobConfig) -> dict:
    """What must match for a directory to be resumed: everything that changes the output."""
    sources = resolve_sources(cfg.input.path, cfg.input.format)
    files = [[str(p), p.stat().st_size] for p, _ in sources]
    output: dict[str, Any] = {"top_n": cfg.output.top_n, "include_text": cfg.output.include_text}
    if cfg.limits.final_pass:
        # results/ then has two more columns and another ranking. Named only when set, so
        # the directories of jobs without it keep their fingerprint.
        output["final_pass"] = True
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
        "output": output,
    }
    return orjson.loads(orjson.dumps(identity))  # JSON-native, as it is stored


def vars_of(obj: object) -> dict:
    return {name: getattr(obj, name) for name in getattr(obj, "__slots__", ())}


def fingerprint(identity: dict) -> str:
    return hashlib.sha256(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


@dataclass(slots=True)
class ResumeState:
    ledger: QueryLedger = field(default_factory=QueryLedger)
    retrying: int = 0  # transient failures taken out of failures/ to be run again
    ranked_earlier: int = 0  # queries in results/ before this run
    failed_earlier: int = 0  # rows in failures/ before this run

    def is_done(self, query_id: str | None) -> bool:
        return self.ledger.is_done(query_id)

    def failure_recorded(self, source: str) -> bool:
        return self.ledger.failure_recorded(source)


def prepare_resume(
    out_dir: Location,
    cfg: JobConfig,
    *,
    overwrite: bool,
    retry_failed: bool,
    accept_changed_input: bool = False,
) -> ResumeState:
    identity = job_identity(cfg)
    job_file = out_dir / JOB_FILE
    if overwrite:
        clear_our_outputs(out_dir)  # refuses, naming them, where other files would go too
    elif job_file.exists():
        earlier = orjson.loads(job_file.read_bytes()).get("identity", {})
        if fingerprint(earlier) != fingerprint(identity):
            _check_same_job(out_dir, earlier, identity, accept_changed_input)
    elif any((out_dir / name).exists() and any((out_dir / name).iterdir()) for name in DATASETS):
        foreign = foreign_files(out_dir)
        what = (
            f"files this tool did not write ({', '.join(foreign[:5])})"
            if foreign
            else ("part files without this tool's job record")
        )
        raise SetupError(
            f"output.dir {str(out_dir)!r} already holds {what}; choose another output.dir"
            + ("" if foreign else ", or pass --overwrite to delete them and start over")
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
    state = ResumeState(retrying=len(retrying))
    _load_finished(state, parts)
    return state


def _load_finished(state: ResumeState, parts: dict[str, list[Location]]) -> None:
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


def _batches(path: Location, columns: list[str]) -> Iterator[pa.RecordBatch]:
    # Only these columns are read (on an object store: ranged GETs of their column chunks).
    return parquet_file(path).iter_batches(batch_size=ID_BATCH_ROWS, columns=columns)


def _check_same_job(out_dir: Location, earlier: dict, identity: dict, accept_changed: bool) -> None:
    """Refuse another job's directory. A job whose only change is its input files (sizes,
    names: a repaired input) resumes with `accept_changed`: finished queries are kept, and
    the rest is read from the files as they are now."""
    diff = _differences(earlier, identity)
    only_files = _without_files(earlier) == _without_files(identity)
    if only_files and accept_changed:
        return
    hint = (
        "if you repaired the input, pass --accept-changed-input to keep the finished "
        "queries and run the rest; otherwise "
        if only_files
        else ""
    )
    raise SetupError(
        f"output.dir {str(out_dir)!r} holds the output of a different job ({diff}); {hint}"
        "choose another output.dir, or pass --overwrite to start over (it deletes only "
        "this tool's own outputs)"
    )


def _without_files(identity: dict) -> dict:
    return {**identity, "input": {**identity.get("input", {}), "files": None}}


def _repair_manifest(out_dir: Location) -> None:
    """Drop a last line cut off mid-write, so the next append starts on a fresh line (on an
    object store the manifest is replaced whole: no line is ever cut off)."""
    manifest = out_dir / MANIFEST
    if not isinstance(manifest, Path) or not manifest.exists():
        return
    data = manifest.read_bytes()
    if data and not data.endswith(b"\n"):
        keep = data[: data.rfind(b"\n") + 1]
        with open(manifest, "r+b") as fh:
            fh.truncate(len(keep))


def _remove_uncommitted(out_dir: Location, parts: dict[str, list[Location]]) -> None:
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
