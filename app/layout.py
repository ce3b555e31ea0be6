"""Page layout: header, the five panels and their controls, intervals and render keys."""

from __future__ import annotations

from collections.abc import Callable

import dash_bootstrap_components as dbc
from dash import dcc, html

from app import ids
from app.callbacks.push import create_push_stores
from app.callbacks.symbol import symbols_key, trading_symbols
from app.main_view import create_main_panel
from components.depth_chart import ZOOM_PRESETS_PCT
from components.flow_filter import create_flow_filter_control
from components.flow_meter import FLOW_WINDOWS
from components.header import create_header
from components.large_trades_export import create_export_controls
from components.panel import create_graph, create_panel, create_radio
from components.symbol_picker import create_symbol_picker
from components.volume_profile import BUCKET_TICKS_CHOICES
from components.watchlist import create_watchlist, create_watchlist_toggle
from services.analytics.definitions import DEFINITIONS
from services.store import MarketStore


def create_body() -> html.Div:
    """The panels: the main chart (heatmap or footprint), depth and tape on top; flow,
    profile and liquidity below."""
    depth = create_panel(
        "Depth",
        create_graph(ids.DEPTH_CHART, "graph-depth"),
        create_radio(
            ids.DEPTH_ZOOM,
            [{"label": f"±{pct:g}%", "value": pct} for pct in ZOOM_PRESETS_PCT],
            0.5,
        ),
        panel_id="depth-panel",
        definition=DEFINITIONS["depth_curve"],
    )
    tape = create_panel(
        "Trade tape",
        html.Div(
            [
                html.Div(id=ids.TRADE_TAPE, className="tape-container"),
                html.Div(id=ids.PUSHED_TAPE, className="tape-container"),
            ]
        ),
        dcc.Input(
            id=ids.TAPE_TIERS,
            value="100k, 250k, 1M",
            debounce=True,
            size="14",
            className="tiers-input",
            placeholder="tiers: 100k, 250k, 1M",
        ),
        panel_id="tape-panel",
        definition=f"{DEFINITIONS['time_and_sales']} {DEFINITIONS['large_trades']}",
        badge_id=ids.TAPE_FILTER_BADGE,
    )
    flow = create_panel(
        "Aggressor flow & CVD",
        create_graph(ids.FLOW_METER, "graph-flow"),
        create_radio(ids.FLOW_WINDOW, [{"label": w, "value": w} for w in FLOW_WINDOWS], "1m"),
        panel_id="flow-panel",
        definition=f"{DEFINITIONS['direction']} {DEFINITIONS['cvd']}",
        badge_id=ids.FLOW_FILTER_BADGE,
    )
    profile = create_panel(
        "Volume profile",
        create_graph(ids.VOLUME_PROFILE, "graph-profile"),
        dcc.Dropdown(
            id=ids.PROFILE_BUCKET,
            options=[{"label": "auto rows", "value": "auto"}]
            + [{"label": f"{t} ticks", "value": t} for t in BUCKET_TICKS_CHOICES],
            value="auto",
            clearable=False,
            searchable=False,
            className="bucket-dropdown",
        ),
        panel_id="profile-panel",
        definition=f"{DEFINITIONS['point_of_control']} {DEFINITIONS['value_area']}",
    )
    liquidity = create_panel(
        "Liquidity",
        html.Div(id=ids.LIQUIDITY_SCORE),
        panel_id="liquidity-panel",
        definition=DEFINITIONS["liquidity_score"],
    )
    return html.Div(
        [
            dbc.Row(
                [
                    dbc.Col(create_main_panel(), id=ids.MAIN_COL, lg=6, className="col-panel"),
                    dbc.Col(depth, id=ids.DEPTH_COL, lg=3, className="col-panel"),
                    dbc.Col(tape, id=ids.TAPE_COL, lg=3, className="col-panel"),
                ]
            ),
            dbc.Row(
                [
                    dbc.Col(flow, lg=4, className="col-panel"),
                    dbc.Col(profile, lg=4, className="col-panel"),
                    dbc.Col(liquidity, lg=4, className="col-panel"),
                ]
            ),
        ],
        className="app-body",
    )


def create_layout(
    store: MarketStore, refresh_ms: int, slow_refresh_ms: int
) -> Callable[[], html.Div]:
    """A layout function (evaluated per page load, so the symbol list is current)."""

    def layout() -> html.Div:
        symbols = trading_symbols(store)
        return html.Div(
            [
                dcc.Store(id=ids.SYMBOL_OPTIONS_KEY, data=symbols_key(symbols)),
                dcc.Location(id=ids.URL, refresh="callback-nav"),
                dcc.Interval(id=ids.FAST_INTERVAL, interval=refresh_ms),
                dcc.Interval(id=ids.SLOW_INTERVAL, interval=slow_refresh_ms),
                *create_push_stores(refresh_ms),
                dcc.Store(id=ids.DEPTH_RENDERED),
                dcc.Store(id=ids.TAPE_RENDERED),
                dcc.Store(id=ids.FLOW_RENDERED),
                dcc.Store(id=ids.PROFILE_RENDERED),
                dcc.Store(id=ids.LIQUIDITY_RENDERED),
                dcc.Store(id=ids.HEATMAP_RENDERED),
                dcc.Store(id=ids.FOOTPRINT_RENDERED),
                dcc.Store(id=ids.WATCHLIST_FAVOURITES, storage_type="local", data=[]),
                dcc.Store(id=ids.WATCHLIST_SEEN),
                create_watchlist(
                    ids.WATCHLIST_PANEL,
                    ids.WATCHLIST,
                    ids.WATCHLIST_TEXT,
                    ids.WATCHLIST_QUOTE,
                    ids.WATCHLIST_FAVOURITES_ONLY,
                    [info.quote_asset for info in store.symbols()],
                ),
                create_header(
                    html.Div(
                        [
                            create_watchlist_toggle(ids.WATCHLIST_TOGGLE),
                            create_symbol_picker(symbols, None, ids.SYMBOL_DROPDOWN),
                        ],
                        className="header-picker",
                    ),
                    ids.STATUS_BAR,
                    html.Div(
                        [
                            create_flow_filter_control(ids.FLOW_FILTER_MIN, ids.FLOW_FILTER_MAX),
                            create_export_controls(
                                ids.LARGE_TRADES_EXPORT, ids.LARGE_TRADES_DOWNLOAD
                            ),
                        ],
                        className="header-tools",
                    ),
                    ids.PUSHED_STATUS,
                ),
                html.Div(id=ids.PUSH_BADGE, className="push-badge"),
                html.Div(id=ids.SYMBOL_MESSAGE),
                create_body(),
            ],
            className="app",
        )

    return layout
