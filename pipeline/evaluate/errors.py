"""The one error type evaluation raises for bad input.

>>> from pipeline.evaluate.errors import EvalInputError
>>> str(EvalInputError("qrels.txt line 3: field 'relevance' is 'x', not an integer"))
"qrels.txt line 3: field 'relevance' is 'x', not an integer"
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


class EvalInputError(Exception):
    """Bad evaluation input: the message names the file, the line or row, and the field.

    The CLI prints the message alone (no traceback) and exits with status 2.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


@contextmanager
def open_text(path: Path) -> Iterator[TextIO]:
    """Open a UTF-8 text file; OS and decoding errors (also while reading) become EvalInputError."""
    try:
        with open(path, encoding="utf-8") as handle:
            yield handle
    except OSError as exc:
        raise EvalInputError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise EvalInputError(f"{path}: not UTF-8 text ({exc.reason})") from None
