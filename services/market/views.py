"""Immutable snapshots of per-symbol market state: what analytics, the store and the web
side read. A view is taken under a short lock and never changes afterwards; everything
downstream works on views, never on the live structures.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from services.binance.symbol_rules import SymbolInfo

__all__ = ["BookSample", "BookView", "SymbolInfo", "SyncState", "TradeView"]


class SyncState(enum.StrEnum):
    """Where a symbol's local order book stands against the exchange's.

    CONNECTING: the diff stream is not delivering yet.
    SYNCING: diffs are buffered while the first REST snapshot is fetched and bridged.
    LIVE: the book equals the exchange's; every diff has been continuous since the snapshot.
    RESYNCING: continuity broke (gap, crossed book, reconnect); a new snapshot is on its way.
    STALE: the stream went quiet or the connection is down; the last book is kept but is
        not live.
    """

    CONNECTING = "CONNECTING"
    SYNCING = "SYNCING"
    LIVE = "LIVE"
    RESYNCING = "RESYNCING"
    STALE = "STALE"


_EMPTY_F = np.empty(0, dtype=np.float64)
_EMPTY_I = np.empty(0, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class BookView:
    """Both sides of an order book, best level first.

    ``bid_prices`` descend and ``ask_prices`` ascend; quantities are in base units. Only a
    view whose ``sync_state`` is LIVE may be shown as the current book.
    """

    symbol: str
    bid_prices: np.ndarray = field(default_factory=lambda: _EMPTY_F)
    bid_qtys: np.ndarray = field(default_factory=lambda: _EMPTY_F)
    ask_prices: np.ndarray = field(default_factory=lambda: _EMPTY_F)
    ask_qtys: np.ndarray = field(default_factory=lambda: _EMPTY_F)
    last_update_id: int = 0
    sync_state: SyncState = SyncState.CONNECTING
    event_time_ms: int = 0
    resync_reason: str = ""

    @property
    def is_live(self) -> bool:
        return self.sync_state is SyncState.LIVE


@dataclass(frozen=True, slots=True)
class TradeView:
    """A window of trades, oldest first, as numpy columns of equal length.

    ``side`` is +1.0 when the taker bought and -1.0 when the taker sold (Binance ``m`` true
    means the buyer was the maker, so the taker sold). ``kind`` says whether a row is one
    ``aggTrade`` (one taker order at one price) or one ``trade`` (one fill).
    """

    symbol: str
    trade_id: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    time_ms: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    price: np.ndarray = field(default_factory=lambda: _EMPTY_F)
    qty: np.ndarray = field(default_factory=lambda: _EMPTY_F)
    side: np.ndarray = field(default_factory=lambda: _EMPTY_F)
    kind: str = "aggTrade"

    def __len__(self) -> int:
        return int(self.price.shape[0])


@dataclass(frozen=True, slots=True)
class BookSample:
    """The resting book of one symbol around its mid during one sampling period.

    time_ms: start of the period (epoch ms, the wall clock of the process that sampled).
    is_live: the book was LIVE through the whole period; a sample that is not live carries
        no levels and must be drawn empty, never interpolated.
    bid_prices (descending) / bid_qtys, ask_prices (ascending) / ask_qtys: the levels within
        the sampled band; a level's quantity is the largest it rested during the period
        (base units).

    Columns only, no objects, so a sequence of samples persists as two flat tables (one row
    per sample: ``time_ms``, ``is_live``; one row per level: ``time_ms``, ``side``, ``price``,
    ``qty``).
    """

    time_ms: int
    is_live: bool
    bid_prices: np.ndarray = field(default_factory=lambda: _EMPTY_F)
    bid_qtys: np.ndarray = field(default_factory=lambda: _EMPTY_F)
    ask_prices: np.ndarray = field(default_factory=lambda: _EMPTY_F)
    ask_qtys: np.ndarray = field(default_factory=lambda: _EMPTY_F)

    @property
    def best_bid(self) -> float:
        """Highest bid price that rested during the period (NaN without bids)."""
        return float(self.bid_prices[0]) if self.bid_prices.shape[0] else float("nan")

    @property
    def best_ask(self) -> float:
        """Lowest ask price that rested during the period (NaN without asks)."""
        return float(self.ask_prices[0]) if self.ask_prices.shape[0] else float("nan")

    @property
    def nbytes(self) -> int:
        """Memory held by the sample's level columns."""
        return sum(
            a.nbytes for a in (self.bid_prices, self.bid_qtys, self.ask_prices, self.ask_qtys)
        )
