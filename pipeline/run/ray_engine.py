"""The Ray engine (`[engine] kind = "ray"`): the job's requests sent by client actors on a
Ray cluster (or on this machine), the reading, admission and writing kept in the driver.

    driver:  read -> screen (duplicates, resume) -> batches of queries ──┐
             write <- replay rows, usage, failures, counters <─┐         │
    actor k: plan -> chunk -> limit (shared desk) -> call -> merge ──────┘   (× workers)
    desk:    one actor: the job's request and token rates, the shared 429 pause

Each `ClientWorker` actor runs the project's own `AsyncEngine`, `QueryBook` and
`RerankClient` over one batch of whole queries (so chunking, retries, the breaker,
merging, final passes and validation are the local engine's code) and returns what the
book wrote: each query's ranked positions and scores, or its failure, plus its usage rows
and counters. The driver replays them into its one `OutputWriter`, so `results/`,
`usage/`, `failures/`, the manifest and its commit rules are exactly the local run's.

Exactly once: a query is written only by the driver, only when its batch's result comes
back, and each batch result is taken once. An actor that dies is restarted by Ray and its
batch re-run (`max_task_retries`): the lost attempt's rows never reached the driver, so
nothing doubles (the requests it had sent are not in `usage/`). A driver that dies loses
only what it had not committed: the rerun resumes from the manifest, as a local run does.

Pairs input: the driver's reader assembles each query from its rows (contiguous per file,
as for the local engine), so a query always travels whole to one actor.

Why a hand-rolled pool and not `ray.data.map_batches`: admission must see the input in
order (the first occurrence of a query_id is ranked, later ones fail) and resume must
consult the manifest, both global; and the driver must stop on Ctrl-C, a 401 or a
tripped breaker like a local run. Reading stays in the driver (our readers, the same row
checks and messages); the per-document work (request bodies, JSON answers, merging)
runs in the actors, which is what scales.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pipeline.accounting.stats import JobStats
from pipeline.errors import (
    EndpointUnusable,
    InputError,
    OutputError,
    SetupError,
)
from pipeline.limit.shared import PermitDesk, split_concurrency
from pipeline.progress import Progress
from pipeline.records import Failure, Finished, Query
from pipeline.run.admission import screen
from pipeline.run.outcome import Outcome
from pipeline.run.prepare import PreparedJob
from pipeline.run.queries import QueryBook
from pipeline.run.ray_actors import BatchResult, ClientWorker, fatal_error, merge_stats
from pipeline.run.runner import finish
from pipeline.run.stopping import StopControl
from pipeline.write import OutputWriter

INSTALL_HINT = 'engine.kind = "ray" needs Ray: pip install -e ".[ray]" (or pip install "ray[data]")'
BATCH_QUERIES = 64  # a batch closes at this many queries ...
BATCH_DOCUMENTS = 4096  # ... or documents, whichever comes first
BATCHES_PER_WORKER = 2  # in flight per actor: one's tail overlaps the next's start
LOCAL_OBJECT_STORE = 256 * 2**20  # a Ray started here: a small object store
TASK_RETRIES = 3  # a dead actor is restarted and its batch re-run this many times


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SetupError(INSTALL_HINT) from None
    return ray


# -- what an actor sends back --------------------------------------------------------


class RayEngine:
    """The driver: reads and screens in input order, hands batches to the actors (at most
    `BATCHES_PER_WORKER` each), replays each result into the writer once."""

    def __init__(
        self,
        job: PreparedJob,
        book: QueryBook,
        writer: OutputWriter,
        progress: Progress,
        workers: list[Any],
    ):
        self.job = job
        self.book = book
        self.stats = book.stats
        self.writer = writer
        self.progress = progress
        self.workers = workers
        self.stop = StopControl()
        self.input_error: InputError | None = None
        self.output_error: OutputError | None = None
        self.lost = 0  # queries sent whose batch never came back (a stop)
        self._inflight: dict[asyncio.Future[Any], tuple[int, list[Query]]] = {}
        self._load = [0] * len(workers)

    @property
    def in_flight(self) -> int:
        return self.lost + sum(len(q) for _, q in self._inflight.values())

    async def run(self) -> None:
        restore = self.stop.install_signal_handlers()
        ticker = asyncio.create_task(self._tick())
        try:
            await self._feed()
            await self._drain()
        except InputError as exc:
            self.input_error = exc
            await self._drain()
        finally:
            ticker.cancel()
            restore()
            self.lost += sum(len(q) for _, q in self._inflight.values())
            self._inflight.clear()

    async def _feed(self) -> None:
        batches = self.job.reader.batches(self.book.seen)  # finished rows skipped unread
        current: list[Query] = []
        docs = 0
        while not self.stop.stopping:
            batch = await asyncio.to_thread(next, batches, None)
            if batch is None:
                break
            for item in batch:
                if self.stop.stopping:
                    return
                if isinstance(item, Finished):  # rows the reader skipped unread: done earlier
                    self.book.skip_finished(item)
                    continue
                self.stats.queries_read += 1
                screened = screen(item, self.book.seen, self.job.resume)
                if screened is None:
                    self.stats.queries_skipped += 1
                    self.progress.advance()
                elif isinstance(screened, Failure):
                    self.book.fail(screened)
                else:
                    current.append(screened)
                    docs += len(screened.documents)
                    if len(current) >= BATCH_QUERIES or docs >= BATCH_DOCUMENTS:
                        await self._submit(current)
                        current, docs = [], 0
            await self._flush()
        if current and not self.stop.stopping:
            await self._submit(current)

    async def _submit(self, queries: list[Query]) -> None:
        while min(self._load) >= BATCHES_PER_WORKER and not self.stop.stopping:
            await self._collect(None)
        if self.stop.stopping:
            self.lost += len(queries)  # read, never sent: the rerun takes them
            return
        k = self._load.index(min(self._load))
        ref = self.workers[k].run_batch.remote(queries)
        self._inflight[asyncio.wrap_future(ref.future())] = (k, queries)
        self._load[k] += 1

    async def _drain(self) -> None:
        while self._inflight:
            if self.stop.stopping:
                timeout = 0.0 if self.stop.now.is_set() else self.stop.grace_s
                await self._collect(timeout, everything=True)
                return
            await self._collect(None)

    async def _collect(self, timeout: float | None, everything: bool = False) -> None:
        """Replay the batches that came back (the first, or all within `timeout`)."""
        when = asyncio.ALL_COMPLETED if everything else asyncio.FIRST_COMPLETED
        stop = asyncio.ensure_future(self.stop.requested.wait())
        try:
            waiters: set[asyncio.Future[Any]] = set(self._inflight)
            if not everything and not self.stop.stopping:
                waiters.add(stop)
            done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=when)
        finally:
            stop.cancel()
        for fut in done:
            if fut is stop or fut not in self._inflight:
                continue
            k, queries = self._inflight.pop(fut)
            self._load[k] -= 1
            try:
                result = fut.result()
            except Exception as exc:  # an actor that died more often than Ray retries
                self.lost += len(queries)
                self.stop.stop_for(
                    EndpointUnusable(f"a Ray client actor failed: {type(exc).__name__}: {exc}")
                )
                continue
            self._replay(queries, result)
        await self._flush()

    def _replay(self, queries: list[Query], result: BatchResult) -> None:
        merge_stats(self.stats, result.stats)
        add_usage, add_failure = self.writer.add_usage, self.writer.add_failure
        for usage in result.usage:
            add_usage(usage)
        for failure in result.failures:
            add_failure(failure)
            self.progress.advance()
        for rows in result.ranked:
            query = queries[rows.index]
            if rows.documents is not None:
                query.documents = rows.documents
            self.writer.add_ranked_columns(
                query, rows.positions, rows.scores, rows.chunk_scores, rows.final_scores
            )
            self.progress.advance()
        self.lost += result.unfinished
        if result.fatal is not None:
            self.stop.stop_for(fatal_error(*result.fatal))

    async def _flush(self) -> None:
        try:
            await self.writer.maybe_flush()
        except OutputError as exc:
            if self.output_error is None:
                self.output_error = exc
            self.stop.requested.set()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.writer.flush_seconds))
            await self._flush()
            self.progress.refresh()


def start_ray(ray: Any, address: str | None) -> bool:
    """Join the cluster at `address`, or start Ray here; True when this call started it."""
    if ray.is_initialized():
        return False
    if address is None:
        ray.init(
            include_dashboard=False,
            object_store_memory=LOCAL_OBJECT_STORE,
            log_to_driver=False,
            configure_logging=False,
        )
    else:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    return True


def start_workers(ray: Any, job: PreparedJob) -> tuple[list[Any], Any, int]:
    """The desk and the client actors; how many workers."""
    cfg = job.cfg
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    n = cfg.engine.workers or cpus
    lim = cfg.limits
    desk = (
        ray.remote(PermitDesk)
        .options(num_cpus=0)
        .remote(lim.requests_per_minute, lim.tokens_per_minute)
    )
    worker_cls = ray.remote(ClientWorker).options(
        num_cpus=min(1.0, cpus / n),
        max_restarts=TASK_RETRIES,
        max_task_retries=TASK_RETRIES,
        max_concurrency=BATCHES_PER_WORKER + 1,
        scheduling_strategy="SPREAD",
    )
    workers = [
        worker_cls.remote(cfg, job.url, job.key, job.key_env, job.model, slots, desk)
        for slots in split_concurrency(lim.max_concurrency, n)
    ]
    return workers, desk, n


async def run_on_ray(job: PreparedJob, *, quiet: bool = False) -> Outcome:
    """`run_job` for `[engine] kind = "ray"`."""
    ray = import_ray()
    cfg, out = job.cfg, job.cfg.output
    started = start_ray(ray, cfg.engine.address)
    stats = JobStats()
    progress = Progress(stats, total=job.reader.count_queries(), quiet=quiet)
    writer = OutputWriter(
        job.out_dir,
        out.include_text,
        out.flush_rows,
        out.flush_seconds,
        final_pass=cfg.limits.final_pass,
    )
    workers, desk, n = start_workers(ray, job)
    book = QueryBook(job.settings, stats, writer, progress, job.resume, None, job.resume.ledger)
    engine = RayEngine(job, book, writer, progress, workers)
    try:
        await engine.run()
    finally:
        progress.close()
        try:
            # A stopped run leaves compaction to the run that finishes the job.
            await writer.close(compact=not engine.stop.stopping)
        except OutputError as exc:
            engine.output_error = engine.output_error or exc
        finally:
            job.resume.ledger.close()
        for actor in [*workers, desk]:
            ray.kill(actor)
        if started:
            ray.shutdown()
    block = {"kind": "ray", "workers": n, "address": cfg.engine.address}
    return finish(job, stats, engine, engine.in_flight, block)
