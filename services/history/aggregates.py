"""Per-segment aggregates of stored trades, so long-range stats, volume profiles and candles
read a few thousand rows instead of millions.

For a trade segment (immutable once written) the compactor writes two aggregate files with
the **same name** (``t0_t1_lo_hi_writer``) in sibling datasets:

* ``minutes-{kind}`` — one row per UTC minute of the segment's trades: ``open_ms``; the
  first and last trade of the minute (``first_id``/``last_id``, their times
  ``first_ms``/``last_ms`` and prices ``open_e8``/``close_e8``); ``high_e8``, ``low_e8``;
  ``volume_e8`` = Σ qty, ``buy_e8`` = Σ qty of taker buys (buyer not maker), exact in 10⁻⁸;
  ``trades`` = row count, ``maker_trades`` = rows whose buyer was the maker; ``quote`` =
  Σ price·qty (float, price and qty in 10⁻⁸ units, as ``stats_of`` sums it).
* ``prices-{kind}`` — one row per (price, taker side) of the segment: ``key`` =
  ``price_e8 · 2 + buyer_maker``, ``qty_e8`` = Σ qty, ``trades`` = row count.

Each row is a *partial*: a minute cut by a segment boundary has a row in each segment, and
partials combine exactly (sums add, extremes take the extreme, the first/last trade is the
one with the lowest/highest id). A reader uses a segment's aggregates only when the whole
segment lies inside the queried range and no listed segment overlaps another (during a
compaction: then every row is read and de-duplicated); every other segment's rows are read
and reduced to the same partials. An aggregate whose segment is gone (merged, retention)
matches nothing and is removed by the next compaction. So a result is the same with or
without aggregates, to the last 10⁻⁸ (``quote`` to float rounding).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from services.history import schema
from services.history.segments import (
    Segment,
    list_segments,
    segment_name,
    trades_dataset,
    write_segment,
)

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
SETTLED_ROWS = 100_000
"""A segment this large is aggregated even in the newest hour (it will not be merged)."""

MINUTE_COLUMNS: dict[str, pl.DataType] = {
    "open_ms": pl.Int64(),
    "first_id": pl.Int64(),
    "last_id": pl.Int64(),
    "first_ms": pl.Int64(),
    "last_ms": pl.Int64(),
    "open_e8": pl.Int64(),
    "high_e8": pl.Int64(),
    "low_e8": pl.Int64(),
    "close_e8": pl.Int64(),
    "volume_e8": pl.Int64(),
    "buy_e8": pl.Int64(),
    "trades": pl.Int64(),
    "maker_trades": pl.Int64(),
    "quote": pl.Float64(),
}
PRICE_COLUMNS: dict[str, pl.DataType] = {
    "key": pl.Int64(),
    "qty_e8": pl.Int64(),
    "trades": pl.Int64(),
}


def aggregate_datasets() -> dict[str, tuple[str, dict[str, pl.DataType]]]:
    """Every aggregate dataset → (the trades dataset whose segments it summarises, its
    columns)."""
    return {
        dataset(kind): (trades_dataset(kind), columns)
        for kind in ("aggTrade", "trade")
        for dataset, columns in ((minutes_dataset, MINUTE_COLUMNS), (prices_dataset, PRICE_COLUMNS))
    }


def minutes_dataset(kind: str) -> str:
    return "minutes-" + trades_dataset(kind).removeprefix("trades-")


def prices_dataset(kind: str) -> str:
    return "prices-" + trades_dataset(kind).removeprefix("trades-")


def minute_partials(trades: pl.LazyFrame) -> pl.LazyFrame:
    """Trade rows (``schema.TRADES``, in id order) reduced to ``MINUTE_COLUMNS`` rows, one
    per minute (first/last by position: the rows come in id order)."""
    return trades.group_by(
        (pl.col("time_ms") // MINUTE_MS * MINUTE_MS).alias("open_ms"), maintain_order=True
    ).agg(
        pl.col("trade_id").first().alias("first_id"),
        pl.col("trade_id").last().alias("last_id"),
        pl.col("time_ms").first().alias("first_ms"),
        pl.col("time_ms").last().alias("last_ms"),
        pl.col("price_e8").first().alias("open_e8"),
        pl.col("price_e8").max().alias("high_e8"),
        pl.col("price_e8").min().alias("low_e8"),
        pl.col("price_e8").last().alias("close_e8"),
        pl.col("qty_e8").sum().alias("volume_e8"),
        (pl.col("qty_e8") * (~pl.col("buyer_maker"))).sum().alias("buy_e8"),
        pl.len().cast(pl.Int64).alias("trades"),
        pl.col("buyer_maker").sum().cast(pl.Int64).alias("maker_trades"),
        (pl.col("price_e8").cast(pl.Float64) * pl.col("qty_e8").cast(pl.Float64))
        .sum()
        .alias("quote"),
    )


def price_partials(trades: pl.LazyFrame) -> pl.LazyFrame:
    """Trade rows reduced to ``PRICE_COLUMNS`` rows, one per (price, taker side)."""
    key = pl.col("price_e8") * 2 + pl.col("buyer_maker").cast(pl.Int64)
    return trades.group_by(key.alias("key")).agg(
        pl.col("qty_e8").sum(), pl.len().cast(pl.Int64).alias("trades")
    )


def combine_minutes(partials: pl.LazyFrame) -> pl.LazyFrame:
    """Minute partials (of several segments) combined into one row per minute, by time."""
    first = pl.col("first_id").arg_min()
    last = pl.col("last_id").arg_max()
    return (
        partials.group_by("open_ms")
        .agg(
            pl.col("first_id").min(),
            pl.col("last_id").max(),
            pl.col("first_ms").get(first),
            pl.col("last_ms").get(last),
            pl.col("open_e8").get(first),
            pl.col("high_e8").max(),
            pl.col("low_e8").min(),
            pl.col("close_e8").get(last),
            pl.col("volume_e8").sum(),
            pl.col("buy_e8").sum(),
            pl.col("trades").sum(),
            pl.col("maker_trades").sum(),
            pl.col("quote").sum(),
        )
        .sort("open_ms")
    )


def combine_prices(partials: pl.LazyFrame) -> pl.LazyFrame:
    """Price partials combined into one row per (price, side) key, by key."""
    return partials.group_by("key").agg(pl.col("qty_e8").sum(), pl.col("trades").sum()).sort("key")


@dataclass(frozen=True, slots=True)
class Partials:
    """One kind of aggregate as a reader uses it: its dataset per trade kind, its columns,
    how trade rows reduce to its partials and how partials combine."""

    dataset: Callable[[str], str]
    columns: dict[str, pl.DataType]
    reduce: Callable[[pl.LazyFrame], pl.LazyFrame]
    combine: Callable[[pl.LazyFrame], pl.LazyFrame]


MINUTES = Partials(minutes_dataset, MINUTE_COLUMNS, minute_partials, combine_minutes)
PRICES = Partials(prices_dataset, PRICE_COLUMNS, price_partials, combine_prices)


def aggregate_segments(root: Path, market: str, symbol: str, kind: str) -> int:
    """Write the aggregates of the settled trade segments that lack them (a segment is
    settled when a newer hour has trades, or when it holds ``SETTLED_ROWS`` ids: the
    compactor will not merge it again unless a backfill lands beside it), and remove
    aggregates whose segment is gone. Returns the segments aggregated."""
    trades = list_segments(root, market, symbol, trades_dataset(kind), schema.TRADES).segments
    names = {segment_name(s.t0, s.t1, s.lo, s.hi, s.writer): s for s in trades}
    newest_hour = max((s.t1 // HOUR_MS for s in trades), default=0)
    done = 0
    have: dict[str, set[str]] = {}
    for dataset, columns in (
        (minutes_dataset(kind), MINUTE_COLUMNS),
        (prices_dataset(kind), PRICE_COLUMNS),
    ):
        have[dataset] = set()
        for aggregate in list_segments(root, market, symbol, dataset, columns).segments:
            if aggregate.path.name in names:
                have[dataset].add(aggregate.path.name)
            else:
                aggregate.path.unlink(missing_ok=True)
    for name, segment in names.items():
        if all(name in found for found in have.values()):
            continue
        if segment.t0 // HOUR_MS >= newest_hour and segment.hi - segment.lo + 1 < SETTLED_ROWS:
            continue
        try:
            _write(root, market, symbol, kind, segment)
        except FileNotFoundError:
            continue  # merged away meanwhile
        done += 1
    return done


def _write(root: Path, market: str, symbol: str, kind: str, segment: Segment) -> None:
    rows = pl.scan_parquet(segment.path, schema=schema.TRADES)
    minutes, prices = pl.collect_all([minute_partials(rows), price_partials(rows)])
    for dataset, frame in ((minutes_dataset(kind), minutes), (prices_dataset(kind), prices)):
        write_segment(
            root, market, symbol, dataset, frame.sort(frame.columns[0]),
            t0=segment.t0, t1=segment.t1, lo=segment.lo, hi=segment.hi, writer=segment.writer,
        )  # fmt: skip
