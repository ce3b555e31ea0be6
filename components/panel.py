"""A titled dashboard panel: a card with a header line (title, controls) and a body."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html
from dash.development.base_component import Component


def create_panel(title: str, body: Component, controls: Component | None = None) -> dbc.Card:
    """A card whose header holds the title and optional controls."""
    header = [html.Span(title, className="panel-title")]
    if controls is not None:
        header.append(html.Div(controls, className="panel-controls"))
    return dbc.Card(
        [
            dbc.CardHeader(header, className="panel-header"),
            dbc.CardBody(body, className="panel-body"),
        ],
        className="panel",
    )
