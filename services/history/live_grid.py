"""The recorded book's grid kept from the diffs (pure, no I/O; runs on the writer thread).

The feed's tap hands the writer each applied diff's levels (``on_levels``) and, only when
the book was loaded anew (a snapshot, a resync), a copy of both sides. ``BookGrid`` keeps
its own copy of the levels (exact quantities, int e8) and per price bucket the sum of its
levels, both updated in O(levels the diff set), and from them the grid of the current
second: for every bucket within the band of some LIVE state of that second, the **maximum
over the second's LIVE states** of the bucket's sum (``book_grid``'s definition; every
state counts, not a sample per second). So the feed's thread never copies the book to
record it, and the writer thread does O(levels changed) per diff plus one pass over the
buckets per second.

The band is made of whole buckets: a state's bid band is every bucket from the one holding
``mid × (1 − band_pct/100)`` up, its ask band every bucket up to the one holding
``mid × (1 + band_pct/100)`` (``band_edges``); a row is never a part of a bucket.

How the maximum is kept without looking at every bucket at every state (one side; keys are
bucket indices, negated for asks so that "in band" is ``key ≥ edge`` on both sides):

- ``low``: the lowest edge of the second's states so far, so "in band at some state of
  the second" is ``key ≥ low``; ``held``: per key the maximum over the states in which it
  was in band, for the keys whose sum changed or that came into the band during the
  second. A key with ``key ≥ low`` that is not in ``held`` kept one sum all second.
- a diff changes a key first time in the second while the key is not in ``held`` and was in
  band at an earlier state: its sum before the change is held (it was that sum in every
  such state);
- after a counted state's diff: every key changed since the second's previous counted
  state that is in band holds max(held, its sum); when the edge moved down since that
  state, every key that came into the band holds its sum too (a state not counted —
  a side empty — only changes sums);
- at the second's end each key ``≥ low`` with a sum gives a cell: ``held`` when there, else
  its sum (``close``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from services.binance.messages import Level
from services.history.book_grid import GridConfig, bucket_height, mid_of
from services.history.schema import SCALE


@dataclass(frozen=True, slots=True)
class BookCopy:
    """The whole book as a tap copied it after it was loaded anew (a snapshot): each side
    as price → qty, and the known range (``OrderBook.bid_floor``/``ask_ceiling``)."""

    bids: dict[float, float]
    asks: dict[float, float]
    bid_floor: float
    ask_ceiling: float


BookChange = list[tuple[list[Level], list[Level]]] | BookCopy | None
"""What changed the levels since the last book state: the applied diffs' levels (bids,
asks) in order, a whole copy, or nothing."""


def bucket_of(price: float, height: float) -> int:
    """The bucket holding ``price`` (the rule of ``book_grid.bucket_sums``)."""
    return math.floor(price / height + 1e-9)


def band_edges(mid: float, band_pct: float, height: float) -> tuple[int, int]:
    """(lowest bid bucket, highest ask bucket) of the band around ``mid``: the buckets
    holding ``mid`` −/+ ``band_pct`` %."""
    return (
        bucket_of(mid * (1.0 - band_pct / 100.0), height),
        bucket_of(mid * (1.0 + band_pct / 100.0), height),
    )


class SideGrid:
    """One side of the book as the grid follows it (see the module docstring).

    ``levels``: price → qty e8 (the book's side, levels outside its known range never
    stored, as ``OrderBook`` does); ``sums``: key → Σ qty e8 of the bucket (keys with a
    sum only); ``low``/``held``: the open second (``low`` None: no state counted yet);
    ``last_edge``: the edge at the second's previous state; ``changed``: keys the state
    being built changed."""

    __slots__ = (
        "best", "changed", "fence", "held", "is_bid", "last_edge", "levels", "low", "sums",
    )  # fmt: skip

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.fence = -math.inf if is_bid else math.inf
        self.levels: dict[float, int] = {}
        self.sums: dict[int, int] = {}
        self.held: dict[int, int] = {}
        self.low: int | None = None
        self.last_edge = 0
        self.changed: list[int] = []
        self.best: float | None = None  # the best price, None: not known (recomputed)

    def key(self, price: float, height: float) -> int:
        bucket = bucket_of(price, height)
        return bucket if self.is_bid else -bucket

    def load(self, levels: dict[float, float], fence: float, height: float) -> None:
        """Replace the side with a copy of the book's (price → qty) and its known range."""
        self.fence = fence
        self.levels = {p: round(q * SCALE) for p, q in levels.items() if q != 0.0}
        self.best = None
        self.rebuild(height)

    def rebuild(self, height: float) -> None:
        """Sum the levels per bucket afresh (at a load, or once the height is known)."""
        self.sums = {}
        if height <= 0.0:
            return
        sums = self.sums
        for price, qty in self.levels.items():
            k = self.key(price, height)
            sums[k] = sums.get(k, 0) + qty

    def apply(self, changes: Iterable[Level], height: float) -> None:
        """Set each level to its absolute quantity (0 removes it), as the book did."""
        levels, sums, held, low = self.levels, self.sums, self.held, self.low
        for price, qty in changes:
            if (price < self.fence) if self.is_bid else (price > self.fence):
                continue
            new = round(qty * SCALE)
            old = levels.get(price, 0)
            if new == old:
                continue
            if new:
                levels[price] = new
                best = self.best
                if best is not None and ((price > best) if self.is_bid else (price < best)):
                    self.best = price
            else:
                del levels[price]
                if price == self.best:
                    self.best = None
            if height <= 0.0:
                continue
            k = self.key(price, height)
            before = sums.get(k, 0)
            after = before + new - old
            if after:
                sums[k] = after
            else:
                del sums[k]
            if low is not None:  # a second is open
                if k >= low and k not in held:
                    held[k] = before  # its sum in every earlier state of the second
                self.changed.append(k)

    def top(self) -> tuple[float, float]:
        """(best price, its qty) — (0.0, 0.0) for an empty side; O(1) unless the best level
        was removed since the last call (then one pass over the levels)."""
        levels = self.levels
        if not levels:
            return 0.0, 0.0
        best = self.best
        if best is None:
            best = self.best = max(levels) if self.is_bid else min(levels)
        return best, levels[best] / SCALE

    def count(self, edge: int) -> None:
        """The state just built is a LIVE state of the open second, its band ``key ≥ edge``."""
        sums, held = self.sums, self.held
        if self.low is None:  # the second's first state: every sum is this state's
            self.low = edge
        else:
            if edge < self.last_edge:  # keys coming into the band hold their sum
                for k in range(edge, self.last_edge):
                    s = sums.get(k, 0)
                    if s > held.get(k, 0):
                        held[k] = s
            self.low = min(self.low, edge)
        for k in self.changed:
            if k >= edge:
                s = sums.get(k, 0)
                if s > held.get(k, 0):
                    held[k] = s
        self.changed.clear()
        self.last_edge = edge

    def close(self) -> tuple[np.ndarray, np.ndarray]:
        """The open second's cells as (bucket, max Σ qty e8), by bucket; the second ends."""
        low, held = self.low, self.held
        cells: dict[int, int] = {}
        if low is not None:
            cells = {k: s for k, s in self.sums.items() if k >= low and k not in held}
            cells.update((k, s) for k, s in held.items() if s > 0)
        self.low, self.held = None, {}
        self.changed.clear()
        n = len(cells)
        keys = np.fromiter(cells.keys(), np.int64, n)
        values = np.fromiter(cells.values(), np.int64, n)
        order = np.argsort(keys if self.is_bid else -keys, kind="stable")
        buckets = keys[order] if self.is_bid else -keys[order]
        return buckets, values[order]


class BookGrid:
    """Both sides of one symbol's book and its open second (see the module docstring).

    ``height``: the bucket height in price units (0.0 until known: levels are kept, sums
    are built once it is set); ``time_s``: the open second (None when closed)."""

    __slots__ = ("asks", "bids", "height", "loaded", "time_s")

    def __init__(self) -> None:
        self.bids = SideGrid(is_bid=True)
        self.asks = SideGrid(is_bid=False)
        self.height = 0.0
        self.loaded = False
        self.time_s: int | None = None

    def set_height(self, height: float) -> None:
        self.height = height
        self.bids.rebuild(height)
        self.asks.rebuild(height)

    def load(
        self,
        bids: dict[float, float],
        asks: dict[float, float],
        bid_floor: float = -math.inf,
        ask_ceiling: float = math.inf,
    ) -> None:
        """Take a copy of the whole book (after a snapshot). Close the open second first."""
        self.bids.load(bids, bid_floor, self.height)
        self.asks.load(asks, ask_ceiling, self.height)
        self.loaded = True

    def apply(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        """One applied diff's levels."""
        if self.loaded:
            self.bids.apply(bids, self.height)
            self.asks.apply(asks, self.height)

    def top(self) -> tuple[float, float, float, float]:
        """(best bid, its qty, best ask, its qty) of the copy, 0.0 for an empty side."""
        return (*self.bids.top(), *self.asks.top())

    def step(
        self, time_s: int, live: bool, mid: float | None, change: BookChange, tick: float,
        config: GridConfig,
    ) -> dict[str, np.ndarray] | None:  # fmt: skip
        r"""One book state as the tap reported it: at ``time_s``, LIVE or not, its ``mid``
        (NaN: a side is empty, not counted; None: the copy's own after the change), what
        set its levels. Returns the rows of the
        second it closed (a new second, a state not LIVE, a fresh copy), if any; the
        bucket height is fixed at the first counted state (``config.bucket_bps`` of its
        mid in whole ``tick``\ s)."""
        closed = None
        copy = isinstance(change, BookCopy)
        if self.time_s is not None and (self.time_s != time_s or not live or copy):
            closed = self.close()
        if isinstance(change, BookCopy):
            self.load(change.bids, change.asks, change.bid_floor, change.ask_ceiling)
        elif change:
            for bids, asks in change:
                self.apply(bids, asks)
        if mid is None:
            bid, _, ask, _ = self.top()
            mid = mid_of(bid, ask)
        if live and self.loaded and not math.isnan(mid):
            if self.height == 0.0:
                self.set_height(bucket_height(mid, tick, config.bucket_bps))
            self.count(time_s, mid, config.band_pct)
        return closed

    def count(self, time_s: int, mid: float, band_pct: float) -> None:
        """The book as it now stands is a LIVE state at ``time_s`` (the open second's, or
        the first of a new one when none is open: close the last one first)."""
        if self.time_s is None:
            self.time_s = time_s
        low, high = band_edges(mid, band_pct, self.height)
        self.bids.count(low)
        self.asks.count(-high)

    def close(self) -> dict[str, np.ndarray] | None:
        """The open second as ``book-grid`` rows (bids then asks, each by bucket), or None
        when no second is open; the second ends."""
        if self.time_s is None:
            return None
        time_s, self.time_s = self.time_s, None
        parts = [(sign, *side.close()) for sign, side in ((1, self.bids), (-1, self.asks))]
        n = sum(p[1].shape[0] for p in parts)
        return {
            "time_s": np.full(n, time_s, np.int64),
            "side": np.concatenate([np.full(p[1].shape[0], p[0], np.int8) for p in parts]),
            "bucket": np.concatenate([p[1] for p in parts]),
            "bucket_e8": np.full(n, round(self.height * SCALE), np.int64),
            "max_qty_e8": np.concatenate([p[2] for p in parts]),
        }
