"""Depth chart: cumulative bid and ask quantity against price, as a plain figure dict.

Bids (green) rise to the left of the mid as price falls; asks (red) rise to the right. The
x range is the zoom preset around the mid; ``uirevision`` carries the symbol and preset, so
the user's own zoom survives updates and a new preset or symbol resets it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from components.theme import (
    ASK,
    ASK_FILL,
    BID,
    BID_FILL,
    MUTED,
    create_base_layout,
    create_notice_figure,
)

ZOOM_PRESETS_PCT: tuple[float, ...] = (0.1, 0.5, 1.0, 5.0)
MAX_POINTS_PER_SIDE = 300


def downsample_indices(n: int, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` evenly spread points of ``n``, first and last kept."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def _side_trace(
    name: str,
    prices: np.ndarray,
    cum_qty: np.ndarray,
    cum_notional: np.ndarray,
    colour: str,
    fill: str,
    shape: str,
    max_points: int,
    price_decimals: int,
) -> dict[str, Any]:
    keep = downsample_indices(len(prices), max_points)
    return {
        "type": "scatter",
        "mode": "lines",
        "name": name,
        "x": np.round(prices[keep], price_decimals).tolist(),
        "y": np.round(cum_qty[keep], 6).tolist(),
        "customdata": np.round(cum_notional[keep], 0).tolist(),
        "line": {"color": colour, "width": 1.5, "shape": shape},
        "fill": "tozeroy",
        "fillcolor": fill,
        "hovertemplate": (
            f"{name}<br>price %{{x:.{price_decimals}f}}<br>cumulative qty %{{y:,.4f}}"
            "<br>cumulative notional %{customdata:,.0f}<extra></extra>"
        ),
    }


def depth_trace_data(
    *,
    bid_prices: np.ndarray,
    bid_cum_qty: np.ndarray,
    bid_cum_notional: np.ndarray,
    ask_prices: np.ndarray,
    ask_cum_qty: np.ndarray,
    ask_cum_notional: np.ndarray,
    price_decimals: int = 2,
    max_points: int = MAX_POINTS_PER_SIDE,
) -> list[dict[str, Any]]:
    """The bid and ask step traces (bids best first, asks best first), each downsampled."""
    return [
        _side_trace(
            "bids",
            np.asarray(bid_prices, dtype=np.float64),
            np.asarray(bid_cum_qty, dtype=np.float64),
            np.asarray(bid_cum_notional, dtype=np.float64),
            BID,
            BID_FILL,
            "vh",
            max_points,
            price_decimals,
        ),
        _side_trace(
            "asks",
            np.asarray(ask_prices, dtype=np.float64),
            np.asarray(ask_cum_qty, dtype=np.float64),
            np.asarray(ask_cum_notional, dtype=np.float64),
            ASK,
            ASK_FILL,
            "hv",
            max_points,
            price_decimals,
        ),
    ]


def depth_overlays(
    *, mid: float, spread: float, spread_bps: float, price_decimals: int = 2
) -> dict[str, Any]:
    """The mid line and the spread annotation, as layout ``shapes`` and ``annotations``."""
    return {
        "shapes": [
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": mid,
                "x1": mid,
                "y0": 0,
                "y1": 1,
                "line": {"color": MUTED, "width": 1, "dash": "dot"},
            }
        ],
        "annotations": [
            {
                "xref": "x",
                "yref": "paper",
                "x": mid,
                "y": 1.0,
                "yanchor": "bottom",
                "showarrow": False,
                "text": (
                    f"mid {mid:,.{price_decimals}f} · spread {spread:,.{price_decimals}f}"
                    f" ({spread_bps:.3f} bps)"
                ),
                "font": {"color": MUTED, "size": 11},
            }
        ],
    }


def zoom_range(mid: float, zoom_pct: float) -> list[float]:
    """The x range ±``zoom_pct`` % around the mid."""
    half = mid * zoom_pct / 100.0
    return [mid - half, mid + half]


def create_depth_figure(
    *,
    bid_prices: np.ndarray,
    bid_cum_qty: np.ndarray,
    bid_cum_notional: np.ndarray,
    ask_prices: np.ndarray,
    ask_cum_qty: np.ndarray,
    ask_cum_notional: np.ndarray,
    mid: float,
    spread: float,
    spread_bps: float,
    zoom_pct: float,
    uirevision: str,
    price_decimals: int = 2,
    base_asset: str = "",
    max_points: int = MAX_POINTS_PER_SIDE,
) -> dict[str, Any]:
    """The depth chart figure for one book: two cumulative step areas, mid line, spread."""
    data = depth_trace_data(
        bid_prices=bid_prices,
        bid_cum_qty=bid_cum_qty,
        bid_cum_notional=bid_cum_notional,
        ask_prices=ask_prices,
        ask_cum_qty=ask_cum_qty,
        ask_cum_notional=ask_cum_notional,
        price_decimals=price_decimals,
        max_points=max_points,
    )
    layout = create_base_layout(uirevision, hovermode="x")
    layout["xaxis"] = dict(layout["xaxis"], range=zoom_range(mid, zoom_pct), title=None)
    layout["yaxis"] = dict(
        layout["yaxis"], title={"text": f"cumulative {base_asset}".strip()}, rangemode="tozero"
    )
    layout.update(
        depth_overlays(mid=mid, spread=spread, spread_bps=spread_bps, price_decimals=price_decimals)
    )
    return {"data": data, "layout": layout}


def create_depth_unavailable(sync_state: str, reason: str = "") -> dict[str, Any]:
    """What the depth chart shows while the book is not LIVE: the state, never a stale book."""
    detail = f" ({reason})" if reason else ""
    return create_notice_figure(
        f"Order book {sync_state}{detail}: not in sync with the exchange, not drawn",
        uirevision=f"notice-{sync_state}",
    )
