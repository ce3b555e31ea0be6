"""The feed's snapshot desks never lose a book's request: a snapshot that failed (a 418
ban, a 429) while other desks stood idle is asked again once the ban is over, and the
book, which asks only once until it gets an answer, goes LIVE by Binance's procedure."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import pytest

from services.binance.endpoints import custom
from services.binance.messages import DepthSnapshot, decode_frame
from services.binance.rate_limit import WeightBudget
from services.binance.rest_client import IpBanned
from services.binance.ws_client import Received
from services.market import feed as feed_module
from services.market.feed import Feed, FeedConfig
from services.market.views import SymbolInfo, SyncState
from services.store import MemoryStore

SYMBOL = "BTCUSDT"


class _BannedFirstRest:
    """Stands in for the REST client: the first ``failures`` depth requests end in a 418
    (and pause the budget as the real client does), later ones return a snapshot at the
    stream's current update id."""

    def __init__(self, stream_id: Callable[[], int], failures: int = 1) -> None:
        self.budget = WeightBudget(6000)
        self.stream_id = stream_id
        self.failures = failures
        self.asked = 0

    async def depth_snapshot(self, symbol: str, limit: int = 1000) -> DepthSnapshot:
        self.asked += 1
        await asyncio.sleep(0.01)
        if self.asked <= self.failures:
            self.budget.pause(0.1, "HTTP 418 code -1003: banned")
            raise IpBanned("/api/v3/depth", 0.1, "HTTP 418")
        return DepthSnapshot(self.stream_id(), [(99.0, 1.0)], [(101.0, 1.0)])


def _feed() -> Feed:
    feed = Feed(
        FeedConfig(endpoints=custom("ws://127.0.0.1:9", "http://127.0.0.1:9")), MemoryStore()
    )
    feed._infos = {SYMBOL: SymbolInfo(SYMBOL)}
    feed._add_symbol(SYMBOL, on_demand=False)
    feed._snapshot_queue = asyncio.Queue()
    return feed


def _diff(feed: Feed, update_id: int) -> None:
    data = {"e": "depthUpdate", "E": 1, "s": SYMBOL, "U": update_id, "u": update_id}
    data |= {"b": [["99.5", str(update_id)]], "a": []}
    raw = json.dumps({"stream": "btcusdt@depth@100ms", "data": data}).encode()
    feed._on_frame(Received(decode_frame(raw), time.time(), 1))


async def _stream_until_live(feed: Feed, rest: _BannedFirstRest, seconds: float) -> SyncState:
    """Send one diff every 10 ms (ids 1, 2, …) with ``snapshot_concurrency`` desks
    running, until the book is LIVE or ``seconds`` have passed."""
    book = feed._symbols[SYMBOL].book
    desks = [
        asyncio.create_task(feed._snapshot_desk()) for _ in range(feed.config.snapshot_concurrency)
    ]
    update_id = 0
    rest.stream_id = lambda: update_id
    deadline = time.monotonic() + seconds
    try:
        while book.state is not SyncState.LIVE and time.monotonic() < deadline:
            update_id += 1
            _diff(feed, update_id)
            await asyncio.sleep(0.01)
    finally:
        for desk in desks:
            desk.cancel()
        await asyncio.gather(*desks, return_exceptions=True)
    return book.state


@pytest.mark.parametrize("failures", [1, 3])
async def test_a_snapshot_that_failed_under_a_ban_is_asked_again(monkeypatch, failures):
    monkeypatch.setattr(feed_module, "SNAPSHOT_RETRY_S", 0.05, raising=False)
    feed = _feed()
    rest = feed._rest = _BannedFirstRest(lambda: 0, failures)  # type: ignore[assignment]
    state = await _stream_until_live(feed, rest, seconds=3.0)
    assert state is SyncState.LIVE
    assert rest.asked == failures + 1
    assert feed.counters.snapshots_failed == failures
    assert feed._queued == set() and feed._in_flight == set()


async def test_a_quiet_book_whose_confirmation_failed_is_confirmed_later(monkeypatch):
    """After a reconnect a quiet book (no diff) is confirmed by a snapshot at its own
    update id; a failed confirmation is tried again instead of leaving it STALE."""
    monkeypatch.setattr(feed_module, "SNAPSHOT_RETRY_S", 0.05, raising=False)
    feed = _feed()
    rest = feed._rest = _BannedFirstRest(lambda: 5)  # type: ignore[assignment]
    book = feed._symbols[SYMBOL].book
    book.on_snapshot(DepthSnapshot(5, [(99.0, 1.0)], [(101.0, 1.0)]))
    book.on_disconnect("idle")
    assert book.awaits_confirmation
    desks = [asyncio.create_task(feed._snapshot_desk()) for _ in range(3)]
    feed._queue_snapshot(SYMBOL)
    deadline = time.monotonic() + 2.0
    while book.state is not SyncState.LIVE and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    for desk in desks:
        desk.cancel()
    await asyncio.gather(*desks, return_exceptions=True)
    assert book.state is SyncState.LIVE
    assert book.last_update_id == 5 and rest.asked == 2
