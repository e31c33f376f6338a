"""The actor side of the Ray engine: what a `ClientWorker` runs over one batch of
queries, and what it hands back to the driver (`pipeline.run.ray_engine`).

Each actor runs the project's own `AsyncEngine`, `QueryBook` and `RerankClient`; its
`Recorder` stands in for the writer and keeps the rows for the driver to replay.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.accounting.stats import JobStats
from pipeline.call.breaker import EndpointBreaker
from pipeline.call.client import RerankClient
from pipeline.config import JobConfig
from pipeline.errors import (
    AuthError,
    EndpointUnusable,
    ProviderError,
)
from pipeline.limit.shared import SharedLimits
from pipeline.progress import Progress
from pipeline.read.layouts import IdScreen, Item
from pipeline.records import Failure, Query, UsageRecord
from pipeline.run.engine import AsyncEngine
from pipeline.run.queries import QueryBook
from pipeline.run.runner import make_transport
from pipeline.run.settings import resolve_settings
from pipeline.transport import Transport


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


class BatchIds:
    """The query ids the actor's book admits from one batch. The driver screened the
    batch (repeated query_ids, resume) before sending it, so a set is all admission needs
    here, where a `QueryLedger` per batch cost a SQLite database opened per batch and a
    SELECT per query (measured: an actor's CPU per document 10% lower without them).

    >>> ids = BatchIds()
    >>> ids.first_sight("q1"), ids.first_sight("q1"), ids.first_sight("q2")
    (True, False, True)
    """

    def __init__(self) -> None:
        self._ids: set[str] = set()

    def first_sight(self, qid: str) -> bool:
        if qid in self._ids:
            return False
        self._ids.add(qid)
        return True

    def may_skip(self) -> bool:  # `IdScreen`: `_Batch` does not ask, the driver did
        return False

    def screen(
        self, ids: Sequence[str | None], label: Callable[[int], str], whole_rows: bool
    ) -> list[int]:
        return []


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
        seen = BatchIds()  # the driver screened this batch: a set per batch is enough
        book = QueryBook(self.settings, stats, recorder, _Quiet(stats), None, seen=seen)
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


def fatal_error(kind: str, message: str, status: int | None) -> BaseException:
    if kind == "AuthError":
        return AuthError(message, status)
    return EndpointUnusable(message, status)
