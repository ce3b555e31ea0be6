"""Flow meter: buy vs sell aggressor volume over a window, its direction, and the CVD line
(with a perpetual twin: the spot and perpetual CVD lines from a common anchor)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from components.theme import ACCENT, ASK, BID, GRID, MUTED, TEXT, create_base_layout

FLOW_WINDOWS: tuple[str, ...] = ("1m", "5m", "15m")
DIRECTION_LABELS: dict[str, str] = {
    "strong_buy": "strong buying",
    "buy": "buyers in control",
    "neutral": "balanced",
    "sell": "sellers in control",
    "strong_sell": "strong selling",
}


def cvd_trace(
    cvd_time_ms: Sequence[int] | np.ndarray,
    cvd_values: Sequence[float] | np.ndarray,
    name: str = "CVD",
    colour: str = TEXT,
) -> dict[str, Any]:
    """A CVD line trace (x: epoch ms on a date axis)."""
    return {
        "type": "scatter",
        "mode": "lines",
        "name": name,
        "x": np.asarray(cvd_time_ms, dtype=np.int64).tolist(),
        "y": np.round(np.asarray(cvd_values, dtype=np.float64), 2).tolist(),
        "xaxis": "x2",
        "yaxis": "y2",
        "line": {"color": colour, "width": 1.2},
        "hovertemplate": f"%{{x|%H:%M:%S.%L}}<br>{name} %{{y:,.2f}}<extra></extra>",
    }


def create_flow_figure(
    *,
    buy_volume: float,
    sell_volume: float,
    window_label: str,
    direction: str,
    cvd_time_ms: Sequence[int] | np.ndarray,
    cvd_values: Sequence[float] | np.ndarray,
    uirevision: str,
    unit: str = "",
    perp_cvd: tuple[Sequence[int] | np.ndarray, Sequence[float] | np.ndarray] | None = None,
) -> dict[str, Any]:
    """Two stacked bars (buy share, sell share) over the window, and CVD below them.

    ``direction`` is the flow's label (``strong_buy`` … ``strong_sell``). ``perp_cvd``
    (times, values) adds the perpetual twin's CVD line beside the spot one (both from the
    same anchor: ``services.analytics.spot_perp``) and a legend naming them.
    """
    total = buy_volume + sell_volume
    buy_pct = 100.0 * buy_volume / total if total > 0 else 0.0
    sell_pct = 100.0 - buy_pct if total > 0 else 0.0
    bars = [
        {
            "type": "bar",
            "orientation": "h",
            "name": name,
            "x": [pct],
            "y": [window_label],
            "marker": {"color": colour},
            "text": [f"{name} {volume:,.2f} {unit} ({pct:.0f}%)".replace("  ", " ")],
            "textposition": "inside",
            "insidetextanchor": "middle",
            "hoverinfo": "text",
        }
        for name, pct, volume, colour in (
            ("buy", buy_pct, buy_volume, BID),
            ("sell", sell_pct, sell_volume, ASK),
        )
    ]
    layout = create_base_layout(
        uirevision, barmode="stack", margin={"l": 40, "r": 12, "t": 30, "b": 28}
    )
    layout["xaxis"] = {"domain": [0, 1], "range": [0, 100], "visible": False, "anchor": "y"}
    layout["yaxis"] = {"domain": [0.78, 1], "fixedrange": True, "anchor": "x"}
    layout["xaxis2"] = {"type": "date", "gridcolor": GRID, "anchor": "y2"}
    layout["yaxis2"] = {
        "domain": [0, 0.62],
        "gridcolor": GRID,
        "zerolinecolor": MUTED,
        "title": {"text": f"CVD {unit}".strip()},
        "anchor": "x2",
    }
    colour = BID if direction.endswith("buy") else ASK if direction.endswith("sell") else MUTED
    label = DIRECTION_LABELS.get(direction, direction) if total > 0 else "no trades"
    layout["title"] = {
        "text": f"{window_label}: {label}",
        "font": {"color": colour, "size": 13},
        "x": 0.01,
        "y": 0.98,
    }
    if perp_cvd is None:
        return {"data": [*bars, cvd_trace(cvd_time_ms, cvd_values)], "layout": layout}
    lines = [cvd_trace(cvd_time_ms, cvd_values, "spot CVD"),
             cvd_trace(*perp_cvd, "perp CVD", ACCENT)]  # fmt: skip
    layout["showlegend"] = True
    layout["legend"] = {"orientation": "h", "x": 0, "y": 0.66, "font": {"size": 10}}
    for bar in bars:
        bar["showlegend"] = False
    return {"data": [*bars, *lines], "layout": layout}
