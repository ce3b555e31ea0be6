"""The page driven by the push streams (``assets/push.js``).

While the symbol's streams are open the browser paints the tape from the ``trades`` stream
straight into ``#pushed-tape`` (no server round trip, no React render; the body's
``push-live`` class shows it instead of the polled ``#trade-tape``), redraws the depth
traces from the ``book`` stream and shows best bid/ask and sync state from the ``prices``
stream in the push badge, and goes on computing the flow panel (bars, direction, CVD) from
streamed trades after a seed from the server (``app.callbacks.flow_push``); the tape's
polling interval is then off, the fast interval slows to ``PUSHED_REFRESH_MS`` (the
heatmap, the footprint; the depth chart's ticks only check the book's sync state) and the
slow one to ``PUSHED_SLOW_REFRESH_MS`` (volume profile, liquidity, watchlist): the other
panels' redraws are what delays the tape's paint on the page's one main thread. When long
tasks still take more than 15 % of that thread (a busy machine) the script stretches both
pushed intervals ×2 (``stretch`` in the push state) until they are back under 5 %; the
pushed charts space their own redraws by their cost and wait while off screen. While the
``status`` stream is fresh the status bar is painted from it into ``#pushed-status`` and
the server stops rendering it. When a socket drops the badge
says so and polling comes back at the normal rate until the socket is open again (it
reconnects by itself, resuming trades with ``from_id``).

``?push=off`` in the page's URL keeps the page on polling (the latency benchmark compares
both on one server).
"""

from __future__ import annotations

import dash
from dash import ClientsideFunction, Input, Output, State, dcc

from app import ids
from app.callbacks import flow_push
from components.trade_tape import TAPE_ROWS
from services.store import MarketStore

PUSHED_REFRESH_MS = 3000
PUSHED_SLOW_REFRESH_MS = 4000


def create_push_stores(refresh_ms: int) -> list:
    """The tape's own polling interval and the stores the push script reads and writes."""
    return [
        dcc.Interval(id=ids.TAPE_INTERVAL, interval=refresh_ms),
        dcc.Store(id=ids.PUSH_CONFIG),
        dcc.Store(id=ids.PUSH_STATE, data={"state": "off", "refresh_ms": refresh_ms}),
        dcc.Store(id=ids.FLOW_SEED),
        dcc.Store(id=ids.FLOW_PUSH),
    ]


def push_config(
    store: MarketStore, symbol: str | None, refresh_ms: int, slow_refresh_ms: int = 2000
) -> dict | None:
    """What the script needs to open and paint a symbol's streams (None: no symbol);
    ``from_id``: the newest trade of the symbol's snapshot now, the trades stream starts
    after it (so the flow panel's seed, from this snapshot or a newer one, misses none)."""
    if not symbol:
        return None
    snapshot = store.snapshot(symbol)
    info = snapshot.info if snapshot is not None else None
    if info is None:
        info = next((i for i in store.symbols() if i.symbol == symbol), None)
    trades = snapshot.trades if snapshot is not None else None
    return {
        "symbol": symbol,
        "from_id": int(trades.trade_id[-1]) if trades is not None and len(trades) else None,
        "price_decimals": info.price_decimals if info else 2,
        "qty_decimals": info.qty_decimals if info else 5,
        "quote_asset": info.quote_asset if info else "",
        "rows": TAPE_ROWS,
        "refresh_ms": refresh_ms,
        "pushed_refresh_ms": max(PUSHED_REFRESH_MS, refresh_ms),
        "slow_refresh_ms": slow_refresh_ms,
        "pushed_slow_refresh_ms": max(PUSHED_SLOW_REFRESH_MS, slow_refresh_ms),
    }


def register(
    app: dash.Dash, store: MarketStore, refresh_ms: int, enabled: bool, slow_refresh_ms: int = 2000
) -> None:
    """The symbol's push configuration (server; None keeps the page polling when the push
    streams are not ``enabled``) and the clientside wiring."""

    @app.callback(Output(ids.PUSH_CONFIG, "data"), Input(ids.SYMBOL_DROPDOWN, "value"))
    def update_push_config(symbol: str | None) -> dict | None:
        return push_config(store, symbol, refresh_ms, slow_refresh_ms) if enabled else None

    app.clientside_callback(
        ClientsideFunction("tapescope", "connect"),
        Output(ids.PUSH_BADGE, "title"),
        Input(ids.PUSH_CONFIG, "data"),
        State(ids.URL, "search"),
    )
    app.clientside_callback(
        ClientsideFunction("tapescope", "pollingFor"),
        Output(ids.TAPE_INTERVAL, "disabled"),
        Output(ids.FAST_INTERVAL, "interval"),
        Output(ids.SLOW_INTERVAL, "interval"),
        Output(ids.PUSH_BADGE, "className"),
        Input(ids.PUSH_STATE, "data"),
    )
    flow_push.register(app)
