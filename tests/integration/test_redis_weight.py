"""The host's REST weight counter in a real redis-server: the budgets of several workers
add up to one limit per window."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis

from services.binance.rate_limit import WeightBudget
from services.redis_weight import RedisWeightWindow
from tests.redis_server import RedisServer


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


async def test_a_window_admits_weight_up_to_the_limit_across_clients(url: str) -> None:
    redis.Redis.from_url(url).flushdb()
    first = RedisWeightWindow.from_url(url, host="h1")
    second = RedisWeightWindow.from_url(url, host="h1")
    other_host = RedisWeightWindow.from_url(url, host="h2")
    try:
        assert await first.take(60, 100, 60.0) == 0.0
        wait = await second.take(60, 100, 60.0)
        assert 0 < wait <= 60.01
        assert await second.take(40, 100, 60.0) == 0.0
        assert await first.used(60.0) == 100
        assert await other_host.take(100, 100, 60.0) == 0.0  # another IP, its own minute
    finally:
        for window in (first, second, other_host):
            await window.close()


async def test_two_workers_budgets_never_exceed_the_shared_limit(url: str) -> None:
    redis.Redis.from_url(url).flushdb()
    window_s, limit, weight = 1.0, 100, 20
    windows = [RedisWeightWindow.from_url(url, host="shared") for _ in range(2)]
    budgets = [WeightBudget(limit, window_s=window_s, burst=40, shared=w) for w in windows]
    admitted: list[tuple[int, int]] = []

    async def worker(budget: WeightBudget) -> None:
        for _ in range(8):
            await budget.acquire(weight)
            admitted.append((int(time.time() // window_s), weight))

    try:
        await asyncio.wait_for(asyncio.gather(*(worker(b) for b in budgets)), 20)
    finally:
        for window in windows:
            await window.close()
    per_window: dict[int, int] = {}
    for index, w in admitted:
        per_window[index] = per_window.get(index, 0) + w
    assert sum(per_window.values()) == 2 * 8 * weight
    # Each budget alone would admit 100 per window; together they still admit ≤ 100.
    assert max(per_window.values()) <= limit
    assert sum(b.shared_waits for b in budgets) > 0
