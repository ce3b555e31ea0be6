"""The local exchange's own order book for one symbol.

Levels are kept exactly as Binance sends them: price string → quantity string, one dict per
side. A quantity whose decimal value is zero deletes the level. Nothing is sorted while the
book is updated; a sorted view is built only when a snapshot or the top of the book is asked
for (``O(n log n)`` for a snapshot of ``n`` levels, ``O(n)`` for the best level).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

Level = tuple[str, str]


def is_zero(quantity: str) -> bool:
    """True when a decimal quantity string is zero in any formatting (``"0"``, ``"0.000"``)."""
    return not quantity.strip("0.")


class ExchangeBook:
    """Bids and asks of one symbol as of update id ``last_update_id``."""

    __slots__ = ("asks", "bids", "last_update_id")

    def __init__(
        self, last_update_id: int, bids: Iterable[Level] = (), asks: Iterable[Level] = ()
    ) -> None:
        self.last_update_id = last_update_id
        self.bids: dict[str, str] = {p: q for p, q in bids if not is_zero(q)}
        self.asks: dict[str, str] = {p: q for p, q in asks if not is_zero(q)}

    def copy(self) -> ExchangeBook:
        book = ExchangeBook(self.last_update_id)
        book.bids = dict(self.bids)
        book.asks = dict(self.asks)
        return book

    def apply(self, bids: Iterable[Level], asks: Iterable[Level], final_update_id: int) -> None:
        """Apply one diff: set each level's absolute quantity, delete zero quantities."""
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, quantity in levels:
                if is_zero(quantity):
                    side.pop(price, None)
                else:
                    side[price] = quantity
        self.last_update_id = final_update_id

    def top_bids(self, depth: int) -> list[list[str]]:
        """The ``depth`` highest bids, best first, as ``[price, quantity]`` pairs."""
        prices = heapq.nlargest(depth, self.bids, key=float)
        return [[p, self.bids[p]] for p in prices]

    def top_asks(self, depth: int) -> list[list[str]]:
        """The ``depth`` lowest asks, best first, as ``[price, quantity]`` pairs."""
        prices = heapq.nsmallest(depth, self.asks, key=float)
        return [[p, self.asks[p]] for p in prices]

    def best(self) -> tuple[Level | None, Level | None]:
        """Best bid and best ask as ``(price, quantity)``, ``None`` for an empty side."""
        bid = max(self.bids, key=float, default=None)
        ask = min(self.asks, key=float, default=None)
        return (
            None if bid is None else (bid, self.bids[bid]),
            None if ask is None else (ask, self.asks[ask]),
        )

    def diff_to(self, target: ExchangeBook, zero: str) -> tuple[list[Level], list[Level]]:
        """Levels that turn this book into ``target``: changed or new levels with the target's
        quantity, levels missing from ``target`` with quantity ``zero``."""
        sides = []
        for mine, theirs in ((self.bids, target.bids), (self.asks, target.asks)):
            changes = [(p, zero) for p in mine if p not in theirs]
            changes += [(p, q) for p, q in theirs.items() if mine.get(p) != q]
            sides.append(changes)
        return sides[0], sides[1]
