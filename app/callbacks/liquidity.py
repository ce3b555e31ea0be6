"""Liquidity panel callback (slow interval): score, spread, imbalance, depth, impact."""

from __future__ import annotations

import math
import time
from typing import Any

import dash
from dash import Input, Output, State, html

from app import ids
from app.callbacks import derived
from app.callbacks.derived import IMBALANCE_BAND_BPS, DerivedCache
from components.liquidity import (
    DepthBand,
    ImpactRow,
    create_liquidity_panel,
    create_liquidity_unavailable,
)
from services.analytics.definitions import DEFINITIONS
from services.market.views import SyncState
from services.store import MarketStore


def _impact_rows(rows: list) -> list[ImpactRow]:
    by_size: dict[float, dict[str, float | None]] = {}
    for row in rows:
        slippage = None if row.unfillable or math.isnan(row.slippage_bps) else row.slippage_bps
        by_size.setdefault(row.size, {})[row.side] = slippage
    return [ImpactRow(size, sides.get("buy"), sides.get("sell")) for size, sides in by_size.items()]


def render_liquidity(
    store: MarketStore,
    cache: DerivedCache,
    symbol: str | None,
    rendered: str | None,
    now: float | None = None,
) -> tuple[Any, str]:
    """The panel's children and a key of what they show (``no_update`` if unchanged); a
    notice instead while the book is not LIVE or the snapshot is stale."""
    snapshot = store.snapshot(symbol) if symbol else None
    sync_state = (
        derived.display_sync_state(snapshot, time.time() if now is None else now)
        if snapshot
        else None
    )
    key = f"{symbol}|{snapshot.seq if snapshot else None}|{sync_state}"
    if key == rendered:
        return dash.no_update, key
    if snapshot is None:
        text = f"Waiting for data for {symbol}." if symbol else "Choose a symbol."
        return html.Div(text, className="panel-notice"), key
    if sync_state != SyncState.LIVE:
        return create_liquidity_unavailable(sync_state, snapshot.book.resync_reason), key
    score = derived.liquidity_score(cache, snapshot)
    panel = create_liquidity_panel(
        score=score.score,
        spread_bps=score.spread_bps,
        imbalance=derived.imbalance(cache, snapshot),
        imbalance_band_bps=IMBALANCE_BAND_BPS,
        depth_bands=[
            DepthBand(band.band_bps, band.bid_quote, band.ask_quote)
            for band in derived.depth_within(cache, snapshot)
        ],
        impact=_impact_rows(derived.price_impact(cache, snapshot)),
        definitions=DEFINITIONS,
        quote_asset=snapshot.info.quote_asset,
    )
    return panel, key


def register(app: dash.Dash, store: MarketStore, cache: DerivedCache) -> None:
    """Wire the liquidity panel to the slow interval and the symbol."""

    @app.callback(
        Output(ids.LIQUIDITY_SCORE, "children"),
        Output(ids.LIQUIDITY_RENDERED, "data"),
        Input(ids.SLOW_INTERVAL, "n_intervals"),
        Input(ids.SYMBOL_DROPDOWN, "value"),
        State(ids.LIQUIDITY_RENDERED, "data"),
    )
    def update_liquidity(_n: int, symbol: str | None, rendered: str | None):
        return render_liquidity(store, cache, symbol, rendered)
