"""Where a reconnecting client's missed trades come from when the hub's own recent ring no
longer holds them: the feed's trade window (the store's latest snapshot) and — once the
history room provides one — the history store. Each is a ``TradeArchive``.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from services.market.views import TradeView
from services.push.messages import slice_view
from services.store import MarketStore


class TradeArchive(Protocol):
    """Trades of a symbol kept somewhere, by id."""

    def trades_between(self, symbol: str, after_id: int, before_id: int | None) -> TradeView:
        """The trades with ``after_id < id < before_id`` (no upper bound when None),
        oldest first; an empty view when none are kept."""
        ...


def between(trades: TradeView, after_id: int, before_id: int | None) -> TradeView:
    """Rows of ``trades`` (ids ascending) with ``after_id < id < before_id``."""
    ids = trades.trade_id
    start = int(np.searchsorted(ids, after_id, side="right"))
    stop = len(ids) if before_id is None else int(np.searchsorted(ids, before_id, side="left"))
    return slice_view(trades, start, max(start, stop))


class WindowArchive:
    """The trade window of the store's latest snapshot (the last ``trade_window`` trades)."""

    def __init__(self, store: MarketStore) -> None:
        self.store = store

    def trades_between(self, symbol: str, after_id: int, before_id: int | None) -> TradeView:
        snapshot = self.store.snapshot(symbol)
        if snapshot is None:
            return TradeView(symbol=symbol)
        return between(snapshot.trades, after_id, before_id)
