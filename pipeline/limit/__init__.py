"""Stage 3, limit: how many requests may be in flight and how fast they may start.

    >>> import asyncio
    >>> async def demo():
    ...     limits = await Limits.create(max_concurrency=4, requests_per_minute=600,
    ...                                  tokens_per_minute=None)
    ...     async with limits.slot(tokens=120):
    ...         return "sent"
    >>> asyncio.run(demo())
    'sent'

Invariants:
- at most `max_concurrency` slots are held at once;
- starts never exceed `requests_per_minute` over any window, from the first second on: each
  aiolimiter bucket holds one second of budget (not a minute) and starts nearly full, so
  there is no opening burst of a whole minute's allowance (aiolimiter's buckets start empty);
- a request's tokens are drawn from the tokens-per-minute bucket in pieces no larger than
  the bucket, so a chunk bigger than the bucket waits its turn instead of raising;
- a 429 anywhere pauses every new start until the shared cool-down has passed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiolimiter import AsyncLimiter

# Seconds of budget one bucket holds. One second keeps bursts small while letting the
# bucket absorb scheduling jitter.
BUCKET_SECONDS = 1.0


async def per_minute_limiter(per_minute: float) -> AsyncLimiter:
    """An AsyncLimiter for `per_minute` that allows no opening burst. Call inside the loop."""
    per_second = per_minute / 60.0
    capacity = max(1.0, per_second * BUCKET_SECONDS)
    limiter = AsyncLimiter(capacity, time_period=capacity / per_second)
    # Start all but one unit full: the first request goes at once, the rest at the rate.
    await limiter.acquire(capacity - 1.0)
    return limiter


class CoolDown:
    """A shared pause: after a 429 no worker starts a request before `until`."""

    def __init__(self) -> None:
        self._until = 0.0

    def extend(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        self._until = max(self._until, loop.time() + seconds)

    @property
    def remaining(self) -> float:
        return max(0.0, self._until - asyncio.get_running_loop().time())

    async def wait(self) -> None:
        # Loop: another 429 may extend the pause while we sleep.
        while (left := self.remaining) > 0:
            await asyncio.sleep(left)


class Limits:
    def __init__(
        self,
        max_concurrency: int,
        requests: AsyncLimiter | None,
        tokens: AsyncLimiter | None,
    ):
        self.max_concurrency = max_concurrency
        self._slots = asyncio.Semaphore(max_concurrency)
        self._requests = requests
        self._tokens = tokens
        # Token draws are taken one request at a time, first come first served: a request
        # drawn in pieces would otherwise share the bucket with every other waiter and all
        # large requests would crawl forward together, none starting.
        self._token_turn = asyncio.Lock()
        self.cooldown = CoolDown()

    @classmethod
    async def create(
        cls,
        max_concurrency: int,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
    ) -> Limits:
        rpm = await per_minute_limiter(requests_per_minute) if requests_per_minute else None
        tpm = await per_minute_limiter(tokens_per_minute) if tokens_per_minute else None
        return cls(max_concurrency, rpm, tpm)

    @asynccontextmanager
    async def slot(self, tokens: int) -> AsyncIterator[None]:
        """Hold one in-flight slot for a request of about `tokens` tokens."""
        async with self._slots:
            await self.cooldown.wait()
            if self._requests is not None:
                await self._requests.acquire()
            if self._tokens is not None:
                async with self._token_turn:
                    await _acquire_in_pieces(self._tokens, float(tokens))
            # A 429 may have arrived while we waited for the buckets.
            await self.cooldown.wait()
            yield


async def _acquire_in_pieces(limiter: AsyncLimiter, amount: float) -> None:
    while amount > 0:
        piece = min(amount, limiter.max_rate)
        await limiter.acquire(piece)
        amount -= piece
