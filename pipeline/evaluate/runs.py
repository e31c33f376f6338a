"""Ranking tables, and TREC text files: runs in and out, the fields of qrels and runs.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "bm25.run"
>>> _ = path.write_text("\\ufeffq1 Q0 d1 1 2.5 bm25\\n# a comment\\n\\nq1 Q0 d2 2 2.5 bm25\\n")
>>> run = read_trec_run(path)
>>> run.system, run.frame["doc_id"].to_list()  # tie on 2.5: trec_eval puts the larger doc_id first
('bm25', ['d2', 'd1'])

A run file is ``qid Q0 docid rank score tag`` (whitespace separated, extra fields ignored);
like trec_eval, its order comes from the score and the rank column is not used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import polars as pl

from pipeline.evaluate.errors import EvalInputError

RUN_FIELDS = ("query_id", "q0", "doc_id", "rank", "score", "tag")


@dataclass(slots=True)
class Ranking:
    """One system's ranking table: ``query_id, doc_id, position`` (1 = best) and ``score``,
    the value a run file carries, which trec_eval sorts back into ``position`` order."""

    system: str
    source: str
    frame: pl.DataFrame
    warnings: list[str] = field(default_factory=list)


def read_trec_fields(path: Path, names: Sequence[str], extra_allowed: bool = False) -> pl.DataFrame:
    """A ``line`` column and the whitespace-separated fields ``names``, read streaming; blank
    and ``#`` lines are skipped, other numbers of fields (more: if ``extra_allowed``) raise."""
    fields = pl.col("text").str.extract_all(r"\S+")
    # \x1f (unit separator) never occurs in qrels or runs: each line is one text field.
    lines = pl.scan_csv(
        path, has_header=False, separator="\x1f", quote_char=None, schema={"text": pl.String}
    ).with_row_index("line", offset=1)
    lines = lines.filter(~pl.col("text").str.contains(r"^\s*(#|$)"))
    split = pl.col("fields").list
    try:
        read = (
            lines.with_columns(fields=fields)
            .select(
                pl.col("line").cast(pl.Int64),
                *(split.get(i, null_on_oob=True).alias(name) for i, name in enumerate(names)),
                count=split.len(),
            )
            .collect(engine="streaming")
        )
    except (OSError, pl.exceptions.ComputeError) as exc:
        reason = str(exc).splitlines()[0]
        raise EvalInputError(f"{path}: cannot read as UTF-8 text lines ({reason})") from None
    count = pl.col("count")
    bad = read.filter(count < len(names) if extra_allowed else count != len(names)).head(1)
    if bad.height:
        line, got = bad["line"][0], bad["count"][0]
        text = lines.filter(pl.col("line") == line).collect()["text"][0]
        raise EvalInputError(
            f"{path} line {line}: expected {len(names)} fields {' '.join(names)!r}, "
            f"got {got}: {text.strip()!r}"
        )
    return read.drop("count")


def rank_by_score(scored: pl.DataFrame) -> pl.DataFrame:
    """Add ``position`` in trec_eval's order: score descending, ties by doc_id descending
    in byte order (``strcmp``, which is how polars compares strings too).

    >>> scored = pl.DataFrame({"query_id": "q", "doc_id": ["d10", "d9", "D9"], "score": 0.5})
    >>> rank_by_score(scored)["doc_id"].to_list()
    ['d9', 'd10', 'D9']
    """
    return scored.sort(
        ["query_id", "score", "doc_id"], descending=[False, True, True]
    ).with_columns(position=pl.int_range(1, pl.len() + 1).over("query_id"))


def read_trec_run(path: Path | str, system: str | None = None) -> Ranking:
    """Read a TREC run file; ``system`` defaults to the tag (6th field) of its first line."""
    path = Path(path)
    if not path.is_file():
        raise EvalInputError(f"run file not found: {path}")
    lines = read_trec_fields(path, RUN_FIELDS, extra_allowed=True)
    if not lines.height:
        raise EvalInputError(f"{path}: no run lines found")
    score = pl.col("score").cast(pl.Float64, strict=False)
    bad = lines.filter(score.is_null() | score.is_nan()).head(1)
    if bad.height:
        line, text, value = bad.select("line", "score", score.alias("value")).row(0)
        detail = (
            f"{text!r}, not a number" if value is None else "NaN; a ranking needs comparable scores"
        )
        raise EvalInputError(f"{path} line {line}: field 'score' is {detail}")
    again = lines.filter(~pl.struct("query_id", "doc_id").is_first_distinct()).head(1)
    if again.height:
        query_id, doc_id, line = again.select("query_id", "doc_id", "line").row(0)
        same = lines.filter((pl.col("query_id") == query_id) & (pl.col("doc_id") == doc_id))
        raise EvalInputError(
            f"{path} line {line}: doc {doc_id!r} already ranked for query {query_id!r} on line "
            f"{same['line'][0]} (trec_eval refuses duplicate documents too)"
        )
    tags = lines["tag"].unique(maintain_order=True).to_list()
    run = Ranking(
        system or tags[0], str(path), rank_by_score(lines.select("query_id", "doc_id", score))
    )
    if len(tags) > 1:
        run.warnings.append(
            f"{path}: several run tags ({', '.join(map(repr, sorted(tags[1:])))} besides "
            f"{tags[0]!r}); all lines evaluated as {run.system!r}"
        )
    return run


def append_trec_run(handle: BinaryIO, ranking: pl.DataFrame, tag: str) -> None:
    """Append ``qid Q0 docid rank score tag`` lines in the frame's row order; floats in their
    shortest exact form, so trec_eval reads back the same order."""
    ranking.select(
        "query_id", pl.lit("Q0"), "doc_id", "position", "score", pl.lit(tag).alias("tag")
    ).write_csv(handle, separator=" ", include_header=False, quote_style="never")
