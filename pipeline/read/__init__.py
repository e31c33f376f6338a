"""Stage 1, read: candidate lists streamed from Parquet or JSONL, batch by batch.

    >>> from pipeline.config import InputConfig
    >>> reader = open_input(InputConfig(path="sample_data/candidates.jsonl"))  # doctest: +SKIP
    >>> for batch in reader.batches():  # doctest: +SKIP
    ...     for item in batch:          # a Query, or a Failure naming file, row and field
    ...         ...

Never more than one batch of rows (`input.batch_rows`) is held at a time, so memory stays
flat however large the input grows. `reader.batches(screen)` shows each batch's query ids
to an `IdScreen` (the run's `QueryLedger`) first: on resume, rows of finished queries are
left unread and arrive only as a `Finished` count, in both layouts. A pairs query's rows
(contiguous, possibly over several batches or files) are left out all or none, decided at
its first row; its place in the input is kept, so the grouping check still sees it.
"""

from pipeline.read.layouts import IdScreen, InputReader, open_input
from pipeline.read.sources import InputError, resolve_sources

__all__ = ["IdScreen", "InputError", "InputReader", "open_input", "resolve_sources"]
