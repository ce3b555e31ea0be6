"""Volume profile: traded volume by price bucket, point of control and value area.

Left: horizontal bars of total volume per bucket, the point of control (POC) in amber and the
value area (VAL..VAH) shaded. Right: buy minus sell aggressor volume (delta) per bucket.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from components.theme import (
    ACCENT,
    ASK,
    BID,
    GRID,
    MUTED,
    VALUE_AREA_FILL,
    create_base_layout,
    create_notice_figure,
)

BUCKET_TICKS_CHOICES: tuple[int, ...] = (1, 5, 10, 50, 100, 500)


def create_profile_figure(
    *,
    bucket_prices: Sequence[float] | np.ndarray,
    buy_volume: Sequence[float] | np.ndarray,
    sell_volume: Sequence[float] | np.ndarray,
    point_of_control: float,
    value_area_low: float,
    value_area_high: float,
    bucket_size: float,
    uirevision: str,
    price_decimals: int = 2,
    unit: str = "",
) -> dict[str, Any]:
    """The profile figure; buckets are given by their lower price edge."""
    prices = np.asarray(bucket_prices, dtype=np.float64)
    if prices.size == 0:
        return create_notice_figure("No trades in the window yet", uirevision=uirevision)
    buys = np.asarray(buy_volume, dtype=np.float64)
    sells = np.asarray(sell_volume, dtype=np.float64)
    total = buys + sells
    delta = buys - sells
    centres = np.round(prices + bucket_size / 2.0, price_decimals + 1).tolist()
    poc_index = int(np.argmin(np.abs(prices - point_of_control)))
    colours = [MUTED] * len(prices)
    colours[poc_index] = ACCENT
    price_hover = f"%{{y:.{price_decimals}f}}"
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": "volume",
            "x": np.round(total, 6).tolist(),
            "y": centres,
            "width": bucket_size * 0.9,
            "marker": {"color": colours},
            "hovertemplate": f"{price_hover}<br>volume %{{x:,.4f}} {unit}<extra></extra>",
        },
        {
            "type": "bar",
            "orientation": "h",
            "name": "delta",
            "x": np.round(delta, 6).tolist(),
            "y": centres,
            "width": bucket_size * 0.9,
            "xaxis": "x2",
            "marker": {"color": [BID if d >= 0 else ASK for d in delta]},
            "hovertemplate": f"{price_hover}<br>delta %{{x:,.4f}} {unit}<extra></extra>",
        },
    ]
    layout = create_base_layout(uirevision, bargap=0.05)
    layout["xaxis"] = {"domain": [0, 0.68], "gridcolor": GRID, "title": {"text": "volume"}}
    layout["xaxis2"] = {
        "domain": [0.72, 1],
        "gridcolor": GRID,
        "zerolinecolor": MUTED,
        "title": {"text": "delta"},
        "anchor": "y",
    }
    layout["yaxis"] = {
        "gridcolor": GRID,
        "automargin": True,  # prices such as 58,010.00 are wider than the base margin
        "tickformat": f".{price_decimals}f",
        "autorangeoptions": {
            "include": [float(prices[0]) - bucket_size, float(prices[-1]) + 2 * bucket_size]
        },
    }
    layout["shapes"] = [
        {
            "type": "rect",
            "xref": "paper",
            "yref": "y",
            "x0": 0,
            "x1": 1,
            "y0": value_area_low,
            "y1": value_area_high,
            "fillcolor": VALUE_AREA_FILL,
            "line": {"width": 0},
            "layer": "below",
        }
    ]
    layout["annotations"] = [
        {
            "xref": "paper",
            "yref": "paper",
            "x": 0,
            "y": 1.0,
            "yanchor": "bottom",
            "xanchor": "left",
            "showarrow": False,
            "text": (
                f"POC {point_of_control:,.{price_decimals}f} · VA "
                f"{value_area_low:,.{price_decimals}f}–{value_area_high:,.{price_decimals}f}"
            ),
            "font": {"color": ACCENT, "size": 11},
        }
    ]
    return {"data": data, "layout": layout}
