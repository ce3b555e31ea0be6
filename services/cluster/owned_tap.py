"""``OwnedTap``: a feed tap that passes on only the messages of the symbols this worker
owns — with sharded workers, the history gets one writer per symbol at a time.

A worker keeps a lost shard's books streamed for ``keep_s`` (``ShardedIngest``) and every
worker sees every symbol's mini ticker; without this filter two workers would record the
same trades. ``owns(symbol)`` is the same test the Redis store fences its writes with: the
worker holds the lease of the symbol's shard now (``coordinator.held``).
"""

from __future__ import annotations

from collections.abc import Callable

from services.market.book_sync import BookSync
from services.market.taps import FeedTap
from services.market.views import TradeView
from services.store import Candle


class OwnedTap:
    """``tap``, called only for symbols ``owns(symbol)`` says are this worker's."""

    def __init__(self, tap: FeedTap, owns: Callable[[str], bool]) -> None:
        self.tap = tap
        self.owns = owns

    def on_trades(self, symbol: str, trades: TradeView) -> None:
        if self.owns(symbol):
            self.tap.on_trades(symbol, trades)

    def on_book(self, symbol: str, book: BookSync) -> None:
        if self.owns(symbol):
            self.tap.on_book(symbol, book)

    def on_candle(self, symbol: str, candle: Candle) -> None:
        if self.owns(symbol):
            self.tap.on_candle(symbol, candle)
