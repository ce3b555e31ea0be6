"""Large-trades CSV export of the selected symbol, with the user's tier thresholds."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import dash
from dash import Input, Output, State

from app import ids
from app.callbacks import derived
from app.callbacks.derived import DerivedCache
from components.large_trades_export import (
    LargeTradeRow,
    export_filename,
    large_trades_csv,
)
from components.trade_tape import parse_tiers
from services.store import MarketStore


def render_export(
    store: MarketStore, cache: DerivedCache, symbol: str | None, tiers_text: str | None
) -> dict | None:
    """The ``dcc.Download`` payload (CSV text, file name), or ``None`` without data."""
    snapshot = store.snapshot(symbol) if symbol else None
    if snapshot is None:
        return None
    result = derived.large_trades_of(cache, snapshot, parse_tiers(tiers_text))
    rows = [
        LargeTradeRow(
            time_ms=row.time_ms,
            trade_id=row.trade_id,
            price=row.price,
            qty=row.qty,
            side=1.0 if row.side == "buy" else -1.0,
            tier=row.tier + 1,
            threshold=row.threshold,
        )
        for row in result.rows
        if row.tier >= 0 and not math.isnan(row.threshold)
    ]
    return {
        "content": large_trades_csv(snapshot.symbol, rows),
        "filename": export_filename(snapshot.symbol, datetime.now(tz=UTC)),
        "type": "text/csv",
    }


def register(app: dash.Dash, store: MarketStore, cache: DerivedCache) -> None:
    """Send the CSV when the export button is clicked."""

    @app.callback(
        Output(ids.LARGE_TRADES_DOWNLOAD, "data"),
        Input(ids.LARGE_TRADES_EXPORT, "n_clicks"),
        State(ids.SYMBOL_DROPDOWN, "value"),
        State(ids.TAPE_TIERS, "value"),
        prevent_initial_call=True,
    )
    def export_large_trades(_clicks: int, symbol: str | None, tiers_text: str | None):
        return render_export(store, cache, symbol, tiers_text) or dash.no_update
