"""The two rankings held in a pipeline output directory.

``OUTDIR/results/*.parquet`` rows (``query_id, doc_id, rank, score,
input_rank``) give two systems over the same rows:

* ``reranked``: each query's docs in ``rank`` order, the order the pipeline
  delivered;
* ``first_stage``: the same docs in ``input_rank`` order.

When the job cut its output to ``top_n``, the rows hold only the reranker's top
docs, so ``first_stage`` is the first-stage order *of those docs*, not the full
first-stage list; ``cut_queries`` counts the queries where that is visible.

>>> from pipeline.evaluate.output_dir import read_output_dir  # doctest: +SKIP
>>> runs = read_output_dir(Path("out/"))                       # doctest: +SKIP
>>> runs.reranked.docs["q1"][:3]                               # doctest: +SKIP
['d7', 'd1', 'd3']
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.evaluate.errors import EvalInputError
from pipeline.evaluate.runs import RankedRun, scores_reproduce_order

RESULT_COLUMNS = ("query_id", "doc_id", "rank", "score", "input_rank")
FIRST_STAGE = "first_stage"
RERANKED = "reranked"


@dataclass(slots=True)
class OutputDirRuns:
    first_stage: RankedRun
    reranked: RankedRun
    top_n: int | None = None  # from job.resolved.toml [output] top_n, when present
    cut_queries: int = 0  # queries whose rows miss part of their first-stage list
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Row:
    doc_id: str
    rank: int
    score: float
    input_rank: int
    where: str


def result_part_files(outdir: Path) -> list[Path]:
    """Visible ``results/*.parquet`` files, sorted; hidden and temp files are skipped."""
    if not outdir.is_dir():
        raise EvalInputError(f"output directory not found: {outdir}")
    results = outdir / "results"
    if not results.is_dir():
        raise EvalInputError(f"{outdir}: no 'results' folder; is this a pipeline output directory?")
    parts = sorted(
        p
        for p in results.glob("*.parquet")
        if p.is_file() and not p.name.startswith((".", "_"))
    )
    if not parts:
        raise EvalInputError(f"{results}: no result files (*.parquet); has the job produced output yet?")
    return parts


def _int_field(value: object, name: str, where: str) -> int:
    if value is None:
        raise EvalInputError(f"{where}: field {name!r} is null")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EvalInputError(f"{where}: field {name!r} is {value!r}, not a 1-based position")
    return value


def _id_field(value: object, name: str, where: str) -> str:
    if value is None:
        raise EvalInputError(f"{where}: field {name!r} is null")
    if isinstance(value, (bool, float)):
        raise EvalInputError(f"{where}: field {name!r} is {value!r}, not a string id")
    text = str(value)
    if not text or any(ch.isspace() for ch in text):
        # TREC run files are whitespace separated: such an id could not be written back.
        raise EvalInputError(f"{where}: field {name!r} is {text!r}: ids must be non-empty, without spaces")
    return text


def _score_field(value: object, where: str) -> float:
    if value is None:
        raise EvalInputError(f"{where}: field 'score' is null")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EvalInputError(f"{where}: field 'score' is {value!r}, not a number")
    if math.isnan(value):
        raise EvalInputError(f"{where}: field 'score' is NaN")
    return float(value)


def _read_part(path: Path, rows: dict[str, list[_Row]], seen: dict[tuple[str, str], str]) -> None:
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
    columns = [table.column(name).to_pylist() for name in RESULT_COLUMNS]
    for number, (qid, doc, rank, score, input_rank) in enumerate(zip(*columns), start=1):
        where = f"{path} row {number}"
        query_id = _id_field(qid, "query_id", where)
        doc_id = _id_field(doc, "doc_id", where)
        key = (query_id, doc_id)
        if key in seen:
            raise EvalInputError(
                f"{where}: doc {doc_id!r} appears twice for query {query_id!r} (first at {seen[key]})"
            )
        seen[key] = where
        rows.setdefault(query_id, []).append(
            _Row(
                doc_id,
                _int_field(rank, "rank", where),
                _score_field(score, where),
                _int_field(input_rank, "input_rank", where),
                where,
            )
        )


def _ordered(query_id: str, rows: list[_Row], position: str) -> list[_Row]:
    ordered = sorted(rows, key=lambda row: getattr(row, position))
    for before, after in zip(ordered, ordered[1:]):
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


def read_output_dir(outdir: Path | str) -> OutputDirRuns:
    """Both rankings of a pipeline output directory; errors name the part file and row."""
    outdir = Path(outdir)
    rows: dict[str, list[_Row]] = {}
    seen: dict[tuple[str, str], str] = {}
    for part in result_part_files(outdir):
        _read_part(part, rows, seen)
    if not rows:
        raise EvalInputError(f"{outdir / 'results'}: the result files hold no rows")

    first_stage = RankedRun(system=FIRST_STAGE, source=str(outdir))
    reranked = RankedRun(system=RERANKED, source=str(outdir))
    runs = OutputDirRuns(first_stage, reranked, top_n=_configured_top_n(outdir))
    rank_order_differs = 0
    for query_id in sorted(rows):
        by_rank = _ordered(query_id, rows[query_id], "rank")
        by_input = _ordered(query_id, rows[query_id], "input_rank")
        reranked.docs[query_id] = [row.doc_id for row in by_rank]
        reranked.scores[query_id] = [row.score for row in by_rank]
        if not scores_reproduce_order(reranked.docs[query_id], reranked.scores[query_id]):
            rank_order_differs += 1
        first_stage.docs[query_id] = [row.doc_id for row in by_input]
        # A score trec_eval sorts back into input order: no ties, no rounding.
        first_stage.scores[query_id] = [-float(row.input_rank) for row in by_input]
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
    if runs.top_n is not None or runs.cut_queries:
        cut = f"top_n={runs.top_n}" if runs.top_n is not None else "a cut output"
        runs.warnings.append(
            f"results hold only the reranked top docs ({cut}; {runs.cut_queries} queries miss "
            "part of their first-stage list): first_stage is the input order of those same docs, "
            "not the full first-stage ranking, so its deep metrics are not the first stage's own"
        )
    return runs
