"""The real client and feed against the local exchange over real sockets.

After a whole recording the feed's books equal manifest.json's final books and its trade
windows hold every recorded trade id; with faults injected along the way (disconnects,
stalls, serverShutdown, gaps, duplicated/reordered/malformed frames, 429/418 on snapshots,
delayed snapshots) it still ends equal to the exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal

import numpy as np
import pytest

from services.binance.backoff import Backoff
from services.binance.endpoints import custom
from services.market.feed import Feed, FeedConfig
from services.market.views import SyncState
from services.replay.exchange import LocalExchange
from services.store import MemoryStore

FAST_BACKOFF = Backoff(initial=0.05, cap=0.5, floor=0.02)


def _final(manifest: dict, file: str, symbol: str) -> dict:
    return manifest[file]["symbols"][symbol]["reconstruction"][-1]


def _last_u(manifest: dict, file: str, symbol: str) -> int:
    return manifest[file]["symbols"][symbol]["diff_chain"]["last"]["u"]


class RecordingTap:
    """A ``FeedTap`` that keeps what it was handed: trade ids per symbol in call order, and
    every LIVE book it saw whose best bid was not below its best ask."""

    def __init__(self) -> None:
        self.trade_ids: dict[str, list[int]] = {}
        self.crossed_live: list[str] = []
        self.candles = 0

    def on_trades(self, symbol: str, trades) -> None:
        self.trade_ids.setdefault(symbol, []).extend(trades.trade_id.tolist())

    def on_book(self, symbol: str, book) -> None:
        bid, ask = book.book.best_bid(), book.book.best_ask()
        if book.state is SyncState.LIVE and bid and ask and bid[0] >= ask[0]:
            self.crossed_live.append(symbol)

    def on_candle(self, symbol: str, candle) -> None:
        self.candles += 1


@contextlib.asynccontextmanager
async def running_feed(exchange: LocalExchange, taps=(), **options: object):
    store = MemoryStore()
    config = FeedConfig(
        endpoints=custom(exchange.ws_url, exchange.rest_url, market=exchange.market),
        publish_interval_s=0.05,
        idle_timeout_s=1.5,
        confirm_after_s=0.3,
        backoff=FAST_BACKOFF,
        **options,  # type: ignore[arg-type]
    )
    feed = Feed(config, store, taps=taps)
    task = asyncio.create_task(feed.run())
    try:
        yield feed, store
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _until(predicate, timeout: float, what: str, store: MemoryStore | None = None) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            books = {}
            if store is not None:
                books = {
                    s.symbol: (
                        snap.book.sync_state,
                        snap.book.last_update_id,
                        snap.book.resync_reason,
                    )
                    for s in store.symbols()
                    if (snap := store.snapshot(s.symbol)) is not None
                }
            raise AssertionError(
                f"timed out waiting for {what}: {books} {store and store.status()}"
            )
        await asyncio.sleep(0.05)


def _book_at_end(store: MemoryStore, symbol: str, last_u: int, offset: int = 0) -> bool:
    snap = store.snapshot(symbol)
    return (
        snap is not None
        and snap.book.sync_state is SyncState.LIVE
        and snap.book.last_update_id == last_u + offset
    )


def _assert_top5(store: MemoryStore, symbol: str, final: dict) -> None:
    book = store.snapshot(symbol).book
    bids = [[float(p), float(q)] for p, q in final["final_top5_bids"]]
    asks = [[float(p), float(q)] for p, q in final["final_top5_asks"]]
    assert np.column_stack([book.bid_prices[:5], book.bid_qtys[:5]]).tolist() == bids
    assert np.column_stack([book.ask_prices[:5], book.ask_qtys[:5]]).tolist() == asks


def _assert_final_book_and_trades(store: MemoryStore, manifest: dict, file: str, symbol: str):
    """The manifest's final top-5, and every recorded aggTrade id exactly once, in order."""
    _assert_top5(store, symbol, _final(manifest, file, symbol))
    facts = manifest[file]["symbols"][symbol]["aggTrade"]
    ids = store.snapshot(symbol).trades.trade_id.tolist()
    assert ids == list(range(facts["first_id"], facts["last_id"] + 1)), symbol


async def test_whole_recording_ends_with_the_manifest_book(manifest, recordings):
    file = recordings["spot_2024"].name
    async with (
        LocalExchange(recordings["spot_2024"], speed="max") as exchange,
        running_feed(exchange) as (_, store),
    ):
        await _until(
            lambda: _book_at_end(store, "BTCUSDT", _last_u(manifest, file, "BTCUSDT")),
            60,
            "the final book",
            store,
        )
        _assert_top5(store, "BTCUSDT", _final(manifest, file, "BTCUSDT"))
        book = store.snapshot("BTCUSDT").book
        # The client's snapshot (limit 1000) covers prices down to its 1000th bid and up to
        # its 1000th ask: the book holds that known range only (diffs beyond it would leave
        # holes), so about 1000 levels a side of the recorder's 1971 and 2962.
        assert 900 <= book.bid_prices.size <= 1971
        assert 900 <= book.ask_prices.size <= 2962


async def test_three_symbols_books_and_every_agg_trade(manifest, recordings):
    file = recordings["spot_2021"].name
    symbols = ("BTCUSDT", "ETHUSDT", "DOTUSDT")
    async with (
        LocalExchange(recordings["spot_2021"], speed=20) as exchange,
        running_feed(exchange) as (_, store),
    ):
        await _until(
            lambda: all(_book_at_end(store, s, _last_u(manifest, file, s)) for s in symbols),
            30,
            "three final books",
            store,
        )
        await asyncio.sleep(0.3)
        for symbol in symbols:
            _assert_final_book_and_trades(store, manifest, file, symbol)
            facts = manifest[file]["symbols"][symbol]["aggTrade"]
            trades = store.snapshot(symbol).trades
            total = sum(Decimal(repr(q)) for q in trades.qty.tolist())
            assert abs(total - Decimal(facts["sum_qty"])) < Decimal("1e-8")
            assert int((trades.side < 0).sum()) == facts["buyer_is_maker_count"]


async def test_snapshot_fetched_mid_stream_bridges(manifest, recordings):
    file = recordings["spot_2024"].name
    async with LocalExchange(recordings["spot_2024"], speed=40) as exchange:
        await asyncio.sleep(1.0)
        async with running_feed(exchange) as (_, store):
            await _until(
                lambda: (
                    (s := store.snapshot("BTCUSDT")) is not None
                    and s.book.sync_state is SyncState.LIVE
                ),
                10,
                "LIVE mid-stream",
            )
            snap = store.snapshot("BTCUSDT")
            assert snap.book.bid_prices[0] < snap.book.ask_prices[0]
            await _until(
                lambda: _book_at_end(store, "BTCUSDT", _last_u(manifest, file, "BTCUSDT")),
                60,
                "the final book",
                store,
            )
            _assert_top5(store, "BTCUSDT", _final(manifest, file, "BTCUSDT"))


@pytest.mark.timeout(120)
async def test_every_fault_kind_is_survived(manifest, recordings):
    """Faults at random moments over the 3-symbol recording; the end state is still exact."""
    file = recordings["spot_2021"].name
    symbols = ("BTCUSDT", "ETHUSDT", "DOTUSDT")
    crossed_live: list[str] = []
    tap = RecordingTap()
    async with (
        LocalExchange(recordings["spot_2021"], speed=6) as exchange,
        running_feed(exchange, taps=[tap]) as (feed, store),
    ):
        faults = exchange.faults
        original_publish = store.publish

        def checked_publish(snapshot) -> None:
            book = snapshot.book
            if (
                book.sync_state is SyncState.LIVE
                and book.bid_prices.size
                and book.ask_prices.size
                and book.bid_prices[0] >= book.ask_prices[0]
            ):
                crossed_live.append(f"{snapshot.symbol} seq {snapshot.seq}")
            original_publish(snapshot)

        store.publish = checked_publish  # type: ignore[method-assign]
        await _until(
            lambda: all(
                (s := store.snapshot(sym)) is not None and s.book.is_live for sym in symbols
            ),
            10,
            "first sync",
        )
        steps = [
            lambda: faults.drop_next_diff("ETHUSDT"),
            lambda: faults.duplicate_next(5),
            lambda: faults.reorder_next(3),
            lambda: faults.malformed_next(3),
            faults.drop_connections,
            lambda: faults.rest_error(429, count=1, retry_after=1, paths=["/api/v3/depth"]),
            lambda: faults.drop_next_diff("BTCUSDT"),
            lambda: faults.stall(2.5),
            lambda: faults.rest_error(418, count=1, retry_after=1, paths=["/api/v3/depth"]),
            lambda: faults.drop_next_diff("DOTUSDT"),
            faults.server_shutdown,
            lambda: faults.delay_snapshots(0.5),
            faults.drop_connections,
        ]
        for step in steps:
            step()
            await asyncio.sleep(0.9)
        faults.delay_snapshots(0)
        await _until(
            lambda: all(_book_at_end(store, s, _last_u(manifest, file, s)) for s in symbols),
            60,
            "every book back in sync at the end",
            store,
        )
        await asyncio.sleep(1.0)
        for symbol in symbols:
            _assert_final_book_and_trades(store, manifest, file, symbol)
        fired = faults.stats()
        for kind in ("gap", "duplicate", "reorder", "malformed", "drop_connection"):
            assert fired.get(kind, 0) > 0, (kind, fired)
        assert not crossed_live
        for symbol in symbols:
            # The tap got every trade exactly once, in id order, through gaps and reconnects.
            facts = manifest[file]["symbols"][symbol]["aggTrade"]
            ids = tap.trade_ids[symbol]
            assert ids == list(range(ids[0], facts["last_id"] + 1)), symbol
        assert not tap.crossed_live
        assert tap.candles > 0
        assert feed.counters.tap_errors == 0
        status = store.status()
        assert status.reconnects >= 2
        assert status.malformed_frames >= 1
