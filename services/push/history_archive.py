"""``HistoryArchive``: the history store as a ``TradeArchive``, so a ``from_id`` resume
reaches back past the feed's trade window into the stored aggTrades.

Reads the stored trades of the symbol's market lazily (polars), keeps the ids in
``(after_id, before_id)`` and returns at most ``limit`` of them (the oldest first); a symbol
without history, or a store the reader cannot use, gives an empty view (the resume then
starts where the window does).
"""

from __future__ import annotations

import logging

import polars as pl

from services.history.reader import HistoryError, HistoryReader, trade_view
from services.market.views import TradeView
from services.store import MarketStore

log = logging.getLogger(__name__)

KIND = "aggTrade"


class HistoryArchive:
    """Stored aggTrades of ``market`` (``spot``/``usdm``) by id."""

    def __init__(self, reader: HistoryReader, market: str, limit: int = 200_000) -> None:
        self.reader = reader
        self.market = market
        self.limit = limit

    def trades_between(self, symbol: str, after_id: int, before_id: int | None) -> TradeView:
        try:
            scan = self.reader.trade_scan(self.market, symbol, kind=KIND)
            scan = scan.filter(pl.col("trade_id") > after_id)
            if before_id is not None:
                scan = scan.filter(pl.col("trade_id") < before_id)
            frame = scan.sort("trade_id").head(self.limit).collect()
        except (HistoryError, OSError, pl.exceptions.PolarsError) as exc:
            log.info("history archive: no stored trades of %s: %s", symbol, exc)
            return TradeView(symbol=symbol, kind=KIND)
        return trade_view(symbol, KIND, frame)


class LiveFeedArchive:
    """``archive`` while the store's feed is LIVE, else nothing: for a process that does not
    run the feed itself (a Redis web worker), which learns the source only from the feed's
    published status. A replay's ids restart on every start, so its stored trades cannot
    continue a stream's ids; asked at each resume (the worker may change source)."""

    def __init__(self, store: MarketStore, archive: HistoryArchive) -> None:
        self.store = store
        self.archive = archive

    def trades_between(self, symbol: str, after_id: int, before_id: int | None) -> TradeView:
        status = self.store.status()
        if status is None or status.source != "LIVE":
            return TradeView(symbol=symbol, kind=KIND)
        return self.archive.trades_between(symbol, after_id, before_id)
