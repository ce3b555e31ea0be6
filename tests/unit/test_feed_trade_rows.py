"""The feed hands a trade it just accepted to taps that take rows (``on_trade_row``) as the
row it decoded, and builds a one-trade view only for the taps that take views. The first
trade a feed taps (the log may hold trades merged in before it) and trades released
together still come as a view to every tap."""

from __future__ import annotations

import json
import time

from services.binance.endpoints import custom
from services.binance.messages import decode_frame
from services.binance.ws_client import Received
from services.market.feed import Feed, FeedConfig
from services.market.trade_log import TradeLog
from services.market.views import SymbolInfo
from services.store import MemoryStore

SYMBOL = "BTCUSDT"


class _ViewTap:
    def __init__(self) -> None:
        self.ids: list[int] = []

    def on_trades(self, symbol: str, trades) -> None:
        self.ids += trades.trade_id.tolist()

    def on_book(self, symbol: str, book) -> None:
        pass

    def on_candle(self, symbol: str, candle) -> None:
        pass


class _RowTap(_ViewTap):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple] = []

    def on_trade_row(self, symbol: str, kind: str, row: tuple) -> None:
        self.rows.append((symbol, kind, *row))


def _feed(*taps) -> Feed:
    feed = Feed(
        FeedConfig(endpoints=custom("ws://127.0.0.1:9", "http://127.0.0.1:9")),
        MemoryStore(),
        taps=taps,
    )
    feed._infos = {SYMBOL: SymbolInfo(SYMBOL)}
    feed._add_symbol(SYMBOL, on_demand=False)
    return feed


def _trade(feed: Feed, trade_id: int, price: str, qty: str, maker: bool) -> None:
    data = {"e": "aggTrade", "E": 1, "s": SYMBOL, "a": trade_id, "p": price, "q": qty,
            "f": trade_id, "l": trade_id, "T": 1_700_000_000_000 + trade_id,
            "m": maker}  # fmt: skip
    raw = json.dumps({"stream": "btcusdt@aggTrade", "data": data}).encode()
    feed._on_frame(Received(decode_frame(raw), time.time(), 1))


def test_rows_to_row_taps_views_to_view_taps_once_each():
    rows, views = _RowTap(), _ViewTap()
    feed = _feed(rows, views)
    _trade(feed, 1, "100", "1", False)  # the first: a view to both
    _trade(feed, 2, "100.5", "0.25", False)
    _trade(feed, 3, "100.25", "1.5", True)
    _trade(feed, 3, "100.25", "1.5", True)  # a duplicate: nobody hears of it again
    assert rows.rows == [
        (SYMBOL, "aggTrade", 2, 1_700_000_000_002, 100.5, 0.25, False),
        (SYMBOL, "aggTrade", 3, 1_700_000_000_003, 100.25, 1.5, True),
    ]
    assert rows.ids == [1]  # no view was built for the row tap after that
    assert views.ids == [1, 2, 3]
    assert feed.counters.tap_errors == 0


def test_without_a_view_tap_no_view_is_built(monkeypatch):
    rows = _RowTap()
    feed = _feed(rows)
    _trade(feed, 1, "100", "1", False)

    def no_view(*args, **kwargs):
        raise AssertionError("a view was built")

    monkeypatch.setattr(TradeLog, "view", no_view)
    monkeypatch.setattr(TradeLog, "released_after", no_view)
    for trade_id in range(2, 7):
        _trade(feed, trade_id, "100", "1", trade_id % 2 == 0)
    assert [r[2] for r in rows.rows] == [2, 3, 4, 5, 6]
    assert feed.counters.tap_errors == 0
