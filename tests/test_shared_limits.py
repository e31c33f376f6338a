"""The job-wide rate limit shared by many processes (pipeline.limit.shared), without Ray:
the desk in this process, several `SharedLimits` spending its permits concurrently."""

from __future__ import annotations

import asyncio
import time

from pipeline.limit.shared import SLACK_S, LocalDesk, PermitDesk, SharedLimits, split_concurrency


def _most_in_window(starts: list[float], window: float) -> int:
    starts = sorted(starts)
    best, j = 0, 0
    for i, t in enumerate(starts):
        while starts[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def test_permits_spent_late_never_crowd_a_window():
    desk = PermitDesk(600, None, now=0.0)  # 10 per second
    times, _ = desk.requests(200, now=0.0)
    # Whatever lateness within the slack, any 1 s window holds at most 10 starts.
    late = [t + (SLACK_S if i % 2 else 0.0) for i, t in enumerate(times)]
    assert _most_in_window(late, 1.0) <= 10
    assert times[-1] - times[0] < 200 / 10 * 1.05  # and the rate is the job's, near enough


def test_a_cool_down_moves_every_later_permit():
    desk = PermitDesk(6000, None, now=0.0)
    desk.cool_down(5.0)
    times, pause = desk.requests(3, now=1.0)
    assert pause == 5.0 and min(times) >= 5.0


def test_tokens_are_booked_at_the_jobs_rate():
    desk = PermitDesk(None, 60_000, now=0.0)  # 1,000 tokens/s, one second as burst
    due = [desk.tokens(500, now=0.0)[0] for _ in range(6)]
    assert due[:2] == [0.0, 0.0] and due[-1] == 2.0


async def test_four_processes_share_one_rate_and_one_pause():
    desk = LocalDesk(PermitDesk(1200, None))  # 20 per second for the job
    limits = [
        SharedLimits(s, desk, rated=True, tokens_rated=False) for s in split_concurrency(8, 4)
    ]
    starts: list[float] = []

    async def send(lim: SharedLimits, n: int) -> None:
        for _ in range(n):
            async with lim.slot(10):
                starts.append(time.time())

    began = time.time()
    await asyncio.gather(*(send(lim, 15) for lim in limits for _ in range(2)))
    elapsed = time.time() - began
    assert len(starts) == 120
    assert _most_in_window(starts, 1.0) <= 20
    assert elapsed < 120 / 20 * 1.25  # and the job's rate is nearly reached

    # A 429 in one process pauses the others.
    limits[0].cooldown.extend(0.5)
    await asyncio.sleep(0.05)  # the desk hears of it
    t0 = time.time()
    async with limits[3].slot(10):
        assert time.time() - t0 >= 0.4
