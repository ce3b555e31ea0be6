"""The recorded book pre-aggregated to minutes (``book-grid-1m``), so a heatmap of hours or
a day reads a few hundred thousand rows instead of millions of per-second cells.

Definition: for every whole minute, side, and ``span`` ∈ {1, 2, 4, …, 64} (stored buckets
per row, rows aligned to multiples of ``span`` buckets: row = ⌊bucket / span⌋): the
**maximum over the minute's recorded seconds of the row's resting size** — per second the
Σ of the row's buckets (each already the bucket's summed size, ``book_grid``), then the
maximum. Summing first and taking the maximum second keeps it exact: a heatmap cell of
``span`` buckets and whole minutes is the maximum of these rows over its minutes, equal to
the cell computed from the seconds (a sum of per-bucket maxima would overstate a row whose
buckets peak at different seconds). Rows of other heights are not derivable exactly, so
the views choose ``span × bucket`` rows over the pyramid (``span_for``).

Only recorded (LIVE) seconds enter: a minute without any has no rows and is drawn empty.
Built incrementally (``extend``) for the complete minutes after the last one built: a
minute is complete once a later second is stored (the writer flushes every second); the
history maintenance thread extends every symbol each period (``extend_all``), a read the
few minutes since. Its segments are compacted (hourly) and counted by the retention like
every other dataset; a segment's ``t1`` is its last minute's last millisecond, later than
the grid's last second of that minute, so the retention (oldest ``t1`` first) deletes a
stretch's grid before its pyramid, never leaving grid without pyramid.
A pyramid segment whose minutes all precede the oldest stored second (the retention
deleted the grid under it) is deleted at the next ``extend``.
Columns: ``time_s`` (the minute's open), ``span``, ``side``, ``row``, ``bucket_e8``,
``max_qty_e8``; each segment sorted by span then time, so a read of one span skips the
others' row groups.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import polars as pl

from services.analytics.heatmap import LiquidityHeatmap, Unit, column_range, row_range
from services.history import schema
from services.history.segments import (
    BOOK_GRID,
    BOOK_TOP,
    Segment,
    list_segments,
    symbols_in,
    write_segment,
)

BOOK_GRID_1M = "book-grid-1m"
SPANS = (1, 2, 4, 8, 16, 32, 64)
PYRAMID: dict[str, pl.DataType] = {
    "time_s": pl.Int64(),
    "span": pl.Int64(),
    "side": pl.Int8(),
    "row": pl.Int64(),
    "bucket_e8": pl.Int64(),
    "max_qty_e8": pl.Int64(),
}
_LOCK = threading.Lock()


def minute_rows(grid: pl.DataFrame) -> pl.DataFrame:
    """``book-grid`` rows (time_s, side, bucket, bucket_e8, max_qty_e8; de-duplicated) as
    pyramid rows for every span (module docstring)."""
    parts = []
    level = grid.lazy().select("time_s", "side", pl.col("bucket").alias("row"), "bucket_e8",
                               "max_qty_e8")  # fmt: skip
    for span in SPANS:
        if span > 1:  # per second, the sums of two neighbouring rows of the span below
            level = level.group_by(["time_s", "side", pl.col("row") // 2, "bucket_e8"]).agg(
                pl.col("max_qty_e8").sum()
            )
        parts.append(
            level.group_by(
                [(pl.col("time_s") // 60 * 60).alias("time_s"), "side", "row", "bucket_e8"]
            )
            .agg(pl.col("max_qty_e8").max())
            .with_columns(pl.lit(span, pl.Int64).alias("span"))
        )
        level = level.collect().lazy()
    return (
        pl.concat(pl.collect_all(parts))
        .select(list(PYRAMID))
        .cast(PYRAMID)  # type: ignore[arg-type]
        .sort(["span", "time_s", "side", "row"])
    )


def extend(root: Path, market: str, symbol: str) -> int:
    """Build the pyramid for the complete minutes not built yet; returns the rows added."""
    with _LOCK:
        built = list_segments(root, market, symbol, BOOK_GRID_1M, PYRAMID).segments
        _drop_expired(root, market, symbol, built)
        newest_built = max(s.t1 for s in built) // 60_000 * 60_000 if built else None
        since_ms = newest_built + 60_000 if newest_built is not None else None
        grid = list_segments(root, market, symbol, BOOK_GRID, schema.BOOK_GRID, since_ms)
        if not grid.segments:
            return 0
        newest_s = max(s.t1 for s in grid.segments) // 1000
        upto_s = newest_s // 60 * 60  # the newest second's minute is not complete
        scan = pl.scan_parquet([s.path for s in grid.segments], schema=schema.BOOK_GRID)
        if since_ms is not None:
            scan = scan.filter(pl.col("time_s") >= since_ms // 1000)
        frame = deduplicated(scan.filter(pl.col("time_s") < upto_s), grid.segments).collect()
        if frame.height == 0:
            return 0
        rows = minute_rows(frame)
        t0 = int(rows["time_s"].min()) * 1000
        t1 = int(rows["time_s"].max()) * 1000 + 59_999  # the last minute's last ms
        write_segment(root, market, symbol.upper(), BOOK_GRID_1M, rows, t0=t0, t1=t1, lo=0,
                      hi=0, writer=f"p{t0}")  # fmt: skip
        return rows.height


def extend_all(root: Path) -> int:
    """``extend`` the pyramid of every stored symbol; returns the rows added. The history
    maintenance calls it every period, so a long view never pays a backlog's build (a read
    still extends by the minutes since, a few ms)."""
    return sum(extend(root, market, symbol) for market, symbol in symbols_in(root))


def _drop_expired(root: Path, market: str, symbol: str, built: list[Segment]) -> None:
    """Delete pyramid segments whose minutes all precede the oldest stored second (the
    retention deleted their source): the pyramid never outlives the grid it summarises."""
    grid = list_segments(root, market, symbol, BOOK_GRID, schema.BOOK_GRID).segments
    oldest = min((s.t0 for s in grid), default=None)
    for segment in built:
        if oldest is None or segment.t1 // 60_000 * 60_000 + 60_000 <= oldest:
            segment.path.unlink(missing_ok=True)


def deduplicated(scan: pl.LazyFrame, segments: list[Segment]) -> pl.LazyFrame:
    """Rows of overlapping segments (a compaction in progress) once, by their maximum."""
    reach = np.maximum.accumulate(np.array([s.t1 for s in segments], np.int64))
    starts = np.array([s.t0 for s in segments], np.int64)
    if not bool((starts[1:] <= reach[:-1]).any()):
        return scan
    keys = ["time_s", "side", "bucket", "bucket_e8"]
    return scan.group_by(keys).agg(pl.col("max_qty_e8").max())


def bucket_size(root: Path, market: str, symbol: str) -> float | None:
    """The stored bucket height of the symbol's newest recorded book (None without one)."""
    segments = list_segments(root, market, symbol, BOOK_GRID, schema.BOOK_GRID).segments
    if not segments:
        return None
    first = pl.read_parquet(segments[-1].path, columns=["bucket_e8"], n_rows=1)
    return int(first["bucket_e8"][0]) / schema.SCALE if first.height else None


def span_for(bucket: float, low: float, high: float, max_rows: int) -> int | None:
    """The smallest span whose rows (span × ``bucket`` high) cover low..high in at most
    ``max_rows`` rows; None when even the widest span needs more."""
    for span in SPANS:
        if (high - low) / (span * bucket) + 1 <= max_rows:
            return span
    return None


def pyramid_heatmap(
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
    span: int,
    bucket: float,
    unit: Unit = "base",
) -> LiquidityHeatmap:
    """The heatmap of whole-minute columns (``time_bucket_ms`` a multiple of 60 000) and
    rows of ``span`` stored buckets from the pyramid: the same cells as ``stored_heatmap``
    with ``price_bucket_ticks = span × bucket / tick``. ``unit="quote"`` multiplies a row's
    size by its middle price."""
    if time_bucket_ms % 60_000 or span not in SPANS:
        raise ValueError("time_bucket_ms must be whole minutes and span one of SPANS")
    symbol = symbol.upper()
    height = span * bucket
    rows = row_range(price_low, price_high, tick_size, height)
    columns = column_range(start_ms, end_ms, time_bucket_ms)
    first_row, nrows = rows.start, len(rows)
    first_col, ncols = columns.start, len(columns)
    listing = list_segments(root, market, symbol, BOOK_GRID_1M, PYRAMID, start_ms, end_ms - 1)
    bids = np.full((ncols, nrows), np.nan)
    asks = np.full((ncols, nrows), np.nan)
    counts = np.zeros(ncols, np.int64)
    if listing.segments:
        e8 = float(schema.SCALE)
        minute_lo, minute_hi = -(-start_ms // 60_000) * 60, (end_ms - 1) // 60_000 * 60
        scan = pl.scan_parquet([s.path for s in listing.segments], schema=PYRAMID).filter(
            (pl.col("span") == span)
            & (pl.col("time_s") >= minute_lo)
            & (pl.col("time_s") <= minute_hi)
        )
        col = (pl.col("time_s") * 1000 // time_bucket_ms - first_col).alias("col")
        size = pl.col("max_qty_e8") / e8
        if unit == "quote":
            size = size * ((pl.col("row") + 0.5) * height)
        cells = (
            scan.select(col, "side", (pl.col("row") - first_row).alias("r"), size.alias("v"))
            .group_by(["col", "side", "r"])
            .agg(pl.col("v").max())
        )
        minutes = scan.select(col).unique()
        cells_df, minutes_df = pl.collect_all([cells, minutes])
        np.add.at(counts, minutes_df["col"].to_numpy(), 1)
        live = counts > 0
        bids[live] = 0.0
        asks[live] = 0.0
        c, s, r, v = (cells_df[k].to_numpy() for k in ("col", "side", "r", "v"))
        inside = (r >= 0) & (r < nrows)
        for grid, sign in ((bids, 1), (asks, -1)):
            pick = inside & (s == sign)
            grid[c[pick], r[pick]] = v[pick]
    live = counts > 0
    top = _top_between(root, market, symbol, start_ms, end_ms)
    best_bid, best_ask = column_best(top, first_col, ncols, time_bucket_ms, live)
    return LiquidityHeatmap(
        time_ms=np.arange(columns.start, columns.stop, dtype=np.int64) * time_bucket_ms,
        time_bucket_ms=time_bucket_ms,
        price=np.arange(rows.start, rows.stop, dtype=np.float64) * height,
        price_bucket=height,
        tick_size=tick_size,
        bids=bids,
        asks=asks,
        live=live,
        best_bid=best_bid,
        best_ask=best_ask,
        samples=counts,
        unit=unit,
    )


def column_best(
    top: pl.LazyFrame, first_col: int, ncols: int, bucket_ms: int, live: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Best bid and ask of each LIVE column from ``book-top`` rows: the column's last LIVE
    two-sided row (NaN in columns not ``live`` and in those without such a row)."""
    best_bid = np.full(ncols, np.nan)
    best_ask = np.full(ncols, np.nan)
    rows = (
        top.filter(pl.col("live") & (pl.col("bid_e8") > 0) & (pl.col("ask_e8") > 0))
        .group_by((pl.col("time_ms") // bucket_ms - first_col).alias("col"))
        .agg(pl.col("bid_e8").sort_by("time_ms").last(), pl.col("ask_e8").sort_by("time_ms").last())
        .filter((pl.col("col") >= 0) & (pl.col("col") < ncols))
        .collect()
    )
    col = rows["col"].to_numpy()
    e8 = float(schema.SCALE)
    best_bid[col] = rows["bid_e8"].to_numpy() / e8
    best_ask[col] = rows["ask_e8"].to_numpy() / e8
    best_bid[~live] = np.nan
    best_ask[~live] = np.nan
    return best_bid, best_ask


def _top_between(root: Path, market: str, symbol: str, start_ms: int, end_ms: int) -> pl.LazyFrame:
    """The ``book-top`` rows with ``start_ms ≤ time_ms < end_ms``."""
    listing = list_segments(root, market, symbol, BOOK_TOP, schema.BOOK_TOP, start_ms, end_ms)
    if not listing.segments:
        return pl.LazyFrame(schema=schema.BOOK_TOP)
    scan = pl.scan_parquet([s.path for s in listing.segments], schema=schema.BOOK_TOP)
    return scan.filter((pl.col("time_ms") >= start_ms) & (pl.col("time_ms") < end_ms))
