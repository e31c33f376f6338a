"""Limits under a patched loop clock (no sleeping), and the chunk planner's invariants."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.chunk import estimate_tokens, plan_chunks
from pipeline.limit import Limits, per_minute_limiter
from pipeline.merge import PendingQuery
from pipeline.records import Query


class FakeClock:
    """Replaces the running loop's clock; the loop schedules timers by it, so advancing it
    fires exactly the timers due, in order, without waiting in real time."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.now = 1000.0
        loop.time = lambda: self.now  # type: ignore[method-assign]

    async def advance(self, seconds: float, step: float = 0.01) -> None:
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.now = min(end, self.now + step)
            for _ in range(5):
                await asyncio.sleep(0)


async def _started_by(
    clock: FakeClock, limiter_factory, n: int, seconds: float, tokens: int = 0
) -> list[float]:
    limits = await limiter_factory()
    starts: list[float] = []

    async def one():
        async with limits.slot(tokens):
            starts.append(clock.now)

    tasks = [asyncio.create_task(one()) for _ in range(n)]
    await clock.advance(seconds)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return starts


async def test_requests_per_minute_has_no_opening_burst():
    clock = FakeClock(asyncio.get_running_loop())
    starts = await _started_by(clock, lambda: Limits.create(100, 600, None), n=100, seconds=3.0)
    t0 = 1000.0
    # 600/min = 10/s: a plain AsyncLimiter(600) would let 600 through at once.
    assert sum(1 for s in starts if s <= t0 + 0.011) == 1  # the tasks first run at t0 + 0.01
    assert 9 <= sum(1 for s in starts if s < t0 + 1.0) <= 11
    assert 29 <= len(starts) <= 31


async def test_tokens_per_minute_paces_and_oversized_chunks_do_not_raise():
    clock = FakeClock(asyncio.get_running_loop())
    # 60,000 tokens/min = 1,000/s; each request 5,000 tokens: bigger than the 1-second bucket.
    starts = await _started_by(
        clock, lambda: Limits.create(10, None, 60_000), n=10, seconds=20.0, tokens=5_000
    )
    assert 3 <= len(starts) <= 5  # ~20 s x 1,000 tokens/s / 5,000 tokens
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(g >= 4.9 for g in gaps)


async def test_cooldown_pauses_every_start():
    clock = FakeClock(asyncio.get_running_loop())
    limits = await Limits.create(4, None, None)
    limits.cooldown.extend(2.0)
    starts: list[float] = []

    async def one():
        async with limits.slot(1):
            starts.append(clock.now)

    tasks = [asyncio.create_task(one()) for _ in range(4)]
    await clock.advance(1.9)
    assert starts == []
    await clock.advance(0.2)
    assert len(starts) == 4 and min(starts) >= 1002.0
    await asyncio.gather(*tasks)


async def test_per_minute_limiter_for_slow_rates():
    clock = FakeClock(asyncio.get_running_loop())
    limiter = await per_minute_limiter(6)  # one every 10 s
    await limiter.acquire()
    assert not limiter.has_capacity()
    await clock.advance(10.0, step=0.5)
    assert limiter.has_capacity()


def _query(n: int, doc: str = "abcd" * 10) -> Query:
    return Query("q", "find me", [doc] * n, [str(i) for i in range(n)], "row 1")


@pytest.mark.parametrize("n,max_docs", [(1, 1), (5, 2), (100, 40), (40, 40), (41, 40)])
def test_chunks_cover_the_list_exactly_once(n, max_docs):
    chunks = plan_chunks(_query(n), max_docs, None, top_n=7)
    assert chunks[0].start == 0 and chunks[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(chunks, chunks[1:], strict=False))
    assert all(1 <= c.n_docs <= max_docs for c in chunks)
    assert all(c.top_n == min(7, c.n_docs) for c in chunks)
    assert [c.number for c in chunks] == list(range(len(chunks)))


def test_chunks_close_early_on_tokens():
    q = _query(10)
    per_doc = estimate_tokens(q.text) + estimate_tokens(q.documents[0])  # 2 + 10
    chunks = plan_chunks(q, max_docs=100, max_tokens=per_doc * 3, top_n=None)
    assert [c.n_docs for c in chunks] == [3, 3, 3, 1]
    assert all(c.estimated_tokens <= per_doc * 3 for c in chunks)
    huge = Query("q", "x", ["y" * 10_000, "z"], ["0", "1"], "row 1")
    assert [c.n_docs for c in plan_chunks(huge, 100, 50, None)] == [1, 1]


def test_token_estimate_counts_cjk_per_character_and_other_text_per_four_chars():
    # Plain ASCII keeps the former rule (bytes / 4, rounded up); CJK counts one per
    # character, other scripts characters / 4, whitespace runs collapse to one.
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("日本語") == 3  # 3 characters (9 bytes would give 3 too)
    assert estimate_tokens("日本語の検索エンジン") == 10  # bytes / 4 would give 8
    assert estimate_tokens("привет мир") == 3  # 19 bytes / 4 would give 5
    assert estimate_tokens("  a \n\n  b  ") == estimate_tokens("a b") == 1


def test_merge_orders_by_score_then_input_position_and_cuts():
    q = _query(6)
    state = PendingQuery(q, n_chunks=3, top_n=4)
    state.add([4, 5], [0.5, 0.9])
    assert not state.complete
    state.add([0, 1], [0.5, 0.1])
    state.add([2, 3], [0.9, 0.5])
    assert state.complete
    assert [(d.position, d.score) for d in state.ranking()] == [
        (2, 0.9),
        (5, 0.9),
        (0, 0.5),
        (3, 0.5),
    ]


async def test_a_pause_banks_no_burst_of_requests():
    clock = FakeClock(asyncio.get_running_loop())
    limits = await Limits.create(100, 600, None)  # 10/s
    starts: list[float] = []

    async def one():
        async with limits.slot(0):
            starts.append(clock.now)

    first = [asyncio.create_task(one()) for _ in range(10)]
    await clock.advance(1.5)
    await asyncio.gather(*first)
    await clock.advance(5.0)  # idle, as during a 429 cool-down: a leaky bucket would refill
    resumed_at = clock.now
    later = [asyncio.create_task(one()) for _ in range(40)]
    await clock.advance(3.0)
    after = sorted(s for s in starts if s >= resumed_at)
    # In every 1 s window after the pause, at most 10 starts (the server's own rule).
    assert all(sum(1 for s in after if t <= s < t + 1.0) <= 10 for t in after)
    assert len(after) >= 25
    for t in later:
        t.cancel()
    await asyncio.gather(*later, return_exceptions=True)


async def test_starts_held_back_by_a_cool_down_do_not_burst_when_it_ends():
    clock = FakeClock(asyncio.get_running_loop())
    limits = await Limits.create(6, 60, None)  # one start per ~1.01 s
    starts: list[float] = []

    async def one():
        async with limits.slot(0):
            starts.append(clock.now)

    tasks = [asyncio.create_task(one()) for _ in range(6)]
    await clock.advance(1.5)
    limits.cooldown.extend(4.0)  # a 429 somewhere: everyone pauses until t0 + 5.5
    await clock.advance(8.0)
    assert all(sum(1 for s in starts if t <= s < t + 1.0) <= 1 for t in starts), starts
    assert not [s for s in starts if 1001.5 < s < 1005.5]
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
