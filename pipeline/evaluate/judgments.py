"""Relevance judgments (qrels): TREC text, Parquet or JSON Lines, as one frame.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "qrels.txt"
>>> _ = path.write_text("q1 0 d1 2\\nq1 0 d2 0\\nq1 0 d1 1\\n")
>>> judgments = load_judgments(path)
>>> judgments.frame.rows(), judgments.duplicates.height
([('q1', 'd1', 2), ('q1', 'd2', 0)], 1)

The format comes from the file name: ``*.parquet``, ``*.jsonl``, ``*.ndjson`` or ``*.json``
(JSON Lines), else TREC qrels. Labels must be whole numbers (trec_eval reads ``1.5`` as 1
and ``x`` as 0; here they are errors). A (query, doc) judged twice keeps its first label
and is listed in ``duplicates``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
import polars as pl

from pipeline.evaluate.errors import BAD_ID, BAD_ID_TEXT, EvalInputError, parquet_schema
from pipeline.evaluate.metrics import JUDGMENT_COLUMNS as COLUMNS
from pipeline.evaluate.runs import read_trec_fields

KEY = ["query_id", "doc_id"]


@dataclass(slots=True)
class Judgments:
    source: str
    frame: pl.DataFrame  # query_id, doc_id, relevance: one row per judged (query, doc)
    duplicates: pl.DataFrame  # query_id, doc_id, first, second (line or row), both labels
    unit: str = "line"  # what ``first`` and ``second`` count: "line" or "row"

    def check_duplicates(self, ranked_query_ids: pl.Series) -> None:
        """Refuse duplicates of ranked queries, as trec_eval refuses to evaluate them."""
        blocking = self.duplicates.filter(pl.col("query_id").is_in(ranked_query_ids.implode()))
        if blocking.height:
            shown = "\n  ".join(
                f"{self.source} {self.unit} {first} and {self.unit} {second}: query {q!r}, "
                f"doc {d!r} (labels {a} and {b})"
                for q, d, first, second, a, b in blocking.head(5).iter_rows()
            )
            more = f"\n  ... and {blocking.height - 5} more" if blocking.height > 5 else ""
            raise EvalInputError(
                f"{self.source}: {blocking.height} duplicate judgments for evaluated queries "
                f"(trec_eval refuses these too; keep one line per query and doc):\n  {shown}{more}"
            )


def _json_lines(path: Path) -> pl.DataFrame:
    """Raw values as text (``number`` is the line), checked like any other format after."""
    rows = []
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, start=1):
            where = f"{path} line {number}"
            if not line.strip():
                continue
            try:
                record = orjson.loads(line.removeprefix(b"\xef\xbb\xbf"))
            except orjson.JSONDecodeError as exc:
                raise EvalInputError(f"{where}: not valid JSON Lines ({exc})") from None
            if not isinstance(record, dict):
                raise EvalInputError(f"{where}: expected an object with {', '.join(COLUMNS)}")
            missing = [name for name in COLUMNS if record.get(name) is None]
            if missing:
                raise EvalInputError(f"{where}: missing field {', '.join(map(repr, missing))}")
            for name, value in ((name, record[name]) for name in COLUMNS):
                if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                    raise EvalInputError(f"{where}: field {name!r} is {value!r}")
            rows.append([number, *(str(record[name]) for name in COLUMNS)])
    schema = {"number": pl.Int64} | dict.fromkeys(COLUMNS, pl.String)
    return pl.DataFrame(rows, schema=schema, orient="row")


def _parquet(path: Path) -> pl.DataFrame:
    schema = parquet_schema(path, COLUMNS)
    frame = pl.read_parquet(path, columns=list(COLUMNS)).with_row_index("number", offset=1)
    for name in COLUMNS:
        bad = frame.filter(pl.col(name).is_null()).head(1)
        if bad.height:
            raise EvalInputError(f"{path} row {bad['number'][0]}: field {name!r} is None")
        if not (schema[name].is_float() or schema[name].is_integer() or schema[name] == pl.String):
            raise EvalInputError(
                f"{path}: column {name!r} has type {schema[name]}, expected text or numbers"
            )
    return frame.with_columns(pl.col(COLUMNS).cast(pl.String))


def _checked(frame: pl.DataFrame, path: Path, unit: str) -> pl.DataFrame:
    """Text columns checked: ids without spaces, whole-number labels (``2.0`` is 2)."""
    text = pl.col("relevance").str.strip_chars()
    as_float = text.cast(pl.Float64, strict=False)
    whole = pl.when(as_float == as_float.floor()).then(as_float.cast(pl.Int64, strict=False))
    frame = frame.with_columns(label=pl.coalesce(text.cast(pl.Int64, strict=False), whole))
    problems = [(name, pl.col(name).str.contains(BAD_ID), BAD_ID_TEXT) for name in KEY]
    problems.append(("relevance", pl.col("label").is_null(), "{!r}, not an integer label"))
    # One pass for every check; which row failed is looked for only when one did.
    if frame.select(pl.any_horizontal(wrong.any() for _, wrong, _ in problems)).item():
        for name, wrong, problem in problems:
            for number, value in frame.filter(wrong).select("number", name).head(1).iter_rows():
                raise EvalInputError(
                    f"{path} {unit} {number}: field {name!r} is {problem.format(value)}"
                )
    return frame.select("number", *KEY, relevance="label")


def load_judgments(path: Path | str) -> Judgments:
    """Read qrels from ``path`` (format from the suffix); errors name file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise EvalInputError(f"qrels file not found: {path}")
    suffix, unit = path.suffix.lower(), "line"
    if suffix == ".parquet":
        frame, unit = _parquet(path), "row"
    elif suffix in (".jsonl", ".ndjson", ".json"):
        frame = _json_lines(path)
    else:
        fields = read_trec_fields(path, ["query_id", "iter", "doc_id", "relevance"])
        frame = fields.select(pl.col("line").alias("number"), *COLUMNS)
    if not frame.height:
        raise EvalInputError(f"{path}: no judgments found")
    frame = _checked(frame, path, unit)
    first = frame.select(pl.struct(KEY).is_first_distinct()).to_series()
    again = frame.filter(~first)
    frame = frame.filter(first) if again.height else frame
    duplicates = again.join(frame, on=KEY, suffix="_first").select(
        *KEY,
        first=pl.col("number_first"),
        second=pl.col("number"),
        first_label=pl.col("relevance_first"),
        second_label=pl.col("relevance"),
    )
    return Judgments(str(path), frame.select(COLUMNS), duplicates, unit)
