"""The feed puts the history tap's hot messages straight into the writer's symbol lanes
(``lane_for``: a trade accepted in sequence as its row, a diff applied to a LIVE book as
the decoded ``DepthUpdate``) and calls none of the tap's Python hooks for them; what is
stored is exactly what the hooks alone store. A real ``Feed`` is fed the 2021 recording's
frames (BTCUSDT and ETHUSDT: aggTrades, diffs, klines) with a disconnect that resumes
without a snapshot and a gap that resyncs from a new one; another tap on the same feed
still gets every hook call; real writer threads, real Parquet files."""

from __future__ import annotations

import time
from pathlib import Path

from services.binance.endpoints import custom
from services.binance.messages import (
    DepthSnapshot,
    DepthUpdate,
    decode_depth_snapshot,
    decode_frame,
)
from services.binance.ws_client import Received
from services.binance.ws_connection import ConnectionEvent, LifecycleKind
from services.history.live_grid import BookCopy
from services.history.reader import HistoryReader
from services.history.recorder import HistoryRecorder
from services.history.writer import HistoryWriter
from services.market.book_sync import BookSync
from services.market.feed import Feed, FeedConfig
from services.market.views import SymbolInfo
from services.replay.recording import SPOT_2021, read_recording
from services.store import MemoryStore

SYMBOLS = ("BTCUSDT", "ETHUSDT")
TICKS = {"BTCUSDT": 0.01, "ETHUSDT": 0.01}


class _CountingRecorder(HistoryRecorder):
    """The history tap, counting the hook calls the feed makes on it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls = {"on_book": 0, "on_levels": 0, "on_trade_row": 0, "on_trades": 0}

    def on_book(self, symbol, book) -> None:
        self.calls["on_book"] += 1
        super().on_book(symbol, book)

    def on_levels(self, symbol, book, bids_changed, asks_changed) -> None:
        self.calls["on_levels"] += 1
        super().on_levels(symbol, book, bids_changed, asks_changed)

    def on_trade_row(self, symbol, kind, row) -> None:
        self.calls["on_trade_row"] += 1
        super().on_trade_row(symbol, kind, row)

    def on_trades(self, symbol, trades) -> None:
        self.calls["on_trades"] += 1
        super().on_trades(symbol, trades)


class _HooksOnly:
    """A tap forwarding the hooks to ``inner`` but without ``lane_for``: the feed calls
    ``on_trade_row``/``on_levels``/``on_book`` for every message, as before the lanes.
    ``levels``/``rows``: its ``on_levels``/``on_trade_row`` calls."""

    def __init__(self, inner: HistoryRecorder) -> None:
        self.inner = inner
        self.levels = self.rows = 0

    def on_trades(self, symbol, trades) -> None:
        self.inner.on_trades(symbol, trades)

    def on_trade_row(self, symbol, kind, row) -> None:
        self.rows += 1
        self.inner.on_trade_row(symbol, kind, row)

    def on_levels(self, symbol, book, bids_changed, asks_changed) -> None:
        self.levels += 1
        self.inner.on_levels(symbol, book, bids_changed, asks_changed)

    def on_book(self, symbol, book) -> None:
        self.inner.on_book(symbol, book)

    def on_candle(self, symbol, candle) -> None:
        self.inner.on_candle(symbol, candle)


class _OtherTap:
    """Another tap of the same feed (as alerts or push streams are): counts its calls."""

    def __init__(self) -> None:
        self.levels = self.books = self.rows = 0

    def on_trades(self, symbol, trades) -> None:
        pass

    def on_trade_row(self, symbol, kind, row) -> None:
        self.rows += 1

    def on_levels(self, symbol, book, bids_changed, asks_changed) -> None:
        self.levels += 1

    def on_book(self, symbol, book) -> None:
        self.books += 1

    def on_candle(self, symbol, candle) -> None:
        pass


def _feed(*taps) -> Feed:
    feed = Feed(
        FeedConfig(endpoints=custom("ws://127.0.0.1:9", "http://127.0.0.1:9")),
        MemoryStore(),
        taps=taps,
    )
    feed._infos = {s: SymbolInfo(s) for s in SYMBOLS}
    for symbol in SYMBOLS:
        feed._add_symbol(symbol, on_demand=False)
    return feed


def _snapshot(feed: Feed, symbol: str, snapshot: DepthSnapshot) -> None:
    """What the feed's snapshot desk does with a fetched snapshot."""
    state = feed._symbols[symbol]
    state.book.on_snapshot(snapshot)
    feed._tap_book(symbol, state)


def _messages() -> list[tuple[str, str, object]]:
    out = []
    for message in read_recording(SPOT_2021):
        symbol = next((s for s in SYMBOLS if s in message.url), None)
        if message.src == "rest" and symbol:
            out.append(("snapshot", symbol, decode_depth_snapshot(message.raw)))
        elif message.src == "ws" and message.raw[:40].split(b'"')[3][:7] in (
            b"btcusdt",
            b"ethusdt",
        ):
            out.append(("ws", "", decode_frame(message.raw)))
    return out


def test_lanes_store_exactly_what_the_hooks_store(tmp_path: Path) -> None:
    messages = _messages()
    first_ms = next(f.event.E for kind, _, f in messages if kind == "ws")
    roots = {"lane": tmp_path / "lane", "hooks": tmp_path / "hooks"}
    writers = {k: HistoryWriter(root, flush_interval_s=0.05).start() for k, root in roots.items()}
    copies: list[str] = []
    add_book = writers["lane"]._add_book

    def counting_add_book(key, payload, at) -> None:
        if isinstance(payload[4], BookCopy):
            copies.append(key[1])
        add_book(key, payload, at)

    writers["lane"]._add_book = counting_add_book  # type: ignore[method-assign]
    laned = _CountingRecorder(writers["lane"], "spot", ticks=TICKS, clock_ms=lambda: first_ms)
    hooked = HistoryRecorder(writers["hooks"], "spot", ticks=TICKS, clock_ms=lambda: first_ms)
    other = _OtherTap()
    hooks = _HooksOnly(hooked)
    feeds = {"lane": _feed(laned, other), "hooks": _feed(hooks)}
    reference = BookSync("BTCUSDT", "spot")  # every BTCUSDT diff: the resync's snapshot
    btc_diffs = [f.event for k, _, f in messages if k == "ws" and f.stream == "btcusdt@depth@100ms"]
    disconnect_at, lost = btc_diffs[300], set(map(id, btc_diffs[500:520]))
    for kind, symbol, item in messages:
        if kind == "snapshot":
            if symbol == "BTCUSDT":
                reference.on_snapshot(item)
            for feed in feeds.values():
                _snapshot(feed, symbol, item)
            continue
        event = item.event
        if isinstance(event, DepthUpdate) and event.s == "BTCUSDT":
            reference.on_diff(event)
            if event is disconnect_at:  # the connection drops and comes back at once
                for feed in feeds.values():
                    feed._on_connection(ConnectionEvent(
                        LifecycleKind.DISCONNECTED, 1, ("btcusdt@depth@100ms",), "test"
                    ))  # fmt: skip
            if id(event) in lost:  # lost in transit: the book resyncs after them
                if event is btc_diffs[519]:
                    resync = DepthSnapshot(
                        lastUpdateId=reference.last_update_id,
                        bids=[list(level) for level in reference.book.bids().items()],
                        asks=[list(level) for level in reference.book.asks().items()],
                    )
                continue
            if btc_diffs.index(event) == 530:
                for feed in feeds.values():
                    _snapshot(feed, "BTCUSDT", resync)
        for feed in feeds.values():
            feed._on_frame(Received(item, time.time(), 1))
    for writer in writers.values():
        writer.stop()

    lane_feed = feeds["lane"]
    btc = lane_feed._symbols["BTCUSDT"].book
    assert btc.counters.resyncs >= 1 and btc.counters.resumes >= 1
    assert all(f._symbols[s].book.state.name == "LIVE" for f in feeds.values() for s in SYMBOLS)
    readers = {k: HistoryReader(root) for k, root in roots.items()}
    for symbol in SYMBOLS:
        for read in (
            lambda r, s=symbol: r.trade_frame("spot", s),
            lambda r, s=symbol: r.book_top("spot", s),
            lambda r, s=symbol: r.book_grid("spot", s).sort("time_s", "side", "price"),
        ):
            lane, hooked_frame = read(readers["lane"]), read(readers["hooks"])
            assert lane.height > 50
            assert lane.equals(hooked_frame), (symbol, lane.columns)
    candles = [readers[k].candles("spot", "BTCUSDT", "1m") for k in roots]
    assert candles[0].equals(candles[1])
    stored = readers["lane"].trade_frame("spot", "BTCUSDT")["trade_id"]
    assert stored.is_sorted() and stored.n_unique() == stored.len()

    # The hot messages never reached the tap's Python hooks: one view per symbol (its
    # first trade), no trade row, book states only while a book was not LIVE (diffs held
    # before a snapshot or during the resync, the snapshots, the disconnect, the resume),
    # and the whole book copied only when loaded anew (not at the resume).
    applied = sum(lane_feed._symbols[s].book.counters.diffs_applied for s in SYMBOLS)
    calls = laned.calls
    assert calls["on_trade_row"] == 0 and calls["on_trades"] == len(SYMBOLS)
    assert calls["on_book"] <= 30 and calls["on_levels"] <= 4 and applied > 1500
    assert sorted(copies) == ["BTCUSDT", "BTCUSDT", "ETHUSDT"]
    # The other tap on the same feed still hears of every applied diff and every trade.
    assert other.levels == hooks.levels > 1500 and other.rows == hooks.rows > 500
    assert lane_feed.counters.tap_errors == 0 and feeds["hooks"].counters.tap_errors == 0
