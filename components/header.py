"""Page header: brand, symbol picker, status bar and the export controls."""

from __future__ import annotations

from dash import html
from dash.development.base_component import Component


def create_header(
    symbol_picker: Component,
    status_bar_id: str,
    export: Component,
    pushed_status_id: str | None = None,
) -> html.Header:
    """The top bar; the status bar's badges are filled in by a callback (or, in
    ``pushed_status_id``, by the page's script from the status stream)."""
    pushed = [html.Div(id=pushed_status_id, className="status-bar")] if pushed_status_id else []
    return html.Header(
        [
            html.Div("Tapescope", className="brand"),
            html.Div(symbol_picker, className="header-symbol"),
            html.Div(id=status_bar_id, className="status-bar"),
            *pushed,
            export,
        ],
        className="app-header",
    )
