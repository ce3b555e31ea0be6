"""``TradeColumns``: a trade window's columns (id, time, price, qty, side), appended into
spare capacity, whose read-only slices are handed out as ``TradeView``s.

Rows handed out are never written again: new rows go past them, and when the spare
capacity runs out the retained rows move to new arrays. So a view stays valid, unchanged,
for as long as its holder keeps it, and a window that only grows at its new end costs
O(new trades) a view instead of a copy of the whole window. Used by the feed's published
window (``PublishedTrades``) and by a Redis reader's copy of a symbol's trade stream
(``redis_store.TradeWindow``).
"""

from __future__ import annotations

import numpy as np

from services.market.views import TradeView

DTYPES = (np.int64, np.int64, np.float64, np.float64, np.float64)
"""trade_id, time_ms, price, qty, side: ``TradeView``'s columns."""


class TradeColumns:
    """Append-only trade columns (see the module docstring). When the capacity runs out,
    the new arrays hold the retained rows and the new ones plus ``spare_ratio`` of them
    spare, at least ``min_spare`` rows."""

    __slots__ = ("_cols", "_end", "_min_spare", "_spare_ratio", "_start")

    def __init__(self, spare_ratio: float, min_spare: int) -> None:
        self._spare_ratio = spare_ratio
        self._min_spare = min_spare
        self._cols = [np.empty(0, dtype=dtype) for dtype in DTYPES]
        self._start = self._end = 0

    def __len__(self) -> int:
        return self._end - self._start

    @property
    def newest_id(self) -> int | None:
        """The id of the newest row (None when empty)."""
        return int(self._cols[0][self._end - 1]) if self._end > self._start else None

    def clear(self) -> None:
        self._cols = [np.empty(0, dtype=dtype) for dtype in DTYPES]
        self._start = self._end = 0

    def append(self, columns: tuple[np.ndarray, ...], keep: int) -> None:
        """Add rows (oldest first) and keep only the newest ``keep``."""
        n = int(columns[0].shape[0])
        if self._end + n > self._cols[0].shape[0]:
            retained = min(self._end - self._start, max(keep - n, 0))
            rows = retained + n
            capacity = rows + max(int(rows * self._spare_ratio), self._min_spare)
            fresh = [np.empty(capacity, dtype=dtype) for dtype in DTYPES]
            for old, new in zip(self._cols, fresh, strict=True):
                new[:retained] = old[self._end - retained : self._end]
            self._cols, self._start, self._end = fresh, 0, retained
        for col, rows_in in zip(self._cols, columns, strict=True):
            col[self._end : self._end + n] = rows_in
        self._end += n
        self._start = max(self._start, self._end - keep)

    def view(self, symbol: str, kind: str) -> TradeView:
        """The held rows, oldest first, as read-only slices."""
        cols = []
        for col in self._cols:
            part = col[self._start : self._end]
            part.flags.writeable = False
            cols.append(part)
        return TradeView(symbol, *cols, kind=kind)
