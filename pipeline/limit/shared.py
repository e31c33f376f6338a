"""One rate limit for many processes: a `PermitDesk` hands out request permits in blocks,
and each process's `SharedLimits` spends them (the Ray engine puts the desk in one actor).

    >>> desk = PermitDesk(requests_per_minute=600, tokens_per_minute=None, now=100.0)
    >>> times, pause_until = desk.requests(3, now=100.0)
    >>> [round(t - 100.0, 3) for t in times], pause_until
    ([0.0, 0.104, 0.208], 0.0)

The protocol (one round trip per block, not per request):

- `requests(k)` returns `k` start times. The desk keeps the log of every time it handed
  out: a permit's time is at least `window + slack` after the permit `n` places before
  it (`n` = one second's allowance), and never before the shared cool-down ends.
- A permit is spent at its time, and only within `slack` seconds of it: a process that
  comes later drops it (and one whose time falls inside a cool-down it has heard of). So
  real starts lie in [t, t + slack] and any window of `window` seconds holds at most `n`
  of them, whoever spent them: the job's rate holds across processes, and permits that go
  unused only lower it (by design: a permit is never banked).
- `tokens(amount)` books tokens on a virtual clock at the job's tokens-per-minute
  (with one second of budget as burst) and returns when they are due.
- `cool_down(until)`: a 429 anywhere moves the shared pause; every grant carries the
  pause's end, and each process also polls it while it waits, so all pause together.
- `max_concurrency` is split between the processes (`split_concurrency`): each holds its
  share as a local semaphore, so the job's total in flight never passes it.

Times are wall-clock (`time.time()`): processes on one machine share it; a cluster's
clocks agree to well within `slack` under NTP.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from pipeline.limit import BUCKET_SECONDS, CoolDown, Limits

SLACK_S = 0.03  # how late a permit may still be spent
BLOCK_MAX = 32  # most permits asked in one round trip
POLL_S = 0.2  # how often a waiting process asks for the shared cool-down


def split_concurrency(total: int, parts: int) -> list[int]:
    """`total` in-flight slots shared by `parts` processes, each getting at least one.

    >>> split_concurrency(16, 3), split_concurrency(2, 4)
    ([6, 5, 5], [1, 1, 1, 1])
    """
    base, extra = divmod(total, parts)
    return [max(1, base + (1 if i < extra else 0)) for i in range(parts)]


class PermitDesk:
    """The job's one rate limit (see the module docstring). Plain Python: the Ray engine
    wraps it in an actor; tests call it directly."""

    def __init__(
        self,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        *,
        margin: float = 0.01,
        slack: float = SLACK_S,
        now: float | None = None,
    ):
        now = time.time() if now is None else now
        self.pause_until = 0.0
        self.slack = slack
        self._log: deque[float] | None = None
        if requests_per_minute:
            per_second = requests_per_minute / 60.0
            self.n = max(1, int(per_second * BUCKET_SECONDS))
            self.spacing = self.n / per_second * (1.0 + margin) + slack
            step = self.spacing / self.n
            # As if the last window had been paced: no opening burst.
            self._log = deque((now - self.spacing + i * step for i in range(self.n)), maxlen=self.n)
        self._tokens_per_s = tokens_per_minute / 60.0 if tokens_per_minute else None
        self._token_clock = now  # when the tokens booked so far are all due

    def requests(self, k: int, now: float | None = None) -> tuple[list[float], float]:
        """`k` permit times (ascending), and the shared pause's end."""
        now = time.time() if now is None else now
        if self._log is None:
            return [max(now, self.pause_until)] * k, self.pause_until
        times = []
        for _ in range(k):
            t = max(now, self.pause_until, self._log[0] + self.spacing, self._log[-1])
            self._log.append(t)
            times.append(t)
        return times, self.pause_until

    def tokens(self, amount: float, now: float | None = None) -> tuple[float, float]:
        """When `amount` tokens are due (one second of budget may go at once), and the
        shared pause's end."""
        now = time.time() if now is None else now
        if self._tokens_per_s is None:
            return now, self.pause_until
        start = max(self._token_clock, now - BUCKET_SECONDS)
        self._token_clock = start + amount / self._tokens_per_s
        return max(now, self._token_clock - BUCKET_SECONDS), self.pause_until

    def cool_down(self, until: float) -> float:
        self.pause_until = max(self.pause_until, until)
        return self.pause_until

    def pause(self) -> float:
        return self.pause_until


class Desk(Protocol):
    """A `PermitDesk` as a process reaches it: each call awaits one round trip."""

    def requests(self, k: int) -> Awaitable[tuple[list[float], float]]: ...

    def tokens(self, amount: float) -> Awaitable[tuple[float, float]]: ...

    def cool_down(self, until: float) -> Awaitable[float]: ...

    def pause(self) -> Awaitable[float]: ...


class LocalDesk:
    """A `PermitDesk` in this process, behind the awaitable `Desk` interface (tests)."""

    def __init__(self, desk: PermitDesk):
        self.desk = desk

    async def requests(self, k: int) -> tuple[list[float], float]:
        return self.desk.requests(k)

    async def tokens(self, amount: float) -> tuple[float, float]:
        return self.desk.tokens(amount)

    async def cool_down(self, until: float) -> float:
        return self.desk.cool_down(until)

    async def pause(self) -> float:
        return self.desk.pause()


class SharedCoolDown(CoolDown):
    """The shared pause as this process knows it; `extend` also tells the desk."""

    def __init__(self, tell: Callable[[float], Any]) -> None:
        super().__init__()
        self._tell = tell
        self.wall_until = 0.0  # the pause's end on the wall clock

    def extend(self, seconds: float) -> None:
        super().extend(seconds)
        until = time.time() + seconds
        if until > self.wall_until:
            self.wall_until = until
            self._tell(until)

    def heard(self, wall_until: float) -> None:
        """The desk's pause (from a grant or a poll)."""
        if wall_until > self.wall_until:
            self.wall_until = wall_until
            CoolDown.extend(self, wall_until - time.time())


class SharedLimits(Limits):
    """`Limits` whose rates are the job's, shared through a `Desk`; `max_concurrency` is
    this process's share of the job's in-flight total."""

    def __init__(self, max_concurrency: int, desk: Desk, *, rated: bool, tokens_rated: bool):
        super().__init__(max_concurrency, None, None)
        self._desk = desk
        self._rated = rated
        self._tokens_rated = tokens_rated
        self._tasks: set[asyncio.Task] = set()
        self.cooldown = self.shared = SharedCoolDown(self._tell)
        self._permits: deque[float] = deque()
        self._waiting = 0  # requests waiting for a permit: the next block's size
        self._refill = asyncio.Lock()
        self._turn = asyncio.Lock()  # permits are spent first come, first served
        self._last_poll = 0.0

    def _tell(self, until: float) -> None:
        self._spawn(self._desk.cool_down(until))

    def _spawn(self, awaitable: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @asynccontextmanager
    async def slot(self, tokens: int) -> AsyncIterator[None]:
        async with self._slots:
            await self.cooldown.wait()
            if self._tokens_rated:
                async with self._token_turn:
                    due, pause = await self._desk.tokens(float(tokens))
                    self.shared.heard(pause)
                    if (wait := due - time.time()) > 0:
                        await asyncio.sleep(wait)
            if self._rated:
                await self._permit()
            else:
                await self.cooldown.wait()
            yield

    async def _permit(self) -> None:
        """Wait for a permit and its time; nothing awaits between that time and the send."""
        self._waiting += 1
        try:
            async with self._turn:
                while True:
                    await self._wait_pause()
                    if not self._permits:
                        await self._fetch()
                        continue
                    t = self._permits[0]
                    now = time.time()
                    if now > t + SLACK_S or t < self.shared.wall_until:
                        self._permits.popleft()  # too late, or inside a pause: dropped
                        continue
                    if t - now > POLL_S:  # a long wait: hear of any pause meanwhile
                        await asyncio.sleep(POLL_S)
                        await self._poll()
                        continue
                    if t > now:
                        await asyncio.sleep(t - now)
                    self._permits.popleft()
                    return
        finally:
            self._waiting -= 1

    async def _fetch(self) -> None:
        k = max(1, min(BLOCK_MAX, self._waiting))
        times, pause = await self._desk.requests(k)
        self.shared.heard(pause)
        self._permits.extend(times)

    async def _wait_pause(self) -> None:
        while self.cooldown.remaining > 0:
            await self.cooldown.wait()
            await self._poll(force=True)  # it may have been extended elsewhere

    async def _poll(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_poll >= POLL_S:
            self._last_poll = now
            self.shared.heard(await self._desk.pause())
