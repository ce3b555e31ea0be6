"""A titled dashboard panel: a card with a header line (title, controls) and a body; and
the graph and button-group factories every panel's body and controls use."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html
from dash.development.base_component import Component

from components.theme import create_notice_figure

GRAPH_CONFIG = {"displaylogo": False, "displayModeBar": False, "responsive": True}


def create_graph(graph_id: str, class_name: str = "", style: dict | None = None) -> dcc.Graph:
    """A panel's chart, without the mode bar, showing "Loading…" until its callback runs;
    sized by its CSS ``class_name``, else by ``style``."""
    look = {"className": class_name} if class_name else {"style": style or {}}
    return dcc.Graph(
        id=graph_id, figure=create_notice_figure("Loading…"), config=GRAPH_CONFIG, **look
    )


def create_radio(radio_id: str, options: list[dict], value: object) -> dbc.RadioItems:
    """A small inline button group choosing one of ``options``."""
    return dbc.RadioItems(
        id=radio_id,
        options=options,
        value=value,
        inline=True,
        className="btn-group btn-group-sm",
        inputClassName="btn-check",
        labelClassName="btn btn-outline-secondary btn-sm",
        labelCheckedClassName="active",
    )


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
