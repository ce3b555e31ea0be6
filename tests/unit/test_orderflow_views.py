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
from components.footprint import create_footprint_figure
from components.heatmap import cutoffs, layer_dots, signed_grid, time_bucket_for
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
    figure, layer, state = render_heatmap(*args, None, now_ms=now)
    span = figure["data"][0]
    assert len(figure["data"]) == 1 and span["hoverinfo"] == "skip"
    assert span["x"] == [T0 + 12_000 - 300_000, T0 + 12_000], "x follows the drawn columns"
    assert span["y"] == figure["layout"]["yaxis"]["range"]
    assert layer["kind"] == "full" and layer["rev"] == state["rev"] == 1
    assert len(layer["z"]) == 300 == layer["keep"] and layer["dx"] == 1000
    assert len(layer["z"][0]) == layer["rows"] and layer["x0"] == T0 + 12_000 - 300_000
    assert state["end"] == layer["end"] == T0 + 12_000
    # steps 20–23 (T0 + 10 s … 12 s) were not LIVE: those columns are null and flagged
    assert layer["live"][-2:] == [0, 0] and layer["live"][-3] == 1
    assert all(v is None for v in layer["z"][-1]) and layer["bid"][-1] is None
    assert any(v is not None and v > 0 for v in layer["z"][-3]), "bids drawn positive"
    assert any(v is not None and v < 0 for v in layer["z"][-3]), "asks drawn negative"
    assert 0 < layer["lower"] < layer["upper"]
    assert layer["upper"] == pytest.approx(layer["peak"] * 0.6)
    assert layer["lower"] == pytest.approx(layer["peak"] * 0.02)
    update, appended, later = render_heatmap(*args, state, now_ms=now + 3_000)
    assert update is dash.no_update, "the figure is not sent again: zoom and pan stay"
    assert appended["kind"] == "append" and appended["rev"] == 1
    assert appended["from"] == T0 + 12_000 and appended["end"] == later["end"] == T0 + 15_000
    assert len(appended["z"]) == 3 and len(appended["live"]) == 3
    assert set(appended["dots"]) == {"t", "p", "q", "side", "s"}
    same, nothing, unchanged = render_heatmap(*args, later, now_ms=now + 3_100)
    assert same is nothing is dash.no_update and unchanged == later
    hidden, _none, kept = render_heatmap(store, cache, "BTCUSDT", "footprint", "5m", 0.2,
                                         "base", None, None, None, later)  # fmt: skip
    assert hidden is dash.no_update and kept == later
    other, redrawn, rebuilt = render_heatmap(store, cache, "BTCUSDT", "heatmap", "5m", 0.2,
                                             "quote", [2, 60], None, None, later,
                                             now_ms=now + 3_000)  # fmt: skip
    assert isinstance(other, dict) and rebuilt["key"] != later["key"]
    assert redrawn["kind"] == "full" and redrawn["rev"] == 2
    again, whole, _s = render_heatmap(*args, later, now_ms=now + 4_000, redraw=True)
    assert isinstance(again, dict) and whole["kind"] == "full", "the browser asked for it all"


def test_heatmap_layer_cells_and_dots_equal_the_analytics(store):
    cache = DerivedCache()
    now = T0 + 12_500
    _fig, layer, state = render_heatmap(store, cache, "BTCUSDT", "heatmap", "5m", 0.2, "base",
                                        [2, 60], None, None, None, now_ms=now)  # fmt: skip
    low, high, row_ticks = state["rows"]
    grid = liquidity_heatmap(
        store.book_samples.samples("BTCUSDT", layer["x0"], layer["end"]),
        start_ms=layer["x0"], end_ms=layer["end"], time_bucket_ms=1000, price_low=low,
        price_high=high, tick_size=0.01, price_bucket_ticks=row_ticks, unit="base",
    )  # fmt: skip
    assert layer["y0"] == grid.price[0] and layer["dy"] == grid.price_bucket
    expected = signed_grid(grid.bids, grid.asks)
    drawn = np.array([[np.nan if v is None else v for v in col] for col in layer["z"]])
    assert drawn.shape == expected.shape
    assert np.allclose(drawn, expected, atol=10 ** -layer["decimals"], equal_nan=True)
    assert layer["live"] == grid.live.astype(int).tolist()


def test_heatmap_rows_follow_the_users_price_zoom(store):
    cache = DerivedCache()
    args = (store, cache, "BTCUSDT", "heatmap", "5m", 0.5, "base", [2, 60], None, None)
    now = T0 + 12_500
    figure, layer, state = render_heatmap(*args, None, now_ms=now)
    wide = layer["dy"], layer["y0"]
    low, high = state["rows"][:2]
    mid = (low + high) / 2
    zoom = {"yaxis.range[0]": mid - 5.0, "yaxis.range[1]": mid + 5.0}
    zoomed, zlayer, zstate = render_heatmap(*args, state, now_ms=now, relayout=zoom)
    assert zstate["zoom"] == [mid - 5.0, mid + 5.0] and zstate["rows"][2] == 10  # 0.1 rows
    assert zlayer["dy"] == pytest.approx(0.1) and zlayer["dy"] < wide[0]
    assert zoomed["layout"]["uirevision"] == figure["layout"]["uirevision"]
    x_only = {"xaxis.range[0]": 1, "xaxis.range[1]": 2}
    update, appended, kept = render_heatmap(*args, zstate, now_ms=now + 2000, relayout=x_only)
    assert update is dash.no_update and appended["kind"] == "append"
    assert kept["zoom"] == zstate["zoom"]
    _back, blayer, bstate = render_heatmap(*args, kept, now_ms=now + 2000,
                                           relayout={"yaxis.autorange": True})  # fmt: skip
    assert bstate["zoom"] is None and (blayer["dy"], blayer["y0"]) == wide
    stale = {"yaxis.range[0]": 1_900.0, "yaxis.range[1]": 2_000.0}  # another symbol's zoom
    _fig, _layer, sstate = render_heatmap(*args, None, now_ms=now, relayout=stale)
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
    assert cutoffs(200.0, (10.0, 50.0)) == {"upper": 100.0, "lower": pytest.approx(20.0)}
    assert cutoffs(200.0, (80.0, 50.0))["lower"] == pytest.approx(99.0), "below the upper"
    assert time_bucket_for(5 * 60_000) == 1000 and time_bucket_for(4 * 3_600_000) == 60_000
    dots = {"time_ms": np.array([0, 1000]), "price": np.array([10.0, 11.0]),
            "qty": np.array([4.0, 1.0]), "side": np.array([1.0, -1.0])}  # fmt: skip
    drawn = layer_dots(dots, 1000, peak_qty=4.0)
    assert drawn["t"] == [500, 1500] and drawn["side"] == [1, -1] and drawn["q"] == [4.0, 1.0]
    assert drawn["s"] == [22.0, 11.0], "area ∝ quantity, the peak at the largest size"


def test_a_lone_footprint_bar_or_row_fills_its_interval(store):
    """Plotly sizes a heatmap cell from its neighbours' centres; a lone bar (the first minute
    of a session) or a lone row gets its edges, so its cells span the bar and the row."""
    trades = store.snapshot("BTCUSDT").trades
    t0 = int(trades.time_ms[0]) // 60_000 * 60_000
    one = footprint(trades, interval_ms=60_000, tick_size=0.01, row_ticks=100, end_ms=t0 + 60_000)
    heat = create_footprint_figure(one, uirevision="x")["data"][0]
    assert one.bars == 1 and heat["x"] == [t0, t0 + 60_000]
    assert len(heat["y"]) == len(heat["z"]) == len(heat["text"]) > 1  # rows: their centres
    # Plotly reads z and text as [row][bar]: each label in the cell of its value
    assert all((v is None) == (t == "") for zr, tr in zip(heat["z"], heat["text"], strict=True)
               for v, t in zip(zr, tr, strict=True))  # fmt: skip
    flat = footprint(trades, interval_ms=60_000, tick_size=0.01, row_ticks=10**6)
    heat = create_footprint_figure(flat, uirevision="x")["data"][0]
    base = float(flat.cell_price.min())
    assert flat.bars > 1 and heat["y"] == [base, base + 10_000.0]
    assert heat["x"] == (flat.bar_time_ms + 30_000).tolist()
