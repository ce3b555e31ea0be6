"""Footprint figure (bars split into price rows) and the candles-with-delta figure.

Footprint: one heatmap cell per (bar, row), coloured by the row's delta (or volume, or
trade count) and labelled ``sell × buy`` (or delta, volume, trades: the ``mode``); the POC
of each bar outlined; diagonal buy imbalances marked ▶ at the right edge of their row and
sell imbalances ◀ at the left; stacked runs as a bar along that edge; naked POCs extended
to the right until traded through; totals under each bar (volume, delta, CVD at close).
Candles with delta: OHLC, volume split into taker buys and sells, delta bars and the CVD
line, for ranges where rows would be unreadable.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from components.heatmap import value_decimals
from components.theme import ACCENT, ASK, BID, GRID, MUTED, TEXT, create_base_layout
from services.analytics.footprint import CandlesWithDelta, Footprint

MODES: dict[str, str] = {
    "bidask": "sell × buy",
    "delta": "delta",
    "volume": "volume",
    "trades": "trades",
    "candles": "candles with delta",
}
INTERVALS: tuple[str, ...] = ("1m", "5m", "15m", "1h")
ROW_TICK_CHOICES: tuple[int, ...] = (1, 5, 10, 50, 100, 500, 1000)
DELTA_SCALE = [[0.0, ASK], [0.5, "rgba(0,0,0,0)"], [1.0, BID]]
VOLUME_SCALE = [[0.0, "rgba(255,179,0,0.05)"], [1.0, "rgba(255,179,0,0.85)"]]


def compact(value: float) -> str:
    """A short number for a cell: 1.2k, 34, 5.6, 0.012."""
    v = abs(value)
    sign = "-" if value < 0 else ""
    if v >= 1e6:
        return f"{sign}{v / 1e6:.1f}M"
    if v >= 1e3:
        return f"{sign}{v / 1e3:.1f}k"
    if v >= 10:
        return f"{sign}{v:.0f}"
    if v >= 1:
        return f"{sign}{v:.1f}"
    if v == 0:
        return "0"
    return f"{sign}{v:.2g}"


def _grid(fp: Footprint) -> tuple[np.ndarray, np.ndarray, int]:
    """(bar index, row index) of each cell in a dense bars × rows grid, and its row count."""
    base = float(fp.cell_price.min())
    rows = np.rint((fp.cell_price - base) / fp.row_size).astype(np.int64)
    return fp.cell_bar, rows, int(rows.max()) + 1


def cell_texts(fp: Footprint, mode: str) -> list[str]:
    """The label of every cell in ``mode``."""
    if mode == "delta":
        return [compact(v) for v in fp.cell_delta.tolist()]
    if mode == "volume":
        return [compact(v) for v in fp.cell_volume.tolist()]
    if mode == "trades":
        return [str(v) for v in fp.cell_trades.tolist()]
    return [
        f"{compact(s)} × {compact(b)}"
        for s, b in zip(fp.cell_sell.tolist(), fp.cell_buy.tolist(), strict=True)
    ]


def create_footprint_figure(
    fp: Footprint,
    *,
    mode: str = "bidask",
    uirevision: str,
    price_decimals: int = 2,
    unit_label: str = "",
    title: str = "",
) -> dict[str, Any]:
    """The footprint figure of ``fp`` (at least one bar)."""
    bars, rows, nrows = _grid(fp)
    nbars = fp.bars
    if mode == "volume":
        values, scale, zmid = fp.cell_volume, VOLUME_SCALE, None
    elif mode == "trades":
        values, scale, zmid = fp.cell_trades.astype(np.float64), VOLUME_SCALE, None
    else:
        values, scale, zmid = fp.cell_delta, DELTA_SCALE, 0.0
    # rows × bars, as Plotly reads both z and text (its ``transpose`` turns z, not text)
    z = np.full((nrows, nbars), None, dtype=object)
    peak = float(np.abs(values).max()) if values.shape[0] else 0.0
    z[rows, bars] = np.round(values, value_decimals(peak))  # colour needs 4 digits
    text = np.full((nrows, nbars), "", dtype=object)
    text[rows, bars] = cell_texts(fp, mode)
    half = fp.interval_ms // 2
    # cell centres; a lone bar or row gets its two edges instead (Plotly sizes a cell from its
    # neighbours' centres: alone, it was 1 ms wide and only the POC box showed)
    x = (fp.bar_time_ms + half).tolist()
    base = float(fp.cell_price.min())
    y = np.round(base + (np.arange(nrows) + 0.5) * fp.row_size, price_decimals + 1).tolist()
    heat = {
        "type": "heatmap",
        "name": MODES.get(mode, mode),
        "x": x if nbars > 1 else [x[0] - half, x[0] + half],
        "y": y if nrows > 1 else [base, base + fp.row_size],
        "z": z.tolist(),
        "text": text.tolist(),
        "texttemplate": "%{text}",
        "textfont": {"size": 9, "color": TEXT},
        "colorscale": scale,
        "zmid": zmid,
        "showscale": False,
        "xgap": 2,
        "ygap": 1,
        "hoverongaps": False,
        "hovertemplate": (
            f"%{{x|%H:%M}}<br>row %{{y:.{price_decimals}f}}<br>{MODES.get(mode, mode)}"
            " %{text}<extra></extra>"
        ),
    }
    traces = [heat, *_imbalance_traces(fp, price_decimals), *_total_traces(fp, unit_label)]
    layout = create_base_layout(uirevision, hovermode="closest")
    layout["xaxis"] = dict(layout["xaxis"], type="date", title=None, anchor="y2")
    layout["yaxis"] = dict(layout["yaxis"], domain=[0.16, 1.0], side="right", title=None)
    layout["yaxis2"] = {
        "domain": [0.0, 0.13],
        "range": [-0.5, 2.5],
        "fixedrange": True,
        "tickvals": [0, 1, 2],
        "ticktext": ["CVD", "Δ", "vol"],
        "gridcolor": GRID,
        "side": "right",
    }
    layout["margin"] = {"l": 10, "r": 60, "t": 28, "b": 28}
    layout["shapes"] = _shapes(fp, float(base))
    layout["title"] = {"text": title, "font": {"color": MUTED, "size": 12}, "x": 0.01, "y": 0.98}
    return {"data": traces, "layout": layout}


def _imbalance_traces(fp: Footprint, price_decimals: int) -> list[dict[str, Any]]:
    traces = []
    for name, flags, edge, symbol, colour in (
        ("buy imbalance", fp.buy_imbalance, 0.92, "triangle-right", BID),
        ("sell imbalance", fp.sell_imbalance, 0.08, "triangle-left", ASK),
    ):
        idx = np.flatnonzero(flags)
        x = fp.bar_time_ms[fp.cell_bar[idx]] + int(edge * fp.interval_ms)
        y = fp.cell_price[idx] + fp.row_size / 2
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": x.tolist(),
                "y": np.round(y, price_decimals + 1).tolist(),
                "marker": {"symbol": symbol, "size": 7, "color": colour},
                "hovertemplate": f"{name} at %{{y:.{price_decimals}f}}<extra></extra>",
            }
        )
    return traces


def _total_traces(fp: Footprint, unit_label: str) -> list[dict[str, Any]]:
    x = (fp.bar_time_ms + fp.interval_ms // 2).tolist()
    rows = (
        (2, [compact(v) for v in fp.volume.tolist()], [MUTED] * fp.bars, "volume"),
        (1, [compact(v) for v in fp.delta.tolist()], _signed(fp.delta), "delta"),
        (0, [compact(v) for v in fp.cvd.tolist()], _signed(fp.cvd), "CVD at close"),
    )
    return [
        {
            "type": "scatter",
            "mode": "text",
            "name": name,
            "x": x,
            "y": [level] * fp.bars,
            "yaxis": "y2",
            "text": texts,
            "textfont": {"size": 10, "color": colours},
            "hovertemplate": f"{name} %{{text}} {unit_label}<extra></extra>",
        }
        for level, texts, colours, name in rows
    ]


def _signed(values: np.ndarray) -> list[str]:
    return [BID if v > 0 else ASK if v < 0 else MUTED for v in values.tolist()]


def _shapes(fp: Footprint, base: float) -> list[dict[str, Any]]:
    shapes: list[dict[str, Any]] = []
    size, width = fp.row_size, fp.interval_ms
    last_end = int(fp.bar_time_ms[-1]) + width
    for t, poc, until in zip(
        fp.bar_time_ms.tolist(), fp.poc_price.tolist(), fp.naked_until_ms.tolist(), strict=True
    ):
        shapes.append(
            {
                "type": "rect", "xref": "x", "yref": "y",
                "x0": t + width * 0.04, "x1": t + width * 0.96, "y0": poc, "y1": poc + size,
                "line": {"color": ACCENT, "width": 1.5},
            }
        )  # fmt: skip
        end = until if until >= 0 else last_end
        if end > t + width:
            shapes.append(
                {
                    "type": "line", "xref": "x", "yref": "y",
                    "x0": t + width, "x1": end, "y0": poc + size / 2, "y1": poc + size / 2,
                    "line": {"color": ACCENT, "width": 1, "dash": "dot"},
                }
            )  # fmt: skip
    for bar, side, low, high in zip(
        fp.run_bar.tolist(), fp.run_side.tolist(), fp.run_low.tolist(), fp.run_high.tolist(),
        strict=True,
    ):  # fmt: skip
        x = int(fp.bar_time_ms[bar]) + (width * 0.985 if side > 0 else width * 0.015)
        shapes.append(
            {
                "type": "line", "xref": "x", "yref": "y", "x0": x, "x1": x,
                "y0": low, "y1": high + size,
                "line": {"color": BID if side > 0 else ASK, "width": 4},
            }
        )  # fmt: skip
    return shapes


def create_candles_figure(
    candles: CandlesWithDelta, *, uirevision: str, unit_label: str = "", title: str = ""
) -> dict[str, Any]:
    """OHLC candles, volume split by taker side, delta bars and the CVD line."""
    x = (candles.time_ms + candles.interval_ms // 2).tolist()
    width = candles.interval_ms * 0.8
    data = [
        {
            "type": "candlestick",
            "name": "price",
            "x": x,
            "open": candles.open.tolist(),
            "high": candles.high.tolist(),
            "low": candles.low.tolist(),
            "close": candles.close.tolist(),
            "increasing": {"line": {"color": BID}},
            "decreasing": {"line": {"color": ASK}},
        },
        *(
            {
                "type": "bar",
                "name": name,
                "x": x,
                "y": values.tolist(),
                "width": width,
                "yaxis": "y2",
                "marker": {"color": colour},
                "hovertemplate": f"{name} %{{y:,.4f}} {unit_label}<extra></extra>",
            }
            for name, values, colour in (
                ("taker buys", candles.buy_volume, BID),
                ("taker sells", candles.sell_volume, ASK),
            )
        ),
        {
            "type": "bar",
            "name": "delta",
            "x": x,
            "y": candles.delta.tolist(),
            "width": width,
            "yaxis": "y3",
            "marker": {"color": _signed(candles.delta)},
            "hovertemplate": f"delta %{{y:,.4f}} {unit_label}<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "CVD",
            "x": x,
            "y": candles.cvd.tolist(),
            "yaxis": "y4",
            "line": {"color": TEXT, "width": 1.2},
            "hovertemplate": f"CVD %{{y:,.4f}} {unit_label}<extra></extra>",
        },
    ]
    layout = create_base_layout(uirevision, hovermode="x", barmode="stack")
    layout["xaxis"] = dict(layout["xaxis"], type="date", rangeslider={"visible": False})
    layout["yaxis"] = dict(layout["yaxis"], domain=[0.45, 1.0], side="right")
    layout["yaxis2"] = {"domain": [0.25, 0.42], "gridcolor": GRID, "side": "right"}
    layout["yaxis3"] = {"domain": [0.0, 0.22], "gridcolor": GRID, "side": "right"}
    layout["yaxis4"] = {"overlaying": "y3", "side": "left", "showgrid": False}
    layout["margin"] = {"l": 40, "r": 60, "t": 28, "b": 28}
    layout["title"] = {"text": title, "font": {"color": MUTED, "size": 12}, "x": 0.01, "y": 0.98}
    return {"data": data, "layout": layout}
