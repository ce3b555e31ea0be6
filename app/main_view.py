"""The main chart panel: a view dropdown (heatmap, footprint, depth) and the heatmap and
footprint charts with their controls; the view callbacks show one of them."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from app import ids
from components.footprint import INTERVALS, MODES, ROW_TICK_CHOICES
from components.heatmap import BAND_PRESETS_PCT, DEFAULT_CUTOFF_PCT, TIME_RANGES_MS
from components.panel import create_graph, create_panel, create_radio
from services.analytics.definitions import DEFINITIONS

VIEW_LABELS = {"heatmap": "Heatmap", "footprint": "Footprint", "depth": "Depth only"}
HEATMAP_DEFINITION = DEFINITIONS["liquidity_heatmap"]
FOOTPRINT_DEFINITION = " ".join(
    DEFINITIONS[key] for key in ("footprint", "diagonal_imbalance", "naked_poc")
)


def _dropdown(dropdown_id: str, options: list[dict], value: object, width: str) -> dcc.Dropdown:
    return dcc.Dropdown(
        id=dropdown_id,
        options=options,
        value=value,
        clearable=False,
        searchable=False,
        className="bucket-dropdown",
        style={"width": width},
    )


def create_main_panel() -> dbc.Card:
    """The panel holding the heatmap and the footprint (one shown at a time)."""
    heatmap_controls = html.Div(
        [
            create_radio(
                ids.HEATMAP_RANGE, [{"label": r, "value": r} for r in TIME_RANGES_MS], "5m"
            ),
            _dropdown(
                ids.HEATMAP_BAND,
                [{"label": f"±{b:g}%", "value": b} for b in BAND_PRESETS_PCT],
                0.5,
                "80px",
            ),
            create_radio(
                ids.HEATMAP_UNIT,
                [{"label": "size", "value": "base"}, {"label": "notional", "value": "quote"}],
                "base",
            ),
            html.Div(
                dcc.RangeSlider(
                    id=ids.HEATMAP_CUTOFF,
                    min=0,
                    max=100,
                    step=1,
                    value=list(DEFAULT_CUTOFF_PCT),
                    marks=None,
                    tooltip={"placement": "bottom", "always_visible": False},
                ),
                className="cutoff-slider",
                title="Intensity cut-offs, % of the largest size in view",
            ),
        ],
        id=ids.HEATMAP_CONTROLS,
        className="panel-controls",
    )
    footprint_controls = html.Div(
        [
            create_radio(
                ids.FOOTPRINT_INTERVAL, [{"label": i, "value": i} for i in INTERVALS], "1m"
            ),
            _dropdown(
                ids.FOOTPRINT_ROWS,
                [{"label": "auto rows", "value": "auto"}]
                + [{"label": f"{t} ticks", "value": t} for t in ROW_TICK_CHOICES],
                "auto",
                "110px",
            ),
            _dropdown(
                ids.FOOTPRINT_MODE,
                [{"label": label, "value": mode} for mode, label in MODES.items()],
                "bidask",
                "150px",
            ),
            html.Span(
                dcc.Input(
                    id=ids.FOOTPRINT_RATIO,
                    value="300%",
                    debounce=True,
                    size="5",
                    className="tiers-input",
                ),
                title="Diagonal imbalance ratio (300 % = 3:1)",
            ),
        ],
        id=ids.FOOTPRINT_CONTROLS,
        className="panel-controls",
        style={"display": "none"},
    )
    body = html.Div(
        [
            html.Div(
                [
                    create_graph(ids.HEATMAP_CHART, style={"height": "100%"}),
                    dcc.Store(id=ids.HEATMAP_LAYER),
                    dcc.Store(id=ids.HEATMAP_REDRAW),
                ],
                id=ids.HEATMAP_BOX,
                className="main-box",
            ),
            html.Div(
                create_graph(ids.FOOTPRINT_CHART, style={"height": "100%"}),
                id=ids.FOOTPRINT_BOX,
                className="main-box",
                style={"display": "none"},
            ),
        ]
    )
    return create_panel(
        "Order flow",
        body,
        html.Div(
            [
                _dropdown(
                    ids.VIEW_DROPDOWN,
                    [{"label": label, "value": view} for view, label in VIEW_LABELS.items()],
                    None,
                    "120px",
                ),
                heatmap_controls,
                footprint_controls,
            ],
            className="panel-controls",
        ),
        panel_id="main-panel",
        definition=f"{HEATMAP_DEFINITION} {FOOTPRINT_DEFINITION}",
        badge_id=ids.MAIN_FILTER_BADGE,
    )
