"""Relevance judgments (qrels): TREC text, Parquet or JSON Lines, as one frame.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "qrels.txt"
>>> _ = path.write_text("q1 0 d1 2\\nq1 0 d2 0\\nq1 0 d1 1\\n")
>>> judgments = load_judgments(path)
>>> judgments.frame.rows(), judgments.duplicates.height
([('q1', 'd1', 2), ('q1', 'd2', 0)], 1)

Formats, chosen by file name:

* ``*.parquet``: columns ``query_id``, ``doc_id``, ``relevance``.
* ``*.jsonl`` / ``*.ndjson`` / ``*.json``: one object per line with the same three keys.
* anything else: TREC qrels, ``qid iter docid rel`` separated by whitespace (``iter``
  is ignored); lines starting with ``#`` and blank lines are skipped.

Labels must be integers (trec_eval silently truncates ``1.5`` to 1 and reads ``x`` as 0;
here they are errors). Negative labels are kept: like trec_eval, they count as neither
relevant nor as an ideal-ranking gain. A (query, doc) judged twice keeps its first label
and is listed in ``duplicates``; ``check_duplicates`` refuses those of evaluated queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
import polars as pl
import pyarrow.parquet as pq

from pipeline.evaluate.errors import EvalInputError, read_fields, read_text
from pipeline.evaluate.metrics import JUDGMENT_COLUMNS

KEY = ["query_id", "doc_id"]


@dataclass(slots=True)
class Judgments:
    source: str
    frame: pl.DataFrame  # query_id, doc_id, relevance: one row per judged (query, doc)
    # query_id, doc_id, first, second (line or row numbers), first_label, second_label
    duplicates: pl.DataFrame
    unit: str = "line"  # what the numbers count: "line" or "row"

    def check_duplicates(self, ranked_query_ids: pl.Series) -> int:
        """Refuse duplicates of ranked queries (trec_eval refuses them too); count all."""
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
        return self.duplicates.height


def _labels_checked(frame: pl.DataFrame, path: Path, unit: str) -> pl.DataFrame:
    """``relevance`` as Int64: integer values, or texts and floats that are whole numbers."""
    column = frame["relevance"]
    value = pl.col("relevance")
    if column.dtype.is_float():
        value = pl.when(value == value.floor()).then(value.cast(pl.Int64, strict=False))
    elif column.dtype == pl.String:
        value = value.str.strip_chars().cast(pl.Int64, strict=False)
    elif not column.dtype.is_integer():
        raise EvalInputError(
            f"{path}: column 'relevance' has type {column.dtype}, expected integers"
        )
    bad = frame.filter(value.is_null()).head(1)
    if bad.height:
        number, text = bad.select("number", "relevance").row(0)
        raise EvalInputError(
            f"{path} {unit} {number}: field 'relevance' is {text!r}, not an integer label"
        )
    return frame.with_columns(value.cast(pl.Int64))


def _trec_qrels(path: Path) -> pl.DataFrame:
    lines = read_fields(path, ["query_id", "iter", "doc_id", "relevance"])
    return lines.select(pl.col("line").alias("number"), *JUDGMENT_COLUMNS)


def _id_text(value: object, name: str, where: str) -> str:
    # Integer ids are compared as their decimal text, as trec_eval would read them.
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise EvalInputError(f"{where}: field {name!r} is {value!r}, not a string id")
    text = str(value)
    if not text or any(ch.isspace() for ch in text):
        raise EvalInputError(
            f"{where}: field {name!r} is {text!r}: ids must be non-empty, without spaces"
        )
    return text


def _label(value: object, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    raise EvalInputError(f"{where}: field 'relevance' is {value!r}, not an integer label")


def _jsonl(path: Path) -> pl.DataFrame:
    columns: dict[str, list] = {"number": [], "query_id": [], "doc_id": [], "relevance": []}
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise EvalInputError(
                f"{where}: not valid JSON Lines ({exc}); expected one object per line"
            ) from None
        if not isinstance(record, dict):
            raise EvalInputError(
                f"{where}: expected a JSON object with {', '.join(JUDGMENT_COLUMNS)}"
            )
        missing = [name for name in JUDGMENT_COLUMNS if name not in record]
        if missing:
            raise EvalInputError(f"{where}: missing field {', '.join(map(repr, missing))}")
        columns["number"].append(number)
        columns["query_id"].append(_id_text(record["query_id"], "query_id", where))
        columns["doc_id"].append(_id_text(record["doc_id"], "doc_id", where))
        columns["relevance"].append(_label(record["relevance"], where))
    return pl.DataFrame(
        columns,
        schema={
            "number": pl.Int64,
            "query_id": pl.String,
            "doc_id": pl.String,
            "relevance": pl.Int64,
        },
    )


def _parquet(path: Path) -> pl.DataFrame:
    try:
        names = pq.read_schema(path).names
    except Exception as exc:  # pyarrow raises several types for a non-Parquet file
        raise EvalInputError(f"{path}: cannot read as Parquet ({exc})") from None
    missing = [name for name in JUDGMENT_COLUMNS if name not in names]
    if missing:
        raise EvalInputError(
            f"{path}: missing column {', '.join(map(repr, missing))} (has {', '.join(names)})"
        )
    frame = pl.read_parquet(path, columns=list(JUDGMENT_COLUMNS)).with_row_index("number", offset=1)
    for name in JUDGMENT_COLUMNS:
        bad = frame.filter(pl.col(name).is_null()).head(1)
        if bad.height:
            raise EvalInputError(f"{path} row {bad['number'][0]}: field {name!r} is None")
    for name in KEY:
        dtype = frame[name].dtype
        if dtype.is_integer():
            frame = frame.with_columns(pl.col(name).cast(pl.String))
        elif dtype != pl.String:
            raise EvalInputError(f"{path}: column {name!r} has type {dtype}, expected string ids")
        bad = frame.filter(pl.col(name).str.contains(r"^$|\s")).head(1)
        if bad.height:
            raise EvalInputError(
                f"{path} row {bad['number'][0]}: field {name!r} is {bad[name][0]!r}: "
                "ids must be non-empty, without spaces"
            )
    return frame


def load_judgments(path: Path | str) -> Judgments:
    """Read qrels from ``path`` (format from the suffix); errors name file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise EvalInputError(f"qrels file not found: {path}")
    suffix = path.suffix.lower()
    unit = "row" if suffix == ".parquet" else "line"
    if suffix == ".parquet":
        frame = _parquet(path)
    elif suffix in (".jsonl", ".ndjson", ".json"):
        frame = _jsonl(path)
    else:
        frame = _trec_qrels(path)
    if not frame.height:
        raise EvalInputError(f"{path}: no judgments found")
    frame = _labels_checked(frame, path, unit)
    first = frame.select(pl.struct(KEY).is_first_distinct()).to_series()
    again = frame.filter(~first)
    earlier = frame.filter(first).join(again.select(KEY), on=KEY, how="semi")
    duplicates = again.join(earlier, on=KEY, suffix="_first").select(
        *KEY,
        first=pl.col("number_first"),
        second=pl.col("number"),
        first_label=pl.col("relevance_first"),
        second_label=pl.col("relevance"),
    )
    if again.height:
        frame = frame.filter(first)
    return Judgments(str(path), frame.select(JUDGMENT_COLUMNS), duplicates, unit)
