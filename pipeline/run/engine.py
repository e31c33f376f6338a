"""The asyncio engine: one producer, a fixed pool of workers, a bounded queue between.

The producer reads input batches (in a worker thread, so parsing overlaps with the
network), admits each item through the `QueryBook` and puts its chunks on a queue of
`2 x workers`; each of `max_concurrency` workers takes chunks off it and sends them through
the `RerankClient`, so chunks of different queries interleave and no task exists per
chunk. A query is written once all its chunks are in (after its final pass, for a
chunked listwise query), or failed once any chunk fails. Memory is bounded by the queue,
not by the input.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, Protocol

from pipeline.call.client import ChunkFailed, RerankClient
from pipeline.errors import AuthError, EndpointUnusable, InputError, OutputError
from pipeline.merge import PendingQuery
from pipeline.progress import Progress
from pipeline.read.layouts import IdScreen, Item
from pipeline.records import Chunk, ChunkScores
from pipeline.run.queries import QueryBook
from pipeline.run.stopping import StopControl


class ItemSource(Protocol):
    """The input as the engine reads it (`InputReader`, or a Ray actor's batch)."""

    def batches(self, screen: IdScreen | None = None) -> Iterator[list[Item]]: ...


class Flushing(Protocol):
    """The writer as the engine drives it (`OutputWriter`, or a Ray actor's recorder)."""

    async def maybe_flush(self) -> None: ...


class AsyncEngine:
    def __init__(
        self,
        reader: ItemSource,
        book: QueryBook,
        client: RerankClient,
        writer: Flushing,
        progress: Progress,
        *,
        workers: int,
        flush_seconds: float,
        signals: bool = True,
    ):
        self.reader = reader
        self.book = book
        self.client = client
        self.writer = writer
        self.progress = progress
        self.n_workers = workers
        self.flush_seconds = flush_seconds
        self.signals = signals  # False: leave SIGINT/SIGTERM alone (a Ray actor's engine)
        self.stop = StopControl()
        self.input_error: InputError | None = None  # a file that became unreadable mid-run
        self.output_error: OutputError | None = None  # the output could not be written

    async def run(self) -> None:
        """Until the input is done, or a stop (signal, 401/403, a tripped endpoint breaker,
        unreadable input) is over."""
        queue: asyncio.Queue[Chunk | None] = asyncio.Queue(maxsize=2 * self.n_workers)
        restore = self.stop.install_signal_handlers() if self.signals else (lambda: None)
        ticker = asyncio.create_task(self._tick())
        try:
            workers = [asyncio.create_task(self._worker(queue)) for _ in range(self.n_workers)]
            producer = asyncio.create_task(self._produce(queue))
            try:
                await self._supervise(producer, workers)
            except InputError as exc:
                self.input_error = exc
        finally:
            ticker.cancel()
            restore()

    async def _supervise(self, producer: asyncio.Task, workers: list[asyncio.Task]) -> None:
        everything = [producer, *workers]
        done_waiter: asyncio.Future[Any] = asyncio.gather(*everything)
        # Its exception is read below via the tasks themselves; mark it retrieved here.
        done_waiter.add_done_callback(lambda f: f.cancelled() or f.exception())
        stop_waiter: asyncio.Future[Any] = asyncio.ensure_future(self.stop.requested.wait())
        now_waiter: asyncio.Future[Any] = asyncio.ensure_future(self.stop.now.wait())
        idle_waiter: asyncio.Future[Any] | None = None
        try:
            await asyncio.wait([done_waiter, stop_waiter], return_when=asyncio.FIRST_COMPLETED)
            if not done_waiter.done():
                # Stopping: the producer stops reading and sends the workers home; queued
                # chunks are dropped unsent; in-flight requests get a grace period (none
                # after a 401/403, which stops the job at once, or after a second Ctrl-C;
                # after a tripped breaker, only until nothing is on the wire, since the
                # client starts no new attempt: workers waiting to retry need no wait).
                waiters = [done_waiter, now_waiter]
                if isinstance(self.stop.fatal, EndpointUnusable):
                    waiters.append(idle_waiter := asyncio.ensure_future(self.client.wire_idle()))
                await asyncio.wait(
                    waiters, timeout=self.stop.grace_s, return_when=asyncio.FIRST_COMPLETED
                )
        finally:
            stop_waiter.cancel()
            now_waiter.cancel()
            if idle_waiter is not None:
                idle_waiter.cancel()
            for task in everything:
                task.cancel()
            results = await asyncio.gather(*everything, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result

    async def _produce(self, queue: asyncio.Queue[Chunk | None]) -> None:
        await self._feed(queue)
        # Reached on the input's end and on a stop, not on cancellation (then the workers
        # are cancelled too): each worker goes home after the chunks queued before it.
        for _ in range(self.n_workers):
            await queue.put(None)

    async def _feed(self, queue: asyncio.Queue[Chunk | None]) -> None:
        batches = self.reader.batches(self.book.seen)  # finished rows skipped unread
        while not self.stop.stopping:
            batch = await asyncio.to_thread(next, batches, None)
            if batch is None:
                return
            for item in batch:
                if self.stop.stopping:
                    return
                for chunk in self.book.take(item):
                    await queue.put(chunk)
            await self._flush()

    async def _worker(self, queue: asyncio.Queue[Chunk | None]) -> None:
        while True:
            chunk = await queue.get()
            if chunk is None:
                return
            state = self.book.pending(chunk)
            if state is None or self.stop.stopping:
                continue  # its query already failed, or we are stopping: send nothing
            scores = await self._send(state, chunk)
            if scores is None:
                if self.stop.fatal is not None:
                    return
                continue
            if self.book.chunk_answered(state, scores):
                await self._write(state)
            await self._flush()

    async def _write(self, state: PendingQuery) -> None:
        """Write a query whose chunks are all in, re-ranking its leaders first if asked."""
        if not self.book.needs_final_pass(state):
            self.book.write(state)
            return
        scores = await self._send(state, self.book.final_pass(state))
        if scores is not None:
            self.book.write_final(state, scores)

    async def _send(self, state: PendingQuery, chunk: Chunk) -> ChunkScores | None:
        """The chunk's scores; None when it failed (its query is failed) or the job must stop."""
        try:
            return await self.client.rerank(chunk)
        except ChunkFailed as exc:
            self.book.chunk_failed(state, chunk, exc)
        except (AuthError, EndpointUnusable) as exc:
            self.stop.stop_for(exc)
        return None

    async def _flush(self) -> None:
        """Commit finished work when due. An output that cannot be written stops the job as
        Ctrl-C does: in-flight answers are still taken (the writer keeps every row it could
        not commit, for the last try at close), nothing new is sent."""
        try:
            await self.writer.maybe_flush()
        except OutputError as exc:
            if self.output_error is None:
                self.output_error = exc
            self.stop.requested.set()

    async def _tick(self) -> None:
        """Flush on time even when no query completes (slow servers, long retries)."""
        while True:
            await asyncio.sleep(min(1.0, self.flush_seconds))
            await self._flush()
            self.progress.refresh()
