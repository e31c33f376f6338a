"""The one error evaluation raises for bad input, and the checks several inputs share.

>>> str(EvalInputError("qrels.txt line 4: field 'relevance' is 'x', not an integer label"))
"qrels.txt line 4: field 'relevance' is 'x', not an integer label"

The command line prints its message alone (no traceback) and exits with status 2.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when used: the command line builds its parser without polars
    import polars as pl

    from pipeline.storage import Location

# TREC files are whitespace separated: such an id could not be written to one.
BAD_ID, BAD_ID_TEXT = r"^$|\s", "{!r}: ids must be non-empty, without spaces"


class EvalInputError(Exception):
    """Bad evaluation input: the message names the file, the line or row, and the field."""


def parquet_schema(path: Location, columns: Iterable[str]) -> pl.Schema:
    """The schema of the Parquet file ``path``, which must have ``columns``."""
    import polars as pl

    from pipeline.storage import polars_source

    sources, options = polars_source([path])
    try:
        schema = pl.scan_parquet(sources[0], storage_options=options).collect_schema()
    except pl.exceptions.PolarsError as exc:
        raise EvalInputError(f"{path}: cannot read as Parquet ({exc})") from None
    missing = [name for name in columns if name not in schema]
    if missing:
        raise EvalInputError(
            f"{path}: missing column {', '.join(map(repr, missing))} (has {', '.join(schema)})"
        )
    return schema
