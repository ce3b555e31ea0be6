"""Liquidity panel factory: values, tables and a tooltip definition for every metric."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import html

from components.liquidity import (
    DepthBand,
    ImpactRow,
    create_liquidity_panel,
    create_liquidity_unavailable,
)
from services.analytics.definitions import DEFINITIONS


def walk(component):
    yield component
    children = getattr(component, "children", None)
    if isinstance(children, list | tuple):
        for child in children:
            yield from walk(child)
    elif children is not None and not isinstance(children, str | int | float):
        yield from walk(children)


def test_panel_shows_metrics_with_definitions():
    panel = create_liquidity_panel(
        score=82.4,
        spread_bps=0.0172,
        imbalance=0.15,
        imbalance_band_bps=25,
        depth_bands=[DepthBand(10, 1_780_000.0, 1_510_000.0)],
        impact=[ImpactRow(100_000.0, 0.84, None)],
        definitions=DEFINITIONS,
        quote_asset="USDT",
    )
    nodes = list(walk(panel))
    texts = [n.children for n in nodes if isinstance(getattr(n, "children", None), str)]
    assert "82" in texts and "0.017" in texts and "+0.15" in texts
    assert "1.78M" in texts and "unfillable" in texts and "100.00k USDT" in texts
    tooltips = {n.target: n.children for n in nodes if isinstance(n, dbc.Tooltip)}
    assert tooltips["liq-def-liquidity-score"] == DEFINITIONS["liquidity_score"]
    assert tooltips["liq-def-spread-bps"] == DEFINITIONS["spread_bps"]
    assert tooltips["liq-def-imbalance"] == DEFINITIONS["imbalance"]
    assert tooltips["liq-def-depth-within"] == DEFINITIONS["depth_within"]
    assert tooltips["liq-def-price-impact"] == DEFINITIONS["price_impact"]
    assert any(isinstance(n, html.Div) and n.className == "score-value score-good" for n in nodes)


def test_book_not_live_gives_a_message():
    notice = create_liquidity_unavailable("SYNCING")
    assert "SYNCING" in notice.children and notice.className == "panel-notice"
