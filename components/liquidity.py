"""Liquidity panel: the 0–100 score, spread, imbalance, depth within bands and price impact.

Every metric label carries a tooltip with its one-sentence definition (``definitions`` maps
the metric name to it). Labels, tooltips and table headers do not change between refreshes,
so they are built once and reused.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dash_bootstrap_components as dbc
from dash import html

from components.stamp import stamp

_DIV = html.Div([], className="")
_TABLE = html.Table([], className="")
_TBODY = html.Tbody([])
_TR = html.Tr([])
_TD = html.Td("")
_TD_NUM = html.Td("", className="")


@dataclass(frozen=True, slots=True)
class DepthBand:
    """Resting notional within ±``band_bps`` of the mid, per side (quote units)."""

    band_bps: float
    bid_quote: float
    ask_quote: float


@dataclass(frozen=True, slots=True)
class ImpactRow:
    """Cost of a market order of ``size`` (quote units): slippage in bps from the mid for a
    buy and a sell; ``None`` when the visible book cannot fill it."""

    size: float
    buy_bps: float | None
    sell_bps: float | None


@functools.lru_cache(maxsize=256)
def _label_parts(metric: str, text: str, definition: str) -> tuple[html.Span, dbc.Tooltip]:
    """A metric's label and its tooltip; the same on every refresh, so built once."""
    target = f"liq-def-{metric.replace('_', '-')}"
    return (
        html.Span(text, id=target, className="metric-label"),
        dbc.Tooltip(definition, target=target, placement="top"),
    )


def _label(metric: str, text: str, definitions: Mapping[str, str]) -> list:
    return list(_label_parts(metric, text, definitions.get(metric, text)))


@functools.lru_cache(maxsize=256)
def _table_head(metric: str, text: str, definition: str, left: str, right: str) -> html.Thead:
    """A table's header row (labelled metric, then two column titles), built once."""
    return html.Thead(
        html.Tr(
            [
                html.Th(list(_label_parts(metric, text, definition))),
                html.Th(left),
                html.Th(right),
            ]
        )
    )


def _metric(metric: str, text: str, value: str, definitions: Mapping[str, str]) -> html.Div:
    return stamp(
        _DIV,
        children=[
            *_label(metric, text, definitions),
            stamp(_DIV, children=value, className="metric-value"),
        ],
        className="metric",
    )


def score_class(score: float) -> str:
    """CSS class for a score: good (≥ 70), fair (≥ 40) or poor."""
    if score >= 70:
        return "score-good"
    if score >= 40:
        return "score-fair"
    return "score-poor"


def _bps(value: float | None) -> str:
    return "unfillable" if value is None else f"{value:.2f}"


def _compact(value: float) -> str:
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:,.2f}{suffix}"
    return f"{value:,.0f}"


def create_liquidity_panel(
    *,
    score: float,
    spread_bps: float,
    imbalance: float,
    imbalance_band_bps: float,
    depth_bands: Sequence[DepthBand],
    impact: Sequence[ImpactRow],
    definitions: Mapping[str, str],
    quote_asset: str = "",
) -> html.Div:
    """The panel's content for a LIVE book."""
    score_block = stamp(
        _DIV,
        children=[
            *_label("liquidity_score", "Liquidity score", definitions),
            stamp(_DIV, children=f"{score:.0f}", className=f"score-value {score_class(score)}"),
        ],
        className="score",
    )
    metrics = stamp(
        _DIV,
        children=[
            _metric("spread_bps", "Spread (bps)", f"{spread_bps:.3f}", definitions),
            _metric(
                "imbalance",
                f"Imbalance ±{imbalance_band_bps:g} bps",
                f"{imbalance:+.2f}",
                definitions,
            ),
        ],
        className="metrics",
    )
    depth_rows = [
        _row(f"±{band.band_bps:g} bps", _compact(band.bid_quote), _compact(band.ask_quote), "bid")
        for band in depth_bands
    ]
    impact_rows = [
        _row(
            f"{_compact(row.size)} {quote_asset}".strip(),
            _bps(row.buy_bps),
            _bps(row.sell_bps),
            "ask",
        )
        for row in impact
    ]
    depth_head = _table_head(
        "depth_within",
        "Depth within",
        definitions.get("depth_within", "Depth within"),
        f"bids {quote_asset}".strip(),
        f"asks {quote_asset}".strip(),
    )
    impact_head = _table_head(
        "price_impact",
        "Price impact",
        definitions.get("price_impact", "Price impact"),
        "buy bps",
        "sell bps",
    )
    return stamp(
        _DIV,
        children=[
            stamp(_DIV, children=[score_block, metrics], className="liq-top"),
            _table(depth_head, depth_rows),
            _table(impact_head, impact_rows),
        ],
        className="liquidity",
    )


def _row(title: str, left: str, right: str, left_side: str) -> html.Tr:
    """A table row: a title cell, then two numbers coloured by book side (``left_side``
    names the left one's side, the right one is the other)."""
    right_side = "ask" if left_side == "bid" else "bid"
    return stamp(
        _TR,
        children=[
            stamp(_TD, children=title),
            stamp(_TD_NUM, children=left, className=f"num {left_side}"),
            stamp(_TD_NUM, children=right, className=f"num {right_side}"),
        ],
    )


def _table(head: html.Thead, rows: list[html.Tr]) -> html.Table:
    return stamp(_TABLE, children=[head, stamp(_TBODY, children=rows)], className="liq-table")


def create_liquidity_unavailable(sync_state: str, reason: str = "") -> html.Div:
    """What the panel shows while the book is not LIVE."""
    detail = f" ({reason})" if reason else ""
    return html.Div(
        f"Order book {sync_state}{detail}: liquidity metrics are not computed from a book "
        "that is not in sync.",
        className="panel-notice",
    )
