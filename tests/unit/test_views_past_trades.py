"""The page's footprint and heatmap dots over the history store (real Parquet files of the
2021 recording): the part of the range older than the live trade window comes from the
stored trades, each trade once, so the past shows the moment the page opens."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from app.callbacks.derived import DerivedCache
from app.callbacks.footprint import past_start, render_footprint
from app.callbacks.heatmap import render_heatmap
from app.callbacks.past_trades import range_trades
from services.analytics.flow_filter import FlowFilter, filter_trades
from services.analytics.footprint import footprint, trades_between
from services.history.book_heatmap import RecordedBook
from services.history.reader import HistoryReader
from services.push.messages import slice_view
from services.store import MemoryStore
from tests.conftest import SPOT_2021
from tests.recorded_feed import RecordedFeed


@pytest.fixture(scope="module")
def reader(history_2021) -> HistoryReader:
    return HistoryReader(history_2021)


@pytest.fixture(scope="module")
def restarted(reader) -> MemoryStore:
    """A store just after a restart: its live trade window holds only the last third of
    the stored trades (as the feed's first minutes would), with a LIVE book."""
    store = MemoryStore()
    feed = RecordedFeed(store, SPOT_2021, messages_per_step=100)
    for _ in range(30):
        feed.step()
    stored = reader.trades("spot", "BTCUSDT", kind=store.snapshot("BTCUSDT").trades.kind)
    recent = slice_view(stored, 2 * len(stored) // 3, len(stored))
    store.publish(dataclasses.replace(store.snapshot("BTCUSDT"), trades=recent))
    return store


def test_range_trades_are_the_stored_then_the_live_each_once(restarted, reader):
    snapshot = restarted.snapshot("BTCUSDT")
    live = snapshot.trades
    stored = reader.trades("spot", "BTCUSDT", kind=live.kind)
    start = int(stored.time_ms[0])
    both = range_trades(snapshot, reader, start, cached=False)
    assert int(live.time_ms[0]) > start and len(both) == len(stored)
    np.testing.assert_array_equal(both.trade_id, stored.trade_id)
    np.testing.assert_array_equal(both.qty, stored.qty)
    assert range_trades(snapshot, reader, start, cached=True).trade_id.tolist() == (
        both.trade_id.tolist()
    )
    # a live trade newer than anything stored follows the stored ones
    newer = dataclasses.replace(
        live, trade_id=np.append(live.trade_id, live.trade_id[-1] + 1),
        time_ms=np.append(live.time_ms, live.time_ms[-1] + 5), price=np.append(live.price, 1.0),
        qty=np.append(live.qty, 2.0), side=np.append(live.side, 1.0),
    )  # fmt: skip
    grown = range_trades(dataclasses.replace(snapshot, trades=newer), reader, start, cached=False)
    assert grown.trade_id.tolist() == [*stored.trade_id.tolist(), int(newer.trade_id[-1])]
    # the live window alone when it reaches back to start, or without a history
    assert range_trades(snapshot, reader, int(live.time_ms[0]), cached=False) is live
    assert range_trades(snapshot, None, start, cached=False) is live


def test_page_footprint_shows_the_stored_bars_before_the_live_window(restarted, reader):
    snapshot = restarted.snapshot("BTCUSDT")
    args = (restarted, DerivedCache(), "BTCUSDT", "footprint", "1m", 100, "bidask", "300%")
    live_only, _ = render_footprint(*args, None, None, None)
    with_history, _ = render_footprint(*args, None, None, None, reader)
    start = past_start(snapshot, 60_000)
    everything = range_trades(snapshot, reader, start, cached=True)
    expected = footprint(everything, interval_ms=60_000, tick_size=0.01, row_ticks=100,
                         start_ms=start)  # fmt: skip
    window = footprint(snapshot.trades, interval_ms=60_000, tick_size=0.01, row_ticks=100)

    def bars(figure) -> int:
        return int(re.search(r"(\d+) bars", figure["layout"]["title"]["text"]).group(1))

    assert bars(live_only) == window.bars < bars(with_history) == expected.bars
    assert float(expected.volume.sum()) == pytest.approx(float(everything.qty.sum()))
    # the flow filter applies to the stored part too
    filtered, _ = render_footprint(*args, "5k", None, None, reader)
    assert "filter ≥ 5k" in filtered["layout"]["title"]["text"]
    large = footprint(filter_trades(everything, FlowFilter(5_000, None)), interval_ms=60_000,
                      tick_size=0.01, row_ticks=100, start_ms=start)  # fmt: skip
    assert bars(filtered) == large.bars > 0
    assert int(large.bar_time_ms[0]) < int(snapshot.trades.time_ms[0]) // 60_000 * 60_000


def test_page_heatmap_dots_come_from_the_store_before_the_live_window(restarted, reader):
    snapshot = restarted.snapshot("BTCUSDT")
    live = snapshot.trades
    stored = reader.trades("spot", "BTCUSDT", kind=live.kind)
    now = int(stored.time_ms[-1]) + 2_000
    args = (restarted, DerivedCache(), "BTCUSDT", "heatmap", "1h", 0.5, "base", [2, 60])
    _fig, without, _s = render_heatmap(*args, None, None, None, now_ms=now)
    _fig, layer, _s = render_heatmap(
        *args, None, None, None, now_ms=now, recorded=RecordedBook(reader)
    )
    assert min(without["dots"]["t"]) >= int(live.time_ms[0]) // 12_000 * 12_000
    assert min(layer["dots"]["t"]) < int(live.time_ms[0]), "dots before the live window"
    in_range = trades_between(stored, layer["x0"], layer["end"])
    shown = sum(layer["dots"]["q"])
    assert len(layer["dots"]["t"]) == 500 or shown == pytest.approx(float(in_range.qty.sum()))
