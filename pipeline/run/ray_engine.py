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
import dataclasses
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pipeline.accounting.stats import JobStats
from pipeline.call.breaker import EndpointBreaker
from pipeline.call.client import RerankClient
from pipeline.config import JobConfig
from pipeline.errors import (
    AuthError,
    EndpointUnusable,
    InputError,
    OutputError,
    ProviderError,
    SetupError,
)
from pipeline.limit.shared import PermitDesk, SharedLimits, split_concurrency
from pipeline.progress import Progress
from pipeline.read.layouts import IdScreen, Item
from pipeline.records import Failure, Finished, Query, UsageRecord
from pipeline.run.admission import screen
from pipeline.run.engine import AsyncEngine
from pipeline.run.outcome import Outcome
from pipeline.run.prepare import PreparedJob
from pipeline.run.queries import QueryBook
from pipeline.run.runner import finish, make_transport
from pipeline.run.settings import resolve_settings
from pipeline.run.stopping import StopControl
from pipeline.transport import Transport
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


@dataclass(slots=True)
class RankedRows:
    """One query ranked by an actor: `add_ranked_columns`'s arguments, the query by its
    place in the batch. `documents`: the texts, sent back only with output.include_text
    (an actor may have cut some with input.truncate = "end")."""

    index: int
    positions: list[int]
    scores: list[float]
    chunk_scores: list[float] | None
    final_scores: list[float | None] | None
    documents: list[str] | None = None


@dataclass(slots=True)
class BatchResult:
    ranked: list[RankedRows] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    usage: list[UsageRecord] = field(default_factory=list)
    stats: JobStats = field(default_factory=JobStats)
    fatal: tuple[str, str, int | None] | None = None  # (class, message, status)
    unfinished: int = 0  # queries neither ranked nor failed (the actor stopped)


class Recorder:
    """The book's `RowSink` inside an actor: the rows, kept for the driver's writer."""

    def __init__(self, queries: list[Query], include_text: bool):
        self.result = BatchResult()
        self._index = {id(q): i for i, q in enumerate(queries)}
        self._include_text = include_text

    def add_ranked_columns(
        self,
        query: Query,
        positions: list[int],
        scores: list[float],
        chunk_scores: list[float] | None = None,
        final_scores: list[float | None] | None = None,
    ) -> None:
        documents = query.documents if self._include_text else None
        self.result.ranked.append(
            RankedRows(
                self._index[id(query)], positions, scores, chunk_scores, final_scores, documents
            )
        )

    def add_failure(self, failure: Failure) -> None:
        self.result.failures.append(failure)

    def add_usage(self, usage: UsageRecord) -> None:
        self.result.usage.append(usage)

    async def maybe_flush(self) -> None:
        return None


class _Batch:
    def __init__(self, queries: list[Query]):
        self.queries = queries

    def batches(self, screen: IdScreen | None = None) -> Iterator[list[Item]]:
        yield list(self.queries)  # screened by the driver already


class _Quiet(Progress):
    def __init__(self, stats: JobStats) -> None:
        super().__init__(stats, None, quiet=True)

    def write(self, message: str) -> None:
        return None  # warnings are the driver's (a listwise model's is printed there)


# -- the actors ------------------------------------------------------------------------


class RayDesk:
    """The `Desk` protocol over the desk actor: each call one round trip."""

    def __init__(self, handle: Any):
        self.handle = handle

    async def requests(self, k: int) -> tuple[list[float], float]:
        result: tuple[list[float], float] = await self.handle.requests.remote(k)
        return result

    async def tokens(self, amount: float) -> tuple[float, float]:
        result: tuple[float, float] = await self.handle.tokens.remote(amount)
        return result

    async def cool_down(self, until: float) -> float:
        result: float = await self.handle.cool_down.remote(until)
        return result

    async def pause(self) -> float:
        result: float = await self.handle.pause.remote()
        return result


class ClientWorker:
    """One client actor: an event loop, a transport, a breaker and its share of the
    job's in-flight slots, running one `AsyncEngine` per batch it is given."""

    def __init__(
        self,
        cfg: JobConfig,
        url: str,
        key: str | None,
        key_env: str | None,
        model: str | None,
        slots: int,
        desk: Any,
    ):
        self.cfg = cfg
        self.settings = resolve_settings(cfg)
        self.url, self.key, self.key_env, self.model = url, key, key_env, model
        self.slots = slots
        self.desk = desk
        self._transport: Transport | None = None
        self._limits: SharedLimits | None = None
        lim = cfg.limits
        self.breaker = EndpointBreaker(
            url,
            failures=lim.breaker_failures,
            seconds=lim.breaker_seconds,
            key_env=key_env,
            kind=cfg.provider.kind,
            secrets=[key] if key else [],
        )

    def _open(self) -> tuple[Transport, SharedLimits]:
        if self._transport is None or self._limits is None:
            lim = self.cfg.limits
            self._transport = make_transport(self.cfg, self.url, self.key)
            self._limits = SharedLimits(
                self.slots,
                RayDesk(self.desk),
                rated=bool(lim.requests_per_minute),
                tokens_rated=bool(lim.tokens_per_minute),
            )
        return self._transport, self._limits

    async def run_batch(self, queries: list[Query]) -> BatchResult:
        transport, limits = self._open()
        lim = self.cfg.limits
        stats = JobStats()
        recorder = Recorder(queries, self.cfg.output.include_text)
        book = QueryBook(self.settings, stats, recorder, _Quiet(stats), None)
        client = RerankClient(
            self.settings.adapter,
            transport,
            limits,
            stats,
            model=self.model,
            key_env=self.key_env,
            secrets=[self.key] if self.key else [],
            max_attempts=lim.max_attempts,
            max_retry_wait_s=lim.max_retry_wait_s,
            max_retry_time_s=lim.max_retry_time_s,
            breaker=self.breaker,
            timeout_s=lim.timeout_s,
            connect_timeout_s=lim.connect_timeout_s,
        )
        engine = AsyncEngine(
            _Batch(queries),
            book,
            client,
            recorder,
            _Quiet(stats),
            workers=self.slots,
            flush_seconds=3600.0,
            signals=False,
        )
        await engine.run()
        result = recorder.result
        result.stats = stats
        fatal = engine.stop.fatal
        if isinstance(fatal, ProviderError):
            result.fatal = (type(fatal).__name__, fatal.message, fatal.status)
        result.unfinished = len(queries) - stats.queries_ranked - stats.queries_failed
        return result

    async def close(self) -> None:
        if self._transport is not None:
            await self._transport.close()


# -- the driver ------------------------------------------------------------------------


def merge_stats(into: JobStats, part: JobStats) -> None:
    """Add an actor's counters to the job's (`queries_read` is the driver's own)."""
    for f in dataclasses.fields(part):
        if f.name in ("queries_read", "started", "started_at"):
            continue
        _add(into, f.name, getattr(part, f.name))


def _add(obj: Any, name: str, value: Any) -> None:
    if isinstance(value, Counter):
        getattr(obj, name).update(value)
    elif dataclasses.is_dataclass(value):
        target = getattr(obj, name)
        for f in dataclasses.fields(value):
            _add(target, f.name, getattr(value, f.name))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        mine = getattr(obj, name)  # None: nothing counted yet (e.g. no tokens reported)
        setattr(obj, name, value if mine is None else mine + value)


def _fatal(kind: str, message: str, status: int | None) -> BaseException:
    if kind == "AuthError":
        return AuthError(message, status)
    return EndpointUnusable(message, status)


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
            self.stop.stop_for(_fatal(*result.fatal))

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
