"""Liquidity heatmap callback: a full drawing (axes figure + canvas layer) when the symbol or
a control changes (or the mid leaves the band drawn), then only the new complete columns as
an ``append`` layer (painted by ``assets/heatmap_layer.js``, which drops as many at the left
and moves the axes' span); the figure is not sent again, so zoom and pan survive."""

from __future__ import annotations

from typing import Any

import dash
import numpy as np
from dash import ClientsideFunction, Input, Output, State

from app import ids
from app.callbacks.derived import DerivedCache
from app.callbacks.past_trades import filtered_range, range_trades
from components.flow_filter import notional_band
from components.heatmap import (
    DEFAULT_CUTOFF_PCT,
    MAX_ROWS,
    TIME_RANGES_MS,
    create_heatmap_figure,
    create_heatmap_layer,
    cutoffs,
    layer_columns,
    layer_dots,
    time_bucket_for,
)
from components.theme import create_notice_figure
from services.analytics.flow_filter import FlowFilter
from services.analytics.footprint import auto_row_ticks, trades_between
from services.analytics.heatmap import LiquidityHeatmap, liquidity_heatmap, trade_dots
from services.history.book_heatmap import RecordedBook, with_live
from services.history.reader import HistoryReader
from services.market.book_samples import book_samples_of
from services.store import MarketStore, SymbolSnapshot

SETTLE_MS = 500
"""A second's sample is closed by the first view of the next one (≤ 250 ms later): columns
ending more than this long ago are complete."""
REBUILD_SHARE = 0.2
"""A full redraw once the grid has slid by this share of its columns (drops stale dots)."""
RECENTRE_SHARE = 0.5
HISTORY_RANGE_MS = 3_600_000
"""From this range on, rows are sized as whole stored buckets (2^k), so the recorded book's
minute pyramid draws the stored part exactly."""
SAMPLED_BAND_PCT = 2.0
"""The band the live sampler keeps around the mid: a zoom beyond it has no rows to show."""


def zoomed_range(
    relayout: dict | None, previous: list[float] | None, mid: float | None
) -> list[float] | None:
    """The price range the user zoomed the heatmap to, or None to follow the mid.

    A relayout with a y range sets it, an autorange (double click) clears it, anything else
    (an x-only zoom, no event) keeps ``previous``. A range not inside ±``SAMPLED_BAND_PCT``
    of the mid (e.g. left over from another symbol) is ignored.
    """
    relayout = relayout or {}
    zoom = previous
    if relayout.get("yaxis.autorange"):
        zoom = None
    elif "yaxis.range[0]" in relayout and "yaxis.range[1]" in relayout:
        zoom = [float(relayout["yaxis.range[0]"]), float(relayout["yaxis.range[1]"])]
    elif isinstance(relayout.get("yaxis.range"), list):
        zoom = [float(v) for v in relayout["yaxis.range"][:2]]
    if zoom is None or mid is None:
        return None
    low, high = sorted(zoom)
    reach = mid * SAMPLED_BAND_PCT / 100.0
    if not (mid - reach <= low < high <= mid + reach):
        return None
    return [low, high]


def heatmap_rows(mid: float, band_pct: float, tick_size: float) -> tuple[float, float, int]:
    """(low, high, ticks per row) of the band ±``band_pct`` % around ``mid``."""
    low, high = mid * (1 - band_pct / 100.0), mid * (1 + band_pct / 100.0)
    return low, high, auto_row_ticks(low, high, tick_size, MAX_ROWS)


def heatmap_window(
    store: MarketStore,
    snapshot: SymbolSnapshot,
    *,
    start_ms: int,
    end_ms: int,
    time_bucket_ms: int,
    low: float,
    high: float,
    row_ticks: int,
    unit: str,
    recorded: RecordedBook | None = None,
) -> LiquidityHeatmap:
    """The heatmap of ``snapshot``'s symbol in [start, end): the live book samples, and
    where they do not reach back to ``start_ms``, the ``recorded`` book (history) under
    them (a column from the live ring where it was LIVE there, else from the store)."""
    samples = book_samples_of(store)
    rows = samples.samples(snapshot.symbol, start_ms, end_ms) if samples is not None else []
    grid = {
        "start_ms": start_ms,
        "end_ms": end_ms,
        "time_bucket_ms": time_bucket_ms,
        "price_low": low,
        "price_high": high,
        "tick_size": snapshot.info.tick_size,
        "price_bucket_ticks": row_ticks,
        "unit": "quote" if unit == "quote" else "base",
    }
    live = liquidity_heatmap(rows, **grid)
    if recorded is None or (rows and rows[0].time_ms < start_ms + time_bucket_ms):
        return live
    stored = recorded.heatmap(snapshot.symbol, **grid)
    return live if stored is None else with_live(stored, live)


def _mid(snapshot: SymbolSnapshot) -> float | None:
    book = snapshot.book
    if not (book.is_live and book.bid_prices.shape[0] and book.ask_prices.shape[0]):
        return None
    return (float(book.bid_prices[0]) + float(book.ask_prices[0])) / 2.0


def _dots(
    cache: DerivedCache,
    snapshot: SymbolSnapshot,
    band: FlowFilter,
    start_ms: int,
    end_ms: int,
    bucket_ms: int,
    row_ticks: int,
    reader: HistoryReader | None = None,
) -> dict[str, np.ndarray]:
    """Trade dots in [start, end) within the flow filter: from the live window, and with a
    history ``reader`` from the stored trades for the part before it."""
    trades = range_trades(snapshot, reader, start_ms, cached=False)
    view = filtered_range(cache, snapshot, trades, band)
    d = trade_dots(
        trades_between(view, start_ms, end_ms),
        time_bucket_ms=bucket_ms,
        tick_size=snapshot.info.tick_size,
        price_bucket_ticks=row_ticks,
    )
    return {"time_ms": d.time_ms, "price": d.price, "qty": d.qty, "side": d.side}


def render_heatmap(
    store: MarketStore,
    cache: DerivedCache,
    symbol: str | None,
    view: str | None,
    range_name: str,
    band_pct: float,
    unit: str,
    cutoff: list[float] | None,
    filter_min: str | None,
    filter_max: str | None,
    rendered: dict | None,
    now_ms: int | None = None,
    relayout: dict | None = None,
    recorded: RecordedBook | None = None,
    redraw: bool = False,
) -> tuple[Any, Any, dict | None]:
    """The heatmap's axes figure, its canvas layer (whole, or only the new columns) and
    what is now on screen.

    Rows follow the mid (the band preset, rows merged to ≤ ``MAX_ROWS``); once the user
    zooms the price axis (``relayout``), the grid is redrawn for the zoomed range with rows
    as fine as ``MAX_ROWS`` allows, so zooming in splits merged rows back into ticks.
    ``redraw`` sends the whole layer again (the browser lost the thread of appends).
    """
    if view != "heatmap":
        return dash.no_update, dash.no_update, rendered
    rendered = rendered or {}
    rev = int(rendered.get("rev", 0)) + 1
    snapshot = store.snapshot(symbol) if symbol else None
    if snapshot is None or book_samples_of(store) is None:
        text = (
            f"Waiting for data for {symbol}"
            if snapshot is None
            else "The heatmap needs the book samples of the embedded store"
        )
        return _notice(rendered, text, rev, uirevision="waiting")
    low_pct, high_pct = (cutoff or DEFAULT_CUTOFF_PCT)[:2]
    band = FlowFilter(*notional_band(filter_min, filter_max))
    range_ms = TIME_RANGES_MS.get(range_name, TIME_RANGES_MS["5m"])
    bucket = time_bucket_for(range_ms)
    now = book_samples_of(store).market_now_ms() if now_ms is None else now_ms
    end = (now - SETTLE_MS) // bucket * bucket
    mid = _mid(snapshot)
    zoom = zoomed_range(relayout, rendered.get("zoom"), mid)
    key = f"{symbol}|{range_name}|{band_pct}|{unit}|{low_pct}|{high_pct}|{band.label()}|{zoom}"
    info = snapshot.info
    rows = rendered.get("rows")
    same = not redraw and rendered.get("kind") == "chart" and rendered.get("key") == key and rows
    if same and mid is not None and zoom is None:
        low, high = rows[0], rows[1]
        half = (high - low) / 2
        same = abs(mid - (low + half)) <= RECENTRE_SHARE * half
    if same and (end - rendered["full_end"]) >= REBUILD_SHARE * range_ms:
        same = False
    if same:
        layer, state = _append(store, cache, snapshot, band, rendered, end, bucket)
        return dash.no_update, layer, state
    if mid is None:
        if rendered.get("kind") == "chart" and rendered.get("key") == key:
            return dash.no_update, dash.no_update, rendered
        return _notice(rendered, f"Order book of {symbol} not LIVE: nothing to draw yet", rev)
    if zoom is None:
        low, high, row_ticks = heatmap_rows(mid, band_pct, info.tick_size)
        if recorded is not None and range_ms >= HISTORY_RANGE_MS:
            row_ticks = recorded.row_ticks(symbol, low, high, info.tick_size, MAX_ROWS) or row_ticks
    else:
        low, high = zoom
        row_ticks = auto_row_ticks(low, high, info.tick_size, MAX_ROWS)
    start = end - range_ms
    grid = heatmap_window(
        store, snapshot, start_ms=start, end_ms=end, time_bucket_ms=bucket,
        low=low, high=high, row_ticks=row_ticks, unit=unit, recorded=recorded,
    )  # fmt: skip
    unit_label = info.quote_asset if unit == "quote" else info.base_asset
    reader = recorded.reader if recorded is not None else None
    dots = _dots(cache, snapshot, band, start, end, bucket, row_ticks, reader)
    layer = create_heatmap_layer(
        rev=rev, start_ms=start, end_ms=end, bucket_ms=bucket, keep=range_ms // bucket,
        price=grid.price, price_bucket=grid.price_bucket, bids=grid.bids, asks=grid.asks,
        live=grid.live, best_bid=grid.best_bid, best_ask=grid.best_ask, dots=dots,
        cutoff_pct=(float(low_pct), float(high_pct)), unit_label=unit_label,
        price_decimals=info.price_decimals,
    )  # fmt: skip
    figure = create_heatmap_figure(
        start_ms=start,
        end_ms=end,
        price_range=(low, high),
        uirevision=f"{symbol}|{range_name}|{band_pct}",
        title=_title(range_name, grid, row_ticks, info.tick_size, band),
    )
    state = {
        "kind": "chart",
        "rev": rev,
        "key": key,
        "zoom": zoom,
        "unit": unit,
        "rows": [low, high, row_ticks],
        "end": end,
        "full_end": end,
        "peak": layer["peak"],
        "decimals": layer["decimals"],
        "price_decimals": info.price_decimals,
        "cutoff_pct": [float(low_pct), float(high_pct)],
        "dot_peak": float(np.max(dots["qty"])) if len(dots["qty"]) else 0.0,
    }
    return figure, layer, state


def _notice(rendered: dict, text: str, rev: int, uirevision: str = "notice") -> tuple:
    """A notice figure and an empty layer, once (no_update while the same notice shows)."""
    state = {"kind": "notice", "text": text, "rev": rev}
    if {k: v for k, v in rendered.items() if k != "rev"} == {"kind": "notice", "text": text}:
        return dash.no_update, dash.no_update, rendered
    return create_notice_figure(text, uirevision=uirevision), {"kind": "clear", "rev": rev}, state


def _title(range_name: str, grid: LiquidityHeatmap, row_ticks: int, tick: float, band) -> str:
    rows = f"rows {row_ticks * tick:g}"
    columns = f"columns {grid.time_bucket_ms / 1000:g} s"
    text = f"last {range_name} · {columns} · {rows}"
    return f"{text} · dots {band.label()}" if band.active else text


def _append(
    store: MarketStore,
    cache: DerivedCache,
    snapshot: SymbolSnapshot,
    band: FlowFilter,
    rendered: dict,
    end: int,
    bucket: int,
) -> tuple[Any, dict]:
    """The columns in [rendered end, end) and their trade dots as an ``append`` layer (the
    browser drops as many columns at the left as it holds beyond the range); new cut-offs
    when a column holds a new peak."""
    last_end = int(rendered["end"])
    if end <= last_end:
        return dash.no_update, rendered
    low, high, row_ticks = rendered["rows"]
    grid = heatmap_window(
        store, snapshot, start_ms=last_end, end_ms=end, time_bucket_ms=bucket,
        low=low, high=high, row_ticks=int(row_ticks), unit=rendered["unit"],
    )  # fmt: skip
    layer: dict[str, Any] = {
        "kind": "append",
        "rev": rendered["rev"],
        "from": last_end,
        "end": end,
        **layer_columns(
            bids=grid.bids,
            asks=grid.asks,
            live=grid.live,
            best_bid=grid.best_bid,
            best_ask=grid.best_ask,
            decimals=int(rendered["decimals"]),
            price_decimals=int(rendered["price_decimals"]),
        ),
    }
    state = dict(rendered, end=end)
    new_peak = float(np.nanmax(np.fmax(grid.bids, grid.asks))) if grid.live.any() else 0.0
    if new_peak > float(rendered["peak"]):
        layer.update(cutoffs(new_peak, tuple(rendered["cutoff_pct"])))
        state["peak"] = new_peak
    dots = _dots(cache, snapshot, band, last_end, end, bucket, int(row_ticks))
    newest = float(np.max(dots["qty"])) if len(dots["qty"]) else 0.0
    peak_qty = max(float(rendered["dot_peak"]), newest)
    layer["dots"] = layer_dots(dots, bucket, peak_qty)
    return layer, state


def register(
    app: dash.Dash, store: MarketStore, cache: DerivedCache, recorded: RecordedBook | None = None
) -> None:
    """Wire the heatmap to the fast interval, the symbol, the view and its controls; with
    ``recorded`` (the history store's book) longer ranges show the stored past too. The
    layer is painted in the browser (``heatmapLayer.paint`` in ``assets/heatmap_layer.js``),
    which asks for the whole layer again through ``HEATMAP_REDRAW`` when appends went
    missing."""

    @app.callback(
        Output(ids.HEATMAP_CHART, "figure"),
        Output(ids.HEATMAP_LAYER, "data"),
        Output(ids.HEATMAP_RENDERED, "data"),
        Input(ids.FAST_INTERVAL, "n_intervals"),
        Input(ids.SYMBOL_DROPDOWN, "value"),
        Input(ids.VIEW_DROPDOWN, "value"),
        Input(ids.HEATMAP_RANGE, "value"),
        Input(ids.HEATMAP_BAND, "value"),
        Input(ids.HEATMAP_UNIT, "value"),
        Input(ids.HEATMAP_CUTOFF, "value"),
        Input(ids.FLOW_FILTER_MIN, "value"),
        Input(ids.FLOW_FILTER_MAX, "value"),
        Input(ids.HEATMAP_CHART, "relayoutData"),
        Input(ids.HEATMAP_REDRAW, "data"),
        State(ids.HEATMAP_RENDERED, "data"),
    )
    def update_heatmap(
        _n, symbol, view, range_name, band_pct, unit, cutoff, fmin, fmax, relayout, _p, rendered
    ):
        return render_heatmap(
            store, cache, symbol, view, range_name or "5m", float(band_pct or 0.5),
            unit or "base", cutoff, fmin, fmax, rendered, relayout=relayout, recorded=recorded,
            redraw=dash.ctx.triggered_id == ids.HEATMAP_REDRAW,
        )  # fmt: skip

    app.clientside_callback(
        ClientsideFunction(namespace="heatmapLayer", function_name="paint"),
        Input(ids.HEATMAP_LAYER, "data"),
        State(ids.HEATMAP_CHART, "id"),
        State(ids.HEATMAP_REDRAW, "id"),
        prevent_initial_call=True,
    )
