"""Status bar and symbol message: feed source and health, book sync, staleness."""

from __future__ import annotations

import time

import dash
from dash import Input, Output

from app import ids
from app.callbacks.symbol import trading_symbols
from components.status_bar import create_status_bar, status_items
from components.symbol_picker import (
    DEFAULT_SYMBOL,
    close_matches,
    create_unknown_symbol_message,
    create_waiting_message,
    symbol_from_path,
)
from services.store import MarketStore


def render_status(
    store: MarketStore, symbol: str | None, pathname: str | None, now: float
) -> tuple[list, object]:
    """The status badges and the message under the header (unknown symbol, waiting)."""
    status = store.status()
    snapshot = store.snapshot(symbol) if symbol else None
    owner_of = getattr(store, "owner", None)  # the Redis store over sharded workers
    items = status_items(
        source=status.source if status else None,
        recording_date=status.recording_date if status else "",
        connection_state=status.connection_state if status else "",
        reconnects=status.reconnects if status else 0,
        messages_per_s=status.messages_per_s if status else 0.0,
        event_lag_ms=status.event_lag_ms if status else None,
        sync_state=str(snapshot.book.sync_state) if snapshot else None,
        update_age_s=max(now - snapshot.published_at, 0.0) if snapshot else None,
        owner=owner_of(symbol) if owner_of is not None and snapshot else None,
    )
    requested = symbol_from_path(pathname) or DEFAULT_SYMBOL
    message: object = None
    if requested != symbol:
        known = trading_symbols(store)
        if requested not in known:
            message = create_unknown_symbol_message(requested, close_matches(requested, known))
    if message is None and symbol and snapshot is None:
        message = create_waiting_message(symbol)
    return create_status_bar(items), message


def register(app: dash.Dash, store: MarketStore) -> None:
    """Refresh the status bar on the fast interval."""

    @app.callback(
        Output(ids.STATUS_BAR, "children"),
        Output(ids.SYMBOL_MESSAGE, "children"),
        Input(ids.FAST_INTERVAL, "n_intervals"),
        Input(ids.SYMBOL_DROPDOWN, "value"),
        Input(ids.URL, "pathname"),
    )
    def update_status(_n: int, symbol: str | None, pathname: str | None):
        return render_status(store, symbol, pathname, time.time())
