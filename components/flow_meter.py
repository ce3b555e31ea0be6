"""Flow meter: buy vs sell aggressor volume over a window, its direction, and the CVD line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from components.theme import ASK, BID, GRID, MUTED, TEXT, create_base_layout

FLOW_WINDOWS: tuple[str, ...] = ("1m", "5m", "15m")
DIRECTION_LABELS: dict[str, str] = {
    "strong_buy": "strong buying",
    "buy": "buyers in control",
    "neutral": "balanced",
    "sell": "sellers in control",
    "strong_sell": "strong selling",
}


def cvd_trace(
    cvd_time_ms: Sequence[int] | np.ndarray, cvd_values: Sequence[float] | np.ndarray
) -> dict[str, Any]:
    """The CVD line trace (x: epoch ms on a date axis)."""
    return {
        "type": "scatter",
        "mode": "lines",
        "name": "CVD",
        "x": np.asarray(cvd_time_ms, dtype=np.int64).tolist(),
        "y": np.round(np.asarray(cvd_values, dtype=np.float64), 2).tolist(),
        "xaxis": "x2",
        "yaxis": "y2",
        "line": {"color": TEXT, "width": 1.2},
        "hovertemplate": "%{x|%H:%M:%S.%L}<br>CVD %{y:,.2f}<extra></extra>",
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
) -> dict[str, Any]:
    """Two stacked bars (buy share, sell share) over the window, and CVD below them.

    ``direction`` is the flow's label (``strong_buy`` … ``strong_sell``).
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
    return {"data": [*bars, cvd_trace(cvd_time_ms, cvd_values)], "layout": layout}
