"""Liquidity heatmap: an axes-only Plotly figure and the layer the browser paints on a canvas.

The cells, the best bid/ask lines, the trade dots and the "book not live" shading are
painted by ``assets/heatmap_layer.js`` on a ``<canvas>`` laid over Plotly's plot area and
kept in step with its axes; Plotly keeps the axes, the zoom/pan and the title. The figure
holds one invisible trace spanning the drawn columns × the band, so the x axis follows the
live edge by autorange and ``uirevision`` keeps the user's zoom. Why: Plotly redraws every
trace on every update (the grid re-encoded as a PNG, every trade dot an SVG marker), which
cost 300–800 ms per live column in Chromium (``bench/bench_views.py``); the canvas layer
adds the new columns to its one-pixel-per-cell image and re-blits it with the dots in a few
milliseconds.

Cells: each side's size (qty or notional) merged into one signed value, bids positive and
asks negative (a cell shows the larger side). Intensity is scaled to the largest size in
view: ``cutoff_pct`` = (lower, upper) in % of it. A cell below the lower cut-off is
transparent; above it the side's colour with opacity rising linearly from 0.25 at the lower
cut-off to 1 at the upper one (and beyond). Columns without a LIVE book are null: drawn
empty and shaded with a "book not live" label.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from components.theme import ASK, BID, MUTED, TEXT, create_base_layout

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
LAYER_COLOURS = {"bid": BID, "ask": ASK, "muted": MUTED, "text": TEXT}
SPAN_TRACE = "columns drawn"


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


def cutoffs(peak: float, cutoff_pct: tuple[float, float]) -> dict[str, float]:
    """The cut-offs as values: ``upper`` (full colour from here) and ``lower`` (transparent
    below), from percentages of ``peak``; the lower one stays under the upper one."""
    lower_pct, upper_pct = cutoff_pct
    upper = peak * upper_pct / 100.0 if peak > 0 else 1.0
    ratio = min(max(lower_pct / upper_pct, 0.0), 0.99) if upper_pct > 0 else 0.0
    return {"upper": upper, "lower": upper * ratio}


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


def _nullable(values: np.ndarray, decimals: int) -> list[float | None]:
    out = np.round(np.asarray(values, dtype=np.float64), decimals).astype(object)
    out[np.isnan(np.asarray(values, dtype=np.float64))] = None
    return out.tolist()


def layer_columns(
    *,
    bids: np.ndarray,
    asks: np.ndarray,
    live: np.ndarray,
    best_bid: np.ndarray,
    best_ask: np.ndarray,
    decimals: int,
    price_decimals: int,
) -> dict[str, list]:
    """Some columns for the canvas layer, JSON-ready: ``z`` (per column, rows from the
    lowest price up; null = no LIVE book), ``live`` (0/1), best ``bid``/``ask`` (null when
    not LIVE)."""
    return {
        "z": z_rows(signed_grid(bids, asks), decimals),
        "live": np.asarray(live, dtype=bool).astype(int).tolist(),
        "bid": _nullable(best_bid, price_decimals),
        "ask": _nullable(best_ask, price_decimals),
    }


def layer_dots(dots: dict[str, np.ndarray], bucket_ms: int, peak_qty: float) -> dict[str, list]:
    """Trade dots for the canvas layer: ``t`` (middle of the time bucket, ms), ``p`` (VWAP
    price), ``q`` (quantity), ``side`` (+1 taker buy, −1 taker sell), ``s`` (diameter px,
    area ∝ quantity against ``peak_qty``)."""
    qty = np.asarray(dots["qty"], dtype=np.float64)
    return {
        "t": (np.asarray(dots["time_ms"], dtype=np.int64) + bucket_ms // 2).tolist(),
        "p": np.asarray(dots["price"], dtype=np.float64).tolist(),
        "q": np.round(qty, 6).tolist(),
        "side": np.asarray(dots["side"], dtype=np.float64).astype(int).tolist(),
        "s": dot_sizes(qty, peak_qty),
    }


def create_heatmap_layer(
    *,
    rev: int,
    start_ms: int,
    end_ms: int,
    bucket_ms: int,
    keep: int,
    price: np.ndarray,
    price_bucket: float,
    bids: np.ndarray,
    asks: np.ndarray,
    live: np.ndarray,
    best_bid: np.ndarray,
    best_ask: np.ndarray,
    dots: dict[str, np.ndarray],
    cutoff_pct: tuple[float, float] = DEFAULT_CUTOFF_PCT,
    unit_label: str = "",
    price_decimals: int = 2,
) -> dict[str, Any]:
    """The whole layer (``kind`` "full"): columns [start, end) of ``bucket_ms`` (at most
    ``keep`` are kept as live ones arrive), rows of ``price_bucket`` from ``price[0]`` (their
    lower edges), cells, best bid/ask and trade dots (the ``MAX_DOTS`` largest), cut-offs
    and colours. ``rev`` names this drawing: later ``append`` layers name it too."""
    peak = float(np.nanmax(np.fmax(bids, asks))) if np.isfinite(bids).any() else 0.0
    decimals = value_decimals(peak)
    qty = np.asarray(dots["qty"], dtype=np.float64)
    keep_dots = keep_largest(qty)
    chosen = {name: np.asarray(values)[keep_dots] for name, values in dots.items()}
    return {
        "kind": "full",
        "rev": rev,
        "x0": int(start_ms),
        "end": int(end_ms),
        "dx": int(bucket_ms),
        "keep": int(keep),
        "y0": float(price[0]) if len(price) else 0.0,
        "dy": float(price_bucket),
        "rows": len(price),
        **layer_columns(
            bids=bids,
            asks=asks,
            live=live,
            best_bid=best_bid,
            best_ask=best_ask,
            decimals=decimals,
            price_decimals=price_decimals,
        ),
        "dots": layer_dots(chosen, bucket_ms, float(qty.max()) if qty.shape[0] else 0.0),
        **cutoffs(peak, cutoff_pct),
        "peak": peak,
        "decimals": decimals,
        "unit": unit_label,
        "price_decimals": int(price_decimals),
        "colours": LAYER_COLOURS,
    }


def create_heatmap_figure(
    *,
    start_ms: int,
    end_ms: int,
    price_range: tuple[float, float],
    uirevision: str,
    title: str = "",
) -> dict[str, Any]:
    """The axes the layer is painted in: one invisible trace spanning [start, end) × the
    price band (x follows it by autorange), the band as the initial y range. No hover:
    the layer shows its own tooltip."""
    low, high = price_range
    span = {
        "type": "scatter",
        "mode": "lines",
        "name": SPAN_TRACE,
        "x": [int(start_ms), int(end_ms)],
        "y": [low, high],
        "line": {"width": 0},
        "hoverinfo": "skip",
        "showlegend": False,
    }
    layout = create_base_layout(uirevision, hovermode=False)
    layout["xaxis"] = dict(layout["xaxis"], type="date", title=None)
    layout["yaxis"] = dict(layout["yaxis"], range=[low, high], title=None, side="right")
    layout["margin"] = {"l": 10, "r": 60, "t": 28, "b": 32}
    layout["title"] = {"text": title, "font": {"color": MUTED, "size": 12}, "x": 0.01, "y": 0.98}
    return {"data": [span], "layout": layout}
