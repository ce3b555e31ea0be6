"""Sliding-window limiter, weight budget and backoff, on a virtual clock where possible."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.binance import rate_limit
from services.binance.backoff import Backoff
from services.binance.rate_limit import (
    PausedTooLong,
    Priority,
    SlidingWindowLimiter,
    WeightBudget,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_is_capped_jittered_and_floored() -> None:
    backoff = Backoff(initial=0.5, cap=4.0, floor=0.2, rng=random.Random(7))
    delays = [backoff.delay(n) for n in range(200)]
    assert all(0.2 <= d <= 4.2 for d in delays)
    assert max(backoff.delay(0) for _ in range(200)) <= 0.7
    assert max(delays[10:]) > 2.0
    assert backoff.delay(10_000) <= 4.2


def test_sliding_window_wait_time() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(3, 10.0, clock=clock)
    for _ in range(3):
        limiter._times.append(clock())
        clock.now += 1.0
    assert limiter.in_window == 3
    assert limiter.wait_time() == pytest.approx(7.0)
    clock.now += 7.0
    assert limiter.wait_time() == 0.0


async def test_sliding_window_spaces_events() -> None:
    limiter = SlidingWindowLimiter(1, 0.1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    stamps = []
    for _ in range(4):
        await limiter.acquire()
        stamps.append(loop.time() - started)
    assert stamps[-1] >= 0.29


def test_budget_refill_and_server_weight() -> None:
    clock, wall = Clock(), Clock()
    wall.now = 6000.5
    budget = WeightBudget(1200, 60.0, burst=300, clock=clock, wall_clock=wall)
    assert budget._wait_time(300) == 0.0
    budget._tokens -= 300
    assert budget._wait_time(50) == pytest.approx(50 / ((1200 - 24) / 60.0))
    clock.now += 10.0
    assert budget._wait_time(50) == 0.0
    budget.record_used(1190)
    assert budget._wait_time(50) == pytest.approx(60 - 0.5 + 0.01)
    assert budget.stats().used_weight == 1190
    wall.now += 60.0
    assert budget.stats().used_weight is None
    assert budget._wait_time(50) == 0.0


async def test_pause_holds_and_long_pause_raises() -> None:
    budget = WeightBudget(1000, 60.0)
    budget.pause(0.3, "HTTP 429 code -1003: slow down")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await budget.acquire(10)
    assert loop.time() - started >= 0.29
    budget.pause(100.0, "HTTP 418 code -1003: banned")
    budget.pause(1.0, "shorter pauses never shorten a ban")
    with pytest.raises(PausedTooLong) as paused:
        await budget.acquire(10, max_pause_s=5.0)
    assert paused.value.remaining_s > 99 and paused.value.reason.startswith("HTTP 418")


class _HungSharedWindow:
    """A host counter that never answers (e.g. a Redis connection left half-open)."""

    async def take(self, weight: int, limit: int, window_s: float) -> float:
        await asyncio.Event().wait()
        return 0.0


async def test_a_hung_shared_counter_is_skipped_after_a_timeout(monkeypatch):
    """Every request waits in the budget's lock: one shared-counter call that never
    returns must not stop all REST requests (the snapshot desks with them)."""
    monkeypatch.setattr(rate_limit, "SHARED_TIMEOUT_S", 0.05)
    budget = WeightBudget(1200, shared=_HungSharedWindow())
    await asyncio.wait_for(asyncio.gather(budget.acquire(5), budget.acquire(5)), 2.0)
    assert budget.shared_failures == 2 and budget.stats().granted_weight == 10


async def test_waiting_requests_are_admitted_sync_first_then_in_arrival_order() -> None:
    """A herd of background requests (trade warm-ups) queued first does not hold back the
    sync requests (snapshots) that arrive after it; within a priority, arrival order."""
    budget = WeightBudget(600, 1.0, burst=10)  # 10 weight at once, then 590 a second
    await budget.acquire(10)  # the bucket is empty: every request below waits ≈ 17 ms
    order: list[str] = []

    async def request(name: str, priority: Priority) -> None:
        await budget.acquire(10, priority=priority)
        order.append(name)

    tasks = [asyncio.create_task(request(f"warm{i}", Priority.BACKGROUND)) for i in range(6)]
    await asyncio.sleep(0)  # warm0 holds the turn (waiting for room), the others queue
    tasks += [asyncio.create_task(request(f"sync{i}", Priority.SYNC)) for i in range(3)]
    await asyncio.gather(*tasks)
    assert order == ["sync0", "sync1", "sync2"] + [f"warm{i}" for i in range(6)]


async def test_a_cancelled_waiter_never_blocks_the_ones_behind_it() -> None:
    budget = WeightBudget(600, 1.0, burst=10)
    await budget.acquire(10)  # the bucket is empty: the next request waits ≈ 17 ms
    first = asyncio.create_task(budget.acquire(10, priority=Priority.BACKGROUND))
    queued = asyncio.create_task(budget.acquire(10, priority=Priority.BACKGROUND))
    behind = asyncio.create_task(budget.acquire(10, priority=Priority.SYNC))
    await asyncio.sleep(0)
    queued.cancel()
    first.cancel()  # cancelled while holding the turn
    await asyncio.wait_for(behind, 1.0)
    assert queued.cancelled() and first.cancelled()
    await asyncio.wait_for(budget.acquire(1), 1.0)


async def test_background_requests_leave_half_the_burst_and_step_back_for_a_sync_one() -> None:
    """Warm-ups started before the first diff cannot take the whole burst: the snapshots
    asked a moment later still go out at once; a warm-up waiting for room (holding the
    turn) lets a snapshot that arrives meanwhile go first."""
    budget = WeightBudget(600, 10.0, burst=100)  # 50 a second refill
    for _ in range(12):
        await asyncio.wait_for(budget.acquire(4, priority=Priority.BACKGROUND), 0.05)
    assert 48 <= budget.stats().available < 56  # 12 × 4 taken, the reserve (50) kept
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(9):  # 45 of the reserve, at once
        await asyncio.wait_for(budget.acquire(5), 0.05)
    assert loop.time() - started < 0.05
    order: list[str] = []

    async def request(name: str, weight: int, priority: Priority) -> None:
        await budget.acquire(weight, priority=priority)
        order.append(name)

    warm = asyncio.create_task(request("warm", 4, Priority.BACKGROUND))  # waits ≈ 1 s
    await asyncio.sleep(0.05)
    sync = asyncio.create_task(request("sync", 5, Priority.SYNC))
    await asyncio.wait_for(asyncio.gather(warm, sync), 3.0)
    assert order == ["sync", "warm"]


def test_any_window_admits_less_than_the_limit_so_the_server_never_reports_it() -> None:
    """Greedy requests of 5 for three windows on a virtual clock: every 60 s window
    holds at most the limit less the headroom (2 %), so a server counting this process
    alone never reports the limit (which would hold every request to the window's end);
    and the budget runs at that full rate all along, not only in its first window."""
    clock = Clock()
    budget = WeightBudget(4800, 60.0, burst=1200, clock=clock, wall_clock=clock)
    granted: list[float] = []
    while clock.now < 1180.0:
        wait = budget._wait_time(5)
        if wait > 0:
            clock.now += wait + 1e-9
            continue
        budget._take(5)
        granted.append(clock.now)
    starts = [t for t in granted if t <= granted[-1] - 60.0]
    busiest = max(sum(5 for g in granted if s <= g < s + 60.0) for s in starts)
    assert 4800 - 96 - 5 <= busiest <= 4800 - 96
    # Three windows at the full rate; the old bucket refilled at (limit - burst) a window
    # after its first burst: 1,200 + 3 × 3,504 = 11,712.
    assert 5 * len(granted) >= 2.9 * (4800 - 96)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.0, 40.0), st.sampled_from([1, 2, 4, 5, 20, 50, 250])),
        min_size=1,
        max_size=300,
    ),
    st.integers(50, 2000),
)
def test_no_window_ever_holds_more_than_the_limit_less_the_headroom(requests, burst) -> None:
    """Any weights, at any gaps, under any burst: each request goes out as soon as the
    budget says it may, and no 60 s window of those grants sums to more than
    ``window_limit``."""
    clock = Clock()
    budget = WeightBudget(2400, 60.0, burst=burst, clock=clock, wall_clock=clock)
    granted: list[tuple[float, int]] = []
    for gap, weight in requests:
        clock.now += gap
        while (wait := budget._wait_time(weight)) > 0:
            clock.now += wait + 1e-9
        budget._take(weight)
        granted.append((clock.now, weight))
    for start, _ in granted:
        in_window = sum(w for t, w in granted if start <= t < start + 60.0)
        assert in_window <= budget.window_limit


def test_a_request_counts_until_a_window_after_its_answer() -> None:
    """The server counts a request when it arrives, anywhere between its grant and its
    answer: the budget keeps it a whole window after the answer, so a herd queued for
    seconds on the way out cannot be in the server's window and out of ours."""
    clock = Clock()
    budget = WeightBudget(1000, 60.0, burst=1000, clock=clock, wall_clock=clock)
    early = budget._take(490)
    late = budget._take(490)
    clock.now += 1.0
    budget.answered(early)
    clock.now += 4.0
    budget.answered(late)
    clock.now += 56.0  # 61 s after the grants, 60 after the first answer
    assert budget._wait_time(490) == 0.0
    budget._take(490)
    assert budget._wait_time(10) == pytest.approx(4.0)
    clock.now += 4.0
    assert budget._wait_time(490) == 0.0
