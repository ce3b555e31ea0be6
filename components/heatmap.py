"""Liquidity heatmap figure: resting size by time and price, best bid/ask lines, trade dots.

One heatmap trace holds both sides as signed values (bids positive, asks negative, a cell
shows the larger side), drawn on a diverging scale from the ask colour through transparent
to the bid colour. Intensity is scaled to the largest size in view: ``cutoff_pct`` = (lower,
upper) in % of it; cells below the lower cut-off are transparent and cells above the upper
one take the full colour, so a wall and the thin book around it are both readable.
Columns without a LIVE book are null (drawn empty) and shaded with a "book not live" label.
Columns are ``z`` rows (``transpose``), so live updates append rows to ``z`` and move
``x0`` (``new_columns``) instead of redrawing the grid. The grid is placed by ``x0``/``dx``
and ``y0``/``dy`` rather than coordinate arrays: columns and rows are evenly spaced by
construction, so Plotly always takes its image fast path (one canvas pixel per cell, scaled
by the browser) instead of filling every screen pixel of every cell.

Paint cost (``bench/bench_views.py``): the trade dots are SVG markers that Plotly redraws on
every update, and they cost more than the grid; at most ``MAX_DOTS`` (the largest) are drawn.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from components.theme import ASK, BID, MUTED, create_base_layout

TIME_RANGES_MS: dict[str, int] = {
    "5m": 5 * 60_000,
    "15m": 15 * 60_000,
    "1h": 60 * 60_000,
    "4h": 4 * 60 * 60_000,
    "24h": 24 * 60 * 60_000,
}
BAND_PRESETS_PCT: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.0)
TARGET_COLUMNS = 300
MIN_TIME_BUCKET_MS = 1000
MAX_ROWS = 200
DEFAULT_CUTOFF_PCT: tuple[float, float] = (2.0, 60.0)
MAX_DOTS = 500
DOT_MAX_PX = 22.0
DOT_MIN_PX = 3.0
NOT_LIVE_FILL = "rgba(138, 148, 166, 0.10)"


def time_bucket_for(range_ms: int) -> int:
    """Column width for a time range: ≈ ``TARGET_COLUMNS`` columns, whole seconds, ≥ 1 s;
    from 45 s on, whole minutes (the recorded book's minute pyramid serves those: 4 h →
    240 columns of 1 min, 24 h → 288 of 5 min)."""
    bucket = max(MIN_TIME_BUCKET_MS, range_ms // TARGET_COLUMNS // 1000 * 1000)
    return round(bucket / 60_000) * 60_000 if bucket >= 45_000 else bucket


def value_decimals(peak: float) -> int:
    """Decimals that keep four significant digits of ``peak`` (colour needs no more)."""
    if not peak > 0 or not math.isfinite(peak):
        return 0
    return max(0, 3 - math.floor(math.log10(peak)))


def signed_grid(bids: np.ndarray, asks: np.ndarray) -> np.ndarray:
    """One (columns, rows) grid: the bid size where it is at least the ask size, else minus
    the ask size; NaN where both are NaN (no LIVE book)."""
    b = np.nan_to_num(bids, nan=0.0)
    a = np.nan_to_num(asks, nan=0.0)
    z = np.where(b >= a, b, -a)
    z[np.isnan(bids) & np.isnan(asks)] = np.nan
    return z


def z_rows(z: np.ndarray, decimals: int) -> list[list[float | None]]:
    """Grid rows as JSON-ready lists, rounded, NaN as null."""
    rounded = np.round(z, decimals).astype(object)
    rounded[np.isnan(z)] = None
    return rounded.tolist()


def colorscale(cutoff_pct: tuple[float, float]) -> list[list[Any]]:
    """Diverging scale over [−upper, +upper]: asks (negative) to transparent to bids, with
    values under the lower cut-off transparent."""
    lower, upper = cutoff_pct
    edge = 0.5 * min(max(lower / upper, 0.0), 0.99) if upper > 0 else 0.0
    return [
        [0.0, "rgba(239, 83, 80, 1)"],
        [0.5 - edge - 1e-6, "rgba(239, 83, 80, 0.25)"],
        [0.5 - edge, "rgba(239, 83, 80, 0)"],
        [0.5 + edge, "rgba(38, 166, 154, 0)"],
        [0.5 + edge + 1e-6, "rgba(38, 166, 154, 0.25)"],
        [1.0, "rgba(38, 166, 154, 1)"],
    ]


def not_live_shapes(time_ms: np.ndarray, live: np.ndarray, bucket_ms: int) -> list[dict]:
    """A shaded rectangle (and label) over every run of columns without a LIVE book."""
    shapes = []
    dead = np.flatnonzero(~np.asarray(live, dtype=bool))
    if dead.shape[0] == 0:
        return shapes
    breaks = np.flatnonzero(np.diff(dead) != 1) + 1
    for run in np.split(dead, breaks):
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": int(time_ms[run[0]]),
                "x1": int(time_ms[run[-1]]) + bucket_ms,
                "y0": 0,
                "y1": 1,
                "fillcolor": NOT_LIVE_FILL,
                "line": {"width": 0},
                "layer": "below",
                "label": {
                    "text": "book not live",
                    "font": {"color": MUTED, "size": 10},
                    "textposition": "top center",
                },
            }
        )
    return shapes


def dot_sizes(qty: np.ndarray, peak: float) -> list[float]:
    """Marker diameters in px: area proportional to quantity, the largest ``DOT_MAX_PX``."""
    if qty.shape[0] == 0 or not peak > 0:
        return []
    return np.round(np.maximum(DOT_MIN_PX, DOT_MAX_PX * np.sqrt(qty / peak)), 1).tolist()


def keep_largest(qty: np.ndarray, limit: int = MAX_DOTS) -> np.ndarray:
    """Indices of at most ``limit`` dots, the largest quantities, in their original order."""
    if qty.shape[0] <= limit:
        return np.arange(qty.shape[0])
    return np.sort(np.argpartition(qty, -limit)[-limit:])


def column_payload(
    *,
    time_ms: np.ndarray,
    bucket_ms: int,
    bids: np.ndarray,
    asks: np.ndarray,
    best_bid: np.ndarray,
    best_ask: np.ndarray,
    decimals: int,
) -> dict[str, list]:
    """The x values, ``z`` rows and best bid/ask points of some columns (JSON-ready)."""
    x = (np.asarray(time_ms, dtype=np.int64) + bucket_ms // 2).tolist()

    def line(values: np.ndarray) -> list[float | None]:
        out = np.asarray(values, dtype=np.float64).astype(object)
        out[np.isnan(np.asarray(values, dtype=np.float64))] = None
        return out.tolist()

    return {
        "x": x,
        "z": z_rows(signed_grid(bids, asks), decimals),
        "best_bid": line(best_bid),
        "best_ask": line(best_ask),
    }


def dot_points(
    *,
    time_ms: np.ndarray,
    price: np.ndarray,
    qty: np.ndarray,
    bucket_ms: int,
    peak_qty: float,
    price_decimals: int,
) -> dict[str, list]:
    """Some dots' x (middle of their time bucket), y (VWAP price), customdata (qty) and
    marker sizes (against ``peak_qty``), JSON-ready: what a dot trace holds or a Patch
    appends."""
    return {
        "x": (time_ms + bucket_ms // 2).tolist(),
        "y": np.round(price, price_decimals).tolist(),
        "customdata": np.round(qty, 6).tolist(),
        "size": dot_sizes(qty, peak_qty),
    }


def dot_traces(
    *,
    time_ms: np.ndarray,
    price: np.ndarray,
    qty: np.ndarray,
    side: np.ndarray,
    bucket_ms: int,
    peak_qty: float,
    price_decimals: int,
) -> list[dict[str, Any]]:
    """Two scatter traces of trade dots (taker buys, taker sells)."""
    keep = keep_largest(qty)
    t, p, q, s = time_ms[keep], price[keep], qty[keep], side[keep]
    traces = []
    for name, sign, colour in (("taker buys", 1.0, BID), ("taker sells", -1.0, ASK)):
        mask = s == sign
        points = dot_points(
            time_ms=t[mask], price=p[mask], qty=q[mask], bucket_ms=bucket_ms,
            peak_qty=peak_qty, price_decimals=price_decimals,
        )  # fmt: skip
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": points["x"],
                "y": points["y"],
                "customdata": points["customdata"],
                "marker": {
                    "size": points["size"],
                    "color": colour,
                    "opacity": 0.75,
                    "line": {"color": "#111", "width": 0.5},
                },
                "hovertemplate": (
                    f"{name}<br>%{{x|%H:%M:%S}}<br>price %{{y:.{price_decimals}f}}"
                    "<br>qty %{customdata}<extra></extra>"
                ),
            }
        )
    return traces


def create_heatmap_figure(
    *,
    time_ms: np.ndarray,
    bucket_ms: int,
    price: np.ndarray,
    price_bucket: float,
    bids: np.ndarray,
    asks: np.ndarray,
    live: np.ndarray,
    best_bid: np.ndarray,
    best_ask: np.ndarray,
    dots: dict[str, np.ndarray],
    price_range: tuple[float, float],
    cutoff_pct: tuple[float, float] = DEFAULT_CUTOFF_PCT,
    uirevision: str,
    unit_label: str = "",
    price_decimals: int = 2,
    title: str = "",
) -> dict[str, Any]:
    """The heatmap figure. ``dots`` holds ``time_ms``, ``price``, ``qty``, ``side`` of the
    merged trade dots; ``price_range`` is the initial y range (the band around the mid)."""
    peak = float(np.nanmax(np.fmax(bids, asks))) if np.isfinite(bids).any() else 0.0
    decimals = value_decimals(peak)
    cols = column_payload(
        time_ms=time_ms, bucket_ms=bucket_ms, bids=bids, asks=asks,
        best_bid=best_bid, best_ask=best_ask, decimals=decimals,
    )  # fmt: skip
    upper = peak * cutoff_pct[1] / 100.0 if peak > 0 else 1.0
    heat = {
        "type": "heatmap",
        "name": "resting size",
        "transpose": True,
        "x0": cols["x"][0] if cols["x"] else 0,
        "dx": bucket_ms,
        "y0": round(float(price[0]) + price_bucket / 2, price_decimals + 1) if len(price) else 0,
        "dy": price_bucket,
        "z": cols["z"],
        "zmin": -upper,
        "zmax": upper,
        "zsmooth": False,
        "colorscale": colorscale(cutoff_pct),
        "showscale": False,
        "hoverongaps": False,
        "hovertemplate": (
            f"%{{x|%H:%M:%S}}<br>price %{{y:.{price_decimals}f}}<br>resting %{{z}}"
            f" {unit_label} (bids +, asks −)<extra></extra>"
        ),
    }
    lines = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": name,
            "x": cols["x"],
            "y": cols[key],
            "line": {"color": colour, "width": 1.2, "shape": "hv"},
            "connectgaps": False,
            "hovertemplate": f"{name} %{{y:.{price_decimals}f}}<extra></extra>",
        }
        for name, key, colour in (("best bid", "best_bid", BID), ("best ask", "best_ask", ASK))
    ]
    qty = np.asarray(dots["qty"], dtype=np.float64)
    traces = dot_traces(
        time_ms=np.asarray(dots["time_ms"], dtype=np.int64),
        price=np.asarray(dots["price"], dtype=np.float64),
        qty=qty,
        side=np.asarray(dots["side"], dtype=np.float64),
        bucket_ms=bucket_ms,
        peak_qty=float(qty.max()) if qty.shape[0] else 0.0,
        price_decimals=price_decimals,
    )
    layout = create_base_layout(uirevision, hovermode="closest")
    layout["xaxis"] = dict(layout["xaxis"], type="date", title=None)
    layout["yaxis"] = dict(layout["yaxis"], range=list(price_range), title=None, side="right")
    layout["margin"] = {"l": 10, "r": 60, "t": 28, "b": 32}
    layout["shapes"] = not_live_shapes(np.asarray(time_ms), np.asarray(live), bucket_ms)
    layout["title"] = {"text": title, "font": {"color": MUTED, "size": 12}, "x": 0.01, "y": 0.98}
    layout["meta"] = {"decimals": decimals, "peak": peak}
    return {"data": [heat, *lines, *traces], "layout": layout}
