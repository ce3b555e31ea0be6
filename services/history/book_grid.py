"""The recorded book: what is kept of the order book so a liquidity heatmap of any past
range can be redrawn, and how it is reduced (pure functions, no I/O).

Form chosen (DESIGN note)
-------------------------
Two tables, both plain columns:

* **book-grid** — for every second, side and price bucket within ``band_pct`` (±2 % by
  default) of the mid: the **maximum**, over **every LIVE state of the book during that
  second** (after each applied diff, and a snapshot), of the resting quantity **summed
  over every level of the bucket**. The band is whole buckets: from the bucket holding
  ``mid × (1 − band_pct/100)`` up for bids, up to the one holding ``mid × (1 +
  band_pct/100)`` for asks, at each state's own mid. The writer keeps it from the diffs
  themselves (``live_grid``: a copy of the levels and per-bucket sums updated in
  O(levels a diff sets)), so recording the book costs the feed no copy of it. Bids and
  asks are kept apart (a bucket may hold both while the book moves through it in a second).
  Columns: ``time_s``, ``side`` +1 bid / −1 ask, ``bucket`` = the bucket's index, its
  lower price = ``bucket × bucket_e8``, ``max_qty_e8`` = that maximum of the bucket's sum.
* **book-top** — the best bid and ask (price and size) at every change, and every change of
  the book's LIVE state (``live`` false = from here on not LIVE: nothing is recorded into
  the grid until the book is LIVE again, so a heatmap leaves that band empty).

Why the sum (and not the largest single level, as this table held at first): the
liquidity heatmap's cell is the maximum over its time bucket of the size resting in its
price row, the row's levels **summed** (``services.analytics.heatmap``; Bookmap, TradingLite
and flowsurface's merged rows all show the liquidity of the whole row). A row is one or
more buckets, and Σ over a row's buckets of each bucket's sum is exactly that row's size in
that second, so a stored range draws the same cells as the live heatmap — with the
largest single level a wall spread over five ticks would show as a fifth of itself and
no row could ever be summed back. The sum grows with the bucket height, which is why the
height is stored with every row. The maximum is taken per second after summing (max of
sums, not sum of maxima): a level that moves from one price to the next inside the bucket
counts once.

NOT LIVE is marked, never filled in: ``book-top`` rows with ``live`` false open a period in
which nothing enters the grid (``live_seconds`` turns them into a per-second mask) and a
second the recorder did not run has no rows at all; both are drawn empty.

Why this form: it is the heatmap's own shape (time × price cells of maxima), so a reader
turns a range into a grid with one pivot and no replay of diffs; a fixed 1 s × bucket cell
bounds the size whatever the diff rate (100 ms spot or 0 ms USD-M), while run-lengths or
change-only samples grow with the message rate of a busy book. The bucket height is
``bucket_bps`` basis points of the first mid rounded to whole ticks and stays fixed for the
life of a writer (rows carry ``bucket_e8``, so a later writer may choose another). Only
LIVE books are sampled; a crossed or unsynced book never enters the grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from services.history.schema import SCALE

DEFAULT_BAND_PCT = 2.0
DEFAULT_BUCKET_BPS = 1.0


@dataclass(frozen=True, slots=True)
class GridConfig:
    """``band_pct``: half-width of the recorded band around the mid, in %;
    ``bucket_bps``: bucket height in basis points of the mid (whole ticks, at least one)."""

    band_pct: float = DEFAULT_BAND_PCT
    bucket_bps: float = DEFAULT_BUCKET_BPS


def bucket_height(mid: float, tick: float, bucket_bps: float) -> float:
    """Bucket height in price units: ``bucket_bps`` of ``mid`` rounded to whole ticks."""
    ticks = max(1, round(mid * bucket_bps / 10_000.0 / tick)) if tick > 0 else 1
    return ticks * tick if tick > 0 else mid * bucket_bps / 10_000.0


def bucket_sums(
    prices: np.ndarray, qtys: np.ndarray, height: float
) -> tuple[np.ndarray, np.ndarray]:
    """(bucket index, Σ quantity of the bucket's levels) per bucket holding at least one
    level, for one book state; the bucket of a price p is ``floor(p / height + 1e-9)``.
    Prices must be sorted (either way)."""
    if prices.shape[0] == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    buckets = np.floor(prices / height + 1e-9).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, buckets[1:] != buckets[:-1]])
    return buckets[starts], np.add.reduceat(np.asarray(qtys, np.float64), starts)


def live_seconds(
    top_time_ms: np.ndarray, top_live: np.ndarray, start_s: int, end_s: int
) -> np.ndarray:
    """Per second of [``start_s``, ``end_s``): whether the recorded book was LIVE in it,
    from the ``book-top`` rows (time order): a second is LIVE when the last state change at
    or before its end says LIVE and no change inside it says not LIVE. Before the first
    row nothing is known (False)."""
    n = max(0, end_s - start_s)
    if n == 0 or top_time_ms.shape[0] == 0:
        return np.zeros(n, bool)
    seconds = np.asarray(top_time_ms, np.int64) // 1000
    live = np.asarray(top_live, bool)
    ends = np.arange(start_s, end_s, dtype=np.int64)
    last = np.searchsorted(seconds, ends, side="right") - 1
    state = np.where(last >= 0, live[np.maximum(last, 0)], False)
    dead = seconds[~live]
    dead = dead[(dead >= start_s) & (dead < end_s)] - start_s
    state[dead] = False
    return state


@dataclass
class SecondGrid:
    """The current second of one symbol, side by side, as bucket → the largest bucket sum
    of the states sampled so far (``merge`` takes ``bucket_sums`` of one more state)."""

    time_s: int
    bids: dict[int, float] = field(default_factory=dict)
    asks: dict[int, float] = field(default_factory=dict)

    def merge(self, side: dict[int, float], buckets: np.ndarray, sums: np.ndarray) -> None:
        if not side:  # the second's first state (every state at the default 1 s sampling)
            side.update(zip(buckets.tolist(), sums.tolist(), strict=True))
            return
        get = side.get
        for bucket, qty in zip(buckets.tolist(), sums.tolist(), strict=True):
            if qty > get(bucket, 0.0):
                side[bucket] = qty

    def rows(self, height: float) -> dict[str, np.ndarray]:
        """The second as grid rows (columns of the ``book-grid`` dataset), bids then asks,
        each by bucket."""
        parts = []
        for sign, side in ((1, self.bids), (-1, self.asks)):
            n = len(side)
            buckets = np.fromiter(side.keys(), np.int64, n)
            qtys = np.fromiter(side.values(), np.float64, n)
            order = np.argsort(buckets, kind="stable")
            parts.append((np.full(n, sign, np.int8), buckets[order], qtys[order]))
        n = sum(len(p[1]) for p in parts)
        return {
            "time_s": np.full(n, self.time_s, np.int64),
            "side": np.concatenate([p[0] for p in parts]),
            "bucket": np.concatenate([p[1] for p in parts]),
            "bucket_e8": np.full(n, round(height * SCALE), np.int64),
            "max_qty_e8": np.rint(np.concatenate([p[2] for p in parts]) * SCALE).astype(np.int64),
        }


def implied_tick(prices: np.ndarray) -> float:
    """The tick a side's prices imply: their smallest gap, as a power of ten (0.0 when
    fewer than two distinct prices)."""
    if prices.shape[0] < 2:
        return 0.0
    gaps = np.abs(np.diff(np.sort(prices)))
    gaps = gaps[gaps > 1e-12]
    if not gaps.shape[0]:
        return 0.0
    return 10.0 ** math.floor(math.log10(float(gaps.min())) + 1e-9)


def mid_of(bid: float, ask: float) -> float:
    """Mid price of a two-sided book, NaN when a side is missing."""
    if bid > 0 and ask > 0:
        return (bid + ask) / 2.0
    return math.nan
