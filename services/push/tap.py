"""``StreamTap``: the feed tap that feeds the push hub in the process that runs the feed.

On the feed's thread, per call: trades go to the hub as they are (the hub's ring and the
subscribers' queues take the same view, no copy); a book change or a trade refreshes the
symbol's ``Prices`` (best levels are O(1) reads of the live book, done right away as the
``FeedTap`` contract asks). Book depth is not built here: ``BookRelay`` hands the store's
published book views to the hub, so a busy book costs the feed nothing per depth client.
"""

from __future__ import annotations

from dataclasses import replace

from services.market.book_sync import BookSync
from services.market.views import SyncState, TradeView
from services.push.hub import PushHub
from services.push.messages import Prices, top_of_book
from services.store import Candle


class StreamTap:
    """A ``FeedTap`` publishing trades and prices to ``hub`` (and any ``sinks`` with the
    same ``publish_trades``/``publish_prices`` methods, e.g. the Redis writer)."""

    def __init__(self, hub: PushHub | None = None, sinks: tuple[object, ...] = ()) -> None:
        self.hubs = tuple(h for h in (hub, *sinks) if h is not None)
        self._prices: dict[str, Prices] = {}

    def on_trades(self, symbol: str, trades: TradeView) -> None:
        for hub in self.hubs:
            hub.publish_trades(symbol, trades)  # type: ignore[attr-defined]
        before = self._prices.get(symbol) or top_of_book(
            symbol, SyncState.CONNECTING, None, None, None, None, 0
        )
        prices = replace(
            before,
            last_price=float(trades.price[-1]),
            last_trade_id=int(trades.trade_id[-1]),
            event_time=max(before.event_time, int(trades.time_ms[-1])),
        )
        self._publish(prices)

    def on_book(self, symbol: str, book: BookSync) -> None:
        before = self._prices.get(symbol)
        view = book.book
        prices = top_of_book(
            symbol,
            book.state,
            view.best_bid(),
            view.best_ask(),
            before.last_price if before else None,
            before.last_trade_id if before else None,
            book.event_time_ms,
        )
        if prices != before:
            self._publish(prices)

    def on_candle(self, symbol: str, candle: Candle) -> None:
        """Candles are not pushed (the page reads them from the store)."""

    def _publish(self, prices: Prices) -> None:
        self._prices[prices.symbol] = prices
        for hub in self.hubs:
            hub.publish_prices(prices)  # type: ignore[attr-defined]
