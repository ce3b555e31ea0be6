"""Trade tape callback: the newest trades, redrawn only when the snapshot changes."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State

from app import ids
from app.callbacks import derived
from app.callbacks.derived import DerivedCache
from components.flow_filter import notional_band
from components.trade_tape import TAPE_ROWS, create_trade_tape, parse_tiers
from services.analytics.trades import time_and_sales
from services.store import MarketStore


def render_tape(
    store: MarketStore,
    cache: DerivedCache,
    symbol: str | None,
    tiers_text: str | None,
    rendered: str | None,
    filter_min: str | None = None,
    filter_max: str | None = None,
) -> tuple[Any, str]:
    """The tape's children and a key of what they show (``no_update`` if unchanged); only
    trades within the flow filter's notional band are listed."""
    tiers = parse_tiers(tiers_text)
    low, high = notional_band(filter_min, filter_max)
    snapshot = store.snapshot(symbol) if symbol else None
    key = f"{symbol}|{snapshot.seq if snapshot else None}|{tiers}|{low}|{high}"
    if key == rendered:
        return dash.no_update, key
    if snapshot is None:
        return create_trade_tape(time_ms=[], price=[], qty=[], side=[]), key
    if low is None and high is None:
        newest = derived.time_and_sales(cache, snapshot, TAPE_ROWS)
    else:
        newest = time_and_sales(derived.filtered_trades(cache, snapshot, low, high), TAPE_ROWS)
    info = snapshot.info
    tape = create_trade_tape(
        time_ms=newest.time_ms.tolist(),
        price=newest.price.tolist(),
        qty=newest.qty.tolist(),
        side=newest.side.tolist(),
        tiers_quote=tiers,
        price_decimals=info.price_decimals,
        qty_decimals=info.qty_decimals,
        quote_asset=info.quote_asset,
    )
    return tape, key


def register(app: dash.Dash, store: MarketStore, cache: DerivedCache) -> None:
    """Wire the tape to its polling interval (off while the push stream paints it, see
    ``app.callbacks.push``), the symbol and the tier thresholds."""

    @app.callback(
        Output(ids.TRADE_TAPE, "children"),
        Output(ids.TAPE_RENDERED, "data"),
        Input(ids.TAPE_INTERVAL, "n_intervals"),
        Input(ids.SYMBOL_DROPDOWN, "value"),
        Input(ids.TAPE_TIERS, "value"),
        Input(ids.FLOW_FILTER_MIN, "value"),
        Input(ids.FLOW_FILTER_MAX, "value"),
        State(ids.TAPE_RENDERED, "data"),
    )
    def update_tape(_n, symbol, tiers_text, filter_min, filter_max, rendered):
        return render_tape(store, cache, symbol, tiers_text, rendered, filter_min, filter_max)
