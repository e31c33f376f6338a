"""The one error type evaluation raises for bad input.

>>> from pipeline.evaluate.errors import EvalInputError
>>> str(EvalInputError("qrels.txt line 3: field 'relevance' is 'x', not an integer"))
"qrels.txt line 3: field 'relevance' is 'x', not an integer"
"""

from __future__ import annotations


class EvalInputError(Exception):
    """Bad evaluation input: the message names the file, the line or row, and the field.

    The CLI prints the message alone (no traceback) and exits with status 2.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
