"""Main-view selection: ``?view=heatmap|footprint|depth`` in the URL and the view dropdown name
the same view; the layout follows (the main chart beside depth and tape, or the depth chart
large), and the flow filter's badge appears in the panel headers while it is active."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

import dash
from dash import Input, Output, ctx

from app import ids
from components.flow_filter import filter_badge, notional_band
from services.analytics.flow_filter import FlowFilter

VIEWS: tuple[str, ...] = ("heatmap", "footprint", "depth")
DEFAULT_VIEW = "heatmap"
HIDDEN = {"display": "none"}
SHOWN: dict = {}


def view_from_search(search: str | None) -> str | None:
    """The ``view`` query parameter if it names a view, else None."""
    values = parse_qs((search or "").lstrip("?")).get("view", [])
    return values[0] if values and values[0] in VIEWS else None


def select_view(
    search: str | None, value: str | None, trigger: str | None
) -> tuple[object, object]:
    """(new URL search, new dropdown value); ``no_update`` where nothing changes. A dropdown
    choice rewrites ``?view=``; otherwise the URL decides (no or an unknown view: the
    default)."""
    if trigger == ids.VIEW_DROPDOWN and value in VIEWS:
        query = parse_qs((search or "").lstrip("?"))
        if query.get("view", [None])[0] == value:
            return dash.no_update, dash.no_update
        query["view"] = [value]
        return "?" + urlencode(query, doseq=True), dash.no_update
    view = view_from_search(search) or DEFAULT_VIEW
    return dash.no_update, (view if view != value else dash.no_update)


def arrangement(view: str | None) -> dict[str, object]:
    """Column widths (lg) and which boxes and controls show for a view."""
    main = view in ("heatmap", "footprint")
    return {
        "main_style": SHOWN if main else HIDDEN,
        "depth_lg": 3 if main else 8,
        "tape_lg": 3 if main else 4,
        "heatmap": SHOWN if view == "heatmap" else HIDDEN,
        "footprint": SHOWN if view == "footprint" else HIDDEN,
    }


def register(app: dash.Dash) -> None:
    """Keep the URL's ``view`` and the dropdown in step, and arrange the panels."""

    @app.callback(
        Output(ids.URL, "search"),
        Output(ids.VIEW_DROPDOWN, "value"),
        Input(ids.URL, "search"),
        Input(ids.VIEW_DROPDOWN, "value"),
    )
    def sync_view(search: str | None, value: str | None):
        return select_view(search, value, ctx.triggered_id)

    @app.callback(
        Output(ids.MAIN_COL, "style"),
        Output(ids.DEPTH_COL, "lg"),
        Output(ids.TAPE_COL, "lg"),
        Output(ids.HEATMAP_BOX, "style"),
        Output(ids.HEATMAP_CONTROLS, "style"),
        Output(ids.FOOTPRINT_BOX, "style"),
        Output(ids.FOOTPRINT_CONTROLS, "style"),
        Input(ids.VIEW_DROPDOWN, "value"),
    )
    def arrange(view: str | None):
        a = arrangement(view)
        return (
            a["main_style"], a["depth_lg"], a["tape_lg"],
            a["heatmap"], a["heatmap"], a["footprint"], a["footprint"],
        )  # fmt: skip

    @app.callback(
        Output(ids.MAIN_FILTER_BADGE, "children"),
        Output(ids.TAPE_FILTER_BADGE, "children"),
        Output(ids.FLOW_FILTER_BADGE, "children"),
        Input(ids.FLOW_FILTER_MIN, "value"),
        Input(ids.FLOW_FILTER_MAX, "value"),
    )
    def badges(low: str | None, high: str | None):
        text = filter_badge(FlowFilter(*notional_band(low, high)).label())
        return text, text, text
