"""The one error evaluation raises for bad input, and reading its text inputs.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "qrels.txt"
>>> _ = path.write_text("\\ufeffq1 0 d1 2\\n# a comment\\n\\nq1 0 d2 x\\n", encoding="utf-8")
>>> read_fields(path, ["query_id", "iteration", "doc_id", "relevance"]).rows()
[(1, 'q1', '0', 'd1', '2'), (4, 'q1', '0', 'd2', 'x')]
>>> str(EvalInputError(f"{path.name} line 4: field 'relevance' is 'x', not an integer label"))
"qrels.txt line 4: field 'relevance' is 'x', not an integer label"

The command line prints an EvalInputError's message alone (no traceback) and exits with 2.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl


class EvalInputError(Exception):
    """Bad evaluation input: the message names the file, the line or row, and the field."""


def read_text(path: Path) -> str:
    """A UTF-8 text file, without a leading byte order mark."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EvalInputError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EvalInputError(f"{path}: not UTF-8 text ({exc.reason})") from None
    # Windows editors start files with a BOM; kept, it would become part of the first id.
    return text.removeprefix("\ufeff")


def read_fields(path: Path, names: Sequence[str], extra_allowed: bool = False) -> pl.DataFrame:
    """Whitespace-separated fields as string columns ``names``, after a ``line`` column.

    Blank lines and lines whose first field starts with ``#`` are skipped. A line with
    another number of fields (more is fine when ``extra_allowed``) raises, naming the line.
    Read streaming (only the wanted columns are ever held); a leading BOM is dropped.
    """
    fields = pl.col("text").str.extract_all(r"\S+")
    count = fields.list.len()
    lines = (
        # \x1f (unit separator) never occurs in qrels or runs: each line is one text field.
        pl.scan_csv(
            path, has_header=False, separator="\x1f", quote_char=None, schema={"text": pl.String}
        )
        .with_row_index("line", offset=1)
        .filter(~pl.col("text").str.contains(r"^\s*(#|$)"))
    )
    wrong = count < len(names) if extra_allowed else count != len(names)
    try:
        bad = lines.filter(wrong).select("line", "text", count.alias("count")).head(1).collect()
        if bad.height:
            line, text, got = bad.row(0)
            raise EvalInputError(
                f"{path} line {line}: expected {len(names)} fields {' '.join(names)!r}, "
                f"got {got}: {text.strip()!r}"
            )
        columns = (fields.list.get(i).alias(name) for i, name in enumerate(names))
        return lines.select(pl.col("line").cast(pl.Int64), *columns).collect(engine="streaming")
    except (OSError, pl.exceptions.ComputeError) as exc:
        reason = str(exc).splitlines()[0]
        raise EvalInputError(f"{path}: cannot read as UTF-8 text lines ({reason})") from None
