"""The liquidity heatmap of a stored range: the recorded book (``book_grid``) read straight
into a ``LiquidityHeatmap``, without rebuilding book samples.

Cell definition (the live heatmap's, ``services.analytics.heatmap``): the maximum over the
column's LIVE seconds of the size resting in the row, bids and asks apart. The store keeps
per second and bucket the bucket's summed size (max over the second's sampled states), so:

1. a stored bucket belongs to the heatmap row holding its lower price
   (``⌊(price + tick/2) / row height⌋``, as a level does);
2. per second, side and row: Σ of the row's buckets (the row's resting size then);
3. per column, side and row: the maximum of those sums over the column's seconds.

This is exact when the row height is a whole number of stored buckets and rows and buckets
share their alignment (both are multiples of the tick from price 0, so a row of k buckets
is exact); a row that cuts a bucket gets the whole bucket. ``unit="quote"`` multiplies a
bucket's size by its middle price (the stored form has no per-level prices).

A column is LIVE when at least one of its seconds was LIVE by ``book-top`` **and** has
recorded cells; every other column is NaN (downtime, not LIVE, not recorded) — never
filled in from its neighbours. best bid / ask: the last LIVE ``book-top`` row in the column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from services.analytics.heatmap import LiquidityHeatmap, Unit, column_range, row_range
from services.history import schema
from services.history.book_grid import live_seconds
from services.history.book_pyramid import (
    SPANS,
    bucket_size,
    column_best,
    deduplicated,
    extend,
    pyramid_heatmap,
    span_for,
)
from services.history.reader import HistoryReader, retrying
from services.history.segments import BOOK_GRID, BOOK_TOP, list_segments


def stored_heatmap(
    root: Path,
    market: str,
    symbol: str,
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
    """The heatmap of the recorded book of ``symbol`` in [start_ms, end_ms) under the
    history ``root``; same columns and rows as ``liquidity_heatmap`` with these arguments
    (columns are whole seconds: ``time_bucket_ms`` must be a multiple of 1000)."""
    if time_bucket_ms <= 0 or time_bucket_ms % 1000 or price_bucket_ticks < 1 or tick_size <= 0:
        raise ValueError("time_bucket_ms must be whole seconds; row and tick sizes positive")
    if end_ms <= start_ms:
        raise ValueError("end_ms must be after start_ms")
    return retrying(
        lambda: _stored_heatmap(root, market, symbol.upper(), start_ms, end_ms, time_bucket_ms,
                                price_low, price_high, tick_size, price_bucket_ticks, unit)
    )  # fmt: skip


def _stored_heatmap(
    root: Path,
    market: str,
    symbol: str,
    start_ms: int,
    end_ms: int,
    bucket_ms: int,
    price_low: float,
    price_high: float,
    tick: float,
    ticks: int,
    unit: Unit,
) -> LiquidityHeatmap:
    height = tick * ticks
    rows = row_range(price_low, price_high, tick, height)
    columns = column_range(start_ms, end_ms, bucket_ms)
    first_col, ncols = columns.start, len(columns)
    start_s, end_s = -(-start_ms // 1000), -(-end_ms // 1000)
    top = _top(root, market, symbol, end_ms)
    top_ms = top["time_ms"].to_numpy()
    top_live = top["live"].to_numpy()
    live_s = live_seconds(top_ms, top_live, start_s, end_s)
    cells, seconds = _cells(root, market, symbol, start_s, end_s, bucket_ms, tick, height,
                            rows, unit)  # fmt: skip
    recorded = np.zeros(end_s - start_s, bool)
    recorded[seconds - start_s] = True
    cols_of_s = np.arange(start_s, end_s, dtype=np.int64) * 1000 // bucket_ms - first_col
    counts = np.bincount(cols_of_s[live_s & recorded], minlength=ncols)[:ncols]
    live = counts > 0
    empty = np.where(live, 0.0, np.nan)[:, None] * np.ones((1, len(rows)))
    bids, asks = empty, empty.copy()
    col = cells["col"].to_numpy() - first_col
    row = cells["row"].to_numpy() - rows.start
    side = cells["side"].to_numpy()
    value = cells["value"].to_numpy()
    for grid, sign in ((bids, 1), (asks, -1)):
        pick = (side == sign) & live[col]
        grid[col[pick], row[pick]] = value[pick]
    best_bid, best_ask = column_best(top.lazy(), first_col, ncols, bucket_ms, live)
    return LiquidityHeatmap(
        time_ms=np.arange(columns.start, columns.stop, dtype=np.int64) * bucket_ms,
        time_bucket_ms=bucket_ms,
        price=np.arange(rows.start, rows.stop, dtype=np.float64) * height,
        price_bucket=height,
        tick_size=tick,
        bids=bids,
        asks=asks,
        live=live,
        best_bid=best_bid,
        best_ask=best_ask,
        samples=counts.astype(np.int64),
        unit=unit,
    )


def _cells(
    root: Path,
    market: str,
    symbol: str,
    start_s: int,
    end_s: int,
    bucket_ms: int,
    tick: float,
    height: float,
    rows: range,
    unit: Unit,
) -> tuple[pl.DataFrame, np.ndarray]:
    """(col, side, row, value) of every non-empty cell, and the recorded seconds."""
    listing = list_segments(root, market, symbol, BOOK_GRID, schema.BOOK_GRID,
                            start_s * 1000, end_s * 1000 - 1)  # fmt: skip
    if not listing.segments:
        cells = pl.DataFrame(schema={"col": pl.Int64, "side": pl.Int8, "row": pl.Int64,
                                     "value": pl.Float64})  # fmt: skip
        return cells, np.empty(0, np.int64)
    scan = pl.scan_parquet([s.path for s in listing.segments], schema=schema.BOOK_GRID)
    scan = deduplicated(
        scan.filter((pl.col("time_s") >= start_s) & (pl.col("time_s") < end_s)), listing.segments
    )
    e8 = float(schema.SCALE)
    price = pl.col("bucket") * pl.col("bucket_e8") / e8
    size = pl.col("max_qty_e8") / e8
    if unit == "quote":
        size = size * (price + pl.col("bucket_e8") / (2 * e8))
    row = ((price + tick / 2.0) / height).floor().cast(pl.Int64)
    cells = (
        scan.select("time_s", "side", row.alias("row"), size.alias("value"))
        .filter((pl.col("row") >= rows.start) & (pl.col("row") < rows.stop))
        .group_by(["time_s", "side", "row"])
        .agg(pl.col("value").sum())
        .group_by([(pl.col("time_s") * 1000 // bucket_ms).alias("col"), "side", "row"])
        .agg(pl.col("value").max())
    )
    seconds = scan.select(pl.col("time_s").unique())
    cells_df, seconds_df = pl.collect_all([cells, seconds])
    return cells_df, seconds_df["time_s"].to_numpy()


def _top(root: Path, market: str, symbol: str, end_ms: int) -> pl.DataFrame:
    """``book-top`` rows up to ``end_ms`` (time order): the state at the range's start is
    the last change before it, so the scan starts at the beginning of the store."""
    listing = list_segments(root, market, symbol, BOOK_TOP, schema.BOOK_TOP, None, end_ms)
    if not listing.segments:
        return pl.DataFrame(schema=schema.BOOK_TOP)
    scan = pl.scan_parquet([s.path for s in listing.segments], schema=schema.BOOK_TOP)
    return scan.filter(pl.col("time_ms") < end_ms).sort("time_ms").collect()


def with_live(stored: LiquidityHeatmap, live: LiquidityHeatmap) -> LiquidityHeatmap:
    """One grid from a stored and a live heatmap over the same columns and rows: each
    column from ``live`` where it was LIVE there (the ring is the finer record of the last
    minutes), else from ``stored``."""
    if not (
        np.array_equal(stored.time_ms, live.time_ms) and np.array_equal(stored.price, live.price)
    ):
        raise ValueError("with_live needs the same columns and rows")
    pick = live.live

    def column(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(pick.reshape((-1,) + (1,) * (a.ndim - 1)), b, a)

    return LiquidityHeatmap(
        time_ms=live.time_ms,
        time_bucket_ms=live.time_bucket_ms,
        price=live.price,
        price_bucket=live.price_bucket,
        tick_size=live.tick_size,
        bids=column(stored.bids, live.bids),
        asks=column(stored.asks, live.asks),
        live=stored.live | live.live,
        best_bid=column(stored.best_bid, live.best_bid),
        best_ask=column(stored.best_ask, live.best_ask),
        samples=column(stored.samples, live.samples),
        unit=live.unit,
    )


class RecordedBook:
    """The recorded book of every stored symbol under a history root, as heatmaps: whole
    minute columns with rows of 2^k stored buckets come from the minute pyramid
    (``book_pyramid``, extended to the last complete minute first), anything else from
    the per-second grid (``stored_heatmap``); both give the same cells."""

    def __init__(self, reader: HistoryReader) -> None:
        self.reader = reader

    def row_ticks(
        self, symbol: str, low: float, high: float, tick: float, max_rows: int
    ) -> int | None:
        """Ticks per row for a view of low..high in at most ``max_rows`` rows that the
        pyramid serves (2^k stored buckets), or None without a recorded book."""
        market = self.reader.market_of(symbol)
        bucket = bucket_size(self.reader.root, market, symbol) if market else None
        span = span_for(bucket, low, high, max_rows) if bucket else None
        return round(span * bucket / tick) if span and bucket and tick > 0 else None

    def heatmap(self, symbol: str, **grid: Any) -> LiquidityHeatmap | None:
        """The stored heatmap of ``symbol`` (its spot market when both are stored), or None
        when nothing of its book is stored or the columns are not whole seconds."""
        market = self.reader.market_of(symbol)
        if market is None or grid["time_bucket_ms"] % 1000:
            return None
        root = self.reader.root
        if grid["time_bucket_ms"] % 60_000 == 0:
            bucket = bucket_size(root, market, symbol)
            height = grid["tick_size"] * grid["price_bucket_ticks"]
            span = round(height / bucket) if bucket else 0
            if span in SPANS and abs(span * bucket - height) < grid["tick_size"] / 2:
                extend(root, market, symbol)
                pyramid = dict(grid, span=span, bucket=bucket)
                del pyramid["price_bucket_ticks"]
                return retrying(lambda: pyramid_heatmap(root, market, symbol, **pyramid))
        return stored_heatmap(root, market, symbol, **grid)
