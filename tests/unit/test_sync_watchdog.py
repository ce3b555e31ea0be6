"""The SYNCING watchdog: which books away from LIVE get a snapshot asked again or their
depth stream resubscribed, and when (a fake clock), and how the feed carries it out
without ever making a book LIVE itself."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.binance.endpoints import custom
from services.binance.messages import DepthSnapshot, decode_frame
from services.binance.rate_limit import WeightBudget
from services.binance.ws_client import ConnectionEvent, LifecycleKind, Received
from services.market.feed import Feed, FeedConfig
from services.market.sync_watchdog import (
    BookWatch,
    SyncWatchdog,
    WatchAction,
    expected_snapshot_wait,
)
from services.market.views import SymbolInfo, SyncState
from services.store import MemoryStore

SYMBOL = "BTCUSDT"


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _run(dog: SyncWatchdog, clock: _Clock, book: BookWatch, seconds: int, bound: float):
    """Check once a second for ``seconds``; the (second, action) pairs that came out."""
    out = []
    for second in range(seconds):
        for action in dog.check({SYMBOL: book}, bound).values():
            out.append((second, action))
        clock.now += 1.0
    return out


def test_a_live_book_is_never_touched():
    clock = _Clock()
    dog = SyncWatchdog(clock=clock)
    assert _run(dog, clock, BookWatch(live=True, diffs=0), 600, bound=5.0) == []


def test_diffs_flowing_without_a_snapshot_ask_the_snapshot_again_with_growing_waits():
    clock = _Clock()
    dog = SyncWatchdog(max_bound_s=40.0, clock=clock)
    out = []
    for second in range(200):
        book = BookWatch(live=False, diffs=second * 10)  # the stream flows
        out += [(second, a) for a in dog.check({SYMBOL: book}, 5.0).values()]
        clock.now += 1.0
    assert {a for _, a in out} == {WatchAction.ASK_SNAPSHOT}
    seconds = [s for s, _ in out]
    assert seconds[:4] == [5, 15, 35, 75]  # waits 5, 10, 20, then 40 (the cap)
    assert all(b - a == 40 for a, b in itertools.pairwise(seconds[3:]))


def test_no_diff_at_all_resubscribes_the_stream():
    clock = _Clock()
    dog = SyncWatchdog(clock=clock)
    out = _run(dog, clock, BookWatch(live=False, diffs=7), 20, bound=5.0)
    assert out == [(5, WatchAction.RESUBSCRIBE), (15, WatchAction.RESUBSCRIBE)]


def test_a_held_stale_book_is_confirmed_first_then_resubscribed():
    clock = _Clock()
    dog = SyncWatchdog(clock=clock)
    out = _run(dog, clock, BookWatch(live=False, diffs=3, held=True), 40, bound=5.0)
    assert [a for _, a in out] == [
        WatchAction.ASK_SNAPSHOT,
        WatchAction.RESUBSCRIBE,
        WatchAction.ASK_SNAPSHOT,
    ]


def test_a_book_the_desk_holds_is_not_overdue_and_live_again_resets_the_wait():
    clock = _Clock()
    dog = SyncWatchdog(clock=clock)
    busy = BookWatch(live=False, diffs=1, busy=True)
    assert _run(dog, clock, busy, 300, bound=5.0) == []  # e.g. waiting out a 418 ban
    # Free again: the wait starts from the last time the desk held it.
    assert _run(dog, clock, BookWatch(live=False, diffs=1), 6, bound=5.0) == [
        (4, WatchAction.RESUBSCRIBE)
    ]
    dog.check({SYMBOL: BookWatch(live=True, diffs=2)}, 5.0)
    assert dog.away_s(SYMBOL) == 0.0
    assert _run(dog, clock, BookWatch(live=False, diffs=2), 6, bound=5.0) == [
        (5, WatchAction.RESUBSCRIBE)
    ]


@given(
    st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(0, 3)), min_size=1, max_size=300),
    st.floats(1.0, 30.0),
)
def test_never_more_than_one_action_per_bound(steps, bound):
    """Whatever the books do, a symbol gets at most one action per ``bound_s`` seconds
    and none while LIVE or held by the desk."""
    clock = _Clock()
    dog = SyncWatchdog(clock=clock)
    diffs = 0
    last_action = None
    for live, busy, new_diffs in steps:
        diffs += new_diffs
        actions = dog.check({SYMBOL: BookWatch(live, diffs, busy)}, bound)
        if actions:
            assert not live and not busy
            assert last_action is None or clock.now - last_action >= bound
            last_action = clock.now
        clock.now += 1.0


def test_expected_snapshot_wait_counts_the_ban_and_the_backlog():
    assert expected_snapshot_wait([], 0, 8, 0.0) == 1.0
    assert expected_snapshot_wait([0.2, 0.4, 0.3], 16, 8, 0.0) == pytest.approx(0.9)
    assert expected_snapshot_wait([0.5], 0, 8, 12.0) == 12.5


# -- the feed carries the actions out --------------------------------------------------


class _Rest:
    def __init__(self) -> None:
        self.budget = WeightBudget(6000)
        self.asked = 0

    async def depth_snapshot(self, symbol: str, limit: int = 1000) -> DepthSnapshot:
        self.asked += 1
        return DepthSnapshot(10, [(99.0, 1.0)], [(101.0, 1.0)])


class _Client:
    """Records the feed's subscription changes."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, list[str]]] = []

    async def subscribe(self, streams):
        self.changes.append(("subscribe", list(streams)))

    async def unsubscribe(self, streams):
        self.changes.append(("unsubscribe", list(streams)))


def _feed(clock: _Clock) -> Feed:
    config = FeedConfig(endpoints=custom("ws://127.0.0.1:9", "http://127.0.0.1:9"))
    feed = Feed(config, MemoryStore())
    feed._infos = {SYMBOL: SymbolInfo(SYMBOL)}
    feed._add_symbol(SYMBOL, on_demand=False)
    feed._snapshot_queue = asyncio.Queue()
    feed._rest = _Rest()  # type: ignore[assignment]
    feed._client = _Client()  # type: ignore[assignment]
    feed.watchdog = SyncWatchdog(clock=clock)
    return feed


def _diff(feed: Feed, first: int, last: int) -> None:
    data = {"e": "depthUpdate", "E": 1, "s": SYMBOL, "U": first, "u": last}
    data |= {"b": [["99.5", "2"]], "a": []}
    raw = json.dumps({"stream": "btcusdt@depth@100ms", "data": data}).encode()
    feed._on_frame(Received(decode_frame(raw), time.time(), 1))


async def test_the_feed_asks_a_lost_snapshot_again_and_the_book_syncs_by_itself():
    clock = _Clock()
    feed = _feed(clock)
    book = feed._symbols[SYMBOL].book
    _diff(feed, 9, 11)
    assert book.state is SyncState.SYNCING
    feed._queued.clear()  # the request is lost: nothing will serve it
    feed._snapshot_queue = asyncio.Queue()
    for _ in range(4):
        _diff(feed, 12, 12)  # diffs flow, but the book already asked
        await feed.watch_books()
        clock.now += 1.0
    assert feed.counters.watchdog_snapshots == 0 and not feed._queued
    clock.now += feed.watchdog_bound_s()
    _diff(feed, 13, 13)
    await feed.watch_books()
    assert feed.counters.watchdog_snapshots == 1 and feed._queued == {SYMBOL}
    assert book.state is SyncState.SYNCING  # the watchdog only asked
    feed._in_flight.add(SYMBOL)
    await feed._serve_queued(SYMBOL, feed._symbols[SYMBOL])
    assert book.state is SyncState.LIVE and book.last_update_id == 13


async def test_the_feed_resubscribes_a_silent_depth_stream():
    clock = _Clock()
    feed = _feed(clock)
    book = feed._symbols[SYMBOL].book
    await feed.watch_books()
    clock.now += 10.0
    await feed.watch_books()
    depth = feed._symbols[SYMBOL].streams[0]
    assert feed._client.changes == [("unsubscribe", [depth]), ("subscribe", [depth])]
    assert feed.counters.watchdog_resubscribes == 1
    assert book.state is SyncState.STALE and "resubscribed" in book.resync_reason
    _diff(feed, 9, 11)  # the stream is back: the book asks for its snapshot
    assert feed._queued == {SYMBOL}


async def test_the_feed_leaves_books_alone_while_their_connection_is_down():
    clock = _Clock()
    feed = _feed(clock)
    streams = feed._symbols[SYMBOL].streams
    feed._on_connection(ConnectionEvent(LifecycleKind.DISCONNECTED, 1, streams, "idle"))
    for _ in range(60):
        await feed.watch_books()
        clock.now += 1.0
    assert feed._client.changes == [] and feed.counters.watchdog_snapshots == 0
    feed._on_connection(ConnectionEvent(LifecycleKind.RECONNECTED, 1, streams))
    for _ in range(6):
        await feed.watch_books()
        clock.now += 1.0
    assert feed.counters.watchdog_resubscribes == 1  # back: the wait ran from then


async def test_dropped_frames_leave_the_books_watched_and_a_quiet_one_confirmed():
    """Frames dropped on a connection that stays up: the books are STALE at once, the
    watchdog keeps watching them (no reconnect will come) and a quiet book asks its
    snapshot again after ``confirm_after_s``."""
    clock = _Clock()
    feed = _feed(clock)
    book = feed._symbols[SYMBOL].book
    _diff(feed, 9, 11)
    feed._in_flight.add(SYMBOL)
    await feed._serve_queued(SYMBOL, feed._symbols[SYMBOL])
    feed._queued.clear()  # the desk's loop would have taken it off its queue
    feed._in_flight.clear()
    assert book.state is SyncState.LIVE
    streams = feed._symbols[SYMBOL].streams
    dropped = ConnectionEvent(LifecycleKind.DROPPED, 1, streams, "consumer behind: 5 frames")
    feed._on_connection(dropped)
    assert book.state is SyncState.STALE and book.awaits_confirmation
    assert SYMBOL not in feed._disconnected
    for _ in range(int(feed.config.confirm_after_s * 20) + 20):
        if feed._queued:
            break
        await asyncio.sleep(0.05)
    assert feed._queued == {SYMBOL}  # confirmed or replaced by a fresh snapshot
