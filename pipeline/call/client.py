"""RerankClient: one chunk in, normalized scores and a usage record out, retries inside.

    async with limits.slot(tokens):   # concurrency, rate, shared 429 cool-down
        reply = await transport.post(body)
    answer = adapter.parse_answer(reply.body, ...)   # or parse_error -> exception tree

This is the single boundary where transport exceptions and HTTP statuses become
`ProviderError`s (`pipeline.errors`). Retried: 408, 429, 5xx, connection errors, timeouts and invalid answers,
with exponential backoff and full jitter, a Retry-After header as a floor under the wait,
at most `max_attempts` times and for at most `max_retry_time_s` in all.

Every attempt's outcome also feeds the job's `EndpointBreaker` (`pipeline.call.breaker`):
once it trips, no attempt starts and none is retried; `EndpointUnusable` stops the job.
A usage row's `started_at` is when the chunk's first attempt was sent, after its limiter
slot was granted (not when a worker took the chunk).
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import math
import random
import time
from collections.abc import Mapping
from typing import Protocol

import aiohttp
import orjson

from pipeline.call.breaker import EndpointBreaker
from pipeline.errors import (
    AuthError,
    EndpointUnusable,
    ProviderError,
    RateLimited,
    RequestRejected,
    RequestTimeout,
    ServerError,
    TransientError,
    TransportError,
    redact,
)
from pipeline.limit import Limits
from pipeline.providers.base import Adapter, Answer, ErrorInfo
from pipeline.records import Chunk, ChunkScores, UsageRecord
from pipeline.transport import Reply, Transport

BACKOFF_BASE_S = 0.5
MESSAGE_LIMIT = 500


class ChunkFailed(Exception):
    """A chunk that will not be ranked: the last error, and the usage its attempts cost."""

    def __init__(self, error: ProviderError, usage: UsageRecord):
        super().__init__(error.message)
        self.error = error
        self.usage = usage


class CallCounters(Protocol):
    """What the client reports while it works (`pipeline.accounting.JobStats` is one)."""

    def count_attempt(self) -> None: ...  # every request sent, retries included

    def count_retry(self) -> None: ...

    def count_error(self, err: ProviderError) -> None: ...  # every failed attempt

    def count_answer(self) -> None: ...  # a chunk answered and validated

    def add_usage(self, usage: UsageRecord) -> None: ...  # one per chunk, answered or not


class RerankClient:
    def __init__(
        self,
        adapter: Adapter,
        transport: Transport,
        limits: Limits,
        counters: CallCounters,
        *,
        model: str | None,
        key_env: str | None,
        secrets: list[str],
        max_attempts: int,
        max_retry_wait_s: float,
        max_retry_time_s: float,
        rng: random.Random | None = None,
        breaker: EndpointBreaker | None = None,
        timeout_s: float | None = None,
        connect_timeout_s: float | None = None,
    ):
        self.adapter = adapter
        self.transport = transport
        self.limits = limits
        self.counters = counters
        self.model = model
        self.key_env = key_env
        self.secrets = secrets
        self.max_attempts = max_attempts
        self.max_retry_wait_s = max_retry_wait_s
        self.max_retry_time_s = max_retry_time_s
        self.rng = rng or random.Random()
        self.breaker = breaker
        self.timeout_s = timeout_s  # named in timeout messages
        self.connect_timeout_s = connect_timeout_s
        self.on_wire = 0  # attempts sent and not yet answered
        self._wire_idle = asyncio.Event()
        self._wire_idle.set()

    async def rerank(self, chunk: Chunk) -> ChunkScores:
        """Scores for one chunk. Raises ChunkFailed, or AuthError / EndpointUnusable (the job
        must stop)."""
        body = orjson.dumps(
            self.adapter.build_request(self.model, chunk.query.text, chunk.documents, chunk.top_n)
        )
        loop = asyncio.get_running_loop()
        started_at: float | None = None  # when the first attempt was sent
        first = loop.time()
        attempt = 0
        status: int | None = None
        latency_ms: float | None = None
        while True:
            attempt += 1
            status, latency_ms = None, None  # this attempt's, not an earlier one's
            headers: Mapping[str, str] | None = None
            self._check_breaker()
            try:
                async with self.limits.slot(chunk.estimated_tokens):
                    self._check_breaker()  # it may have tripped while we waited for the slot
                    self.counters.count_attempt()
                    sent = loop.time()
                    if started_at is None:
                        started_at = time.time()
                    self._sending()
                    try:
                        reply = await self.transport.post(body)
                    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
                        raise self._transport_error(exc) from exc
                    finally:
                        latency_ms = (loop.time() - sent) * 1000.0
                        self._answered()
                status, headers = reply.status, reply.headers
                answer = self._interpret(reply, chunk)
            except TransientError as err:
                self.counters.count_error(err)
                self._feed_breaker(err, headers)
                wait = self._backoff(attempt, err.retry_after)
                spent = loop.time() - first
                if attempt >= self.max_attempts or spent + wait > self.max_retry_time_s:
                    why = (
                        f"after {attempt} attempts"
                        if attempt >= self.max_attempts
                        else (
                            f"after {spent:.0f}s: the next wait ({wait:.0f}s) would pass limits.max_retry_time_s"
                        )
                    )
                    err.message = redact(f"{err.message} (gave up {why})", self.secrets)
                    raise ChunkFailed(
                        err, self._usage(chunk, attempt, status, latency_ms, started_at, None)
                    ) from err
                if isinstance(err, RateLimited):
                    # Only a wait we will really take pauses the others: it is bounded by
                    # the retry budget checked above, so a huge Retry-After cannot stall the job.
                    self.limits.cooldown.extend(wait)
                self.counters.count_retry()
                await asyncio.sleep(wait)
                continue
            except RequestRejected as err:
                self.counters.count_error(err)
                err.message = redact(err.message, self.secrets)
                self._feed_breaker(err, headers)
                raise ChunkFailed(
                    err, self._usage(chunk, attempt, status, latency_ms, started_at, None)
                ) from err
            if self.breaker is not None:
                self.breaker.succeeded()
            self.counters.count_answer()
            usage = self._usage(chunk, attempt, status, latency_ms, started_at, answer)
            positions, scores = _columns(answer.results, chunk)
            return ChunkScores(chunk, positions, scores, usage)

    async def wire_idle(self) -> None:
        """Return once no attempt is on the wire (an engine stopping for a tripped breaker
        waits for this: no new attempt can start, so nothing more can be answered)."""
        while self.on_wire:
            await self._wire_idle.wait()

    def _sending(self) -> None:
        self.on_wire += 1
        self._wire_idle.clear()

    def _answered(self) -> None:
        self.on_wire -= 1
        if not self.on_wire:
            self._wire_idle.set()

    def _check_breaker(self) -> None:
        if self.breaker is not None and self.breaker.message is not None:
            raise EndpointUnusable(self.breaker.message)

    def _feed_breaker(self, err: ProviderError, headers: Mapping[str, str] | None) -> None:
        """Count a failed attempt; EndpointUnusable (nothing is retried) once it trips."""
        if self.breaker is None:
            return
        err.message = redact(err.message, self.secrets)
        message = self.breaker.failed(err, headers)
        if message is not None:
            raise EndpointUnusable(message) from err

    def _interpret(self, reply: Reply, chunk: Chunk) -> Answer:
        status = reply.status
        if 200 <= status < 300:
            return self.adapter.parse_answer(
                reply.body, chunk.n_docs, chunk.top_n, headers=reply.headers
            )
        location = reply.headers.get("Location") if 300 <= status < 400 else None
        if location:  # the body of a redirect says nothing more
            info = ErrorInfo(f"redirected to {location} (redirects are not followed)")
        else:
            info = self.adapter.parse_error(status, reply.body)
        message = redact(f"HTTP {status}: {info.message}"[:MESSAGE_LIMIT], self.secrets)
        retry_after = parse_retry_after(reply.headers)
        if status in (401, 403):
            # Name a variable only when a key was sent: with none, naming one would say
            # that the key in it was refused.
            hint = (
                f"check the key in ${self.key_env} (set provider.api_key_env to use another "
                "variable, provider.api_key_header if the server reads another header)"
                if self.key_env
                else "no API key was sent: set provider.api_key_env to the variable that holds it"
            )
            raise AuthError(
                redact(f"{message} from {self.transport.url}; {hint}", self.secrets), status
            )
        if status == 429:
            raise RateLimited(message, status, retry_after)
        if info.retryable is False:
            raise RequestRejected(message, status)
        if status == 408 or status >= 500 or info.retryable:
            raise ServerError(message, status, retry_after)
        raise RequestRejected(message, status)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        ceiling = min(self.max_retry_wait_s, BACKOFF_BASE_S * 2 ** (attempt - 1))
        wait = self.rng.uniform(0.0, ceiling)  # full jitter
        if retry_after is not None:
            wait = max(wait, retry_after)  # the server's word is a floor
        return wait

    def _transport_error(self, exc: BaseException) -> TransportError:
        if isinstance(exc, asyncio.TimeoutError):
            return RequestTimeout(self._timeout_message(exc))
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return TransportError(redact(text[:MESSAGE_LIMIT], self.secrets))

    def _timeout_message(self, exc: BaseException) -> str:
        if isinstance(exc, getattr(aiohttp, "ConnectionTimeoutError", ())):  # aiohttp >= 3.10
            limit = self.connect_timeout_s
            if limit is not None and self.timeout_s is not None:
                limit = min(limit, self.timeout_s)  # the transport caps it so
            shown = "" if limit is None else f" = {limit:g}s"
            return f"no connection within limits.connect_timeout_s{shown}"
        shown = "" if self.timeout_s is None else f" = {self.timeout_s:g}s"
        return f"no answer within limits.timeout_s{shown}"

    def _usage(
        self,
        chunk: Chunk,
        attempts: int,
        status: int | None,
        latency_ms: float | None,
        started_at: float | None,
        answer: Answer | None,
    ) -> UsageRecord:
        reported = answer.usage if answer is not None else None
        record = UsageRecord(
            query_id=chunk.query.query_id,
            chunk=chunk.number,
            n_docs=chunk.n_docs,
            attempts=attempts,
            http_status=status,
            latency_ms=None if latency_ms is None else round(latency_ms, 3),
            prompt_tokens=reported.prompt_tokens if reported else None,
            total_tokens=reported.total_tokens if reported else None,
            search_units=reported.search_units if reported else None,
            estimated_tokens=chunk.estimated_tokens,
            billing=self.adapter.spec.billing,
            started_at=time.time() if started_at is None else started_at,
        )
        self.counters.add_usage(record)
        return record


def _columns(results: list[tuple[int, float]], chunk: Chunk) -> tuple[list[int], list[float]]:
    """(index, score) pairs as two columns, indices mapped to input positions (through
    `chunk.positions` for a final pass, else offset by `chunk.start`): transposed and mapped
    by C iterators, since this runs for every document ranked."""
    if not results:
        return [], []
    indices, scores = zip(*results, strict=True)
    if chunk.positions is not None:
        return list(map(chunk.positions.__getitem__, indices)), list(scores)
    return list(map(chunk.start.__add__, indices)), list(scores)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds, from delta-seconds or an HTTP date; None when absent or bad."""
    value = headers.get("Retry-After") if headers else None
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # "-0000" dates parse naive; HTTP dates are always UTC
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, when.timestamp() - time.time())
