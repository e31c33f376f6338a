"""The two rankings held in a pipeline output directory.

``OUTDIR/results/*.parquet`` rows (``query_id, doc_id, rank, score,
input_rank``) give two systems over the same rows:

* ``reranked``: each query's docs in ``rank`` order, the order the pipeline
  delivered;
* ``first_stage``: the same docs in ``input_rank`` order.

When the job cut its output to ``top_n``, the rows hold only the reranker's top
docs, so their ``input_rank`` order is the first-stage order *of those docs*, not
the full first-stage list (``cut_queries`` counts the queries where that is
visible). Then, by default (``first_stage="auto"``), ``first_stage`` is rebuilt
from the job's own input instead: ``job.resolved.toml`` names it, the project's
reader streams it, and each evaluated query's full candidate list, in input
order, becomes its first-stage ranking. When that input is gone, unreadable or
changed since the run (``_job.json`` file sizes, or a result row whose
``input_rank`` no longer points at its doc), the results' order is used, with a
warning saying why. ``OutputDirRuns.first_stage_source`` tells which was used.

>>> from pipeline.evaluate.output_dir import read_output_dir  # doctest: +SKIP
>>> runs = read_output_dir(Path("out/"))                       # doctest: +SKIP
>>> runs.reranked.docs["q1"][:3]                               # doctest: +SKIP
['d7', 'd1', 'd3']
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the project depends on tomli there
    import tomli as tomllib

from pipeline.evaluate.errors import EvalInputError
from pipeline.evaluate.runs import RankedRun, scores_reproduce_order

RESULT_COLUMNS = ("query_id", "doc_id", "rank", "score", "input_rank")
FIRST_STAGE = "first_stage"
RERANKED = "reranked"
# Where the first-stage ranking comes from: the job's input or the results' input_rank.
FIRST_STAGE_SOURCES = ("auto", "input", "results")


@dataclass(slots=True)
class OutputDirRuns:
    first_stage: RankedRun
    reranked: RankedRun
    top_n: int | None = None  # from job.resolved.toml [output] top_n, when present
    cut_queries: int = 0  # queries whose rows miss part of their first-stage list
    first_stage_source: str = "results"  # "input" when rebuilt from the job's input
    input_path: str | None = None  # the job's input.path, when first_stage came from it
    warnings: list[str] = field(default_factory=list)


class _InputUnavailable(Exception):
    """The job's input cannot give the first-stage ranking; the message says why."""


@dataclass(slots=True)
class _Row:
    doc_id: str
    rank: int
    score: float
    input_rank: int
    part: Path
    row: int  # 1-based, in file order

    @property
    def where(self) -> str:
        return f"{self.part} row {self.row}"


def result_part_files(outdir: Path) -> list[Path]:
    """Visible ``results/*.parquet`` files, sorted; hidden and temp files are skipped."""
    if not outdir.is_dir():
        raise EvalInputError(f"output directory not found: {outdir}")
    results = outdir / "results"
    if not results.is_dir():
        raise EvalInputError(f"{outdir}: no 'results' folder; is this a pipeline output directory?")
    parts = sorted(
        p for p in results.glob("*.parquet") if p.is_file() and not p.name.startswith((".", "_"))
    )
    if not parts:
        raise EvalInputError(
            f"{results}: no result files (*.parquet); has the job produced output yet?"
        )
    return parts


def _first(mask) -> int | None:
    """Index of the first true value of a boolean pyarrow array, or None."""
    import pyarrow.compute as pc

    index = pc.index(mask.fill_null(True), True).as_py()
    return None if index < 0 else index


def _checked_column(table, path: Path, name: str):
    """One result column, validated for the whole file at once (pyarrow compute, not per row)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = table.column(name).combine_chunks()
    kind = column.type
    row = _first(column.is_null())
    if row is not None:
        raise EvalInputError(f"{path} row {row + 1}: field {name!r} is null")
    if name in ("query_id", "doc_id"):
        if pa.types.is_integer(kind):
            column = pc.cast(column, pa.string())  # compared as decimal text, like trec_eval
        elif not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            raise EvalInputError(f"{path}: column {name!r} has type {kind}, expected strings")
        # TREC run files are whitespace separated: such an id could not be written back.
        blank = pc.or_(pc.equal(pc.utf8_length(column), 0), pc.match_substring_regex(column, r"\s"))
        row = _first(blank)
        if row is not None:
            raise EvalInputError(
                f"{path} row {row + 1}: field {name!r} is {column[row].as_py()!r}: "
                "ids must be non-empty, without spaces"
            )
    elif name == "score":
        if not (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
            raise EvalInputError(f"{path}: column 'score' has type {kind}, expected numbers")
        column = pc.cast(column, pa.float64())
        row = _first(pc.is_nan(column))
        if row is not None:
            raise EvalInputError(f"{path} row {row + 1}: field 'score' is NaN")
    else:  # rank, input_rank
        if not pa.types.is_integer(kind):
            raise EvalInputError(f"{path}: column {name!r} has type {kind}, expected integers")
        row = _first(pc.less(column, 1))
        if row is not None:
            raise EvalInputError(
                f"{path} row {row + 1}: field {name!r} is {column[row].as_py()}, "
                "not a 1-based position"
            )
    return column


def _read_part(path: Path, rows: dict[str, list[_Row]]) -> None:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for a non-Parquet file
        raise EvalInputError(f"{path}: cannot read as Parquet ({exc})") from None
    missing = [name for name in RESULT_COLUMNS if name not in schema.names]
    if missing:
        raise EvalInputError(
            f"{path}: missing column {', '.join(map(repr, missing))} (has {', '.join(schema.names)})"
        )
    table = pq.read_table(path, columns=list(RESULT_COLUMNS))
    columns = [_checked_column(table, path, name).to_pylist() for name in RESULT_COLUMNS]
    # Row numbers count from 1 in file order (pyarrow reads one file in order).
    for number, (query_id, doc_id, rank, score, input_rank) in enumerate(
        zip(*columns, strict=True), start=1
    ):
        rows.setdefault(query_id, []).append(_Row(doc_id, rank, score, input_rank, path, number))


def _check_unique_docs(query_id: str, rows: list[_Row]) -> None:
    if len({row.doc_id for row in rows}) == len(rows):
        return
    first: dict[str, _Row] = {}
    for row in rows:
        if row.doc_id in first:
            raise EvalInputError(
                f"{row.where}: doc {row.doc_id!r} appears twice for query {query_id!r} "
                f"(first at {first[row.doc_id].where})"
            )
        first[row.doc_id] = row


def _ordered(query_id: str, rows: list[_Row], position: str) -> list[_Row]:
    ordered = sorted(rows, key=lambda row: getattr(row, position))
    for before, after in pairwise(ordered):
        if getattr(before, position) == getattr(after, position):
            raise EvalInputError(
                f"{after.where}: field {position!r} is {getattr(after, position)} for query "
                f"{query_id!r}, the same as {before.where}"
            )
    return ordered


def _configured_top_n(outdir: Path) -> int | None:
    """``[output] top_n`` of the job, when its resolved config is there and readable."""
    config = outdir / "job.resolved.toml"
    try:
        with open(config, "rb") as handle:
            top_n = tomllib.load(handle).get("output", {}).get("top_n")
    except (OSError, tomllib.TOMLDecodeError, AttributeError):
        return None
    return top_n if isinstance(top_n, int) and not isinstance(top_n, bool) else None


def _recorded_input_files(outdir: Path) -> list | None:
    """``identity.input.files`` of ``_job.json`` ([path, size] pairs), when recorded."""
    try:
        identity = json.loads((outdir / "_job.json").read_bytes())["identity"]
        files = identity["input"]["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return files if isinstance(files, list) else None


def _check_input_files(outdir: Path, sources: list) -> None:
    recorded = _recorded_input_files(outdir)
    if recorded is None:
        return  # no record (older run): the per-row check below still catches most changes
    try:
        current = [[str(path), path.stat().st_size] for path, _ in sources]
    except OSError as exc:
        raise _InputUnavailable(f"cannot read {exc.filename} ({exc.strerror})") from None
    if current == recorded:
        return
    then = {str(path): size for path, size in recorded}
    now = dict(current)
    for path, size in now.items():
        if path in then and then[path] != size:
            raise _InputUnavailable(
                f"input file {path} changed since the run (size {then[path]} then, {size} now)"
            )
    gone = sorted(set(then) - set(now))
    added = sorted(set(now) - set(then))
    detail = f"{gone[0]} is gone" if gone else f"{added[0]} is new" if added else "order differs"
    raise _InputUnavailable(f"the input files changed since the run ({detail})")


def _input_candidate_lists(outdir: Path, wanted: set[str]) -> tuple[dict[str, list[str]], str]:
    """Each wanted query's doc ids in input order, read from the job's input; and its path.

    Holds only the doc id lists of ``wanted`` queries; stops reading once all are found.
    Raises _InputUnavailable when the input is missing, unreadable or changed.
    """
    from pyarrow import ArrowException

    from pipeline.config import ConfigError, load_job_text
    from pipeline.read import InputError, open_input, resolve_sources
    from pipeline.records import Query

    config = outdir / "job.resolved.toml"
    try:
        text = config.read_text(encoding="utf-8")
    except OSError as exc:
        raise _InputUnavailable(f"cannot read {config} ({exc.strerror})") from None
    try:
        cfg = load_job_text(text, name=str(config))
    except ConfigError as exc:
        raise _InputUnavailable(str(exc)) from None
    found: dict[str, list[str]] = {}
    try:
        _check_input_files(outdir, resolve_sources(cfg.input.path, cfg.input.format))
        reader = open_input(cfg.input)
        for batch in reader.batches():
            for item in batch:
                # Failures (bad input rows) were never ranked. Should an id occur twice, the
                # first list is kept; the per-row check below refuses it if it is not the one.
                if isinstance(item, Query) and item.query_id in wanted:
                    found.setdefault(item.query_id, list(item.doc_ids))
            if len(found) == len(wanted):
                break
    except InputError as exc:
        raise _InputUnavailable(str(exc)) from None
    except (OSError, ValueError, ArrowException) as exc:
        raise _InputUnavailable(f"input.path {cfg.input.path!r}: cannot read it ({exc})") from None
    return found, cfg.input.path


def _check_against_results(lists: dict[str, list[str]], rows: dict[str, list[_Row]]) -> None:
    """Every result row must sit at its ``input_rank`` in the input list, or the input changed."""
    missing = sorted(set(rows) - set(lists))
    if missing:
        raise _InputUnavailable(
            f"{len(missing)} result queries are not in the input (e.g. {missing[0]!r}); "
            "it changed since the run"
        )
    for query_id, query_rows in rows.items():
        ids = lists[query_id]
        for row in query_rows:
            at = ids[row.input_rank - 1] if row.input_rank <= len(ids) else None
            if at != row.doc_id:
                raise _InputUnavailable(
                    f"{row.where}: doc {row.doc_id!r} of query {query_id!r} has input_rank "
                    f"{row.input_rank}, but the input holds {at!r} there; it changed since the run"
                )
        bad = next((d for d in ids if not d or any(ch.isspace() for ch in d)), None)
        if bad is not None:
            raise _InputUnavailable(
                f"query {query_id!r}: input doc id {bad!r} is empty or has spaces, "
                "which a TREC run file cannot hold"
            )


def read_output_dir(outdir: Path | str, first_stage: str = "auto") -> OutputDirRuns:
    """Both rankings of a pipeline output directory; errors name the part file and row.

    ``first_stage``: ``"auto"`` rebuilds it from the job's input when the results are cut
    (top_n) and the input is readable and unchanged, else from the results' ``input_rank``;
    ``"input"`` always from the input (EvalInputError if it cannot be); ``"results"`` never.
    """
    if first_stage not in FIRST_STAGE_SOURCES:
        raise EvalInputError(
            f"first stage source {first_stage!r} unknown; choose {', '.join(FIRST_STAGE_SOURCES)}"
        )
    outdir = Path(outdir)
    rows: dict[str, list[_Row]] = {}
    for part in result_part_files(outdir):
        _read_part(part, rows)
    if not rows:
        raise EvalInputError(f"{outdir / 'results'}: the result files hold no rows")

    first = RankedRun(system=FIRST_STAGE, source=str(outdir))
    reranked = RankedRun(system=RERANKED, source=str(outdir))
    runs = OutputDirRuns(first, reranked, top_n=_configured_top_n(outdir))
    rank_order_differs = 0
    for query_id in sorted(rows):
        _check_unique_docs(query_id, rows[query_id])
        by_rank = _ordered(query_id, rows[query_id], "rank")
        by_input = _ordered(query_id, rows[query_id], "input_rank")
        reranked.docs[query_id] = [row.doc_id for row in by_rank]
        reranked.scores[query_id] = [row.score for row in by_rank]
        if not scores_reproduce_order(reranked.docs[query_id], reranked.scores[query_id]):
            rank_order_differs += 1
        first.docs[query_id] = [row.doc_id for row in by_input]
        # A score trec_eval sorts back into input order: no ties, no rounding.
        first.scores[query_id] = [-float(row.input_rank) for row in by_input]
        if by_input[-1].input_rank > len(by_input):
            runs.cut_queries += 1

    if rank_order_differs:
        # Keep evaluation and the written run file in agreement: rank-derived scores.
        for query_id, docs in reranked.docs.items():
            reranked.scores[query_id] = [-float(rank) for rank in range(1, len(docs) + 1)]
        runs.warnings.append(
            f"{rank_order_differs} queries: the 'rank' order differs from sorting by score "
            "(ties broken otherwise than trec_eval's doc_id order); reranked is evaluated in "
            "'rank' order and reranked.trec carries score = -rank so trec_eval agrees"
        )

    cut = runs.top_n is not None or runs.cut_queries > 0
    why_not_input = None
    if first_stage == "input" or (first_stage == "auto" and cut):
        try:
            lists, runs.input_path = _input_candidate_lists(outdir, set(rows))
            _check_against_results(lists, rows)
        except _InputUnavailable as exc:
            if first_stage == "input":
                raise EvalInputError(
                    f"first stage from the job's input: {exc}; "
                    "use --first-stage results to rank the results' own docs instead"
                ) from None
            why_not_input = str(exc)
            runs.input_path = None
        else:
            runs.first_stage_source = "input"
            for query_id in first.docs:
                ids = lists[query_id]
                first.docs[query_id] = ids
                first.scores[query_id] = [-float(rank) for rank in range(1, len(ids) + 1)]

    if runs.first_stage_source == "results" and cut:
        top = f"top_n={runs.top_n}" if runs.top_n is not None else "a cut output"
        runs.warnings.append(
            f"results hold only the reranked top docs ({top}; {runs.cut_queries} queries miss "
            "part of their first-stage list): first_stage is the input order of those same docs, "
            "not the full first-stage ranking, so its deep metrics are not the first stage's own"
        )
        if why_not_input is not None:
            runs.warnings.append(f"first_stage not rebuilt from the job's input: {why_not_input}")
    return runs
