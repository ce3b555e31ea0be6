"""A price-level order book: the pure data structure, with no knowledge of any exchange.

Each side is a ``dict`` from price to quantity (both ``float``) plus a list of the same
prices kept sorted with ``bisect``, with the best price at the *end* of the list so that the
levels that change most often sit where inserting and deleting move the least memory:

* bids: ``_bid_keys`` ascending, best bid = ``_bid_keys[-1]``;
* asks: ``_ask_keys`` holds the *negated* prices ascending, best ask = ``-_ask_keys[-1]``.

A snapshot limited to its best N levels per side (Binance's ``limit``) covers prices only
down to its worst bid and up to its worst ask: beyond them the book is unknown — a diff
there is real, but the levels around it that no diff has touched are missing. The book
therefore keeps a *known range* per side (``bid_floor``, ``ask_ceiling``): a side the
snapshot gave in full (fewer levels than the limit) is known all the way; a truncated one
only up to its worst level, and diffs for prices beyond that are not stored. Every reader
then sees a side without holes.

A quantity of ``0.0`` deletes a level. Because every decimal string decodes to one exact
float, ``"0"``, ``"0.000"`` and ``"0.00000000"`` all compare equal to ``0.0``; deleting a level
the book does not hold is normal on Binance and is a no-op here.

Complexity, with n levels on a side and k levels in a message:

* ``apply_bids``/``apply_asks``: O(k log n) comparisons plus, for each insert or delete, a
  ``memmove`` of the keys between the level and the best price (small for levels near the
  touch, at most 8·n bytes); quantity updates are O(1).
* ``best_bid``/``best_ask``/``is_crossed``: O(1). ``top_bids``/``top_asks``/``*_arrays``: O(N)
  for the top N levels, never a sort of the side.
* ``load_snapshot``: O(n log n) (one sort per side).

The arrays of a side are rebuilt only from its best level down to the deepest level changed
since the previous call (any depth ``n``): the levels below it are the same keys with the
same quantities at the same positions, so they are taken from the previous arrays. Every
change goes through ``apply_*``, ``load_snapshot`` or ``clear``, which track that level.
When that would still read many levels (a quiet market's diffs touch levels all through a
1,000-level side) and a whole side was asked for both times, the previous arrays are
patched instead: the levels changed since (``apply_*`` keep their keys, up to a quarter of
the side) are taken out and put back where the book now has them, a few numpy calls in
place of one Python read per level (≈ 15 µs instead of ≈ 100 µs for 1,000 levels).

Memory: a 5000 × 2 level book is about 0.9 MiB (floats, two dicts, two key lists).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from operator import itemgetter
from typing import NamedTuple

import numpy as np

Level = tuple[float, float]
PATCH_FROM = 500
"""A side's arrays are patched (see the module docstring) only when a rebuild from the
deepest change would read more than this many levels: a patch costs a few tens of µs
(≈ 20 numpy calls) whatever the side's size, a rebuild ≈ 0.07 µs a level."""
CHANGED_SLACK = 256
"""A side stops keeping its changed keys (and is rebuilt from the deepest change) once they
are more than a quarter of its levels plus this many: patching would not pay, and a book
no one reads (a shadow book) keeps no growing set."""


class OrderBook:
    """Bids and asks as price → quantity, readable best-first without sorting."""

    __slots__ = (
        "_ask_changed",
        "_ask_keys",
        "_ask_low",
        "_ask_view",
        "_asks",
        "_bid_changed",
        "_bid_keys",
        "_bid_low",
        "_bid_view",
        "_bids",
        "ask_ceiling",
        "bid_floor",
    )

    def __init__(self) -> None:
        self._bids: dict[float, float] = {}
        self._asks: dict[float, float] = {}
        self._bid_keys: list[float] = []
        self._ask_keys: list[float] = []
        self.bid_floor = -np.inf
        self.ask_ceiling = np.inf
        # the lowest key changed since the side's last arrays, and those arrays
        self._bid_low = self._ask_low = -np.inf
        self._bid_view: _SideView | None = None
        self._ask_view: _SideView | None = None
        # the keys changed since the side's last arrays (None: too many, or unknown)
        self._bid_changed: set[float] | None = None
        self._ask_changed: set[float] | None = None

    def clear(self) -> None:
        """Remove every level from both sides."""
        self._bids.clear()
        self._asks.clear()
        self._bid_keys.clear()
        self._ask_keys.clear()
        self.bid_floor = -np.inf
        self.ask_ceiling = np.inf
        self._bid_low = self._ask_low = -np.inf
        self._bid_changed = self._ask_changed = None

    def copy(self) -> OrderBook:
        """An independent copy of both sides and the known range. O(n), no sorting: the
        sorted keys are copied as they are."""
        other = OrderBook()
        other._bids, other._asks = dict(self._bids), dict(self._asks)
        other._bid_keys, other._ask_keys = self._bid_keys.copy(), self._ask_keys.copy()
        other.bid_floor, other.ask_ceiling = self.bid_floor, self.ask_ceiling
        return other

    def load_snapshot(
        self, bids: Iterable[Level], asks: Iterable[Level], limit: int | None = None
    ) -> None:
        """Replace both sides with the given levels (levels with quantity 0 are skipped).

        ``limit``: the most levels per side the snapshot could hold. A side with that many
        is truncated: the known range ends at its worst level. A side with fewer, or any
        side when no limit is given, is taken as the whole side."""
        bid_levels, ask_levels = list(bids), list(asks)
        self._bids = {p: q for p, q in bid_levels if q != 0.0}
        self._asks = {p: q for p, q in ask_levels if q != 0.0}
        self._bid_keys = sorted(self._bids)
        self._ask_keys = sorted(-p for p in self._asks)
        self._bid_low = self._ask_low = -np.inf
        self._bid_changed = self._ask_changed = None
        cut_bids = limit is not None and len(bid_levels) >= limit
        cut_asks = limit is not None and len(ask_levels) >= limit
        self.bid_floor = self._bid_keys[0] if cut_bids and self._bid_keys else -np.inf
        self.ask_ceiling = -self._ask_keys[0] if cut_asks and self._ask_keys else np.inf

    def apply_bids(self, levels: Iterable[Level]) -> None:
        """Set each bid level to its absolute quantity; quantity 0 deletes the level;
        prices below the known range are not stored."""
        book = self._bids
        keys = self._bid_keys
        floor = self.bid_floor
        low = self._bid_low
        changed = self._bid_changed
        for price, qty in levels:
            if price < floor:
                continue
            if price < low:
                low = self._bid_low = price
            if changed is not None:
                changed.add(price)
            if qty == 0.0:
                if book.pop(price, None) is not None:
                    del keys[bisect_left(keys, price)]
            else:
                if price not in book:
                    insort(keys, price)
                book[price] = qty
        if changed is not None and 4 * len(changed) > len(keys) + CHANGED_SLACK:
            self._bid_changed = None

    def apply_asks(self, levels: Iterable[Level]) -> None:
        """Set each ask level to its absolute quantity; quantity 0 deletes the level;
        prices above the known range are not stored."""
        book = self._asks
        keys = self._ask_keys
        ceiling = self.ask_ceiling
        low = self._ask_low
        changed = self._ask_changed
        for price, qty in levels:
            if price > ceiling:
                continue
            if -price < low:
                low = self._ask_low = -price
            if changed is not None:
                changed.add(-price)
            if qty == 0.0:
                if book.pop(price, None) is not None:
                    del keys[bisect_left(keys, -price)]
            else:
                if price not in book:
                    insort(keys, -price)
                book[price] = qty
        if changed is not None and 4 * len(changed) > len(keys) + CHANGED_SLACK:
            self._ask_changed = None

    @property
    def n_bids(self) -> int:
        """Number of bid levels."""
        return len(self._bid_keys)

    @property
    def n_asks(self) -> int:
        """Number of ask levels."""
        return len(self._ask_keys)

    def best_bid(self) -> Level | None:
        """Highest bid price and its quantity, or None when there are no bids. O(1)."""
        if not self._bid_keys:
            return None
        price = self._bid_keys[-1]
        return price, self._bids[price]

    def best_ask(self) -> Level | None:
        """Lowest ask price and its quantity, or None when there are no asks. O(1)."""
        if not self._ask_keys:
            return None
        price = -self._ask_keys[-1]
        return price, self._asks[price]

    def is_crossed(self) -> bool:
        """True when the best bid is at or above the best ask (a book that cannot exist)."""
        return bool(self._bid_keys and self._ask_keys) and (
            self._bid_keys[-1] >= -self._ask_keys[-1]
        )

    def top_bids(self, n: int) -> list[Level]:
        """The best ``n`` bids, highest price first. O(n)."""
        book = self._bids
        return [(p, book[p]) for p in reversed(self._bid_keys[-n:])] if n > 0 else []

    def top_asks(self, n: int) -> list[Level]:
        """The best ``n`` asks, lowest price first. O(n)."""
        book = self._asks
        return [(-k, book[-k]) for k in reversed(self._ask_keys[-n:])] if n > 0 else []

    def bid_arrays(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Prices (descending) and quantities of the best ``n`` bids (all when None)."""
        view = _side_arrays(
            self._bid_keys, self._bids, 1.0, n, self._bid_low, self._bid_view, self._bid_changed
        )
        self._bid_view, self._bid_low, self._bid_changed = view, np.inf, set()
        return view.prices.copy(), view.qtys.copy()

    def ask_arrays(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Prices (ascending) and quantities of the best ``n`` asks (all when None)."""
        view = _side_arrays(
            self._ask_keys, self._asks, -1.0, n, self._ask_low, self._ask_view, self._ask_changed
        )
        self._ask_view, self._ask_low, self._ask_changed = view, np.inf, set()
        return view.prices.copy(), view.qtys.copy()

    def bids(self) -> dict[float, float]:
        """A copy of the bid side as price → quantity (for tests and snapshots)."""
        return dict(self._bids)

    def asks(self) -> dict[float, float]:
        """A copy of the ask side as price → quantity (for tests and snapshots)."""
        return dict(self._asks)


class _SideView(NamedTuple):
    """A side's arrays (best first) over key positions ``[start, length)`` of its keys."""

    prices: np.ndarray
    qtys: np.ndarray
    start: int
    length: int


def _side_arrays(
    keys: list[float],
    book: dict[float, float],
    sign: float,
    n: int | None,
    low: float,
    last: _SideView | None,
    changed: set[float] | None = None,
) -> _SideView:
    """The best ``n`` levels of a side (keys ascending, best last; price = ``sign`` · key).
    Positions below the first key ``>= low`` hold what they held for ``last``: those levels
    are copied from it when it covers them, and only the rest is read from the book — or,
    when that is more than ``PATCH_FROM`` levels and ``changed`` holds every key changed
    since ``last`` (a whole side both times), ``last`` patched with those keys."""
    length = len(keys)
    start = 0 if n is None else max(length - n, 0) if n > 0 else length
    keep = start  # the first position read from the book; [start, keep) come from last
    if last is not None and start >= last.start:
        keep = max(bisect_left(keys, low), start)
    if (
        changed is not None
        and last is not None
        and start == last.start == 0
        and length - keep > PATCH_FROM
        and (patched := _patched(keys, book, sign, changed, last)) is not None
    ):
        return patched
    fresh = keys[keep:]
    prices = np.array(fresh, dtype=np.float64)[::-1]
    if sign < 0:
        prices = np.negative(prices)
    if len(fresh) < 2:  # itemgetter of one key returns the value itself, of none fails
        qtys = np.fromiter(map(book.__getitem__, prices.tolist()), np.float64, len(fresh))
    elif sign > 0:  # the keys are the prices: every quantity in one C call
        qtys = np.array(itemgetter(*fresh)(book), dtype=np.float64)[::-1]
    else:
        qtys = np.array(itemgetter(*prices.tolist())(book), dtype=np.float64)
    if keep > start:  # only with a last view
        # old positions [start, keep) sit at last's indices [length_old - keep, length_old - start)
        lo, hi = last.length - keep, last.length - start
        prices = np.concatenate((prices, last.prices[lo:hi]))
        qtys = np.concatenate((qtys, last.qtys[lo:hi]))
    return _SideView(prices, qtys, start, length)


def _patched(
    keys: list[float], book: dict[float, float], sign: float, changed: set[float], last: _SideView
) -> _SideView | None:
    """A whole side's arrays from ``last`` (the whole side then) and the keys ``changed``
    since: each changed key is taken out of ``last`` and put back, in key order, when the
    book holds it now, with its quantity now. None when the result does not have the
    side's length and best and worst keys (nothing to patch from then)."""
    old_keys = last.prices[::-1] if sign > 0 else np.negative(last.prices[::-1])  # ascending
    touched = np.array(sorted(changed), dtype=np.float64)
    keep = np.ones(old_keys.shape[0], dtype=bool)
    if old_keys.shape[0]:
        at = np.minimum(np.searchsorted(old_keys, touched), old_keys.shape[0] - 1)
        keep[at[old_keys[at] == touched]] = False
    now = [(k, q) for k in touched.tolist() if (q := book.get(sign * k)) is not None]
    base_keys, base_qtys = old_keys[keep], last.qtys[::-1][keep]
    size = base_keys.shape[0] + len(now)
    if size != len(keys):
        return None
    new_keys = np.array([k for k, _ in now], dtype=np.float64)
    at_new = np.searchsorted(base_keys, new_keys) + np.arange(len(now))
    old_at = np.ones(size, dtype=bool)
    old_at[at_new] = False
    side_keys, qtys = np.empty(size), np.empty(size)
    side_keys[old_at], qtys[old_at] = base_keys, base_qtys
    side_keys[at_new], qtys[at_new] = new_keys, [q for _, q in now]
    if size and (side_keys[0] != keys[0] or side_keys[-1] != keys[-1]):
        return None
    prices = side_keys[::-1] if sign > 0 else np.negative(side_keys[::-1])
    return _SideView(prices, qtys[::-1], 0, size)
