"""Relevance judgments (qrels): TREC text, Parquet or JSONL.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "qrels.txt"
>>> _ = path.write_text("q1 0 d1 2\\nq1 0 d2 0\\n")
>>> load_judgments(path).by_query
{'q1': {'d1': 2, 'd2': 0}}

Formats, chosen by file name:

* ``*.parquet``: columns ``query_id``, ``doc_id``, ``relevance``.
* ``*.jsonl`` / ``*.ndjson`` / ``*.json``: JSON Lines, one object per line
  with the same three keys.
* anything else: TREC qrels, ``qid iter docid rel`` separated by whitespace
  (``iter`` is ignored); lines starting with ``#`` and blank lines are skipped.

Labels must be integers (trec_eval silently truncates ``1.5`` to 1 and reads
``x`` as 0; here they are errors). Negative labels are kept: like trec_eval,
they count as neither relevant nor as an ideal-ranking gain.

A (query, doc) judged twice is recorded in ``duplicates``; the caller decides
(trec_eval refuses to evaluate a query with a duplicate judgment).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.evaluate.errors import EvalInputError, open_text

JUDGMENT_COLUMNS = ("query_id", "doc_id", "relevance")


@dataclass(slots=True)
class DuplicateJudgment:
    """A second judgment of the same (query, doc); ``where`` say 'line 7' / 'row 6'."""

    query_id: str
    doc_id: str
    first_where: str
    first_label: int
    second_where: str
    second_label: int


@dataclass(slots=True)
class Judgments:
    """Labels per query: ``by_query[query_id][doc_id] -> label`` (first one wins)."""

    source: str
    by_query: dict[str, dict[str, int]] = field(default_factory=dict)
    duplicates: list[DuplicateJudgment] = field(default_factory=list)
    # Where each kept judgment came from, to name both lines of a duplicate.
    _where: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)

    def add(self, query_id: str, doc_id: str, label: int, where: str) -> None:
        docs = self.by_query.setdefault(query_id, {})
        if doc_id in docs:
            self.duplicates.append(
                DuplicateJudgment(
                    query_id, doc_id, self._where[(query_id, doc_id)], docs[doc_id], where, label
                )
            )
            return
        docs[doc_id] = label
        self._where[(query_id, doc_id)] = where

    def describe_duplicate(self, dup: DuplicateJudgment) -> str:
        return (
            f"{self.source} {dup.first_where} and {dup.second_where}: query {dup.query_id!r}, "
            f"doc {dup.doc_id!r} (labels {dup.first_label} and {dup.second_label})"
        )


def _parse_label(text: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise EvalInputError(
            f"{where}: field 'relevance' is {text!r}, not an integer label"
        ) from None


def _label_from_value(value: object, where: str) -> int:
    if isinstance(value, bool) or value is None:
        raise EvalInputError(f"{where}: field 'relevance' is {value!r}, not an integer label")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return _parse_label(value.strip(), where)
    raise EvalInputError(f"{where}: field 'relevance' is {value!r}, not an integer label")


def _id_from_value(value: object, name: str, where: str) -> str:
    # Integer ids are accepted and compared as their decimal text, as trec_eval would read them.
    if isinstance(value, bool) or value is None or isinstance(value, float):
        raise EvalInputError(f"{where}: field {name!r} is {value!r}, not a string id")
    text = str(value)
    if not text or any(ch.isspace() for ch in text):
        raise EvalInputError(
            f"{where}: field {name!r} is {text!r}: ids must be non-empty, without spaces"
        )
    return text


def _load_trec_qrels(path: Path, judgments: Judgments) -> None:
    with open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            where = f"{path} line {number}"
            if len(fields) != 4:
                raise EvalInputError(
                    f"{where}: expected 4 fields 'query_id iter doc_id relevance', got {len(fields)}: {line.strip()!r}"
                )
            query_id, _iteration, doc_id, label = fields
            judgments.add(query_id, doc_id, _parse_label(label, where), f"line {number}")


def _load_jsonl(path: Path, judgments: Judgments) -> None:
    with open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise EvalInputError(
                    f"{where}: not valid JSON Lines ({exc.msg}); expected one object per line"
                ) from None
            if not isinstance(record, dict):
                raise EvalInputError(
                    f"{where}: expected a JSON object with {', '.join(JUDGMENT_COLUMNS)}"
                )
            missing = [name for name in JUDGMENT_COLUMNS if name not in record]
            if missing:
                raise EvalInputError(f"{where}: missing field {', '.join(map(repr, missing))}")
            judgments.add(
                _id_from_value(record["query_id"], "query_id", where),
                _id_from_value(record["doc_id"], "doc_id", where),
                _label_from_value(record["relevance"], where),
                f"line {number}",
            )


def _load_parquet(path: Path, judgments: Judgments) -> None:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for a non-Parquet file
        raise EvalInputError(f"{path}: cannot read as Parquet ({exc})") from None
    missing = [name for name in JUDGMENT_COLUMNS if name not in schema.names]
    if missing:
        raise EvalInputError(
            f"{path}: missing column {', '.join(map(repr, missing))} (has {', '.join(schema.names)})"
        )
    table = pq.read_table(path, columns=list(JUDGMENT_COLUMNS))
    columns = [table.column(name).to_pylist() for name in JUDGMENT_COLUMNS]
    # Rows are numbered from 1 in file order (pyarrow reads a single file in order).
    for number, (query_id, doc_id, label) in enumerate(zip(*columns, strict=True), start=1):
        where = f"{path} row {number}"
        judgments.add(
            _id_from_value(query_id, "query_id", where),
            _id_from_value(doc_id, "doc_id", where),
            _label_from_value(label, where),
            f"row {number}",
        )


def load_judgments(path: Path | str) -> Judgments:
    """Read qrels from ``path`` (format from the suffix); errors name file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise EvalInputError(f"qrels file not found: {path}")
    judgments = Judgments(source=str(path))
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        _load_parquet(path, judgments)
    elif suffix in (".jsonl", ".ndjson", ".json"):
        _load_jsonl(path, judgments)
    else:
        _load_trec_qrels(path, judgments)
    if not judgments.by_query:
        raise EvalInputError(f"{path}: no judgments found")
    return judgments
