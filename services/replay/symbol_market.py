"""The local exchange's state for one symbol: its book, its trade logs and its recorded
klines, updated as the replay plays, and the REST bodies read from them.

Trade logs keep the most recent ``MAX_TRADES`` entries (older ones are trimmed in bulk), so
a replay that loops for days keeps bounded memory.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from operator import attrgetter

import orjson

from services.replay.derived import (
    AggTradeBuilder,
    AggTradeRecord,
    TickerStats,
    TradeRecord,
    kline_rows,
)
from services.replay.session import SymbolStart

MAX_TRADES = 200_000


def _trim(records: list) -> None:
    if len(records) > 2 * MAX_TRADES:
        del records[: len(records) - MAX_TRADES]


class SymbolMarket:
    """Book, trades, aggTrades and recorded klines of one symbol as of the replay position.

    ``agg_trades_derived`` is true when aggTrades are built from trades, ``trades_derived``
    when trades can only be approximated from aggTrades (one row per aggTrade).
    """

    def __init__(self, start: SymbolStart, market: str, recorded: set[str]) -> None:
        self.symbol = start.symbol
        self.start = start
        self.market = market
        self.book = start.book.copy()
        self.price_places = start.price_width
        self.qty_places = start.quantity_width
        self.trades: list[TradeRecord] = []
        self.agg_trades: list[AggTradeRecord] = []
        self.recorded_klines: dict[str, dict[int, dict]] = {}
        self.stats = TickerStats(self.price_places, self.qty_places)
        self.agg_trades_derived = "aggTrade" not in recorded
        self.trades_derived = "trade" not in recorded
        self.agg_builder = AggTradeBuilder(self.qty_places)
        self.last_trade_id = -1
        self.last_agg_id = -1

    def apply_depth(self, data: bytes) -> dict:
        """Apply one diff to the book; returns the decoded diff."""
        body = orjson.loads(data)
        self.book.apply(body["b"], body["a"], body["u"])
        return body

    def apply_trade(self, data: bytes) -> AggTradeRecord | None:
        """Record a trade; returns an aggTrade it closed when aggTrades are derived."""
        body = orjson.loads(data)
        trade = TradeRecord(body["t"], body["p"], body["q"], body["T"], body["m"])
        self.trades.append(trade)
        _trim(self.trades)
        self.last_trade_id = trade.id
        self.stats.add(trade.id, trade.id, trade.price, trade.qty, trade.time)
        if not self.agg_trades_derived:
            return None
        return self._add_agg(self.agg_builder.add(trade))

    def close_agg_trade(self) -> AggTradeRecord | None:
        """Close the open derived aggTrade (its taker order is complete)."""
        return self._add_agg(self.agg_builder.flush()) if self.agg_trades_derived else None

    def _add_agg(self, record: AggTradeRecord | None) -> AggTradeRecord | None:
        if record is not None:
            self.agg_trades.append(record)
            _trim(self.agg_trades)
            self.last_agg_id = record.a
        return record

    def apply_agg_trade(self, data: bytes) -> None:
        body = orjson.loads(data)
        record = AggTradeRecord(
            body["a"], body["p"], body["q"], body["f"], body["l"], body["T"], body["m"]
        )
        self.agg_trades.append(record)
        _trim(self.agg_trades)
        self.last_agg_id, self.last_trade_id = record.a, record.l
        if self.trades_derived:
            self.stats.add(record.f, record.l, record.p, record.q, record.T)

    def apply_kline(self, data: bytes) -> None:
        bar = orjson.loads(data)["k"]
        self.recorded_klines.setdefault(bar["i"], {})[bar["t"]] = bar

    # REST bodies

    def depth(self, limit: int) -> dict:
        body: dict = {"lastUpdateId": self.book.last_update_id}
        body["bids"] = self.book.top_bids(limit)
        body["asks"] = self.book.top_asks(limit)
        return body

    def trade_rows(self, limit: int, from_id: int | None = None) -> list[dict]:
        """``/api/v3/trades`` (most recent) or ``historicalTrades`` (from ``from_id``)."""
        if self.trades_derived:
            source = [TradeRecord(a.f, a.p, a.q, a.T, a.m) for a in self._agg_slice(limit, from_id)]
        else:
            source = _slice(self.trades, _TRADE_ID, limit, from_id)
        return [
            {
                "id": t.id,
                "price": t.price,
                "qty": t.qty,
                "quoteQty": f"{float(t.price) * float(t.qty):.{self.price_places}f}",
                "time": t.time,
                "isBuyerMaker": t.buyer_maker,
                "isBestMatch": True,
            }
            for t in source
        ]

    def _agg_slice(self, limit: int, from_id: int | None) -> list[AggTradeRecord]:
        key = _LAST_FILL_ID if self.trades_derived else _AGG_ID
        return _slice(self.agg_trades, key, limit, from_id)

    def agg_trade_rows(
        self,
        limit: int,
        from_id: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
    ) -> list[dict]:
        """``/api/v3/aggTrades``: by ``fromId``, by time range (inclusive), else the latest."""
        if start_time is not None or end_time is not None:
            low = start_time if start_time is not None else -1
            high = end_time if end_time is not None else 1 << 62
            chosen = [a for a in self.agg_trades if low <= a.T <= high]
            chosen = chosen[:limit] if start_time is not None else chosen[-limit:]
            if from_id is not None:
                chosen = [a for a in chosen if a.a >= from_id][:limit]
        else:
            chosen = _slice(self.agg_trades, _AGG_ID, limit, from_id)
        return [a.rest() for a in chosen]

    def klines(
        self,
        interval: str,
        interval_ms: int,
        limit: int,
        start_time: int | None,
        end_time: int | None,
    ) -> tuple[list[list], bool]:
        """Kline rows and whether they are derived (recorded klines are served as recorded)."""
        recorded = self.recorded_klines.get(interval)
        if recorded:
            rows = [_recorded_row(bar) for _, bar in sorted(recorded.items())]
            derived = False
        else:
            fills = self.trades_as_agg()
            rows = kline_rows(fills, interval_ms, self.price_places, self.qty_places)
            rows = [row[:12] for row in rows]
            derived = True
        if start_time is not None:
            rows = [r for r in rows if r[0] >= start_time]
        if end_time is not None:
            rows = [r for r in rows if r[0] <= end_time]
        rows = rows[:limit] if start_time is not None else rows[-limit:]
        return rows, derived

    def fills_since(self, time_ms: int) -> list[AggTradeRecord]:
        """Fills at or after ``time_ms`` in aggTrade shape, oldest first. Walks back from
        the newest fill, so the cost is the number of fills returned."""
        if self.trades_derived:
            start = len(self.agg_trades)
            while start > 0 and time_ms <= self.agg_trades[start - 1].T:
                start -= 1
            return self.agg_trades[start:]
        start = len(self.trades)
        while start > 0 and self.trades[start - 1].time >= time_ms:
            start -= 1
        return [fill_as_agg_trade(t) for t in self.trades[start:]]

    def trades_as_agg(self) -> list[AggTradeRecord]:
        """Every replayed fill in aggTrade shape (for klines)."""
        if self.trades_derived:
            return self.agg_trades
        return [fill_as_agg_trade(t) for t in self.trades]


def fill_as_agg_trade(trade: TradeRecord) -> AggTradeRecord:
    """One fill in aggTrade shape (``f == l`` = its trade id)."""
    return AggTradeRecord(
        trade.id, trade.price, trade.qty, trade.id, trade.id, trade.time, trade.buyer_maker
    )


def _recorded_row(bar: dict) -> list:
    return [
        bar["t"],
        bar["o"],
        bar["h"],
        bar["l"],
        bar["c"],
        bar["v"],
        bar["T"],
        bar["q"],
        bar["n"],
        bar["V"],
        bar["Q"],
        "0",
    ]


_TRADE_ID = attrgetter("id")
_AGG_ID = attrgetter("a")
_LAST_FILL_ID = attrgetter("l")


def _slice(records: list, key: Callable[[object], int], limit: int, from_id: int | None) -> list:
    """The latest ``limit`` records, or ``limit`` of them from the first whose ``key`` is at
    least ``from_id`` (records ascend by ``key``)."""
    if from_id is None:
        return records[-limit:]
    start = bisect.bisect_left(records, from_id, key=key)
    return records[start : start + limit]
