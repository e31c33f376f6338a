"""The run's book of queries: each input item from admission until it is written, failed
or skipped, with the counters and output rows that go with each step.

It owns no task and awaits nothing but the writer, so any engine (the asyncio one in
`pipeline.run.engine`, or one that sends chunks from elsewhere) drives the same book:

    chunks = book.take(item)                       # admission; [] when nothing is sent
    state = book.pending(chunk)                    # None: its query already failed
    book.chunk_failed(state, chunk, exc)           # a ChunkFailed from the client
    if book.chunk_answered(state, scores):         # True once every chunk is in
        book.write(state)                          # or final_pass(...) then write_final(...)

With a score cache (`pipeline.cache`), `take` sends only the pairs the cache lacks, merges
the cached scores into the query's state and writes a query that needs no request at once;
each chunk answer is handed to the cache to be stored.
"""

from __future__ import annotations

from typing import Protocol

from pipeline.accounting.stats import JobStats
from pipeline.cache import ScoreCache
from pipeline.call.client import ChunkFailed
from pipeline.chunk import plan_final_pass
from pipeline.errors import ProviderError
from pipeline.ledger import QueryLedger
from pipeline.merge import PendingQuery
from pipeline.progress import Progress
from pipeline.read.layouts import IdScreen
from pipeline.records import Chunk, ChunkScores, Failure, Finished, Query, UsageRecord
from pipeline.run.admission import Admitted, EarlierRuns, SeenIds, admit
from pipeline.run.settings import RunSettings


class BookIds(SeenIds, IdScreen, Protocol):
    """The ids the book admits and the reader screens: the run's `QueryLedger`, or an
    actor's `BatchIds` for a batch the driver screened already."""


class RowSink(Protocol):
    """Where the book puts rows: the `OutputWriter`, or a Ray actor's recorder that hands
    them to the driver's writer."""

    def add_ranked_columns(
        self,
        query: Query,
        positions: list[int],
        scores: list[float],
        chunk_scores: list[float] | None = None,
        final_scores: list[float | None] | None = None,
    ) -> None: ...

    def add_failure(self, failure: Failure) -> None: ...

    def add_usage(self, usage: UsageRecord) -> None: ...


class QueryBook:
    def __init__(
        self,
        settings: RunSettings,
        stats: JobStats,
        writer: RowSink,
        progress: Progress,
        earlier: EarlierRuns | None,
        cache: ScoreCache | None = None,
        seen: BookIds | None = None,
    ):
        self.settings = settings
        self.cache = cache  # a score cache: looked up at admission, fed each chunk answer
        self.stats = stats
        self.writer = writer
        self.progress = progress
        self.earlier = earlier
        # The query ids admitted so far: the run's on-disk `QueryLedger` (the resume
        # state's, which also knows what earlier runs finished), or a private one.
        self.seen: BookIds = seen if seen is not None else QueryLedger()
        self._pending: dict[int, PendingQuery] = {}  # id(query) -> its state, while in flight
        self._warned_listwise = False

    @property
    def in_flight(self) -> int:
        """Queries admitted whose chunks are not all in (summary: in_flight_not_written)."""
        return len(self._pending)

    def take(self, item: Query | Failure | Finished) -> list[Chunk]:
        """Account for one input item; return the chunks to send for it (maybe none)."""
        if isinstance(item, Finished):  # rows the reader skipped unread: done earlier
            self.skip_finished(item)
            return []
        self.stats.queries_read += 1
        result = admit(item, self.settings, self.seen, self.earlier, self.cache)
        if result is None:
            self.stats.queries_skipped += 1
            self.progress.advance()
            return []
        if isinstance(result, Failure):
            self.fail(result)
            return []
        return self._start(result)

    def skip_finished(self, item: Finished) -> None:
        """Input rows of queries an earlier run finished, left unread by the reader: read
        and skipped, all at once."""
        self.stats.queries_read += item.count
        self.stats.queries_skipped += item.count
        self.progress.skip(item.count)

    def _start(self, admitted: Admitted) -> list[Chunk]:
        query, chunks = admitted.query, admitted.chunks
        self.stats.documents_read += len(query.documents)
        if admitted.failure is not None:
            self.fail(admitted.failure)
            return []
        self.stats.chunks += len(chunks)
        if len(chunks) > 1 and self.settings.profile.listwise:
            self._warn_listwise(len(query.documents))
        state = PendingQuery(query, len(chunks), self.settings.top_n)
        if admitted.cached is not None:
            state.add_cached(admitted.cached.positions, admitted.cached.scores)
            if not chunks:  # every score came from the cache: nothing to send
                self.write(state)
                return []
        self._pending[id(query)] = state
        return chunks

    def pending(self, chunk: Chunk) -> PendingQuery | None:
        """The state of the chunk's query; None once the query failed (send nothing)."""
        state = self._pending.get(id(chunk.query))
        return None if state is None or state.failed else state

    def chunk_answered(self, state: PendingQuery, scores: ChunkScores) -> bool:
        """Add a chunk's scores; True when this completed its query (it is then no longer
        pending: write it, after its final pass if `needs_final_pass`)."""
        if scores.usage is not None:
            self.writer.add_usage(scores.usage)
        if self.cache is not None:
            self.cache.remember(scores)  # exact scores, even if another chunk failed
        if state.failed:
            return False
        state.add(scores.positions, scores.scores)
        if not state.complete:
            return False
        del self._pending[id(state.query)]
        return True

    def chunk_failed(self, state: PendingQuery, chunk: Chunk, exc: ChunkFailed) -> None:
        """A chunk (or a final pass) that will not be answered fails its whole query."""
        self.stats.requests_failed += 1
        self.writer.add_usage(exc.usage)
        if state.failed:
            return  # another chunk of the query failed first
        state.failed = True
        self._pending.pop(id(state.query), None)  # a final pass's query is already out
        self.fail(request_failure(chunk, exc.error, final=chunk.number >= state.n_chunks))

    def needs_final_pass(self, state: PendingQuery) -> bool:
        return bool(self.settings.final_window) and state.n_chunks > 1

    def final_pass(self, state: PendingQuery) -> Chunk:
        """The one request re-ranking a complete query's merged leaders together."""
        leaders = [d.position for d in state.ranking(cut=False)[: self.settings.final_window]]
        self.stats.chunks += 1
        return plan_final_pass(state.query, leaders, state.n_chunks, state.top_n)

    def write(self, state: PendingQuery) -> None:
        positions, scores = state.order()
        self.writer.add_ranked_columns(state.query, positions, scores)
        self._ranked(state.query)

    def write_final(self, state: PendingQuery, scores: ChunkScores) -> None:
        """Write a query re-ranked by its final pass (`scores` is that pass's answer)."""
        if scores.usage is not None:
            self.writer.add_usage(scores.usage)
        c = state.final_pass_columns(scores.positions, scores.scores)
        self.writer.add_ranked_columns(
            state.query, c.positions, c.scores, c.chunk_scores, c.final_scores
        )
        self._ranked(state.query)

    def _ranked(self, query: Query) -> None:
        self.stats.queries_ranked += 1
        self.stats.documents_ranked += len(query.documents)
        self.progress.advance()

    def fail(self, failure: Failure) -> None:
        self.writer.add_failure(failure)
        self.stats.queries_failed += 1
        self.stats.failures_by_error[failure.error] += 1
        self.progress.advance()

    def _warn_listwise(self, n_docs: int) -> None:
        self.stats.listwise_chunked += 1
        if self._warned_listwise:
            return
        self._warned_listwise = True
        window = self.settings.final_window
        if window:
            how = f"each such query's merged top {window} is re-ranked in one request (limits.final_pass)"
        else:
            how = (
                f"set limits.final_pass = true to re-rank the merged top "
                f"{self.settings.listwise_window} in one request"
            )
        self.progress.write(
            f"warning: {self.settings.profile.note}; a list of {n_docs} candidates is split "
            f"into chunks whose scores are not exactly comparable: {how}"
        )


def request_failure(chunk: Chunk, err: ProviderError, final: bool = False) -> Failure:
    """The failures/ row for a query whose request failed: the error's key and message,
    prefixed by which request it was (`final`: a final pass, numbered after the query's
    chunks)."""
    if final:
        what = f"final pass ({chunk.n_docs} documents)"
    else:
        what = f"chunk {chunk.number} ({chunk.n_docs} documents)"
    query = chunk.query
    return Failure(
        query.query_id,
        query.source,
        "request",
        err.key,
        f"{what}: {err.message}",
        retryable=err.retryable,
    )
