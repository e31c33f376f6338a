"""The one error evaluation raises for bad input.

>>> str(EvalInputError("qrels.txt line 4: field 'relevance' is 'x', not an integer label"))
"qrels.txt line 4: field 'relevance' is 'x', not an integer label"

The command line prints its message alone (no traceback) and exits with status 2.
"""


class EvalInputError(Exception):
    """Bad evaluation input: the message names the file, the line or row, and the field."""
