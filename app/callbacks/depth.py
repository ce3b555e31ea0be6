"""Depth chart callback: cumulative book per side, Patch-updated while symbol and zoom stay."""

from __future__ import annotations

import time
from typing import Any

import dash
from dash import Input, Output, Patch, State, ctx

from app import ids
from app.callbacks import derived
from app.callbacks.derived import DerivedCache
from app.callbacks.flow_push import push_live
from components.depth_chart import (
    create_depth_figure,
    create_depth_unavailable,
    depth_overlays,
    depth_trace_data,
    zoom_range,
)
from components.theme import create_notice_figure
from services.market.views import SyncState
from services.store import MarketStore

DATA_EXTENT = 1.5
RECENTRE_SHARE = 0.5
PUSHED_REDRAW_TICKS = 10
"""While the page draws the book from the push stream, the server redraws a LIVE chart only
every this many ticks (it still checks the sync state on every tick)."""


def render_depth(
    store: MarketStore,
    cache: DerivedCache,
    symbol: str | None,
    zoom_pct: float,
    rendered: dict | None,
    now: float | None = None,
    pushed: bool = False,
) -> tuple[Any, dict]:
    """The depth figure (or a Patch of its data) and what is now on screen.

    ``rendered`` is ``{"key", "seq", "kind", "centre"}`` of the last output; an unchanged
    snapshot gives ``no_update``. A book that is not LIVE, or a snapshot older than a few seconds
    (``now`` defaults to the wall clock), gives a notice instead of a chart.
    Patches leave the x range alone (so a user's own zoom survives, ``uirevision``) until
    the mid has moved half the preset's half-width from the centre drawn, then re-centre.
    ``pushed``: the page draws a LIVE book from the ``book`` stream (``assets/push.js``), so a
    chart already on screen for this key is left alone; a book that is not LIVE still gets
    its notice at once.
    """
    key = f"{symbol}|{zoom_pct}"
    snapshot = store.snapshot(symbol) if symbol else None
    rendered = rendered or {}
    if snapshot is None:
        state = {"key": key, "seq": None, "kind": "waiting"}
        if rendered == state:
            return dash.no_update, rendered
        text = f"Waiting for data for {symbol}" if symbol else "Choose a symbol"
        return create_notice_figure(text, uirevision="waiting"), state
    view = snapshot.book
    sync_state = derived.display_sync_state(snapshot, time.time() if now is None else now)
    if sync_state != SyncState.LIVE:
        state = {"key": key, "seq": snapshot.seq, "kind": f"notice-{sync_state}"}
        if rendered.get("key") == key and rendered.get("kind") == state["kind"]:
            return dash.no_update, state
        return create_depth_unavailable(sync_state, view.resync_reason), state
    state = {"key": key, "seq": snapshot.seq, "kind": "chart"}
    if {k: rendered.get(k) for k in state} == state:
        return dash.no_update, rendered
    if pushed and rendered.get("key") == key and rendered.get("kind") == "chart":
        return dash.no_update, rendered
    summary = derived.book_summary(cache, snapshot)
    curve = derived.depth_curve(cache, snapshot, zoom_pct * DATA_EXTENT)
    info = snapshot.info
    sides = {
        "bid_prices": curve.bid_prices,
        "bid_cum_qty": curve.bid_cum_qty,
        "bid_cum_notional": curve.bid_cum_quote,
        "ask_prices": curve.ask_prices,
        "ask_cum_qty": curve.ask_cum_qty,
        "ask_cum_notional": curve.ask_cum_quote,
    }
    overlays = {
        "mid": summary.mid,
        "spread": summary.spread,
        "spread_bps": summary.spread_bps,
        "price_decimals": info.price_decimals,
    }
    if rendered.get("key") == key and rendered.get("kind") == "chart":
        patch = Patch()
        patch["data"] = depth_trace_data(**sides, price_decimals=info.price_decimals)
        for name, value in depth_overlays(**overlays).items():
            patch["layout"][name] = value
        centre = rendered.get("centre", summary.mid)
        if abs(summary.mid - centre) > RECENTRE_SHARE * summary.mid * zoom_pct / 100.0:
            patch["layout"]["xaxis"]["range"] = zoom_range(summary.mid, zoom_pct)
            centre = summary.mid
        return patch, {**state, "centre": centre}
    figure = create_depth_figure(
        **sides,
        **overlays,
        zoom_pct=zoom_pct,
        uirevision=key,
        base_asset=info.base_asset,
    )
    return figure, {**state, "centre": summary.mid}


def register(app: dash.Dash, store: MarketStore, cache: DerivedCache) -> None:
    """Wire the depth chart to the fast interval, the symbol and the zoom preset."""

    @app.callback(
        Output(ids.DEPTH_CHART, "figure"),
        Output(ids.DEPTH_RENDERED, "data"),
        Input(ids.FAST_INTERVAL, "n_intervals"),
        Input(ids.SYMBOL_DROPDOWN, "value"),
        Input(ids.DEPTH_ZOOM, "value"),
        Input(ids.PUSH_STATE, "data"),
        State(ids.DEPTH_RENDERED, "data"),
    )
    def update_depth(
        n: int | None, symbol: str | None, zoom_pct: float, push_state, rendered: dict | None
    ):
        pushed = (
            push_live(push_state)
            and bool(push_state.get("book"))
            and ctx.triggered_id == ids.FAST_INTERVAL
            and (n or 0) % PUSHED_REDRAW_TICKS != 0
        )
        return render_depth(store, cache, symbol, float(zoom_pct or 0.5), rendered, pushed=pushed)
