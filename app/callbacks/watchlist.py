"""Watchlist wiring: the grid follows the market board (row transactions between filter
changes), the header button opens the side panel, a click on a row shows that symbol in the
main views, a click on its star keeps it as a favourite in the browser (local storage)."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, ctx

from app import ids
from components.watchlist import (
    ALL_QUOTES,
    WatchlistFilter,
    toggle_favourite,
    watchlist_update,
)
from services.store import MarketStore


def clicked_symbol(cell: dict[str, Any] | None) -> tuple[str | None, bool]:
    """(symbol, star clicked) of a grid ``cellClicked`` event; (None, False) without one."""
    if not cell or not isinstance(cell.get("rowId"), str):
        return None, False
    return cell["rowId"], cell.get("colId") == "favourite"


def register(app: dash.Dash, store: MarketStore) -> None:
    """Callbacks of the watchlist panel."""

    @app.callback(
        Output(ids.WATCHLIST_PANEL, "is_open"),
        Input(ids.WATCHLIST_TOGGLE, "n_clicks"),
        State(ids.WATCHLIST_PANEL, "is_open"),
        prevent_initial_call=True,
    )
    def toggle_panel(_clicks: int, is_open: bool) -> bool:
        return not is_open

    @app.callback(
        Output(ids.WATCHLIST, "rowData"),
        Output(ids.WATCHLIST, "rowTransaction"),
        Output(ids.WATCHLIST_SEEN, "data"),
        Input(ids.SLOW_INTERVAL, "n_intervals"),
        Input(ids.WATCHLIST_PANEL, "is_open"),
        Input(ids.WATCHLIST_TEXT, "value"),
        Input(ids.WATCHLIST_QUOTE, "value"),
        Input(ids.WATCHLIST_FAVOURITES_ONLY, "value"),
        Input(ids.WATCHLIST_FAVOURITES, "data"),
        State(ids.WATCHLIST_SEEN, "data"),
    )
    def refresh(_n, is_open, text, quote, favourites_only, favourites, seen):
        if not is_open:
            return dash.no_update, dash.no_update, None
        view = WatchlistFilter(text or "", quote or ALL_QUOTES, bool(favourites_only))
        decimals = {info.symbol: info.price_decimals for info in store.symbols()}
        full = ctx.triggered_id != ids.SLOW_INTERVAL
        update = watchlist_update(
            store.watchlist(), view, set(favourites or ()), decimals, seen, full
        )
        return (
            dash.no_update if update.row_data is None else update.row_data,
            dash.no_update if update.transaction is None else update.transaction,
            update.seen,
        )

    @app.callback(
        Output(ids.URL, "pathname", allow_duplicate=True),
        Output(ids.WATCHLIST_FAVOURITES, "data"),
        Input(ids.WATCHLIST, "cellClicked"),
        State(ids.WATCHLIST_FAVOURITES, "data"),
        prevent_initial_call=True,
    )
    def click(cell, favourites):
        symbol, star = clicked_symbol(cell)
        if symbol is None:
            return dash.no_update, dash.no_update
        if star:
            return dash.no_update, toggle_favourite(favourites, symbol)
        return f"/{symbol}", dash.no_update
