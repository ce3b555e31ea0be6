"""The all-market mini-ticker stream ``!miniTicker@arr``, derived by the local exchange.

Binance sends, every 1000 ms, one array with the ``24hrMiniTicker`` of every symbol whose
figures changed since the previous array (symbols that did not trade are left out). Here
"changed" means the symbol's replayed trade count moved; the figures are each symbol's
running ``TickerStats`` (see ``services.replay.derived``).
"""

from __future__ import annotations

from collections.abc import Mapping

from services.replay.symbol_market import SymbolMarket

ALL_MINI_TICKERS = "!miniTicker@arr"
PERIOD_TICKS = 10
"""One array per second (the exchange ticks every 100 ms of recording time)."""


class AllMiniTickers:
    """Builds successive ``!miniTicker@arr`` payloads for one exchange."""

    def __init__(self) -> None:
        self._sent_counts: dict[str, int] = {}

    def payload(self, markets: Mapping[str, SymbolMarket], exchange_ms: int) -> list[dict]:
        """The mini tickers of the symbols that traded since the last payload (may be
        empty: nothing is sent then)."""
        changed = []
        for symbol, market in markets.items():
            stats = market.stats
            if stats.open is None or self._sent_counts.get(symbol) == stats.count:
                continue
            self._sent_counts[symbol] = stats.count
            changed.append(stats.mini_ticker_event(symbol, exchange_ms))
        return changed
