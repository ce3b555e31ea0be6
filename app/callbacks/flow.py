"""Flow meter callback: buy vs sell aggressor notional over a window, and CVD (with a
perpetual twin: the spot and perpetual CVD lines on one chart)."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, Patch, State, ctx

from app import ids
from app.callbacks import derived
from app.callbacks.derived import DerivedCache
from app.callbacks.flow_push import flow_seed, push_live, skip_render
from components.flow_filter import notional_band
from components.flow_meter import create_flow_figure
from components.theme import create_notice_figure
from services.analytics.flow import cvd
from services.analytics.flow_filter import FlowFilter, filter_trades
from services.analytics.spot_perp import SpotPerpCvd, spot_perp_cvd
from services.analytics.window import WINDOWS_MS
from services.market.perp_twin import PerpTwin
from services.store import MarketStore, SymbolSnapshot


def render_flow(
    store: MarketStore,
    cache: DerivedCache,
    symbol: str | None,
    window: str,
    rendered: dict | None,
    filter_min: str | None = None,
    filter_max: str | None = None,
    twin: PerpTwin | None = None,
    seed: bool = False,
) -> tuple[Any, dict]:
    """The flow figure (or a Patch of its data) and what is now on screen; the CVD line
    counts only trades within the flow filter's notional band. With ``twin``, the symbol's
    USD-M perpetual is requested and, once it has trades, spot and perpetual CVD are drawn
    from their common anchor (same filter). With ``seed`` (the page's push is live) what is
    on screen carries the seed the page goes on from (``app.callbacks.flow_push``) under
    ``seed``, for the caller to hand over apart."""
    low, high = notional_band(filter_min, filter_max)
    key = f"{symbol}|{window}|{low}|{high}"
    snapshot = store.snapshot(symbol) if symbol else None
    rendered = rendered or {}
    perp = None
    if twin is not None and symbol:
        twin.request(symbol)
        perp = twin.snapshot(symbol)
    state: dict[str, Any] = {"key": key, "seq": snapshot.seq if snapshot else None}
    if perp is not None:
        state["perp_seq"] = perp.seq
    unchanged = all(rendered.get(k) == v for k, v in state.items())
    if unchanged and (not seed or rendered.get("seeded") or snapshot is None):
        return dash.no_update, rendered
    if snapshot is None:
        text = f"Waiting for data for {symbol}" if symbol else "Choose a symbol"
        return create_notice_figure(text, uirevision="waiting"), state
    window_ms = WINDOWS_MS.get(window, WINDOWS_MS["1m"])
    flow = derived.trade_flow(cache, snapshot, window_ms)
    pair = _spot_perp(cache, snapshot, perp, low, high)
    if pair is not None:
        series = pair.spot
    elif low is None and high is None:
        series = derived.cvd(cache, snapshot)
    else:
        trades = derived.filtered_trades(cache, snapshot, low, high)
        series = cvd(trades, max_points=derived.CVD_MAX_POINTS, unit="quote")
    figure = create_flow_figure(
        buy_volume=flow.buy_quote,
        sell_volume=flow.sell_quote,
        window_label=window,
        direction=flow.direction,
        cvd_time_ms=series.time_ms,
        cvd_values=series.cvd,
        uirevision=key,
        unit=snapshot.info.quote_asset,
        perp_cvd=(pair.perp.time_ms, pair.perp.cvd) if pair is not None else None,
    )
    if seed:
        state["seeded"] = True
        state["seed"] = flow_seed(snapshot, window_ms, window, series.final, (low, high))
        state["seed"].update(key=key, seq=snapshot.seq)
    if rendered.get("key") == key and rendered.get("seq") is not None:
        patch = Patch()
        patch["data"] = figure["data"]
        patch["layout"]["title"] = figure["layout"]["title"]
        patch["layout"]["showlegend"] = figure["layout"].get("showlegend", False)
        if "legend" in figure["layout"]:  # the twin's line appeared
            patch["layout"]["legend"] = figure["layout"]["legend"]
        return patch, state
    return figure, state


def _spot_perp(
    cache: DerivedCache,
    spot: SymbolSnapshot,
    perp: SymbolSnapshot | None,
    low: float | None,
    high: float | None,
) -> SpotPerpCvd | None:
    """Spot and perpetual CVD (quote) of the filtered trades, None without the twin's trades."""
    if perp is None:
        return None
    return spot_perp_cvd(
        derived.filtered_trades(cache, spot, low, high),
        filter_trades(perp.trades, FlowFilter(low, high)),
        max_points=derived.CVD_MAX_POINTS,
        unit="quote",
    )


def register(
    app: dash.Dash, store: MarketStore, cache: DerivedCache, twin: PerpTwin | None = None
) -> None:
    """Wire the flow meter to the fast interval, the symbol and the window choice (with
    ``twin``: the perpetual's CVD beside the spot one)."""

    @app.callback(
        Output(ids.FLOW_METER, "figure"),
        Output(ids.FLOW_RENDERED, "data"),
        Output(ids.FLOW_SEED, "data"),
        Input(ids.FAST_INTERVAL, "n_intervals"),
        Input(ids.SYMBOL_DROPDOWN, "value"),
        Input(ids.FLOW_WINDOW, "value"),
        Input(ids.FLOW_FILTER_MIN, "value"),
        Input(ids.FLOW_FILTER_MAX, "value"),
        Input(ids.PUSH_STATE, "data"),
        State(ids.FLOW_RENDERED, "data"),
    )
    def update_flow(n, symbol, window, filter_min, filter_max, push_state, rendered):
        # the page paints spot CVD from the stream; the perpetual's line is the server's
        with_perp = bool(rendered and "perp_seq" in rendered)
        tick = ctx.triggered_id == ids.FAST_INTERVAL
        if not with_perp and skip_render(push_state, tick, n, rendered):
            return dash.no_update, dash.no_update, dash.no_update  # the page paints it
        figure, state = render_flow(
            store, cache, symbol, window or "1m", rendered, filter_min, filter_max, twin,
            seed=push_live(push_state) and not with_perp,
        )  # fmt: skip
        return figure, state, state.pop("seed", dash.no_update)
