"""Liquidity heatmap: resting size per (time bucket, price row), and trade dots to draw on it.

Columns are epoch-aligned time buckets of ``time_bucket_ms``: a book sample taken at
``time_ms`` belongs to the column opening at ``⌊time_ms / time_bucket_ms⌋ · time_bucket_ms``.
Rows are ``price_bucket`` = k × tick size high, aligned to multiples of it; a level at
``price`` belongs to the row ``⌊(price + tick/2) / price_bucket⌋`` (half a tick of slack
against float rounding), and rows from the one holding ``price_low`` to the one holding
``price_high`` are drawn.

Cell value: the MAXIMUM, over the LIVE samples of the column, of the size resting in the
row in that sample (Σ of the row's levels' quantities, or of quantity × price with
``unit="quote"``), bids and asks separately. A row without levels in a LIVE sample counts
0. A column without any LIVE sample is empty (NaN in every row) and ``live`` is False for
it: a period without a LIVE book is never filled in from its neighbours.

best_bid / best_ask of a column: those of its last LIVE sample (NaN when none).

Columns depend only on their own samples, so a live heatmap grows by computing the new
columns alone and appending them (``append_columns``); nothing already computed is redone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from services.analytics.footprint import price_rows
from services.market.views import BookSample, TradeView

Unit = Literal["base", "quote"]


@dataclass(frozen=True, slots=True)
class LiquidityHeatmap:
    """A time × price grid of resting size (module docstring for the definitions).

    time_ms: open time of each column (ascending); time_bucket_ms: column width.
    price: lower edge of each row (ascending); price_bucket: row height; tick_size.
    bids / asks: (columns, rows) arrays of the maximum resting size per cell, NaN in
        columns without a LIVE sample. live: per column, whether it had a LIVE sample.
    best_bid / best_ask: per column, from its last LIVE sample. samples: LIVE samples per
        column. unit: "base" (quantity) or "quote" (quantity × price).
    """

    time_ms: np.ndarray
    time_bucket_ms: int
    price: np.ndarray
    price_bucket: float
    tick_size: float
    bids: np.ndarray
    asks: np.ndarray
    live: np.ndarray
    best_bid: np.ndarray
    best_ask: np.ndarray
    samples: np.ndarray
    unit: Unit

    @property
    def columns(self) -> int:
        return int(self.time_ms.shape[0])

    @property
    def rows(self) -> int:
        return int(self.price.shape[0])

    @property
    def end_ms(self) -> int:
        """Close of the last column (its open time + the bucket)."""
        return int(self.time_ms[-1]) + self.time_bucket_ms if self.columns else 0


def row_range(price_low: float, price_high: float, tick_size: float, price_bucket: float) -> range:
    """Row indexes from the row holding ``price_low`` to the one holding ``price_high``."""
    half = tick_size / 2.0
    first = math.floor((price_low + half) / price_bucket)
    last = math.floor((price_high + half) / price_bucket)
    return range(first, max(last, first) + 1)


def column_range(start_ms: int, end_ms: int, time_bucket_ms: int) -> range:
    """Column indexes (open time // ``time_bucket_ms``) from the column holding
    ``start_ms`` to the one holding ``end_ms − 1``."""
    return range(start_ms // time_bucket_ms, (end_ms - 1) // time_bucket_ms + 1)


def liquidity_heatmap(
    samples: Sequence[BookSample],
    *,
    start_ms: int,
    end_ms: int,
    time_bucket_ms: int,
    price_low: float,
    price_high: float,
    tick_size: float,
    price_bucket_ticks: int = 1,
    unit: Unit = "base",
) -> LiquidityHeatmap:
    """The heatmap of the samples (ascending ``time_ms``) with ``start_ms ≤ time_ms <
    end_ms``, in the columns from the one holding ``start_ms`` to the one holding
    ``end_ms − 1``, and the rows covering ``price_low..price_high``."""
    if time_bucket_ms <= 0 or price_bucket_ticks < 1 or not tick_size > 0:
        raise ValueError("time_bucket_ms, price_bucket_ticks and tick_size must be positive")
    if unit not in ("base", "quote"):
        raise ValueError(f"unit must be 'base' or 'quote', not {unit!r}")
    if end_ms <= start_ms:
        raise ValueError("end_ms must be after start_ms")
    bucket = tick_size * price_bucket_ticks
    rows = row_range(price_low, price_high, tick_size, bucket)
    columns = column_range(start_ms, end_ms, time_bucket_ms)
    first_col, ncols, nrows = columns.start, len(columns), len(rows)
    bids = np.full((ncols, nrows), np.nan)
    asks = np.full((ncols, nrows), np.nan)
    best_bid = np.full(ncols, np.nan)
    best_ask = np.full(ncols, np.nan)
    counts = np.zeros(ncols, dtype=np.int64)
    times = np.fromiter((s.time_ms for s in samples), dtype=np.int64, count=len(samples))
    lo = int(np.searchsorted(times, start_ms, "left"))
    hi = int(np.searchsorted(times, end_ms, "left"))
    cols = times[lo:hi] // time_bucket_ms - first_col
    edges = (np.arange(rows.start, rows.stop + 1, dtype=np.float64) * bucket) - tick_size / 2.0
    bounds = np.flatnonzero(np.diff(cols)) + 1
    for a, b in zip(
        np.concatenate(([0], bounds)).tolist(),
        np.concatenate((bounds, [cols.shape[0]])).tolist(),
        strict=True,
    ):
        if a == b:
            continue
        column = [s for s in samples[lo + a : lo + b] if s.is_live]
        if not column:
            continue
        c = int(cols[a])
        counts[c] = len(column)
        bids[c] = _column_max(column, "bid", edges, unit)
        asks[c] = _column_max(column, "ask", edges, unit)
        best_bid[c] = column[-1].best_bid
        best_ask[c] = column[-1].best_ask
    return LiquidityHeatmap(
        time_ms=np.arange(columns.start, columns.stop, dtype=np.int64) * time_bucket_ms,
        time_bucket_ms=time_bucket_ms,
        price=np.arange(rows.start, rows.stop, dtype=np.float64) * bucket,
        price_bucket=bucket,
        tick_size=tick_size,
        bids=bids,
        asks=asks,
        live=counts > 0,
        best_bid=best_bid,
        best_ask=best_ask,
        samples=counts,
        unit=unit,
    )


def _column_max(column: list[BookSample], side: str, edges: np.ndarray, unit: Unit) -> np.ndarray:
    """Max over the samples of Σ size per row, for all the column's samples at once.

    Each sample's levels are sorted by price, so its rows are the runs between the row
    edges' positions. The samples are laid end to end on one ascending key (price − low +
    j·width for sample j, width wider than any sample's price span), the edges of every
    sample are found by one binary search, and one ``reduceat`` sums every (sample, row).
    """
    nrows = edges.shape[0] - 1
    ordered = [
        (s.bid_prices[::-1], s.bid_qtys[::-1]) if side == "bid" else (s.ask_prices, s.ask_qtys)
        for s in column
    ]
    sizes = np.fromiter((p.shape[0] for p, _ in ordered), dtype=np.int64, count=len(ordered))
    if not sizes.any():
        return np.zeros(nrows)
    prices = np.concatenate([p for p, _ in ordered])
    values = np.concatenate([q for _, q in ordered]).astype(np.float64)
    if unit == "quote":
        values *= prices
    low = min(float(prices.min()), float(edges[0]))
    width = max(float(prices.max()), float(edges[-1])) - low + 1.0
    starts = np.arange(len(column), dtype=np.float64) * width
    keys = (prices - low) + np.repeat(starts, sizes)
    bounds = ((edges - low)[None, :] + starts[:, None]).ravel()
    at = np.searchsorted(keys, bounds, "left")
    sums = np.add.reduceat(np.append(values, 0.0), at)
    sums[np.append(at[1:] == at[:-1], True)] = 0.0
    return sums.reshape(len(column), nrows + 1)[:, :-1].max(axis=0)


def append_columns(grid: LiquidityHeatmap, new: LiquidityHeatmap) -> LiquidityHeatmap:
    """``grid`` extended by ``new``'s columns (same rows, bucket and unit); a column of
    ``new`` that ``grid`` already has (the last one, recomputed once complete) replaces it.
    Equals ``liquidity_heatmap`` over the union of both ranges."""
    if (
        grid.time_bucket_ms != new.time_bucket_ms
        or grid.unit != new.unit
        or not np.array_equal(grid.price, new.price)
    ):
        raise ValueError("append_columns needs the same rows, time bucket and unit")
    if new.columns == 0:
        return grid
    keep = int(np.searchsorted(grid.time_ms, new.time_ms[0], "left"))

    def join(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.concatenate((a[:keep], b))

    return LiquidityHeatmap(
        time_ms=join(grid.time_ms, new.time_ms),
        time_bucket_ms=grid.time_bucket_ms,
        price=grid.price,
        price_bucket=grid.price_bucket,
        tick_size=grid.tick_size,
        bids=join(grid.bids, new.bids),
        asks=join(grid.asks, new.asks),
        live=join(grid.live, new.live),
        best_bid=join(grid.best_bid, new.best_bid),
        best_ask=join(grid.best_ask, new.best_ask),
        samples=join(grid.samples, new.samples),
        unit=grid.unit,
    )


@dataclass(frozen=True, slots=True)
class TradeDots:
    """Trades merged into dots to draw on the heatmap: one dot per (time bucket, price row,
    taker side).

    time_ms: the bucket's open time. price: VWAP of the dot's trades. qty: Σ qty (base).
    notional: Σ price·qty. side: +1 taker buys, −1 taker sells. count: trades merged.
    """

    time_ms: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    notional: np.ndarray
    side: np.ndarray
    count: np.ndarray


def trade_dots(
    view: TradeView, *, time_bucket_ms: int, tick_size: float, price_bucket_ticks: int = 1
) -> TradeDots:
    """The view's trades merged per (time bucket, price row, side) (see ``TradeDots``).
    Filter the view first (``flow_filter``) to keep only the sizes wanted."""
    if len(view) == 0:
        e = np.empty(0)
        ei = np.empty(0, dtype=np.int64)
        return TradeDots(ei, e, e, e, e, ei)
    bucket = tick_size * price_bucket_ticks
    col = view.time_ms // time_bucket_ms
    row = price_rows(view.price, tick_size, bucket)
    buy = (view.side > 0).astype(np.int64)
    # one int64 key in (column, row, side) order: a 1-D unique, not a slow axis=1 one
    col0, row0 = int(col.min()), int(row.min())
    rows = int(row.max()) - row0 + 1
    keys = ((col - col0) * rows + (row - row0)) * 2 + buy
    uniq_keys, inv = np.unique(keys, return_inverse=True)
    inv = inv.reshape(-1)
    uniq = (uniq_keys // 2 // rows + col0, uniq_keys // 2 % rows + row0, uniq_keys % 2)
    qty = np.bincount(inv, weights=view.qty)
    notional = np.bincount(inv, weights=view.qty * view.price)
    return TradeDots(
        time_ms=uniq[0] * time_bucket_ms,
        price=np.divide(notional, qty, out=np.full(qty.shape, np.nan), where=qty > 0),
        qty=qty,
        notional=notional,
        side=np.where(uniq[2] == 1, 1.0, -1.0),
        count=np.bincount(inv).astype(np.int64),
    )
