"""The order-flow views over a store filled from the 2021 recording: the JSON API equals the
analytics functions and names bad parameters; the heatmap callback appends only new columns;
figures, view selection and the flow filter parsing."""

from __future__ import annotations

import base64
from dataclasses import replace

import dash
import numpy as np
import pytest

from app.callbacks.derived import DerivedCache
from app.callbacks.footprint import imbalance_ratio_of, render_footprint
from app.callbacks.heatmap import render_heatmap
from app.callbacks.view import arrangement, select_view, view_from_search
from app.server import create_app
from components.flow_filter import notional_band, parse_notional
from components.heatmap import colorscale, not_live_shapes, signed_grid, time_bucket_for
from services.analytics.footprint import footprint, trades_between
from services.analytics.heatmap import liquidity_heatmap
from services.store import Candle, MemoryStore
from tests.conftest import SPOT_2021
from tests.recorded_feed import RecordedFeed

BASE = "/api/assets/crypto"
T0 = 1_700_000_000_000
STEP_MS = 500


@pytest.fixture(scope="module")
def store() -> MemoryStore:
    """The recording stepped 40 times; BTCUSDT's book sampled every 500 ms from T0, with the
    book not LIVE during steps 20–23."""
    store = MemoryStore()
    feed = RecordedFeed(store, SPOT_2021, messages_per_step=100)
    for step in range(40):
        feed.step()
        book = store.snapshot("BTCUSDT").book
        if 20 <= step < 24:
            book = type(book)(book.symbol, sync_state="RESYNCING")  # type: ignore[arg-type]
        store.book_samples.record("BTCUSDT", book, T0 + step * STEP_MS)
    return store


@pytest.fixture(scope="module")
def client(store):
    return create_app(store).server.test_client()


def test_footprint_api_equals_analytics(client, store):
    body = client.get(f"{BASE}/btcusdt/footprint?interval=1m&row_ticks=100&imbalance=250").json
    snapshot = store.snapshot("BTCUSDT")
    fp = footprint(
        snapshot.trades, interval_ms=60_000, tick_size=0.01, row_ticks=100, imbalance_ratio=2.5
    )
    assert body["symbol"] == "BTCUSDT" and body["row_size"] == pytest.approx(1.0)
    assert body["bars"]["bar_time_ms"] == fp.bar_time_ms.tolist()
    assert body["bars"]["volume"] == pytest.approx(fp.volume.tolist())
    assert body["bars"]["cvd"] == pytest.approx(fp.cvd.tolist())
    assert body["cells"]["cell_buy"] == pytest.approx(fp.cell_buy.tolist())
    assert body["cells"]["buy_imbalance"] == fp.buy_imbalance.astype(int).tolist()
    assert sum(body["bars"]["volume"]) == pytest.approx(body["total_volume"])
    t = fp.bar_time_ms
    ranged = client.get(f"{BASE}/BTCUSDT/footprint?start={t[0]}&end={t[0] + 60_000}").json
    assert ranged["bars"]["bar_time_ms"] == [int(t[0])]
    filtered = client.get(f"{BASE}/BTCUSDT/footprint?min_notional=50000").json
    assert filtered["flow_filter"] == "≥ 50k"
    assert filtered["total_volume"] < body["total_volume"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("interval=2m", "interval"),
        ("start=yesterday", "start"),
        ("start=2000&end=1000", "end"),
        ("row_ticks=0", "row_ticks"),
        ("imbalance=abc", "imbalance"),
        ("min_notional=5&max_notional=1", "max_notional"),
    ],
)
def test_footprint_api_names_bad_parameters(client, query, parameter):
    response = client.get(f"{BASE}/BTCUSDT/footprint?{query}")
    assert response.status_code == 400
    assert response.json["parameter"] == parameter and parameter in response.json["error"]


def test_unknown_symbol_is_404_with_close_matches(client):
    response = client.get(f"{BASE}/BTCUSTD/heatmap")
    assert response.status_code == 404 and "BTCUSDT" in response.json["close_matches"]


def test_heatmap_api_grid_equals_analytics(client, store):
    end = T0 + 39 * STEP_MS
    body = client.get(
        f"{BASE}/BTCUSDT/heatmap?start={T0}&end={end}&time_bucket_ms=1000"
        "&price_bucket_ticks=100&band_pct=0.2"
    ).json
    cols, rows = body["grid"]["shape"]
    bids = np.frombuffer(base64.b64decode(body["grid"]["bids"]), "<f4").reshape(cols, rows)
    asks = np.frombuffer(base64.b64decode(body["grid"]["asks"]), "<f4").reshape(cols, rows)
    grid = liquidity_heatmap(
        store.book_samples.samples("BTCUSDT"),
        start_ms=T0,
        end_ms=end,
        time_bucket_ms=1000,
        price_low=body["price"][0],
        price_high=body["price"][-1],
        tick_size=0.01,
        price_bucket_ticks=100,
    )
    np.testing.assert_allclose(bids, grid.bids.astype("f4"), equal_nan=True)
    np.testing.assert_allclose(asks, grid.asks.astype("f4"), equal_nan=True)
    # steps 20–23 (10.0–11.5 s after T0) were not LIVE: those columns are empty
    assert body["live"][10:12] == [0, 0] and body["live"][:10] == [1] * 10
    assert np.isnan(bids[10]).all() and np.nanmax(bids[0]) > 0
    assert len(body["time_ms"]) == cols == 20


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("time_bucket_ms=1", "time_bucket_ms"),
        (f"start={T0}&end={T0 + 86_400_000}&time_bucket_ms=1000", "time_bucket_ms"),
        ("price_bucket_ticks=1&band_pct=2", "price_bucket_ticks"),
        ("band_pct=9", "band_pct"),
        ("unit=lots", "unit"),
        ("end=2020-13-01", "end"),
    ],
)
def test_heatmap_api_names_bad_parameters(client, query, parameter):
    response = client.get(f"{BASE}/BTCUSDT/heatmap?{query}")
    assert response.status_code == 400, response.json
    assert response.json["parameter"] == parameter


def test_heatmap_callback_appends_only_new_columns(store):
    cache = DerivedCache()
    args = (store, cache, "BTCUSDT", "heatmap", "5m", 0.2, "base", [2, 60], None, None)
    now = T0 + 12_000 + 500
    figure, state = render_heatmap(*args, None, now_ms=now)
    heat = figure["data"][0]
    assert heat["type"] == "heatmap" and heat["transpose"] is True
    assert len(heat["z"]) == 300 == state["columns"] and "x" not in heat and "y" not in heat
    assert heat["dx"] == 1000 and heat["x0"] == T0 + 12_000 - 300 * 1000 + 500
    assert state["end"] == T0 + 12_000
    shaded = [s for s in figure["layout"]["shapes"] if s["label"]["text"] == "book not live"]
    assert shaded and shaded[-1]["x0"] == T0 + 10_000 and shaded[-1]["x1"] == T0 + 12_000
    patch, later = render_heatmap(*args, state, now_ms=now + 3_000)
    assert isinstance(patch, dash.Patch)
    ops = patch.to_plotly_json()["operations"]
    z_ops = [op for op in ops if op["location"] == ["data", 0, "z"]]
    assert len(z_ops) == 1 and len(z_ops[0]["params"]["value"]) == 3
    deletes = [
        op for op in ops if op["operation"] == "Delete" and op["location"][:3] == ["data", 0, "z"]
    ]
    assert len(deletes) == 3 and later["columns"] == 300 and later["end"] == T0 + 15_000
    x0 = [op for op in ops if op["location"] == ["data", 0, "x0"]]
    assert x0[0]["params"]["value"] == heat["x0"] + 3_000, "the grid slides with its columns"
    same, unchanged = render_heatmap(*args, later, now_ms=now + 3_100)
    assert same is dash.no_update and unchanged == later
    hidden, kept = render_heatmap(store, cache, "BTCUSDT", "footprint", "5m", 0.2, "base",
                                  None, None, None, later)  # fmt: skip
    assert hidden is dash.no_update and kept == later
    other, rebuilt = render_heatmap(store, cache, "BTCUSDT", "heatmap", "5m", 0.2, "quote",
                                    [2, 60], None, None, later, now_ms=now + 3_000)  # fmt: skip
    assert isinstance(other, dict) and rebuilt["key"] != later["key"]


def test_heatmap_rows_follow_the_users_price_zoom(store):
    cache = DerivedCache()
    args = (store, cache, "BTCUSDT", "heatmap", "5m", 0.5, "base", [2, 60], None, None)
    now = T0 + 12_500
    figure, state = render_heatmap(*args, None, now_ms=now)
    wide = figure["data"][0]["dy"], figure["data"][0]["y0"]
    low, high = state["rows"][:2]
    mid = (low + high) / 2
    zoom = {"yaxis.range[0]": mid - 5.0, "yaxis.range[1]": mid + 5.0}
    zoomed, zstate = render_heatmap(*args, state, now_ms=now, relayout=zoom)
    rows = zoomed["data"][0]["dy"]
    assert zstate["zoom"] == [mid - 5.0, mid + 5.0] and zstate["rows"][2] == 10  # 0.1 rows
    assert rows == pytest.approx(0.1) and rows < wide[0]
    assert zoomed["layout"]["uirevision"] == figure["layout"]["uirevision"]
    x_only = {"xaxis.range[0]": 1, "xaxis.range[1]": 2}
    patch, kept = render_heatmap(*args, zstate, now_ms=now + 2000, relayout=x_only)
    assert isinstance(patch, dash.Patch) and kept["zoom"] == zstate["zoom"]
    back, bstate = render_heatmap(*args, kept, now_ms=now + 2000,
                                  relayout={"yaxis.autorange": True})  # fmt: skip
    assert bstate["zoom"] is None and (back["data"][0]["dy"], back["data"][0]["y0"]) == wide
    stale = {"yaxis.range[0]": 1_900.0, "yaxis.range[1]": 2_000.0}  # another symbol's zoom
    _fig, sstate = render_heatmap(*args, None, now_ms=now, relayout=stale)
    assert sstate["zoom"] is None


def test_footprint_callback_and_modes(store):
    cache = DerivedCache()
    figure, state = render_footprint(store, cache, "BTCUSDT", "footprint", "1m", "auto",
                                     "bidask", "300%", None, None, None)  # fmt: skip
    heat = figure["data"][0]
    assert heat["type"] == "heatmap" and any(" × " in t for col in heat["text"] for t in col)
    assert any(s["type"] == "rect" for s in figure["layout"]["shapes"])  # POC boxes
    again, _ = render_footprint(store, cache, "BTCUSDT", "footprint", "1m", "auto",
                                "bidask", "300%", None, None, state)  # fmt: skip
    assert again is dash.no_update
    filtered, _ = render_footprint(store, cache, "BTCUSDT", "footprint", "1m", 10,
                                   "delta", "300%", "20k", None, None)  # fmt: skip
    assert "filter ≥ 20k" in filtered["layout"]["title"]["text"]
    candles, _ = render_footprint(store, cache, "BTCUSDT", "footprint", "5m", "auto",
                                  "candles", None, None, None, None)  # fmt: skip
    assert candles["layout"]["annotations"][0]["text"] == "No klines received yet"


def test_candles_are_drawn_again_for_new_klines_not_new_trades(store):
    cache = DerivedCache()
    snapshot = store.snapshot("BTCUSDT")

    class Shown:
        """The store's BTCUSDT snapshot with the trades (and klines) given."""

        def __init__(self, trades, candles) -> None:
            self.shown = replace(snapshot, trades=trades, candles=candles)

        def snapshot(self, symbol):
            return self.shown

    fewer = trades_between(snapshot.trades, None, int(snapshot.trades.time_ms[-1]))
    kline = Candle(T0, "1m", 100.0, 101.0, 99.0, 100.5, 2.0, 1.5, False)
    args = ("BTCUSDT", "footprint", "5m", "auto", "candles", None, None, None)
    first, state = render_footprint(Shown(fewer, [kline]), cache, *args, None)
    assert first["data"]
    again, kept = render_footprint(Shown(snapshot.trades, [kline]), cache, *args, state)
    assert again is dash.no_update and kept == state
    later = replace(kline, close=100.7, volume=2.5)
    redrawn, _ = render_footprint(Shown(snapshot.trades, [later]), cache, *args, state)
    assert isinstance(redrawn, dict)


def test_view_selection_and_arrangement():
    assert view_from_search("?view=footprint") == "footprint"
    assert view_from_search("?view=nope") is None and view_from_search(None) is None
    assert select_view("?view=footprint", None, "url") == (dash.no_update, "footprint")
    assert select_view("", "heatmap", "url") == (dash.no_update, dash.no_update)
    assert select_view("?x=1", "depth", "view-dropdown") == ("?x=1&view=depth", dash.no_update)
    assert arrangement("depth")["depth_lg"] == 8 and arrangement("heatmap")["depth_lg"] == 3
    assert arrangement("footprint")["heatmap"] == {"display": "none"}


def test_flow_filter_text_and_ratio():
    assert parse_notional("250k") == 250_000 and parse_notional("1.5M") == 1_500_000
    assert parse_notional("") is None and parse_notional("abc") is None
    assert parse_notional("-5") is None
    assert notional_band("10k", "5k") == (10_000, None)
    assert imbalance_ratio_of("250%") == 2.5 and imbalance_ratio_of("50") == 3.0


def test_heatmap_figure_pieces():
    z = signed_grid(
        np.array([[1.0, 0.0], [np.nan, np.nan]]), np.array([[0.5, 2.0], [np.nan, np.nan]])
    )
    assert z[0].tolist() == [1.0, -2.0] and np.isnan(z[1]).all()
    scale = colorscale((10.0, 50.0))
    assert scale[2][0] == pytest.approx(0.4) and scale[3][0] == pytest.approx(0.6)
    shapes = not_live_shapes(np.array([0, 1000, 2000, 3000]), np.array([1, 0, 0, 1], bool), 1000)
    assert [(s["x0"], s["x1"]) for s in shapes] == [(1000, 3000)]
    assert time_bucket_for(5 * 60_000) == 1000 and time_bucket_for(4 * 3_600_000) == 60_000
