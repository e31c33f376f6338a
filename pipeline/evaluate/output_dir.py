"""A pipeline output directory's two rankings, first stage and reranked, in query ranges.

>>> import asyncio, tempfile, pathlib
>>> from pipeline.records import Query
>>> from pipeline.write import OutputWriter
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> writer = OutputWriter(out, include_text=False)
>>> writer.add_ranked_columns(Query("q1", "?", ["a", "b", "c"], ["d1", "d2", "d3"], ""), [2, 0], [0.9, 0.1])
>>> asyncio.run(writer.close())
>>> rows = ResultRows(out)
>>> [(first["doc_id"].to_list(), reranked["doc_id"].to_list()) for first, reranked in rows.chunks()]
[(['d1', 'd3'], ['d3', 'd1'])]

Rows (``query_id, doc_id, rank, score, input_rank``) come from the parts the writer's
manifest commits; what *first stage* and *reranked* mean is in the README ("Output
directories"). Rows are read ``CHUNK_ROWS`` at a time by ranges of query_id, so memory
stays flat at any size; each range is checked whole, and a problem names the part file and
row of its first case.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import polars as pl
import pyarrow as pa

from pipeline.config import ConfigError, InputConfig, load_job
from pipeline.evaluate.errors import BAD_ID, BAD_ID_TEXT, EvalInputError, parquet_schema
from pipeline.read import InputError, open_input
from pipeline.records import Query
from pipeline.storage import Location, polars_source
from pipeline.write import committed_parts

CHUNK_ROWS = 500_000
SCHEMA = {"query_id": pl.String, "doc_id": pl.String, "rank": pl.Int64, "score": pl.Float64}
SCHEMA["input_rank"] = pl.Int64
_KINDS = {"query_id": "strings", "doc_id": "strings", "score": "numbers"}  # others: integers
_POSITION = pl.int_range(1, pl.len() + 1).over("query_id")  # on rows sorted within queries
# (field, condition, how the value is wrong; None: it repeats within a query), checked in order.
_PROBLEMS: list[tuple[str, pl.Expr, str | None]] = [
    *((name, pl.col(name).str.contains(BAD_ID), BAD_ID_TEXT) for name in ("query_id", "doc_id")),
    ("score", pl.col("score").is_nan(), "NaN"),
    *((name, pl.col(name) < 1, "{}, not a 1-based position") for name in ("rank", "input_rank")),
    *(
        (name, pl.struct("query_id", name).is_duplicated(), None)
        for name in ("doc_id", "rank", "input_rank")
    ),
]


def _scan(parts: list[Location]) -> pl.LazyFrame:
    """The result columns of ``parts``, integer and float widths unified."""
    widen = pl.ScanCastOptions(integer_cast=["upcast", "allow-float"], float_cast="upcast")
    sources, options = polars_source(parts)
    return pl.scan_parquet(
        sources,
        schema=SCHEMA,
        cast_options=widen,
        extra_columns="ignore",
        storage_options=options,
    )


def _check_schema(part: Location) -> None:
    schema = parquet_schema(part, SCHEMA)
    for name in SCHEMA:
        kind, expected = schema[name], _KINDS.get(name, "integers")
        accepts = {"strings": kind == pl.String, "numbers": kind.is_numeric()}
        if not accepts.get(expected, kind.is_integer()):
            raise EvalInputError(
                f"{part}: column {name!r} has type {str(kind).lower()}, expected {expected}"
            )


class ResultRows:
    """The committed result rows of ``outdir``, checked and read in query ranges."""

    def __init__(self, outdir: Location):
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
        self.score_rises = 0  # queries where a lower-ranked row has a higher score
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

    def _check(self, rows: pl.DataFrame) -> None:
        """One range's rows: one pass for every check, then the rows of the first that failed."""
        failed = rows.select(c.any().alias(str(i)) for i, (_, c, _) in enumerate(_PROBLEMS))
        for (name, condition, problem), fails in zip(_PROBLEMS, failed.row(0), strict=True):
            if fails and problem is not None:
                where, row = self.first_where(condition)[0]
                raise EvalInputError(f"{where}: field {name!r} is {problem.format(row[name])}")
            if fails:
                query_id, value = rows.filter(condition).select("query_id", name).row(0)
                match = (pl.col("query_id") == query_id) & (pl.col(name) == value)
                (first, _), (second, _) = self.first_where(match, limit=2)
                raise EvalInputError(
                    f"{second}: field {name!r} is {value!r} for query {query_id!r} again "
                    f"(first at {first})"
                )

    def chunks(
        self, input_lists: pl.DataFrame | None = None
    ) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
        """``(first_stage, reranked)`` ranking tables (``query_id, doc_id, position, score``) per
        query range, in query_id order; ``input_lists``, when given, is the first stage."""
        step = max(1, CHUNK_ROWS * len(self.query_ids) // self.rows)
        starts = self.query_ids.gather_every(step).to_list()
        query_id, score, doc_id = pl.col("query_id"), pl.col("score"), pl.col("doc_id")
        minus_position = -pl.col("position").cast(pl.Float64)
        for start, end in zip(starts, [*starts[1:], None], strict=True):
            in_range = query_id >= start
            if end is not None:
                in_range = query_id.is_between(pl.lit(start), pl.lit(end), "left")
            rows = self.scan.filter(in_range).collect().sort("query_id", "rank")
            self._check(rows)
            by_input = rows.select("query_id", "doc_id", "input_rank").sort(
                "query_id", "input_rank"
            )
            by_input = by_input.with_columns(position=_POSITION)
            cut = by_input.filter(pl.col("input_rank") != pl.col("position"))
            self.cut_queries += cut["query_id"].n_unique()
            # trec_eval reorders a query where a later row has a higher score, or the same
            # score and a larger doc_id: its run file lines then carry score = -rank instead.
            # Ties broken by input order are the pipeline's documented rule, not a problem;
            # a score that rises with rank is (the results do not say what ranked them).
            same_query = query_id == query_id.shift(-1)
            rises = same_query & (score.shift(-1) > score)
            tie_flips = same_query & (score.shift(-1) == score) & (doc_id.shift(-1) > doc_id)
            self.score_rises += rows.filter(rises)["query_id"].n_unique()
            misordered = query_id.is_in(rows.filter(rises | tie_flips)["query_id"].implode())
            reranked = rows.select("query_id", "doc_id", position=_POSITION, score=score)
            reranked = reranked.with_columns(
                score=pl.when(misordered).then(minus_position).otherwise(score)
            )
            first_stage = input_lists.filter(in_range) if input_lists is not None else by_input
            yield (
                first_stage.select("query_id", "doc_id", "position", score=minus_position),
                reranked,
            )


@dataclass(slots=True)
class FirstStageSource:
    name: str  # "input": the job's input lists; "results": the rows' input_rank order
    top_n: int | None = None
    input_path: str | None = None
    lists: pl.DataFrame | None = None  # query_id, doc_id, position; when name == "input"
    why_not_input: str | None = None

    def warnings(self, cut_queries: int, ks: list[int]) -> list[str]:
        """What a reader of the numbers must know about the two rankings' depths."""
        deeper = [str(k) for k in ks if self.top_n is not None and k > self.top_n]
        if self.name == "input" and cut_queries and deeper:
            return [
                f"reranked holds only the top {self.top_n} docs per query, first_stage the "
                f"full input list: at k = {', '.join(deeper)} the reranked metrics count no "
                f"docs below rank {self.top_n}"
            ]
        if self.name == "input" or (self.top_n is None and not cut_queries):
            return []
        top = f"top_n={self.top_n}" if self.top_n is not None else "a cut output"
        notes = [
            f"results hold only the reranked top docs ({top}; {cut_queries} queries miss part "
            "of their first-stage list): first_stage is the input order of those same docs, "
            "not the full first-stage ranking, so its deep metrics are not the first stage's own"
        ]
        if self.why_not_input:
            notes.append(f"first_stage not rebuilt from the job's input: {self.why_not_input}")
        return notes


def _input_lists(rows: ResultRows, cfg: InputConfig) -> pl.DataFrame:
    """Each result query's doc ids in the job's input order (``query_id, doc_id, position``),
    checked against the rows; an InputError says why they cannot be used."""
    wanted, ids, docs = set(rows.query_ids.to_list()), [], []
    try:
        for batch in open_input(cfg).batches():
            for item in batch:  # should an id occur twice, the first list is the one ranked
                if isinstance(item, Query) and item.query_id in wanted:
                    wanted.discard(item.query_id)
                    ids.append(item.query_id)
                    docs.append(item.doc_ids)
            if not wanted:
                break
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise InputError(f"input.path {cfg.path!r}: cannot read it ({exc})") from None
    lists = pl.DataFrame(
        {"query_id": ids, "doc_id": docs},
        schema=[("query_id", pl.String), ("doc_id", pl.List(pl.String))],
    ).explode("doc_id")
    lists = lists.with_columns(position=_POSITION)
    held = lists.lazy().select("query_id", held="doc_id", input_rank="position")
    moved = pl.col("held").is_null() | (pl.col("held") != pl.col("doc_id"))
    wrong = rows.scan.join(held, on=["query_id", "input_rank"], how="left").filter(moved)
    for row in wrong.head(1).collect().iter_rows(named=True):
        match = (pl.col("query_id") == row["query_id"]) & (pl.col("doc_id") == row["doc_id"])
        where, _ = rows.first_where(match)[0]
        raise InputError(
            f"{where}: doc {row['doc_id']!r} of query {row['query_id']!r} has input_rank "
            f"{row['input_rank']}, but the input holds {row['held']!r} there; it changed since "
            "the run"
        )
    bad = lists.filter(pl.col("doc_id").str.contains(BAD_ID)).head(1)
    if bad.height:
        raise InputError(
            f"input doc id {bad['doc_id'][0]!r} is empty or has spaces: a run file cannot hold it"
        )
    return lists.sort("query_id", "position")


def first_stage_source(outdir: Location, rows: ResultRows) -> FirstStageSource:
    """The one place deciding where the first stage comes from (see the module docstring)."""
    try:
        cfg = load_job(outdir / "job.resolved.toml")
    except ConfigError:  # no resolved job (not written by the runner): nothing known as cut
        return FirstStageSource("results")
    if cfg.output.top_n is None:
        return FirstStageSource("results")
    try:
        lists = _input_lists(rows, cfg.input)
    except InputError as exc:
        return FirstStageSource("results", cfg.output.top_n, why_not_input=str(exc))
    return FirstStageSource("input", cfg.output.top_n, cfg.input.path, lists)
