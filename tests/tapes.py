"""Small hand-made trade windows for analytics tests."""

from __future__ import annotations

import numpy as np

from services.market.views import TradeView


def make_tape(times, prices, qtys, sides) -> TradeView:
    """A TradeView with ids 1..n from plain lists (side +1 taker buy, −1 taker sell)."""
    n = len(times)
    return TradeView(
        "TESTUSDT",
        np.arange(1, n + 1, dtype=np.int64),
        np.asarray(times, dtype=np.int64),
        np.asarray(prices, dtype=np.float64),
        np.asarray(qtys, dtype=np.float64),
        np.asarray(sides, dtype=np.float64),
    )


TAPE = make_tape(
    [1000, 2000, 3000, 61000, 62000], [100, 101, 99, 102, 100], [1, 2, 3, 4, 5], [1, -1, 1, 1, -1]
)
"""Five trades over a minute: prices 99–102, volume 15, taker buys 1, 3, 4."""
