"""RedisStore against a real redis-server: round trips, trade increments, staleness,
on-demand requests, and Redis going away and coming back."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest
import redis

from services.market.views import BookView, SymbolInfo, SyncState, TradeView
from services.redis_store import PREFIX, RedisStore, sym_key, trades_key
from services.store import Candle, FeedStatus, SymbolSnapshot, Ticker24h
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as srv:
        yield srv


@pytest.fixture
def url(server: RedisServer) -> str:
    if server.process is None:
        server.start()
    redis.Redis.from_url(server.url).flushdb()
    return server.url


def book(symbol: str, levels: int = 50, state: SyncState = SyncState.LIVE) -> BookView:
    rng = np.random.default_rng(levels)
    return BookView(
        symbol=symbol,
        bid_prices=60000.0 - np.arange(levels) * 0.01,
        bid_qtys=rng.random(levels),
        ask_prices=60000.01 + np.arange(levels) * 0.01,
        ask_qtys=rng.random(levels),
        last_update_id=123456789,
        sync_state=state,
        event_time_ms=1_700_000_000_123,
        resync_reason="" if state is SyncState.LIVE else "gap",
    )


class WorkerWindow:
    """What the feed's trade log does: append trades, keep the newest ``capacity``."""

    def __init__(self, symbol: str, capacity: int, first_id: int = 1000) -> None:
        self.symbol = symbol
        self.capacity = capacity
        self.next_id = first_id
        self.rows = np.empty((0, 5))
        self.rng = np.random.default_rng(first_id)

    def add(self, n: int) -> None:
        ids = np.arange(self.next_id, self.next_id + n, dtype=float)
        self.next_id += n
        new = np.column_stack(
            [
                ids,
                1_700_000_000_000 + ids * 7,
                60000 + self.rng.normal(0, 5, n),
                self.rng.lognormal(-6, 1.5, n),
                self.rng.choice([-1.0, 1.0], n),
            ]
        )
        self.rows = np.vstack([self.rows, new])[-self.capacity :]

    def view(self) -> TradeView:
        r = self.rows
        return TradeView(
            self.symbol,
            r[:, 0].astype(np.int64),
            r[:, 1].astype(np.int64),
            r[:, 2].copy(),
            r[:, 3].copy(),
            r[:, 4].copy(),
        )


def snapshot(symbol: str, seq: int, trades: TradeView, **kw: object) -> SymbolSnapshot:
    return SymbolSnapshot(
        symbol=symbol,
        seq=seq,
        book=kw.pop("book", None) or book(symbol),  # type: ignore[arg-type]
        trades=trades,
        info=SymbolInfo(symbol, base_asset="BTC", quote_asset="USDT"),
        **kw,  # type: ignore[arg-type]
    )


def assert_trades_equal(got: TradeView, want: TradeView) -> None:
    assert len(got) == len(want)
    for name in ("trade_id", "time_ms", "price", "qty", "side"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    assert got.trade_id.dtype == np.int64 and got.price.dtype == np.float64


def test_snapshot_round_trip(url: str) -> None:
    writer, reader = RedisStore(url), RedisStore(url)
    window = WorkerWindow("BTCUSDT", 1000)
    window.add(700)
    candles = (Candle(1_700_000_000_000, "1m", 1.0, 2.0, 0.5, 1.5, 10.0, 4.0, False),)
    ticker = Ticker24h(1.5, 1.0, 2.0, 0.5, 1000.0, 1500.0, 1_700_000_000_999)
    sent = snapshot(
        "BTCUSDT", 7, window.view(), book=book("BTCUSDT", 5000), candles=candles, ticker=ticker
    )
    writer.publish(sent)
    writer.publish_status(FeedStatus(source="REPLAY", connection_state="CONNECTED"))
    got = reader.snapshot("BTCUSDT")
    assert got is not None
    for name in ("bid_prices", "bid_qtys", "ask_prices", "ask_qtys"):
        np.testing.assert_array_equal(getattr(got.book, name), getattr(sent.book, name))
    assert got.book.sync_state is SyncState.LIVE
    assert got.book.last_update_id == sent.book.last_update_id
    assert got.book.event_time_ms == sent.book.event_time_ms
    assert_trades_equal(got.trades, sent.trades)
    assert got.info == sent.info and got.candles == candles and got.ticker == ticker
    assert got.published_at == sent.published_at
    assert got.seq > sent.seq
    assert reader.snapshot("ETHUSDT") is None
    assert reader.status().source == "REPLAY"  # type: ignore[union-attr]
    assert redis.Redis.from_url(url).ttl(sym_key("BTCUSDT")) > 0


def test_trade_increments_equal_worker_window(url: str) -> None:
    writer = RedisStore(url)
    steady = RedisStore(url, poll_s=0)
    laggard = RedisStore(url, poll_s=0, max_catchup_blocks=3)
    window = WorkerWindow("ETHUSDT", 2000)
    rng = np.random.default_rng(1)
    sizes = []
    for seq in range(1, 121):
        window.add(int(rng.integers(0, 80)))
        writer.publish(snapshot("ETHUSDT", seq, window.view()))
        writer.publish_status(FeedStatus())
        got = steady.snapshot("ETHUSDT")
        assert got is not None
        assert_trades_equal(got.trades, window.view())
        if seq % 17 == 0:
            late = laggard.snapshot("ETHUSDT")
            assert late is not None
            assert_trades_equal(late.trades, window.view())
        stream = trades_key("ETHUSDT", writer._streams["ETHUSDT"].generation)
        sizes.append(redis.Redis.from_url(url).xlen(stream))
    assert max(sizes) < 60, "stream is trimmed to the blocks covering the window"
    newcomer = RedisStore(url).snapshot("ETHUSDT")
    assert newcomer is not None
    assert_trades_equal(newcomer.trades, window.view())


def test_views_handed_out_never_change(url: str) -> None:
    writer, reader = RedisStore(url), RedisStore(url, poll_s=0)
    window = WorkerWindow("BTCUSDT", 300)
    window.add(300)
    writer.publish(snapshot("BTCUSDT", 1, window.view()))
    first = reader.snapshot("BTCUSDT")
    assert first is not None
    kept = first.trades.price.copy()
    for seq in range(2, 40):
        window.add(50)
        writer.publish(snapshot("BTCUSDT", seq, window.view()))
        reader.snapshot("BTCUSDT")
    np.testing.assert_array_equal(first.trades.price, kept)
    assert not first.trades.price.flags.writeable


def test_trade_id_reset_starts_a_new_generation(url: str) -> None:
    writer, reader = RedisStore(url), RedisStore(url, poll_s=0)
    window = WorkerWindow("DOTUSDT", 500, first_id=5000)
    window.add(400)
    writer.publish(snapshot("DOTUSDT", 1, window.view()))
    assert reader.snapshot("DOTUSDT") is not None
    looped = WorkerWindow("DOTUSDT", 500, first_id=10)
    looped.add(120)
    writer.publish(snapshot("DOTUSDT", 2, looped.view()))
    got = reader.snapshot("DOTUSDT")
    assert got is not None
    assert_trades_equal(got.trades, looped.view())


def test_staleness_is_visible(url: str) -> None:
    writer, reader = RedisStore(url), RedisStore(url, poll_s=0, stale_after_s=0.5)
    window = WorkerWindow("BTCUSDT", 100)
    window.add(10)
    writer.publish(snapshot("BTCUSDT", 1, window.view()))
    written = reader.snapshot("BTCUSDT")  # a write is its shard's heartbeat too
    assert written is not None and written.book.is_live
    writer.publish_status(FeedStatus(connection_state="CONNECTED"))
    live = reader.snapshot("BTCUSDT")
    assert live is not None and live.book.is_live
    assert reader.status().connection_state == "CONNECTED"  # type: ignore[union-attr]
    time.sleep(0.7)
    silent = reader.snapshot("BTCUSDT")
    assert silent is not None and silent.book.sync_state is SyncState.STALE
    assert "silent" in silent.book.resync_reason
    assert reader.status().connection_state == "STALE"  # type: ignore[union-attr]
    restarted = RedisStore(url)
    restarted.publish_status(FeedStatus(connection_state="CONNECTING"))
    old = reader.snapshot("BTCUSDT")
    assert old is not None and old.book.sync_state is SyncState.STALE
    assert "silent" in old.book.resync_reason  # the heartbeat is per shard written
    restarted.publish(snapshot("BTCUSDT", 1, window.view(), book=book("BTCUSDT")))
    fresh = reader.snapshot("BTCUSDT")
    assert fresh is not None and fresh.book.is_live and fresh.seq > live.seq


def test_state_expires_with_a_dead_worker(url: str) -> None:
    writer, reader = RedisStore(url, ttl_s=0.5), RedisStore(url, poll_s=0)
    window = WorkerWindow("BTCUSDT", 100)
    window.add(10)
    writer.publish(snapshot("BTCUSDT", 1, window.view()))
    writer.publish_status(FeedStatus())
    writer.publish_symbols([SymbolInfo("BTCUSDT")])
    assert reader.snapshot("BTCUSDT") is not None
    time.sleep(0.8)
    assert reader.snapshot("BTCUSDT") is None
    assert reader.status() is None
    assert redis.Redis.from_url(url).keys(f"{PREFIX}*") == []


def test_symbols_and_requests(url: str) -> None:
    writer, reader = RedisStore(url), RedisStore(url)
    assert reader.symbols() == []  # a web worker up before the ingest worker: not kept
    writer.publish_symbols([SymbolInfo("ETHUSDT"), SymbolInfo("BTCUSDT", tick_size=0.1)])
    assert [i.symbol for i in reader.symbols()] == ["BTCUSDT", "ETHUSDT"]
    assert reader.symbols()[0].tick_size == 0.1
    before = time.time()
    reader.request_symbol("SOLUSDT")
    reader.request_symbol("bad key*")
    reader.request_symbol("X" * 100)
    requests = writer.requested_symbols()
    assert list(requests) == ["SOLUSDT"] and requests["SOLUSDT"] >= before
    assert reader.snapshot("bad key*") is None
    with pytest.raises(ValueError):
        writer.publish(snapshot("../x", 1, TradeView("../x")))
    assert reader.published_symbols() == []
    for symbol in ("ETHUSDT", "BTCUSDT"):
        writer.publish(snapshot(symbol, 1, TradeView(symbol), book=book(symbol)))
    assert reader.published_symbols() == ["BTCUSDT", "ETHUSDT"]


def test_redis_down_then_back(server: RedisServer, url: str) -> None:
    writer, reader = RedisStore(url), RedisStore(url, poll_s=0)
    window = WorkerWindow("BTCUSDT", 1000)
    window.add(300)
    writer.publish(snapshot("BTCUSDT", 1, window.view()))
    writer.publish_status(FeedStatus(connection_state="CONNECTED"))
    assert reader.snapshot("BTCUSDT") is not None
    server.stop()
    try:
        last = reader.snapshot("BTCUSDT")  # the book read before, never shown as live
        assert last is not None and last.book.sync_state is SyncState.STALE
        assert "Redis store unavailable" in last.book.resync_reason
        assert "unavailable" in (reader.unavailable("BTCUSDT") or "")
        fresh = RedisStore(url)  # nothing read before: none, and unavailable, not absent
        assert fresh.snapshot("BTCUSDT") is None and fresh.unavailable("BTCUSDT")
        fresh.close()
        down = reader.status()
        assert down is not None and down.connection_state == "STORE_DOWN"
        assert "unavailable" in down.detail
        for seq in range(2, 6):
            window.add(20)
            writer.publish(snapshot("BTCUSDT", seq, window.view()))
            writer.publish_status(FeedStatus(connection_state="CONNECTED"))
        assert writer.availability.down
    finally:
        server.start()
    deadline = time.monotonic() + 10
    seq = 6
    got = None
    while time.monotonic() < deadline:
        window.add(5)
        writer.publish(snapshot("BTCUSDT", seq, window.view()))
        writer.publish_status(FeedStatus(connection_state="CONNECTED"))
        seq += 1
        got = reader.snapshot("BTCUSDT")
        status = reader.status()
        if got is not None and status is not None and status.connection_state == "CONNECTED":
            break
        time.sleep(0.1)
    assert got is not None, "reader recovers once Redis is back"
    assert got.book.is_live
    assert_trades_equal(got.trades, window.view())
    assert not writer.availability.down and not reader.availability.down
