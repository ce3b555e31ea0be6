"""Panel factory: a card whose title carries the panel's definition as a tooltip."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from components.panel import create_panel


def test_panel_title_carries_its_definition():
    card = create_panel("Depth", html.Div(), panel_id="depth-panel", definition="Cumulative.")
    header = card.children[0].children
    assert header[0].id == "depth-panel-title"
    assert isinstance(header[1], dbc.Tooltip) and header[1].target == "depth-panel-title"
    assert header[1].children == "Cumulative."
