"""The job runner: read -> chunk -> limit -> call -> merge -> write, with accounting beside.

    outcome = asyncio.run(run_job(load_job("jobs/sample.toml")))

Shape of a run: one producer reads input batches (in a worker thread, so parsing overlaps
with the network), plans chunks and puts them on a bounded queue; a fixed pool of
`max_concurrency` workers takes chunks off it, so chunks of different queries interleave
and no task exists per chunk. A query is written once all its chunks are in, or failed
once any chunk fails. Memory is bounded by the queue, not by the input.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson

from pipeline.accounting.cost import summary_cost
from pipeline.accounting.stats import JobStats
from pipeline.call.client import ChunkFailed, RerankClient
from pipeline.call.errors import AuthError
from pipeline.call.transport import HttpTransport, LocalTransport, Transport
from pipeline.chunk import (
    estimate_tokens,
    estimate_tokens_many,
    fit_documents,
    pair_tokens,
    plan_chunks,
)
from pipeline.config import JobConfig, to_toml
from pipeline.ledger import QueryLedger
from pipeline.limit import Limits
from pipeline.merge import PendingQuery
from pipeline.progress import Progress
from pipeline.providers import get_adapter
from pipeline.providers.models import model_profile
from pipeline.read import InputError, open_input
from pipeline.records import Chunk, Failure, Finished, Query
from pipeline.resume import ResumeState, prepare_resume
from pipeline.setup import (
    check_chunk_size,
    prepare_output_dir,
    resolve_key,
    resolve_model,
    resolve_url,
)
from pipeline.write import OutputWriter

EXIT_OK, EXIT_SOME_FAILED, EXIT_SETUP, EXIT_AUTH, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
STOP_GRACE_S = 30.0  # how long in-flight requests may take to finish after Ctrl-C / SIGTERM


@dataclass(slots=True)
class Outcome:
    exit_code: int
    stats: JobStats
    message: str = ""
    summary: dict | None = None


class JobRun:
    def __init__(
        self,
        cfg: JobConfig,
        *,
        quiet: bool = False,
        overwrite: bool = False,
        retry_failed: bool = False,
    ):
        self.cfg = cfg
        self.quiet = quiet
        self.overwrite = overwrite
        self.retry_failed = retry_failed
        self.adapter = get_adapter(cfg.provider.kind)
        self.max_docs = cfg.limits.max_docs_per_request or self.adapter.spec.max_docs_per_request
        self.max_doc_tokens = cfg.limits.max_doc_tokens
        self.max_tokens = (
            cfg.limits.max_tokens_per_request or self.adapter.spec.max_tokens_per_request
        )
        self.profile = model_profile(
            cfg.provider.kind, cfg.provider.model or self.adapter.spec.default_model
        )
        # A listwise model's chunk scores are not comparable: re-rank the merged leaders in
        # one request of at most its window (and of the provider's request size).
        self.final_window = (
            min(self.profile.window or self.max_docs, self.max_docs)
            if self.profile.listwise and cfg.limits.final_pass
            else None
        )
        self.warned_listwise = False
        self.out_dir = Path(cfg.output.dir)
        self.stats = JobStats()
        self.pending: dict[int, PendingQuery] = {}  # id(query) -> its state, while in flight
        self.stopping = asyncio.Event()
        self.stop_now = asyncio.Event()  # a second Ctrl-C: give up the grace period
        self.fatal: BaseException | None = None
        self.input_error: InputError | None = None

    # -- setup -------------------------------------------------------------------------
    def prepare(self) -> None:
        """Every check that can fail before a request is sent (raises SetupError/InputError)."""
        self.key, self.key_env = resolve_key(self.cfg, self.adapter)
        self.model = resolve_model(self.cfg, self.adapter)
        self.url = resolve_url(self.cfg, self.adapter)
        check_chunk_size(self.cfg, self.adapter, self.max_docs)
        self.reader = open_input(self.cfg.input)
        self.reader.check()
        prepare_output_dir(self.out_dir)
        self.resume: ResumeState = prepare_resume(
            self.out_dir, self.cfg, overwrite=self.overwrite, retry_failed=self.retry_failed
        )
        self.seen: QueryLedger = self.resume.ledger  # finished ids, then the ids seen here
        (self.out_dir / "job.resolved.toml").write_text(to_toml(self.cfg), encoding="utf-8")

    def _transport(self) -> Transport:
        if self.cfg.provider.kind == "local":
            return LocalTransport()
        lim = self.cfg.limits
        return HttpTransport(
            self.url, self.key, lim.max_concurrency, lim.timeout_s, lim.connect_timeout_s
        )

    # -- the run -------------------------------------------------------------------------
    async def run(self) -> Outcome:
        lim = self.cfg.limits
        self.writer = OutputWriter(
            self.out_dir,
            self.cfg.output.include_text,
            self.cfg.output.flush_rows,
            self.cfg.output.flush_seconds,
        )
        limits = await Limits.create(
            lim.max_concurrency, lim.requests_per_minute, lim.tokens_per_minute
        )
        transport = self._transport()
        self.client = RerankClient(
            self.adapter,
            transport,
            limits,
            self.stats,
            model=self.model,
            key_env=self.key_env,
            secrets=[self.key] if self.key else [],
            max_attempts=lim.max_attempts,
            max_retry_wait_s=lim.max_retry_wait_s,
            max_retry_time_s=lim.max_retry_time_s,
        )
        self.progress = Progress(self.stats, total=self.reader.count_queries(), quiet=self.quiet)
        queue: asyncio.Queue[Chunk | None] = asyncio.Queue(maxsize=2 * lim.max_concurrency)
        restore = _install_signal_handlers(self._request_stop)
        ticker = asyncio.create_task(self._tick())
        try:
            workers = [asyncio.create_task(self._worker(queue)) for _ in range(lim.max_concurrency)]
            producer = asyncio.create_task(self._produce(queue, len(workers)))
            try:
                await self._supervise(producer, workers)
            except InputError as exc:  # a file that became unreadable mid-run
                self.input_error = exc
        finally:
            ticker.cancel()
            restore()
            await transport.close()
            self.progress.close()
            await self.writer.close(compact=not self.stopping.is_set())
            self.seen.close()
        return self._finish()

    async def _supervise(self, producer: asyncio.Task, workers: list[asyncio.Task]) -> None:
        everything = [producer, *workers]
        done_waiter = asyncio.gather(*everything)
        # Its exception is read below via the tasks themselves; mark it retrieved here.
        done_waiter.add_done_callback(lambda f: f.cancelled() or f.exception())
        stop_waiter = asyncio.ensure_future(self.stopping.wait())
        now_waiter = asyncio.ensure_future(self.stop_now.wait())
        try:
            await asyncio.wait([done_waiter, stop_waiter], return_when=asyncio.FIRST_COMPLETED)
            if not done_waiter.done():
                # Stopping: the producer stops reading and sends the workers home; queued
                # chunks are dropped unsent; in-flight requests get a grace period (none
                # after a 401/403, which stops the job at once, or after a second Ctrl-C).
                grace = 0.0 if self.fatal is not None else STOP_GRACE_S
                await asyncio.wait(
                    [done_waiter, now_waiter], timeout=grace, return_when=asyncio.FIRST_COMPLETED
                )
        finally:
            stop_waiter.cancel()
            now_waiter.cancel()
            for task in everything:
                task.cancel()
            results = await asyncio.gather(*everything, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result

    def _request_stop(self) -> None:
        if self.stopping.is_set():
            print("\nstopping now: in-flight requests are abandoned", file=sys.stderr)
            self.stop_now.set()
            return
        print(
            f"\nstopping: finishing in-flight requests (at most {STOP_GRACE_S:.0f}s; "
            "Ctrl-C again to stop at once), then writing what is done",
            file=sys.stderr,
        )
        self.stopping.set()

    async def _produce(self, queue: asyncio.Queue, n_workers: int) -> None:
        await self._feed(queue)
        # Reached on the input's end and on a stop, not on cancellation (then the workers
        # are cancelled too): each worker goes home after the chunks queued before it.
        for _ in range(n_workers):
            await queue.put(None)

    async def _feed(self, queue: asyncio.Queue) -> None:
        batches = self.reader.batches(self.seen)
        while not self.stopping.is_set():
            batch = await asyncio.to_thread(next, batches, None)
            if batch is None:
                return
            for item in batch:
                if self.stopping.is_set():
                    return
                for chunk in self._admit(item):
                    await queue.put(chunk)
            await self.writer.maybe_flush()

    def _admit(self, item: Query | Failure | Finished) -> list[Chunk]:
        """Account for one input item; return the chunks to send for it (maybe none)."""
        if isinstance(item, Finished):  # rows the reader skipped unread: done earlier
            self.stats.queries_read += item.count
            self.stats.queries_skipped += item.count
            self.progress.skip(item.count)
            return []
        self.stats.queries_read += 1
        if isinstance(item, Failure):
            if self.resume.failure_recorded(item.source):
                self.stats.queries_skipped += 1
            else:
                self._fail(item)
            return []
        qid = item.query_id
        if not self.seen.first_sight(qid):
            if self.resume.failure_recorded(item.source):
                self.stats.queries_skipped += 1
            else:
                self._fail(
                    Failure(
                        qid,
                        item.source,
                        "input",
                        "duplicate_query_id",
                        f"{item.source}: query_id {qid!r} appeared earlier in the input; "
                        "this later occurrence is not ranked",
                    )
                )
            return []
        if self.resume.is_done(qid):
            self.stats.queries_skipped += 1
            self.progress.advance(0)
            return []
        self.stats.documents_read += len(item.documents)
        doc_tokens = estimate_tokens_many(item.documents)  # once, for both steps below
        problem = fit_documents(item, self.max_doc_tokens, self.cfg.input.truncate, doc_tokens)
        if problem is not None:
            self._fail(Failure(qid, item.source, "input", "document_too_long", problem))
            return []
        top_n = self.cfg.output.top_n
        chunks = plan_chunks(item, self.max_docs, self.max_tokens, top_n, doc_tokens)
        self.stats.chunks += len(chunks)
        if len(chunks) > 1 and self.profile.listwise:
            self._warn_listwise(len(item.documents))
        self.pending[id(item)] = PendingQuery(item, len(chunks), top_n)
        return chunks

    async def _worker(self, queue: asyncio.Queue) -> None:
        while True:
            chunk = await queue.get()
            if chunk is None:
                return
            state = self.pending.get(id(chunk.query))
            if state is None or state.failed or self.stopping.is_set():
                continue  # its query already failed, or we are stopping: send nothing
            try:
                scores = await self.client.rerank(chunk)
            except ChunkFailed as exc:
                self.stats.requests_failed += 1
                self.writer.add_usage(exc.usage)
                if not state.failed:
                    state.failed = True
                    del self.pending[id(chunk.query)]
                    err = exc.error
                    self._fail(
                        Failure(
                            chunk.query.query_id,
                            chunk.query.source,
                            "request",
                            f"http_{err.status}" if err.status else err.error,
                            f"chunk {chunk.number} ({chunk.n_docs} documents): {err.message}",
                            retryable=err.retryable,
                        )
                    )
                continue
            except AuthError as exc:
                self.fatal = exc
                self.stopping.set()
                return
            self.writer.add_usage(scores.usage)
            if state.failed:
                continue
            state.add(scores.positions, scores.scores)
            if state.complete:
                del self.pending[id(chunk.query)]
                if self.final_window and state.n_chunks > 1:
                    ranking = await self._final_pass(state)
                    if ranking is None:
                        continue
                    self.writer.add_ranked(state.query, ranking)
                else:
                    positions, scores = state.order()
                    self.writer.add_ranked_columns(state.query, positions, scores)
                self.stats.queries_ranked += 1
                self.stats.documents_ranked += len(state.query.documents)
                self.progress.advance(len(state.query.documents))
            await self.writer.maybe_flush()

    async def _final_pass(self, state: PendingQuery) -> list | None:
        """One more request: the merged leaders, re-ranked in a single listwise context."""
        query = state.query
        leaders = [d.position for d in state.ranking(cut=False)[: self.final_window]]
        q_tokens = estimate_tokens(query.text)
        tokens = sum(pair_tokens(q_tokens, estimate_tokens(query.documents[p])) for p in leaders)
        top_n = len(leaders) if state.top_n is None else min(state.top_n, len(leaders))
        chunk = Chunk(query, state.n_chunks, 0, 0, tokens, top_n, positions=leaders)
        self.stats.chunks += 1
        try:
            scores = await self.client.rerank(chunk)
        except ChunkFailed as exc:
            self.stats.requests_failed += 1
            self.writer.add_usage(exc.usage)
            err = exc.error
            self._fail(
                Failure(
                    query.query_id,
                    query.source,
                    "request",
                    f"http_{err.status}" if err.status else err.error,
                    f"final pass ({len(leaders)} documents): {err.message}",
                    retryable=err.retryable,
                )
            )
            return None
        self.writer.add_usage(scores.usage)
        return state.final_pass_ranking(scores.positions, scores.scores)

    def _warn_listwise(self, n_docs: int) -> None:
        self.stats.listwise_chunked += 1
        if self.warned_listwise:
            return
        self.warned_listwise = True
        if self.final_window:
            how = f"each such query's merged top {self.final_window} is re-ranked in one request (limits.final_pass)"
        else:
            how = (
                f"set limits.final_pass = true to re-rank the merged top "
                f"{min(self.profile.window or self.max_docs, self.max_docs)} in one request"
            )
        print(
            f"warning: {self.profile.note}; a list of {n_docs} candidates is split into chunks "
            f"whose scores are not exactly comparable: {how}",
            file=sys.stderr,
        )

    def _fail(self, failure: Failure) -> None:
        self.writer.add_failure(failure)
        self.stats.queries_failed += 1
        self.stats.failures_by_error[failure.error] += 1
        self.progress.advance(0)

    async def _tick(self) -> None:
        """Flush on time even when no query completes (slow servers, long retries)."""
        while True:
            await asyncio.sleep(min(1.0, self.cfg.output.flush_seconds))
            await self.writer.maybe_flush()
            self.progress.refresh()

    # -- the end ---------------------------------------------------------------------
    def _finish(self) -> Outcome:
        summary = self.stats.summary()
        summary["provider"] = {
            "kind": self.cfg.provider.kind,
            "model": self.model,
            "url": self.url,
            "billing": self.adapter.spec.billing,
            "listwise": self.profile.listwise,
            "final_pass": bool(self.final_window),
        }
        summary["cost"] = summary_cost(
            summary, self.cfg.provider.kind, self.model, self.cfg.pricing
        )
        interrupted = self.stopping.is_set()
        summary["status"] = (
            "auth_error"
            if self.fatal
            else "input_error"
            if self.input_error
            else "interrupted"
            if interrupted
            else "complete"
        )
        summary["queries"]["in_flight_not_written"] = len(self.pending)
        failed_total = self.resume.failed_earlier + self.stats.queries_failed
        summary["output_dir_totals"] = {
            "ranked": self.resume.ranked_earlier + self.stats.queries_ranked,
            "failed": failed_total,
        }
        (self.out_dir / "summary.json").write_bytes(
            orjson.dumps(summary, option=orjson.OPT_INDENT_2)
        )
        self.summary = summary
        if self.input_error is not None:
            return Outcome(
                EXIT_SETUP,
                self.stats,
                f"error: {self.input_error}\nfinished work is saved; fix the input and run "
                "the same command again to resume",
                summary,
            )
        if self.fatal is not None:
            return Outcome(EXIT_AUTH, self.stats, f"stopped: {self.fatal}", summary)
        if interrupted:
            return Outcome(
                EXIT_INTERRUPTED,
                self.stats,
                "interrupted: finished work is saved; run the same command again to resume",
                summary,
            )
        if not self.stats.accounted_for():
            return Outcome(
                EXIT_SOME_FAILED,
                self.stats,
                "internal error: not every query was accounted for",
                summary,
            )
        # The status describes the whole output directory, earlier (resumed) runs included.
        return Outcome(EXIT_SOME_FAILED if failed_total else EXIT_OK, self.stats, summary=summary)


def _install_signal_handlers(callback) -> callable:
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, callback)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
            pass

    def restore() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)

    return restore


async def run_job(cfg: JobConfig, **kwargs) -> Outcome:
    job = JobRun(cfg, **kwargs)
    job.prepare()
    return await job.run()
