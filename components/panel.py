"""A titled dashboard panel: a card with a header line (title, controls) and a body."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html
from dash.development.base_component import Component


def create_panel(
    title: str,
    body: Component,
    controls: Component | None = None,
    *,
    panel_id: str,
    definition: str = "",
    badge_id: str | None = None,
) -> dbc.Card:
    """A card whose header holds the title (with its definition as a tooltip, if given),
    an optional badge a callback fills (e.g. an active filter) and optional controls."""
    title_id = f"{panel_id}-title"
    header: list = [html.Span(title, id=title_id, className="panel-title")]
    if badge_id is not None:
        header.append(html.Span(id=badge_id, className="panel-badge"))
    if definition:
        header.append(dbc.Tooltip(definition, target=title_id, placement="bottom"))
    if controls is not None:
        header.append(html.Div(controls, className="panel-controls"))
    return dbc.Card(
        [
            dbc.CardHeader(header, className="panel-header"),
            dbc.CardBody(body, className="panel-body"),
        ],
        className="panel",
    )
