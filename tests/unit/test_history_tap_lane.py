"""The history tap leaves what it records in the writer's lane — nothing is put on the
writer's queue, nothing wakes it, per message or per event-loop turn — and the writer,
woken only by its flush interval, a flush or a stop, still writes every row on time: real
writer thread, real Parquet files."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np

from services.history.reader import HistoryReader
from services.history.recorder import HistoryRecorder
from services.history.writer import HistoryWriter
from services.market.views import TradeView


def _trades(first: int, n: int) -> TradeView:
    ids = np.arange(first, first + n, dtype=np.int64)
    return TradeView(
        "BTCUSDT", ids, 1_700_000_000_000 + ids, np.full(n, 100.5), np.full(n, 0.25),
        np.where(ids % 2 == 0, 1.0, -1.0), "aggTrade",
    )  # fmt: skip


def test_the_tap_queues_nothing_and_every_trade_is_stored(tmp_path: Path) -> None:
    writer = HistoryWriter(tmp_path, flush_interval_s=3600.0).start()
    recorder = HistoryRecorder(writer, "spot")

    async def feed() -> None:
        for turn in range(5):  # five turns of three messages each
            for k in range(3):
                recorder.on_trades("BTCUSDT", _trades(1 + turn * 30 + k * 10, 10))
            await asyncio.sleep(0)

    asyncio.run(feed())
    assert writer._queue.qsize() == 0  # nothing put, nothing to wake the thread
    assert len(writer.lane.entries) == 15
    stats = writer.stats()
    assert stats.queued == 15 and stats.lag_s > 0  # what waits in the lane is reported
    assert writer.flush()
    assert len(writer.lane.entries) == 0 and writer.stats().lag_s == 0
    writer.stop()
    ids = HistoryReader(tmp_path).trade_frame("spot", "BTCUSDT")["trade_id"].to_list()
    assert ids == list(range(1, 151))


def test_the_writer_writes_by_its_interval_without_being_woken(tmp_path: Path) -> None:
    writer = HistoryWriter(tmp_path, flush_interval_s=0.2).start()
    recorder = HistoryRecorder(writer, "spot")
    recorder.on_trades("BTCUSDT", _trades(1, 20))
    deadline = time.monotonic() + 10
    reader = HistoryReader(tmp_path)
    while "aggTrade" not in reader.trade_kinds("spot", "BTCUSDT") or not reader.newest_trades():
        assert time.monotonic() < deadline, "the queued trades were never written"
        time.sleep(0.05)
    assert reader.newest_trades()[("spot", "BTCUSDT")][0] == 20
    writer.stop()


def test_rows_and_views_in_one_turn_are_stored_in_id_order(tmp_path: Path) -> None:
    """The feed hands the recorder its trades as raw rows (one trade accepted) and as views
    (several released at once after a backfill), interleaved in one turn: every trade is
    stored once, in id order, with its exact price, quantity and side."""
    writer = HistoryWriter(tmp_path, flush_interval_s=3600.0).start()
    recorder = HistoryRecorder(writer, "spot")

    async def feed() -> None:
        for i in range(1, 4):
            recorder.on_trade_row(
                "BTCUSDT", "aggTrade", (i, 1_700_000_000_000 + i, 100.01, 0.003, i % 2 == 0)
            )
        recorder.on_trades("BTCUSDT", _trades(4, 10))
        recorder.on_trade_row("BTCUSDT", "aggTrade", (14, 1_700_000_000_014, 99.99, 1.5, True))
        await asyncio.sleep(0)

    asyncio.run(feed())
    assert len(writer.lane.entries) == 5
    writer.stop()
    frame = HistoryReader(tmp_path).trade_frame("spot", "BTCUSDT")
    assert frame["trade_id"].to_list() == list(range(1, 15))
    rows = frame.select("trade_id", "price_e8", "qty_e8", "buyer_maker").rows()
    assert rows[:3] == [
        (1, 10_001_000_000, 300_000, False),
        (2, 10_001_000_000, 300_000, True),
        (3, 10_001_000_000, 300_000, False),
    ]
    assert rows[4] == (5, 10_050_000_000, 25_000_000, True)  # a view's: odd ids sell
    assert rows[-1] == (14, 9_999_000_000, 150_000_000, True)
