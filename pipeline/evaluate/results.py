"""A pipeline output directory's committed results as two ranking tables, in query ranges.

>>> import asyncio, tempfile, pathlib
>>> from pipeline.records import Query
>>> from pipeline.write import OutputWriter
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> writer = OutputWriter(out, include_text=False)
>>> writer.add_ranked_columns(Query("q1", "?", ["a", "b", "c"], ["d1", "d2", "d3"], ""), [2, 0], [0.9, 0.1])
>>> asyncio.run(writer.close())
>>> [(first["doc_id"].to_list(), reranked["doc_id"].to_list()) for first, reranked in ResultRows(out).chunks()]
[(['d1', 'd3'], ['d3', 'd1'])]

Rows (``query_id, doc_id, rank, score, input_rank``) come from the part files the
writer's manifest commits (``pipeline.write.committed_parts``). They give two systems
over the same rows: *reranked*, each query's docs in ``rank`` order (the order the
pipeline delivered), and *first stage*, the same docs in ``input_rank`` order.

Queries are read about ``CHUNK_ROWS`` rows at a time, by ranges of query_id, so memory
stays flat however large the output. Each range is checked whole (ids a run file cannot
hold, NaN scores, positions below 1, a doc, rank or input_rank twice in one query); a
problem is reported with the part file and row where it first occurs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.evaluate.errors import EvalInputError
from pipeline.write import committed_parts

CHUNK_ROWS = 500_000
SCHEMA = {"query_id": pl.String, "doc_id": pl.String, "rank": pl.Int64, "score": pl.Float64}
SCHEMA["input_rank"] = pl.Int64
_KINDS: dict[str, tuple[str, Callable[[pa.DataType], bool]]] = {
    "query_id": ("strings", pa.types.is_string),
    "doc_id": ("strings", pa.types.is_string),
    "score": ("numbers", lambda kind: pa.types.is_floating(kind) or pa.types.is_integer(kind)),
    "rank": ("integers", pa.types.is_integer),
    "input_rank": ("integers", pa.types.is_integer),
}
_BAD_ID = r"^$|\s"  # TREC run files are whitespace separated: such an id could not be written
_ROW_CHECKS: list[tuple[str, pl.Expr, str]] = [
    (
        "query_id",
        pl.col("query_id").str.contains(_BAD_ID),
        "{!r}: ids must be non-empty, without spaces",
    ),
    (
        "doc_id",
        pl.col("doc_id").str.contains(_BAD_ID),
        "{!r}: ids must be non-empty, without spaces",
    ),
    ("score", pl.col("score").is_nan(), "NaN"),
    ("rank", pl.col("rank") < 1, "{}, not a 1-based position"),
    ("input_rank", pl.col("input_rank") < 1, "{}, not a 1-based position"),
]


def _scan(parts: list[Path]) -> pl.LazyFrame:
    """The result columns of ``parts``; integer and float widths unified, other columns ignored."""
    widen = pl.ScanCastOptions(integer_cast=["upcast", "allow-float"], float_cast="upcast")
    return pl.scan_parquet(parts, schema=SCHEMA, cast_options=widen, extra_columns="ignore")


def _check_schema(part: Path) -> None:
    try:
        schema = pq.read_schema(part)
    except Exception as exc:  # pyarrow raises several types for a non-Parquet file
        raise EvalInputError(f"{part}: cannot read as Parquet ({exc})") from None
    missing = [name for name in SCHEMA if name not in schema.names]
    if missing:
        raise EvalInputError(
            f"{part}: missing column {', '.join(map(repr, missing))} (has {', '.join(schema.names)})"
        )
    for name, (expected, accepts) in _KINDS.items():
        kind = schema.field(name).type
        if not (accepts(kind) or pa.types.is_large_string(kind) and expected == "strings"):
            raise EvalInputError(f"{part}: column {name!r} has type {kind}, expected {expected}")


class ResultRows:
    """The committed result rows of ``outdir``, checked and read in query ranges."""

    def __init__(self, outdir: Path):
        if not outdir.is_dir():
            raise EvalInputError(f"output directory not found: {outdir}")
        self.parts = committed_parts(outdir)["results"]
        if not self.parts:
            raise EvalInputError(
                f"{outdir}: no result files committed in its _manifest.jsonl; is this a "
                "pipeline output directory, and has the job produced output yet?"
            )
        for part in self.parts:
            _check_schema(part)
        self.scan = _scan(self.parts)
        nulls = self.scan.select(pl.all().null_count()).collect().row(0, named=True)
        for name, count in nulls.items():
            if count:
                where, _ = self.first_where(pl.col(name).is_null())[0]
                raise EvalInputError(f"{where}: field {name!r} is null")
        self.query_ids = self.scan.select(pl.col("query_id").unique().sort()).collect().to_series()
        if not len(self.query_ids):
            raise EvalInputError(f"{outdir / 'results'}: the result files hold no rows")
        self.rows = self.scan.select(pl.len()).collect().item()
        self.reordered_queries = 0  # queries whose rank order is not trec_eval's score order
        self.cut_queries = 0  # queries whose rows miss part of their input list

    def first_where(self, condition: pl.Expr, limit: int = 1) -> list[tuple[str, dict]]:
        """``("PART row N", row)`` of the first rows matching ``condition``, in commit order."""
        found: list[tuple[str, dict]] = []
        for part in self.parts:
            rows = _scan([part]).with_row_index("row", offset=1).filter(condition)
            for row in rows.head(limit - len(found)).collect().iter_rows(named=True):
                found.append((f"{part} row {row['row']}", row))
            if len(found) == limit:
                break
        return found

    def _query_ranges(self) -> Iterator[pl.Expr]:
        """Conditions on query_id splitting the rows into ranges of about CHUNK_ROWS rows."""
        step = max(1, CHUNK_ROWS * len(self.query_ids) // self.rows)
        starts = self.query_ids.gather_every(step).to_list()
        for start, end in zip(starts, [*starts[1:], None], strict=True):
            query_id = pl.col("query_id")
            yield (
                query_id >= start
                if end is None
                else query_id.is_between(pl.lit(start), pl.lit(end), "left")
            )

    def _check(self, rows: pl.DataFrame) -> None:
        for name, condition, problem in _ROW_CHECKS:
            if rows.select(condition.any()).item():
                where, row = self.first_where(condition)[0]
                raise EvalInputError(f"{where}: field {name!r} is {problem.format(row[name])}")
        for name in ("doc_id", "rank", "input_rank"):
            twice = rows.filter(pl.struct("query_id", name).is_duplicated()).head(1)
            if twice.height:
                query_id, value = twice.select("query_id", name).row(0)
                match = (pl.col("query_id") == query_id) & (pl.col(name) == value)
                (first, _), (second, _) = self.first_where(match, limit=2)
                problem = (
                    f"doc {value!r} appears twice for query {query_id!r} (first at {first})"
                    if name == "doc_id"
                    else f"field {name!r} is {value} for query {query_id!r}, the same as {first}"
                )
                raise EvalInputError(f"{second}: {problem}")

    def chunks(
        self, input_lists: pl.DataFrame | None = None
    ) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
        """``(first_stage, reranked)`` ranking tables (``query_id, doc_id, position, score``)
        per query range, in query_id order. ``input_lists`` (``query_id, doc_id, position``),
        when given, is the first stage instead of the rows' input_rank order."""
        for in_range in self._query_ranges():
            rows = self.scan.filter(in_range).collect()
            self._check(rows)
            rows = rows.sort("query_id", "rank").with_columns(
                position=pl.int_range(1, pl.len() + 1).over("query_id"),
                input_position=pl.col("input_rank").rank("ordinal").over("query_id").cast(pl.Int64),
            )
            # trec_eval would reorder a query where a next row has a higher score, or the same
            # score and a larger doc_id: its run file lines then carry score = -rank.
            score, doc_id = pl.col("score"), pl.col("doc_id")
            later_first = (score.shift(-1) > score) | (
                (score.shift(-1) == score) & (doc_id.shift(-1) > doc_id)
            )
            same_query = pl.col("query_id") == pl.col("query_id").shift(-1)
            reordered = (same_query & later_first).fill_null(False).any().over("query_id")
            rows = rows.with_columns(reordered=reordered)
            self.reordered_queries += rows.filter("reordered")["query_id"].n_unique()
            cut = pl.col("input_rank") != pl.col("input_position")
            self.cut_queries += rows.filter(cut)["query_id"].n_unique()
            minus_position = -pl.col("position").cast(pl.Float64)
            reranked = rows.select(
                "query_id",
                "doc_id",
                "position",
                score=pl.when("reordered").then(minus_position).otherwise(score),
            )
            if input_lists is None:
                first_stage = rows.select("query_id", "doc_id", position="input_position")
                first_stage = first_stage.sort("query_id", "position")
            else:
                first_stage = input_lists.filter(in_range)
            yield first_stage.with_columns(score=minus_position), reranked
