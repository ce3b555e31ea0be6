"""Status bar and symbol message: feed source and health, book sync, staleness."""

from __future__ import annotations

import time

import dash
from dash import Input, Output, ctx

from app import ids
from app.callbacks.symbol import trading_symbols
from components.status_bar import UNAVAILABLE, StatusItem, create_status_bar, status_items
from components.symbol_picker import (
    DEFAULT_SYMBOL,
    close_matches,
    create_unavailable_message,
    create_unknown_symbol_message,
    create_waiting_message,
    symbol_from_path,
)
from services.store import MarketStore, SymbolSnapshot, unavailable


def symbol_status(store: MarketStore, symbol: str | None, now: float) -> list[StatusItem]:
    """The status badges of the feed and of ``symbol``'s latest snapshot at wall time
    ``now`` (the polled bar and the pushed ``status`` stream show the same)."""
    return snapshot_status(store, symbol, store.snapshot(symbol) if symbol else None, now)


def book_state(
    store: MarketStore, symbol: str | None, snapshot: SymbolSnapshot | None
) -> str | None:
    """The book badge's state: the snapshot's sync state, ``UNAVAILABLE`` while the store
    cannot read the symbol (a Redis failover), None before any data."""
    if snapshot is not None:
        return str(snapshot.book.sync_state)
    if symbol and unavailable(store, symbol) is not None:
        return UNAVAILABLE
    return None


def snapshot_status(
    store: MarketStore, symbol: str | None, snapshot: SymbolSnapshot | None, now: float
) -> list[StatusItem]:
    """``symbol_status`` with ``symbol``'s snapshot already read (one read per message)."""
    status = store.status()
    owner_of = getattr(store, "owner", None)  # the Redis store over sharded workers
    return status_items(
        source=status.source if status else None,
        recording_date=status.recording_date if status else "",
        connection_state=status.connection_state if status else "",
        reconnects=status.reconnects if status else 0,
        messages_per_s=status.messages_per_s if status else 0.0,
        event_lag_ms=status.event_lag_ms if status else None,
        sync_state=book_state(store, symbol, snapshot),
        update_age_s=max(now - snapshot.published_at, 0.0) if snapshot else None,
        owner=owner_of(symbol) if owner_of is not None and snapshot else None,
    )


def symbol_message(
    store: MarketStore,
    symbol: str | None,
    pathname: str | None,
    snapshot: SymbolSnapshot | None = None,
) -> object:
    """The message under the header: an unknown symbol asked for, waiting for data, or the
    store unable to read it now (a Redis failover: unavailable, never unknown or absent).
    ``snapshot``: ``symbol``'s snapshot when the caller has read it already."""
    requested = symbol_from_path(pathname) or DEFAULT_SYMBOL
    if requested != symbol:
        known = trading_symbols(store)
        if requested not in known:
            if (reason := unavailable(store)) is not None:
                return create_unavailable_message(requested, reason)
            return create_unknown_symbol_message(requested, close_matches(requested, known))
    if symbol and snapshot is None and store.snapshot(symbol) is None:
        if (reason := unavailable(store, symbol)) is not None:
            return create_unavailable_message(symbol, reason)
        return create_waiting_message(symbol)
    return None


def render_status(
    store: MarketStore, symbol: str | None, pathname: str | None, now: float
) -> tuple[list, object]:
    """The status badges and the message under the header (unknown symbol, waiting), from
    one read of ``symbol``'s snapshot."""
    snapshot = store.snapshot(symbol) if symbol else None
    bar = create_status_bar(snapshot_status(store, symbol, snapshot, now))
    return bar, symbol_message(store, symbol, pathname, snapshot)


def status_pushed(push_state: dict | None) -> bool:
    """Whether the page paints the status bar from the ``status`` stream now."""
    return bool(push_state) and bool(push_state.get("status"))  # type: ignore[union-attr]


def register(app: dash.Dash, store: MarketStore) -> None:
    """Refresh the status bar on the fast interval — unless the page paints it from the
    ``status`` stream (``assets/push.js``): then a tick only refreshes the message."""

    @app.callback(
        Output(ids.STATUS_BAR, "children"),
        Output(ids.SYMBOL_MESSAGE, "children"),
        Input(ids.FAST_INTERVAL, "n_intervals"),
        Input(ids.SYMBOL_DROPDOWN, "value"),
        Input(ids.URL, "pathname"),
        Input(ids.PUSH_STATE, "data"),
    )
    def update_status(_n: int, symbol: str | None, pathname: str | None, push_state):
        if status_pushed(push_state) and ctx.triggered_id != ids.SYMBOL_DROPDOWN:
            return dash.no_update, symbol_message(store, symbol, pathname)
        return render_status(store, symbol, pathname, time.time())
