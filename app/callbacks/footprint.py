"""Footprint callback: footprint bars of the live trade window, or with a history the last
``FOOTPRINT_BARS`` bars with the stored trades before the window (or candles with delta,
stored bars first), redrawn when new trades arrive; ``uirevision`` keeps the user's zoom."""

from __future__ import annotations

import functools
import time
from typing import Any

import dash
import numpy as np
from dash import Input, Output, State

from app import ids
from app.callbacks.derived import DerivedCache
from app.callbacks.past_trades import filtered_range, range_trades
from components.flow_filter import notional_band, parse_notional
from components.footprint import create_candles_figure, create_footprint_figure
from components.theme import create_notice_figure
from services.analytics.flow_filter import FlowFilter
from services.analytics.footprint import (
    DEFAULT_IMBALANCE_RATIO,
    INTERVALS_MS,
    auto_row_ticks,
    candles_with_delta,
    footprint,
)
from services.history.reader import HistoryReader
from services.market.views import TradeView
from services.store import MarketStore, SymbolSnapshot

AUTO_ROWS = 40
MAX_ROWS = 300


def row_ticks_for(trades: TradeView, tick: float, choice: str | int | None) -> int:
    """Ticks per row: the choice, raised so the trades' price range fits ``MAX_ROWS`` rows;
    "auto" sizes rows for about ``AUTO_ROWS`` rows."""
    if not len(trades):
        return 1
    low, high = float(trades.price.min()), float(trades.price.max())
    floor = auto_row_ticks(low, high, tick, MAX_ROWS)
    if choice in (None, "auto"):
        return max(floor, auto_row_ticks(low, high, tick, AUTO_ROWS))
    return max(floor, int(choice))


def imbalance_ratio_of(text: str | None) -> float:
    """The imbalance ratio from a percentage (``300`` or ``300%`` → 3.0); the default when
    unreadable or ≤ 100 %."""
    value = parse_notional((text or "").replace("%", ""))
    return value / 100.0 if value is not None and value > 100 else DEFAULT_IMBALANCE_RATIO


def render_footprint(
    store: MarketStore,
    cache: DerivedCache,
    symbol: str | None,
    view: str | None,
    interval: str,
    rows_choice: str | int | None,
    mode: str,
    ratio_text: str | None,
    filter_min: str | None,
    filter_max: str | None,
    rendered: dict | None,
    reader: HistoryReader | None = None,
) -> tuple[Any, dict | None]:
    """The footprint (or candles) figure and a key of what it shows; with a history
    ``reader`` the candles mode starts with stored bars before the live klines."""
    if view != "footprint":
        return dash.no_update, rendered
    snapshot = store.snapshot(symbol) if symbol else None
    band = FlowFilter(*notional_band(filter_min, filter_max))
    if mode == "candles":  # drawn from the klines alone: a new trade changes nothing
        mark = (snapshot.candles[-1].close, snapshot.candles[-1].volume) if (
            snapshot is not None and snapshot.candles
        ) else None  # fmt: skip
    else:
        trades = snapshot.trades if snapshot is not None else None
        mark = int(trades.trade_id[-1]) if trades is not None and len(trades) else None
    key = f"{symbol}|{interval}|{rows_choice}|{mode}|{ratio_text}|{band.label()}|{mark}"
    if rendered is not None and rendered.get("key") == key:
        return dash.no_update, rendered
    state = {"key": key}
    interval_ms = INTERVALS_MS.get(interval, INTERVALS_MS["1m"])
    uirevision = f"{symbol}|{interval}|{mode}"
    if snapshot is None:
        text = f"Waiting for data for {symbol}" if symbol else "Choose a symbol"
        return create_notice_figure(text, uirevision="waiting"), state
    info = snapshot.info
    if mode == "candles":
        return _candles(snapshot, interval, interval_ms, uirevision, reader), state
    start = past_start(snapshot, interval_ms) if reader is not None else None
    all_trades = snapshot.trades
    if start is not None:
        all_trades = range_trades(snapshot, reader, start, cached=True)
    view_trades = filtered_range(cache, snapshot, all_trades, band)
    row_ticks = row_ticks_for(all_trades, info.tick_size, rows_choice)
    fp = footprint(
        view_trades,
        interval_ms=interval_ms,
        tick_size=info.tick_size,
        row_ticks=row_ticks,
        imbalance_ratio=imbalance_ratio_of(ratio_text),
        start_ms=start,
    )
    if fp.bars == 0:
        text = "No trades in the window" + (f" within filter {band.label()}" if band.active else "")
        return create_notice_figure(text, uirevision=uirevision), state
    title = (
        f"{interval} bars · rows {row_ticks * info.tick_size:g} · imbalance"
        f" {fp.imbalance_ratio * 100:g} % · {fp.bars} bars"
    )
    if band.active:
        title += f" · filter {band.label()}"
    figure = create_footprint_figure(
        fp,
        mode=mode,
        uirevision=uirevision,
        price_decimals=info.price_decimals,
        unit_label=info.base_asset,
        title=title,
    )
    return figure, state


PAST_BARS = 300
"""Bars of the chosen interval read from the history before the live klines."""
FOOTPRINT_BARS = 120
FOOTPRINT_SPAN_MS = 4 * 3_600_000
"""With a history, footprint bars cover the last ``FOOTPRINT_BARS`` bars, at most
``FOOTPRINT_SPAN_MS`` (the part before the live trade window from the stored trades)."""


def past_start(snapshot: SymbolSnapshot, interval_ms: int) -> int | None:
    """Open of the first footprint bar to show with a history: ``FOOTPRINT_BARS`` bars
    (at most ``FOOTPRINT_SPAN_MS``) before the bar of the last trade; None without trades."""
    trades = snapshot.trades
    if not len(trades):
        return None
    span = max(interval_ms, min(FOOTPRINT_BARS * interval_ms, FOOTPRINT_SPAN_MS))
    last_bar = int(trades.time_ms[-1]) // interval_ms * interval_ms
    return last_bar + interval_ms - span


@functools.lru_cache(maxsize=32)
def stored_minutes(
    reader: HistoryReader, symbol: str, start_ms: int, end_ms: int
) -> dict[str, np.ndarray]:
    """Stored 1-minute candles of ``symbol`` in [start, end) as kline columns (a past
    range never changes, so it is read once)."""
    market = reader.market_of(symbol)
    if market is None:
        return {}
    bars = reader.candles(market, symbol, "1m", start_ms, end_ms - 1)
    bars = bars.filter(bars["open_ms"] < end_ms)
    return {name: bars[name].to_numpy() for name in
            ("open_ms", "open", "high", "low", "close", "volume", "buy_volume")}  # fmt: skip


def kline_columns(
    snapshot: SymbolSnapshot, interval_ms: int, reader: HistoryReader | None
) -> dict[str, np.ndarray]:
    """The live klines as columns, preceded by the stored 1-minute candles of the
    ``PAST_BARS`` bars before them when a history ``reader`` is given (taker-buy volume
    in both, so every bar's delta is exact)."""
    klines = snapshot.candles
    live = {
        "open_ms": np.array([k.open_time_ms for k in klines], dtype=np.int64),
        "open": np.array([k.open for k in klines], dtype=np.float64),
        "high": np.array([k.high for k in klines], dtype=np.float64),
        "low": np.array([k.low for k in klines], dtype=np.float64),
        "close": np.array([k.close for k in klines], dtype=np.float64),
        "volume": np.array([k.volume for k in klines], dtype=np.float64),
        "buy_volume": np.array([k.taker_buy_volume for k in klines], dtype=np.float64),
    }
    if reader is None:
        return live
    first = int(live["open_ms"][0]) if klines else int(time.time() * 1000) // 60_000 * 60_000
    first = first // interval_ms * interval_ms  # a stored bar never splits a live one
    past = stored_minutes(reader, snapshot.symbol, first - PAST_BARS * interval_ms, first)
    if not past or not past["open_ms"].shape[0]:
        return live
    keep = live["open_ms"] >= first
    return {k: np.concatenate((past[k], live[k][keep])) for k in live}


def _candles(
    snapshot: SymbolSnapshot,
    interval: str,
    interval_ms: int,
    uirevision: str,
    reader: HistoryReader | None = None,
) -> dict:
    columns = kline_columns(snapshot, interval_ms, reader)
    if not columns["open_ms"].shape[0]:
        return create_notice_figure("No klines received yet", uirevision=uirevision)
    candles = candles_with_delta(
        time_ms=columns["open_ms"],
        open=columns["open"],
        high=columns["high"],
        low=columns["low"],
        close=columns["close"],
        volume=columns["volume"],
        taker_buy_volume=columns["buy_volume"],
        interval_ms=interval_ms,
    )
    return create_candles_figure(
        candles,
        uirevision=uirevision,
        unit_label=snapshot.info.base_asset,
        title=f"{interval} candles with delta from klines (taker-buy volume) · CVD",
    )


def register(
    app: dash.Dash, store: MarketStore, cache: DerivedCache, reader: HistoryReader | None = None
) -> None:
    """Wire the footprint to the fast interval, the symbol, the view and its controls."""

    @app.callback(
        Output(ids.FOOTPRINT_CHART, "figure"),
        Output(ids.FOOTPRINT_RENDERED, "data"),
        Input(ids.FAST_INTERVAL, "n_intervals"),
        Input(ids.SYMBOL_DROPDOWN, "value"),
        Input(ids.VIEW_DROPDOWN, "value"),
        Input(ids.FOOTPRINT_INTERVAL, "value"),
        Input(ids.FOOTPRINT_ROWS, "value"),
        Input(ids.FOOTPRINT_MODE, "value"),
        Input(ids.FOOTPRINT_RATIO, "value"),
        Input(ids.FLOW_FILTER_MIN, "value"),
        Input(ids.FLOW_FILTER_MAX, "value"),
        State(ids.FOOTPRINT_RENDERED, "data"),
    )
    def update_footprint(_n, symbol, view, interval, rows, mode, ratio, fmin, fmax, rendered):
        return render_footprint(
            store, cache, symbol, view, interval or "1m", rows, mode or "bidask", ratio,
            fmin, fmax, rendered, reader,
        )  # fmt: skip
