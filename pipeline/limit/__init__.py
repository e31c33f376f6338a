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
- starts never exceed `requests_per_minute` over any window, from the first second on:
  requests are paced by a sliding-window log (at most one second's allowance in any second,
  the rule rate-limited APIs enforce), so neither the start nor a pause (a 429 cool-down)
  banks a burst. A leaky bucket refills during a pause and then bursts a full bucket on
  top of the steady rate, which a server counting a sliding window answers with 429s
  (measured: benchmarks/RESULTS.md, figure 3);
- tokens are paced by an aiolimiter bucket holding one second of budget that starts nearly
  full (aiolimiter's buckets start empty: a whole bucket would pass at once);
- a request's tokens are drawn from the tokens-per-minute bucket in pieces no larger than
  the bucket, so a chunk bigger than the bucket waits its turn instead of raising;
- a 429 anywhere pauses every new start until the shared cool-down has passed.
"""

from __future__ import annotations

import asyncio
from collections import deque
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


class WindowLimiter:
    """At most `n` starts in any sliding window of `window` seconds: the rule rate-limited
    APIs enforce. A start waits until the start `n` places back is a full window old, so the
    steady rate is n / window with no burst above it; a pause (a 429 cool-down) does not
    bank budget beyond one window. The log starts as if the last window had been paced, so
    there is no opening burst either. `margin` widens the window a little so arrival jitter
    between client and server does not push a start into the server's previous window."""

    def __init__(self, per_minute: float, margin: float = 0.01):
        per_second = per_minute / 60.0
        self.n = max(1, int(per_second * BUCKET_SECONDS))
        self.window = self.n / per_second * (1.0 + margin)
        now = asyncio.get_running_loop().time()
        step = self.window / self.n
        self._starts: deque[float] = deque(
            (now - self.window + i * step for i in range(self.n)), maxlen=self.n
        )
        self._lock = asyncio.Lock()

    async def acquire(self, cooldown: CoolDown | None = None) -> None:
        """Wait for a place in the window (and for `cooldown`), then record the start.

        Call it last before sending: nothing may await between the recorded start and the
        request, or starts recorded during a pause would all go out when it ends."""
        async with self._lock:  # FIFO: waiters start in the order they came
            loop = asyncio.get_running_loop()
            while True:
                if cooldown is not None:
                    await cooldown.wait()
                wait = self._starts[0] + self.window - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue  # a 429 may have paused everyone meanwhile
                if cooldown is None or cooldown.remaining <= 0:
                    break
            self._starts.append(loop.time())


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
        requests: WindowLimiter | None,
        tokens: AsyncLimiter | None,
    ):
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
        rpm = WindowLimiter(requests_per_minute) if requests_per_minute else None
        tpm = await per_minute_limiter(tokens_per_minute) if tokens_per_minute else None
        return cls(max_concurrency, rpm, tpm)

    @asynccontextmanager
    async def slot(self, tokens: int) -> AsyncIterator[None]:
        """Hold one in-flight slot for a request of about `tokens` tokens."""
        async with self._slots:
            await self.cooldown.wait()
            if self._tokens is not None:
                async with self._token_turn:
                    await _acquire_in_pieces(self._tokens, float(tokens))
            # The request's place in the window is taken last, after any 429 pause, with
            # no await between it and the send: the window then holds real starts only.
            if self._requests is not None:
                await self._requests.acquire(self.cooldown)
            else:
                await self.cooldown.wait()
            yield


async def _acquire_in_pieces(limiter: AsyncLimiter, amount: float) -> None:
    while amount > 0:
        piece = min(amount, limiter.max_rate)
        await limiter.acquire(piece)
        amount -= piece
