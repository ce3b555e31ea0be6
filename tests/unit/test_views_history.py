"""The order-flow views over the history store (real Parquet files from the 2021 recording):
/heatmap and /footprint with a past start read the stored book grid and trades; the page's
heatmap window lays the live ring over the stored columns."""

from __future__ import annotations

import base64
import dataclasses

import numpy as np
import pytest

from app.callbacks.derived import DerivedCache
from app.callbacks.footprint import kline_columns, render_footprint
from app.callbacks.heatmap import heatmap_window
from app.server import create_app
from services.analytics.footprint import footprint
from services.history.book_heatmap import RecordedBook, stored_heatmap
from services.history.reader import HistoryReader
from services.store import Candle, MemoryStore
from tests.conftest import SPOT_2021
from tests.recorded_feed import RecordedFeed

BASE = "/api/assets/crypto"


@pytest.fixture(scope="module")
def root(history_2021):
    return history_2021


@pytest.fixture(scope="module")
def store():
    store = MemoryStore()
    feed = RecordedFeed(store, SPOT_2021, messages_per_step=100)
    for _ in range(30):
        feed.step()
    return store


@pytest.fixture(scope="module")
def client(root, store):
    return create_app(store, history_dir=root).server.test_client()


def _book_span(root) -> tuple[int, int]:
    top = HistoryReader(root).book_top("spot", "BTCUSDT")
    live = top.filter(top["live"])
    return int(live["time_ms"].min()), int(live["time_ms"].max())


def test_heatmap_api_reads_the_recorded_book(client, root, store):
    first, last = _book_span(root)
    start, end = first // 1000 * 1000, (last // 1000 + 1) * 1000
    body = client.get(
        f"{BASE}/BTCUSDT/heatmap?start={start}&end={end}&time_bucket_ms=5000"
        "&price_bucket_ticks=100&band_pct=0.5"
    ).json
    shape = body["grid"]["shape"]
    bids = np.frombuffer(base64.b64decode(body["grid"]["bids"]), "<f4").reshape(shape)
    asks = np.frombuffer(base64.b64decode(body["grid"]["asks"]), "<f4").reshape(shape)
    price = np.array(body["price"])
    expected = stored_heatmap(
        root, "spot", "BTCUSDT", start_ms=start, end_ms=end, time_bucket_ms=5000,
        price_low=float(price[0]) + 0.005, price_high=float(price[-1]) + 0.005,
        tick_size=0.01, price_bucket_ticks=100,
    )  # fmt: skip
    live = np.array(body["live"], bool)
    assert live.sum() >= shape[0] - 2 > 3  # the recorded book was LIVE nearly throughout
    np.testing.assert_array_equal(live, expected.live)
    np.testing.assert_allclose(bids, expected.bids, rtol=1e-6)
    np.testing.assert_allclose(asks, expected.asks, rtol=1e-6)
    assert np.nanmax(bids) > 0 and np.nanmax(asks) > 0
    assert all(b < a for b, a in zip(body["best_bid"], body["best_ask"], strict=True) if b)
    # a range starting before the live trade window: the dots are the stored trades'
    early = int(store.snapshot("BTCUSDT").trades.time_ms[0]) - 1000
    dots = client.get(f"{BASE}/BTCUSDT/heatmap?start={early}&end={end}&time_bucket_ms=5000"
                      "&price_bucket_ticks=100&band_pct=0.5").json["dots"]  # fmt: skip
    stored = HistoryReader(root).trades("spot", "BTCUSDT", early, end - 1)
    assert sum(dots["count"]) == len(stored) > 0


def test_heatmap_window_lays_the_live_ring_over_stored_columns(root, store):
    first, last = _book_span(root)
    start, end = first // 1000 * 1000, (last // 1000 + 1) * 1000
    snapshot = store.snapshot("BTCUSDT")
    mid = (float(snapshot.book.bid_prices[0]) + float(snapshot.book.ask_prices[0])) / 2
    window = {
        "start_ms": start, "end_ms": end, "time_bucket_ms": 10_000,
        "low": mid * 0.995, "high": mid * 1.005, "row_ticks": 200, "unit": "base",
    }  # fmt: skip
    live_only = heatmap_window(store, snapshot, **window)
    assert not live_only.live.any()  # the ring holds nothing of 2021
    both = heatmap_window(store, snapshot, recorded=RecordedBook(HistoryReader(root)), **window)
    assert both.live.sum() >= both.columns - 2
    # one stored column turned LIVE in the ring replaces the stored one
    t = int(both.time_ms[3]) + 500
    store.book_samples.record("BTCUSDT", snapshot.book, t)
    store.book_samples.record("BTCUSDT", snapshot.book, end + 5000)  # closes that second
    mixed = heatmap_window(store, snapshot, recorded=RecordedBook(HistoryReader(root)), **window)
    ring = heatmap_window(store, snapshot, **window)
    assert ring.live[3] and ring.live.sum() == 1
    np.testing.assert_array_equal(mixed.bids[3], ring.bids[3])
    np.testing.assert_array_equal(mixed.bids[4:], both.bids[4:])


def test_footprint_api_reads_stored_trades_before_the_live_window(client, root, store):
    live = store.snapshot("BTCUSDT").trades
    stored = HistoryReader(root).trades("spot", "BTCUSDT")
    start = int(stored.time_ms[0])
    end = int(stored.time_ms[-1]) + 1
    assert start < int(live.time_ms[0]) or len(live) < len(stored)
    body = client.get(f"{BASE}/BTCUSDT/footprint?interval=1m&row_ticks=100"
                      f"&start={start - 1}&end={end}").json  # fmt: skip
    fp = footprint(stored, interval_ms=60_000, tick_size=0.01, row_ticks=100,
                   start_ms=start - 1, end_ms=end)  # fmt: skip
    assert body["total_volume"] == pytest.approx(float(stored.qty.sum()))
    assert body["bars"]["volume"] == pytest.approx(fp.volume.tolist())
    assert body["cells"]["cell_buy"] == pytest.approx(fp.cell_buy.tolist())


def test_candles_with_delta_start_with_stored_bars(root, store):
    reader = HistoryReader(root)
    stored = reader.candles("spot", "BTCUSDT", "1m")
    last_open = int(stored["open_ms"].max())
    live_open = last_open + 60_000
    snapshot = dataclasses.replace(
        store.snapshot("BTCUSDT"),
        candles=(Candle(live_open, "1m", 1.0, 2.0, 0.5, 1.5, 10.0, 7.0, False),),
    )
    columns = kline_columns(snapshot, 60_000, reader)
    assert columns["open_ms"].tolist() == [*stored["open_ms"].to_list(), live_open]
    assert columns["volume"][:-1] == pytest.approx(stored["volume"].to_numpy())
    assert columns["buy_volume"][-1] == 7.0
    assert kline_columns(snapshot, 60_000, None)["open_ms"].tolist() == [live_open]
    one = MemoryStore()
    one.publish(snapshot)
    figure, _ = render_footprint(one, DerivedCache(), "BTCUSDT", "footprint", "1m", None,
                                 "candles", None, None, None, None, reader)  # fmt: skip
    assert len(figure["data"][0]["x"]) == len(columns["open_ms"])
