"""Symbol selection: the URL path and the dropdown name the same symbol.

``/ETHUSDT`` selects ETHUSDT; choosing in the dropdown rewrites the path, so the address can
be shared. A symbol the feed does not stream yet is requested from it, and the shown symbol
is asked for again while the page stays on it (``WatchKeeper``), so the feed keeps it
watched: a full-speed, deepened book for as long as someone looks.
"""

from __future__ import annotations

import zlib

import dash
from dash import Input, Output, State, ctx

from app import ids
from components.symbol_picker import DEFAULT_SYMBOL, symbol_from_path
from services.store import MarketStore
from services.watch_keeper import WatchKeeper


def trading_symbols(store: MarketStore) -> list[str]:
    """Every TRADING symbol the store knows, sorted; the streamed ones if it knows none."""
    symbols = [info.symbol for info in store.symbols() if info.status == "TRADING"]
    if not symbols:
        symbols = [s for s in (DEFAULT_SYMBOL,) if store.snapshot(s) is not None]
    return sorted(symbols)


def symbols_key(symbols: list[str]) -> int:
    """A stable checksum of a symbol list (the same in every worker process)."""
    return zlib.crc32(",".join(symbols).encode())


def refresh_options(store: MarketStore, shown_key: int | None) -> tuple[object, object]:
    """New dropdown options and their key when the tradable symbols changed."""
    symbols = trading_symbols(store)
    key = symbols_key(symbols)
    if key == shown_key:
        return dash.no_update, dash.no_update
    return [{"label": s, "value": s} for s in symbols], key


def select_symbol(
    store: MarketStore, pathname: str | None, value: str | None, trigger: str | None
) -> tuple[object, object]:
    """(new pathname, new dropdown value); ``no_update`` where nothing changes.

    A dropdown choice of a known symbol wins when it triggered (a forged value is ignored);
    otherwise the URL decides, the root meaning BTCUSDT. An unknown symbol in the URL leaves
    the dropdown empty (the status callback explains). The shown symbol is requested from
    the feed: streamed on demand when it has no data yet, its book deepened when it has.
    """
    known = set(trading_symbols(store))
    if trigger == ids.SYMBOL_DROPDOWN and value in known:
        symbol = value
        new_path: object = f"/{symbol}" if symbol_from_path(pathname) != symbol else dash.no_update
        new_value: object = dash.no_update
    else:
        symbol = symbol_from_path(pathname) or DEFAULT_SYMBOL
        new_path = dash.no_update
        new_value = symbol if symbol in known else None
        if new_value == value:
            new_value = dash.no_update
    if symbol in known:
        store.request_symbol(symbol)
    return new_path, new_value


def still_shown(store: MarketStore, keeper: WatchKeeper, pathname: str | None) -> None:
    """The page still shows the symbol of ``pathname`` (the root: BTCUSDT): hand a known
    one to ``keeper``."""
    shown = symbol_from_path(pathname) or DEFAULT_SYMBOL
    if shown in trading_symbols(store):
        keeper.still_watching((shown,))


def register(app: dash.Dash, store: MarketStore, keeper: WatchKeeper | None = None) -> None:
    """Keep the URL and the dropdown in step, the options in step with the exchange, and
    the shown symbol asked for while it is shown."""
    keeper = keeper or WatchKeeper(store)

    @app.callback(
        Output(ids.URL, "pathname"),
        Output(ids.SYMBOL_DROPDOWN, "value"),
        Input(ids.URL, "pathname"),
        Input(ids.SYMBOL_DROPDOWN, "value"),
    )
    def sync_symbol(pathname: str | None, value: str | None):
        # a navigation (an event or watchlist click) racing the dropdown's echo wins
        url_changed = f"{ids.URL}.pathname" in ctx.triggered_prop_ids
        return select_symbol(store, pathname, value, ids.URL if url_changed else ctx.triggered_id)

    @app.callback(
        Output(ids.SYMBOL_DROPDOWN, "options"),
        Output(ids.SYMBOL_OPTIONS_KEY, "data"),
        Input(ids.SLOW_INTERVAL, "n_intervals"),
        State(ids.SYMBOL_OPTIONS_KEY, "data"),
        prevent_initial_call=True,
    )
    def update_options(_n: int, shown_key: int | None):
        return refresh_options(store, shown_key)

    @app.callback(
        Input(ids.SLOW_INTERVAL, "n_intervals"),
        State(ids.URL, "pathname"),
        prevent_initial_call=True,
    )
    def keep_watching(_n: int, pathname: str | None) -> None:
        still_shown(store, keeper, pathname)
