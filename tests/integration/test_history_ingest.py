"""The history recorded from the real feed over real sockets (the local exchange replaying
the bundled 2021 recording), on real Parquet files: across a forced disconnect, a 30 s
stop, a kill -9 of the recording process and a restart, the stored trades equal the
recording's, id for id and quantity for quantity — the holes are backfilled from REST."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.binance.backoff import Backoff
from services.binance.endpoints import custom
from services.history.reader import HistoryReader, recent_trade_rows
from services.history.service import HistoryConfig, HistoryService
from services.market.feed import Feed, FeedConfig
from services.replay.exchange import LocalExchange
from services.replay.recording import SPOT_2021
from services.store import MemoryStore
from tests.recorded_trades import recorded_trades

SPEED = 6.0
STOP_MARKET_S = 30.0
FAST = Backoff(initial=0.05, cap=0.5, floor=0.02)
INGEST = Path(__file__).with_name("history_ingest.py")


def _recorded(path: Path) -> dict[str, dict[int, float]]:
    """Per symbol: trade id → qty of the recording's trades."""
    return {s: {t.trade_id: t.qty for t in ts} for s, ts in recorded_trades(path).items()}


@contextlib.contextmanager
def _recording(
    exchange: LocalExchange, root: Path, store: MemoryStore | None = None, seed: bool = False
) -> Iterator[HistoryService]:
    endpoints = custom(exchange.ws_url, exchange.rest_url, market=exchange.market)
    config = HistoryConfig(root, flush_interval_s=0.2, compact_every_s=0.5)
    history = HistoryService(config, endpoints, exchange.market, backoff=FAST).start()
    reader = HistoryReader(root)
    feed = Feed(
        FeedConfig(endpoints=endpoints, publish_interval_s=0.1, backoff=FAST, idle_timeout_s=3),
        store or MemoryStore(),
        taps=(history.recorder,),
        past_trades=(lambda s: recent_trade_rows(reader, "spot", s, "aggTrade", 0)) if seed
        else None,
    )  # fmt: skip
    feed.start_in_thread()
    try:
        yield history
    finally:
        feed.stop()
        history.stop()


def _stored_last(root: Path, symbol: str) -> int:
    reader = HistoryReader(root)
    if reader.market_of(symbol) is None:
        return -1
    frame = reader.trade_frame("spot", symbol)
    return int(frame["trade_id"][-1]) if frame.height else -1


def _window_last(store: MemoryStore, symbol: str) -> int:
    snapshot = store.snapshot(symbol)
    if snapshot is None or not len(snapshot.trades.trade_id):
        return -1
    return int(snapshot.trades.trade_id[-1])


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.timeout(120)
def test_trades_exact_across_disconnect_stop_kill_and_restart(tmp_path):
    recorded = _recorded(SPOT_2021)
    root = tmp_path / "history"
    exchange = LocalExchange([SPOT_2021], speed=SPEED)
    exchange.start_in_thread()
    try:
        # Run 1: recording, with a forced disconnect in the middle; then a clean stop.
        with _recording(exchange, root) as history:
            _wait(lambda: history.writer.stats().rows_written > 0, 10, "first segments")
            loop = exchange._thread_loop
            assert loop is not None
            loop.call_soon_threadsafe(exchange.faults.drop_connections)
            time.sleep(1.5)
        stopped_at = _stored_last(root, "BTCUSDT")
        # Tapescope is down for 30 s of market time.
        time.sleep(STOP_MARKET_S / SPEED)
        assert max(recorded["BTCUSDT"]) > stopped_at + 50, "the stop left no hole to fill"
        # Run 2: another process records, and is killed with SIGKILL.
        proc = subprocess.Popen(
            [sys.executable, str(INGEST), exchange.ws_url, exchange.rest_url, exchange.market,
             str(root)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stdout.readline().strip() == "recording"
        time.sleep(1.5)
        proc.kill()
        proc.wait(10)
        time.sleep(0.5)
        # Run 3: a restart, its trade window seeded from the history, until the recording
        # has been played to its end.
        store = MemoryStore()
        with _recording(exchange, root, store, seed=True) as history:
            _wait(lambda: exchange.player is not None and exchange.player.finished.is_set(),
                  40, "the end of the replay")  # fmt: skip
            for symbol, trades in recorded.items():
                _wait(lambda s=symbol, t=trades: _stored_last(root, s) == max(t), 20,
                      f"{symbol}'s last trade")  # fmt: skip
            assert history.backfill.wait_idle(30)
            filled = history.backfill.stats
            # The window is published every 0.1 s: wait for the one holding the last trade.
            last = max(recorded["BTCUSDT"])
            _wait(lambda: _window_last(store, "BTCUSDT") == last, 10, "the last trade's window")
    finally:
        exchange.stop()
    # Holes were closed by the feed's REST warm-up when it reached back far enough, else by
    # the history's backfill; none was left as a gap.
    assert filled.gaps == 0
    reader = HistoryReader(root)
    for symbol, trades in recorded.items():
        frame = reader.trade_frame("spot", symbol)
        ids = frame["trade_id"].to_list()
        first = ids[0]
        # From the first stored trade on, every recorded trade is stored once with its
        # quantity. A REST warm-up that answered before the first streamed trade arrived is
        # stored too (real trades, older than the recorded stream), once each, in order.
        assert first <= min(trades) + len(trades) // 5
        since = max(first, min(trades))
        assert [i for i in ids if i >= since] == [i for i in sorted(trades) if i >= since]
        assert ids == sorted(set(ids))
        qty = dict(zip(ids, (frame["qty_e8"] / 1e8).round(8).to_list(), strict=True))
        assert {i: qty[i] for i in ids if i in trades} == {i: trades[i] for i in ids if i in trades}
        assert reader.coverage("spot", symbol).gaps == ()
    assert stopped_at in set(reader.trade_frame("spot", "BTCUSDT")["trade_id"].to_list())
    assert not list(root.rglob("*.tmp"))
    # The restarted feed's window shows what came before the restart.
    window = store.snapshot("BTCUSDT").trades.trade_id.tolist()  # type: ignore[union-attr]
    stored = reader.trade_frame("spot", "BTCUSDT")["trade_id"].to_list()
    # (The window may also hold REST warm-up trades older than anything ever streamed.)
    streamed = [i for i in window if i >= stored[0]]
    assert len(set(window)) == len(window), "a trade twice in the window"
    assert streamed == stored[-len(streamed) :] and window[0] <= stopped_at


@pytest.mark.timeout(60)
def test_backfill_fills_a_hole_from_rest_and_records_what_it_cannot(tmp_path):
    recorded = _recorded(SPOT_2021)["BTCUSDT"]
    ids = sorted(recorded)
    exchange = LocalExchange([SPOT_2021], speed=50)
    exchange.start_in_thread()
    try:
        _wait(lambda: exchange.player is not None and exchange.player.finished.is_set(), 30,
              "the replay")  # fmt: skip
        endpoints = custom(exchange.ws_url, exchange.rest_url, market=exchange.market)
        history = HistoryService(HistoryConfig(tmp_path, flush_interval_s=0.1), endpoints,
                                 "spot", backoff=FAST).start()  # fmt: skip
        try:
            history.writer.add_trades("spot", "BTCUSDT", "aggTrade", _columns(ids[:100], recorded))
            history.writer.flush()
            # Tapescope comes back after 600 trades: the writer sees the hole and asks REST.
            history.writer.add_trades("spot", "BTCUSDT", "aggTrade", _columns(ids[700:], recorded))
            history.writer.flush()
            _wait(lambda: history.backfill.stats.holes == 1, 10, "the hole")
            assert history.backfill.wait_idle(20)
            history.backfill.request_hole("BTCUSDT", "aggTrade", ids[-1] + 1, ids[-1] + 50, 0)
            assert history.backfill.wait_idle(20)
            history.writer.flush()
        finally:
            history.stop()
    finally:
        exchange.stop()
    reader = HistoryReader(tmp_path)
    frame = reader.trade_frame("spot", "BTCUSDT")
    assert frame["trade_id"].to_list() == ids
    assert (frame["qty_e8"] / 1e8).round(8).to_list() == [recorded[i] for i in ids]
    stats = history.backfill.stats
    assert (stats.filled, stats.trades, stats.gaps) == (1, 600, 1)
    gaps = reader.recorded_gaps("spot", "BTCUSDT")
    assert [(g["first_id"], g["last_id"]) for g in gaps] == [(ids[-1] + 1, ids[-1] + 50)]


def _columns(ids: list[int], recorded: dict[int, float]) -> dict:
    import numpy as np

    from services.history.schema import to_e8

    n = len(ids)
    return {
        "trade_id": np.array(ids, dtype=np.int64),
        "time_ms": np.arange(n, dtype=np.int64) + 1_617_566_591_000,
        "price_e8": to_e8(np.full(n, 58000.0)),
        "qty_e8": to_e8([recorded[i] for i in ids]),
        "buyer_maker": np.zeros(n, dtype=bool),
    }
