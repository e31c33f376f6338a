"""Where an output directory's first-stage ranking comes from, decided once, here.

The result rows carry each kept doc's ``input_rank``, so their input_rank order is the
first stage, and a complete one unless the job cut its output to ``[output] top_n``. Only
then are the full candidate lists read from the job's input: ``job.resolved.toml`` is
loaded with ``pipeline.config`` and the input read with ``pipeline.read.open_input``, the
reader the run itself used. If that input is gone, unreadable, or no longer matches the
results (a row's input_rank points at another doc), the rows' own order is used and a
warning says why.

>>> FirstStage("results", top_n=3).warnings(cut_queries=2, ks=[1, 10])[0][:60]
'results hold only the reranked top docs (top_n=3; 2 queries '
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
from pyarrow import ArrowException

from pipeline.config import ConfigError, InputConfig, load_job
from pipeline.evaluate.results import ResultRows
from pipeline.read import InputError, open_input
from pipeline.records import Query


class _InputUnavailable(Exception):
    """The job's input cannot give the first-stage ranking; the message says why."""


@dataclass(slots=True)
class FirstStage:
    source: str  # "input": the job's input lists; "results": the rows' input_rank order
    top_n: int | None = None
    input_path: str | None = None
    lists: pl.DataFrame | None = None  # query_id, doc_id, position; when source == "input"
    why_not_input: str | None = None

    def warnings(self, cut_queries: int, ks: list[int]) -> list[str]:
        """What a reader of the numbers must know about the two rankings' depths."""
        deeper = [str(k) for k in ks if self.top_n is not None and k > self.top_n]
        if self.source == "input":
            if not (cut_queries and deeper):
                return []
            return [
                f"reranked holds only the top {self.top_n} docs per query, first_stage the "
                f"full input list: at k = {', '.join(deeper)} the reranked metrics count no "
                f"docs below rank {self.top_n}"
            ]
        if self.top_n is None and not cut_queries:
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


def _input_lists(cfg: InputConfig, query_ids: pl.Series) -> pl.DataFrame:
    """Each wanted query's doc ids in input order (``query_id, doc_id, position``)."""
    wanted = set(query_ids.to_list())
    frames = []
    try:
        for batch in open_input(cfg).batches():
            found = [item for item in batch if isinstance(item, Query) and item.query_id in wanted]
            for query in found:  # should an id occur twice, the first list is the one ranked
                wanted.discard(query.query_id)
            frames.append(
                pl.DataFrame(
                    {"query_id": [q.query_id for q in found], "doc_id": [q.doc_ids for q in found]},
                    schema={"query_id": pl.String, "doc_id": pl.List(pl.String)},
                )
            )
            if not wanted:
                break
    except InputError as exc:
        raise _InputUnavailable(str(exc)) from None
    except (OSError, ValueError, ArrowException) as exc:
        raise _InputUnavailable(f"input.path {cfg.path!r}: cannot read it ({exc})") from None
    return (
        pl.concat(frames)
        .explode("doc_id")
        .with_columns(position=pl.int_range(1, pl.len() + 1).over("query_id"))
        .sort("query_id", "position")
    )


def _check_against(results: ResultRows, lists: pl.DataFrame) -> None:
    """Every result row must sit at its input_rank in the input list, or the input changed."""
    held = lists.lazy().select("query_id", held="doc_id", input_rank="position")
    wrong = (
        results.scan.select("query_id", "doc_id", "input_rank")
        .join(held, on=["query_id", "input_rank"], how="left")
        .filter(pl.col("held").is_null() | (pl.col("held") != pl.col("doc_id")))
        .head(1)
        .collect()
    )
    if wrong.height:
        query_id, doc_id, input_rank, held_doc = wrong.row(0)
        match = (pl.col("query_id") == query_id) & (pl.col("doc_id") == doc_id)
        where = results.first_where(match)[0][0]
        raise _InputUnavailable(
            f"{where}: doc {doc_id!r} of query {query_id!r} has input_rank {input_rank}, but "
            f"the input holds {held_doc!r} there; it changed since the run"
        )
    bad = lists.filter(pl.col("doc_id").str.contains(r"^$|\s")).head(1)
    if bad.height:
        raise _InputUnavailable(
            f"query {bad['query_id'][0]!r}: input doc id {bad['doc_id'][0]!r} is empty or has "
            "spaces, which a TREC run file cannot hold"
        )


def choose_first_stage(outdir: Path, results: ResultRows) -> FirstStage:
    """The job's input lists when the results were cut to top_n and the input still matches
    them; otherwise the result rows' own input_rank order (``lists`` None)."""
    config = outdir / "job.resolved.toml"
    if not config.is_file():
        return FirstStage("results")  # not a runner's directory: nothing known to be cut
    try:
        cfg = load_job(config)
    except ConfigError as exc:
        return FirstStage("results", why_not_input=str(exc))
    if cfg.output.top_n is None:
        return FirstStage("results", cfg.output.top_n)
    try:
        lists = _input_lists(cfg.input, results.query_ids)
        _check_against(results, lists)
    except _InputUnavailable as exc:
        return FirstStage("results", cfg.output.top_n, why_not_input=str(exc))
    return FirstStage("input", cfg.output.top_n, cfg.input.path, lists)
