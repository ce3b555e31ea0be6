"""JSON API of the order-flow views: ``/api/assets/crypto/<symbol>/footprint`` and
``/heatmap``.

Both select a time range with ``start`` and ``end`` (ISO 8601 UTC or epoch ms; ``end``
exclusive). They read the live window (the trades of the symbol's snapshot, the book
samples of the embedded store) and, with a history store, the past before it: the stored
trades (then the live trades after the last stored id) and the recorded book's grid under
the live samples. Ranges neither covers come back empty (heatmap columns not live).
Grids are compact: the heatmap's bids and asks are base64 of little-endian float32,
columns × rows, NaN where the book was not LIVE. A bad parameter is a 400 naming it.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from flask import Blueprint, Response, jsonify, request

from app.api import ApiError, iso_time, json_ready, symbol_snapshot
from app.api_args import api_blueprint
from app.callbacks import derived
from app.callbacks.derived import DerivedCache
from app.callbacks.heatmap import heatmap_rows, heatmap_window
from app.history_api import HistoryQueries
from services.analytics.flow_filter import FlowFilter, filter_trades
from services.analytics.footprint import (
    DEFAULT_IMBALANCE_RATIO,
    DEFAULT_STACKED_ROWS,
    auto_row_ticks,
    footprint,
    interval_ms_of,
    trades_between,
)
from services.analytics.heatmap import trade_dots
from services.history import ranges
from services.history.book_heatmap import RecordedBook
from services.history.reader import HistoryError
from services.market.book_samples import book_samples_of
from services.market.views import TradeView
from services.push.messages import concat, slice_after
from services.store import MarketStore, SymbolSnapshot

MAX_RANGE_MS = 7 * 24 * 3_600_000
MAX_COLUMNS = 5000
MAX_ROWS = 2000
DEFAULT_HEATMAP_MS = 5 * 60_000
DEFAULT_BAND_PCT = 0.5
MAX_FOOTPRINT_CELLS = 200_000


def parse_time(name: str, raw: str | None) -> int | None:
    """Epoch ms from ``raw`` as the history's ranges read it (epoch ms, or ISO 8601; a
    time without zone is UTC); None when absent."""
    if raw is None or raw == "":
        return None
    try:
        return ranges.parse_time(raw, name)
    except HistoryError as exc:
        raise ApiError(exc.status, str(exc), parameter=name) from None


def _number(name: str, default: float | None, low: float, high: float) -> float | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ApiError(400, f"{name} must be a number", parameter=name) from exc
    if not (math.isfinite(value) and low <= value <= high):
        raise ApiError(400, f"{name} must be between {low:g} and {high:g}", parameter=name)
    return value


def integer_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    value = _number(name, None, low, high)
    if value is None:
        return default
    if value != int(value):
        raise ApiError(400, f"{name} must be an integer", parameter=name)
    return int(value)


def _range(default_end: int, default_span_ms: int | None) -> tuple[int | None, int | None]:
    start = parse_time("start", request.args.get("start"))
    end = parse_time("end", request.args.get("end"))
    if default_span_ms is not None:
        end = default_end if end is None else end
        start = end - default_span_ms if start is None else start
    if start is not None and end is not None:
        if end <= start:
            raise ApiError(400, "end must be after start", parameter="end")
        if end - start > MAX_RANGE_MS:
            raise ApiError(400, "the range is longer than 7 days", parameter="start")
    return start, end


def flow_filter_arg() -> FlowFilter:
    low = _number("min_notional", None, 0, 1e15)
    high = _number("max_notional", None, 0, 1e15)
    if low is not None and high is not None and high < low:
        raise ApiError(400, "max_notional must not be below min_notional", parameter="max_notional")
    return FlowFilter(low, high)


def f32_base64(grid: np.ndarray) -> str:
    """A grid as base64 of its little-endian float32 bytes, row-major."""
    return base64.b64encode(np.ascontiguousarray(grid, dtype="<f4").tobytes()).decode("ascii")


def create_views_api(
    store: MarketStore,
    cache: DerivedCache,
    history: HistoryQueries | None = None,
    recorded: RecordedBook | None = None,
) -> Blueprint:
    """The footprint and heatmap endpoints, reading ``store`` (and ``history``/``recorded``
    for the past before the live window)."""
    api = api_blueprint("views_api", __name__)

    @api.get("/api/assets/crypto/<symbol>/footprint")
    def footprint_view(symbol: str) -> Response:
        return _footprint(lambda: symbol_snapshot(store, symbol), history)

    @api.get("/api/assets/crypto/<symbol>/heatmap")
    def heatmap_view(symbol: str) -> Response:
        return _heatmap(store, cache, lambda: symbol_snapshot(store, symbol), recorded, history)

    return api


def window_trades(
    snapshot: SymbolSnapshot, history: HistoryQueries | None, start: int | None, end: int | None
) -> TradeView:
    """The trades of [start, end): the live window's, or when ``start`` is before it and
    the history holds the symbol, the stored trades then the live ones after the last
    stored id (never one twice)."""
    live = snapshot.trades
    first = int(live.time_ms[0]) if len(live) else None
    if history is None or start is None or (first is not None and start >= first):
        return live
    market = history.reader.market_of(snapshot.symbol)
    if market is None:
        return live
    stored = history.reader.trades(market, snapshot.symbol, start, end)
    if not len(stored):
        return live
    if stored.kind != live.kind and len(live):
        return stored
    return concat([stored, slice_after(live, int(stored.trade_id[-1]))])


def _footprint(
    snapshot_of: Callable[[], SymbolSnapshot], history: HistoryQueries | None = None
) -> Response:
    """The footprint of the requested range (parameters first, then the symbol)."""
    interval = request.args.get("interval", "1m")
    try:
        interval_ms = interval_ms_of(interval)
    except ValueError as exc:
        raise ApiError(400, str(exc), parameter="interval") from exc
    start, end = _range(0, None)
    row_ticks = integer_arg("row_ticks", None, 1, 10_000_000)
    ratio = _number("imbalance", DEFAULT_IMBALANCE_RATIO * 100, 100.000001, 100_000)
    min_volume = _number("min_volume", 0.0, 0, 1e15)
    stacked = integer_arg("stacked", DEFAULT_STACKED_ROWS, 1, 1000)
    band = flow_filter_arg()
    snapshot = snapshot_of()
    trades = filter_trades(window_trades(snapshot, history, start, end), band)
    tick = snapshot.info.tick_size
    if row_ticks is None:
        prices = trades.price
        row_ticks = (
            auto_row_ticks(float(prices.min()), float(prices.max()), tick, 40) if len(trades) else 1
        )
    fp = footprint(
        trades,
        interval_ms=interval_ms,
        tick_size=tick,
        row_ticks=row_ticks,
        start_ms=start,
        end_ms=end,
        imbalance_ratio=(ratio or 300.0) / 100.0,
        imbalance_min_volume=min_volume or 0.0,
        stacked_rows=stacked or DEFAULT_STACKED_ROWS,
    )
    if fp.cell_price.shape[0] > MAX_FOOTPRINT_CELLS:
        raise ApiError(
            400,
            f"{fp.cell_price.shape[0]} cells is over {MAX_FOOTPRINT_CELLS}: raise row_ticks"
            " or narrow the range",
            parameter="row_ticks",
        )
    bars = {
        name: getattr(fp, name)
        for name in (
            "bar_time_ms", "open", "high", "low", "close", "volume", "buy_volume",
            "sell_volume", "delta", "trades", "cvd", "poc_price", "naked_until_ms",
        )
    }  # fmt: skip
    cells = {
        name: getattr(fp, name)
        for name in ("cell_bar", "cell_price", "cell_buy", "cell_sell", "cell_trades")
    }
    for name in ("buy_imbalance", "sell_imbalance", "stacked_buy", "stacked_sell"):
        cells[name] = getattr(fp, name).astype(np.int8)
    runs = {name: getattr(fp, name) for name in ("run_bar", "run_side", "run_low", "run_high")}
    return _payload(
        snapshot,
        interval=interval,
        start=start,
        end=end,
        row_ticks=row_ticks,
        row_size=fp.row_size,
        imbalance_pct=fp.imbalance_ratio * 100,
        imbalance_min_volume=fp.imbalance_min_volume,
        stacked_rows=fp.stacked_rows,
        flow_filter=band.label(),
        total_volume=fp.total_volume,
        bars=bars,
        cells=cells,
        stacked_runs=runs,
    )


def _heatmap(
    store: MarketStore,
    cache: DerivedCache,
    snapshot_of: Callable[[], SymbolSnapshot],
    recorded: RecordedBook | None = None,
    history: HistoryQueries | None = None,
) -> Response:
    """The heatmap of the requested range (parameters first, then the symbol); the default
    range ends at the market's clock (a replay's is the recording's)."""
    samples = book_samples_of(store)
    now = samples.market_now_ms() if samples is not None else int(time.time() * 1000)
    start, end = _range(now, DEFAULT_HEATMAP_MS)
    assert start is not None and end is not None
    bucket = integer_arg("time_bucket_ms", max(1000, (end - start) // 300), 100, MAX_RANGE_MS)
    assert bucket is not None
    if (end - start) / bucket > MAX_COLUMNS:
        raise ApiError(
            400, f"more than {MAX_COLUMNS} columns: raise time_bucket_ms",
            parameter="time_bucket_ms",
        )  # fmt: skip
    band_pct = _number("band_pct", DEFAULT_BAND_PCT, 0.01, 2.0)
    ticks = integer_arg("price_bucket_ticks", None, 1, 10_000_000)
    unit = request.args.get("unit", "base")
    if unit not in ("base", "quote"):
        raise ApiError(400, "unit must be base or quote", parameter="unit")
    band = flow_filter_arg()
    snapshot = snapshot_of()
    if book_samples_of(store) is None:
        raise ApiError(503, "this store keeps no book samples (the heatmap needs them)")
    book = snapshot.book
    if not (book.bid_prices.shape[0] and book.ask_prices.shape[0]):
        raise ApiError(503, f"no two-sided book for {snapshot.symbol} yet")
    mid = (float(book.bid_prices[0]) + float(book.ask_prices[0])) / 2.0
    tick = snapshot.info.tick_size
    low, high, auto_ticks = heatmap_rows(mid, band_pct or DEFAULT_BAND_PCT, tick)
    ticks = ticks or auto_ticks
    if (high - low) / (tick * ticks) > MAX_ROWS:
        raise ApiError(
            400, f"more than {MAX_ROWS} rows: raise price_bucket_ticks",
            parameter="price_bucket_ticks",
        )  # fmt: skip
    grid = heatmap_window(
        store, snapshot, start_ms=start, end_ms=end, time_bucket_ms=bucket,
        low=low, high=high, row_ticks=ticks, unit=unit, recorded=recorded,
    )  # fmt: skip
    live = snapshot.trades
    if history is not None and len(live) and start < int(live.time_ms[0]):
        trades = filter_trades(window_trades(snapshot, history, start, end), band)
    else:
        trades = derived.filtered_trades(cache, snapshot, band.min_notional, band.max_notional)
    dots = trade_dots(
        trades_between(trades, start, end),
        time_bucket_ms=bucket,
        tick_size=tick,
        price_bucket_ticks=ticks,
    )
    return _payload(
        snapshot,
        start=start,
        end=end,
        time_bucket_ms=bucket,
        price_bucket_ticks=ticks,
        price_bucket=grid.price_bucket,
        unit=unit,
        flow_filter=band.label(),
        time_ms=grid.time_ms,
        price=grid.price,
        live=grid.live.astype(np.int8),
        best_bid=grid.best_bid,
        best_ask=grid.best_ask,
        grid={
            "encoding": "base64 float32 LE, row-major [columns][rows], NaN: no LIVE book",
            "shape": [grid.columns, grid.rows],
            "bids": f32_base64(grid.bids),
            "asks": f32_base64(grid.asks),
        },
        dots={
            "time_ms": dots.time_ms,
            "price": dots.price,
            "qty": dots.qty,
            "side": dots.side.astype(np.int8),
            "count": dots.count,
        },
    )


def _payload(snapshot: SymbolSnapshot, **body: Any) -> Response:
    return jsonify(
        json_ready(
            {
                "symbol": snapshot.symbol,
                "time": iso_time(time.time()),
                "published_at": iso_time(snapshot.published_at),
                "sync_state": str(snapshot.book.sync_state),
                **body,
            }
        )
    )
