"""What the feed publishes: which changes produce a new snapshot, when the trade window
is copied, and trade gaps revealed while a backfill is being given up."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace

from services.binance.endpoints import custom
from services.binance.messages import DepthSnapshot, decode_frame
from services.binance.rate_limit import WeightBudget
from services.binance.rest_client import BinanceUnavailable
from services.binance.ws_client import Received
from services.market.feed import Feed, FeedConfig
from services.market.views import SymbolInfo
from services.store import MemoryStore

SYMBOL = "BTCUSDT"


class _FailingOnceRest:
    """Stands in for the REST client: the first aggTrades call fails, later ones find that
    the exchange no longer has the missing ids."""

    def __init__(self) -> None:
        self.budget = WeightBudget()
        self.asked: list[int] = []

    async def agg_trades(self, symbol: str, *, from_id: int, limit: int) -> list:
        self.asked.append(from_id)
        await asyncio.sleep(0)
        if len(self.asked) == 1:
            raise BinanceUnavailable("/api/v3/aggTrades", 503)
        return []


def _feed() -> Feed:
    feed = Feed(
        FeedConfig(endpoints=custom("ws://127.0.0.1:9", "http://127.0.0.1:9")), MemoryStore()
    )
    feed._infos = {SYMBOL: SymbolInfo(SYMBOL)}
    feed._add_symbol(SYMBOL, on_demand=False)
    feed._rest = _FailingOnceRest()  # type: ignore[assignment]
    return feed


def _send(feed: Feed, stream: str, data: dict) -> None:
    raw = json.dumps({"stream": stream, "data": {"E": 1, "s": SYMBOL, **data}}).encode()
    feed._on_frame(Received(decode_frame(raw), time.time(), 1))


def _trade(feed: Feed, trade_id: int) -> None:
    fields = {"a": trade_id, "p": "100", "q": "1", "f": trade_id, "l": trade_id, "T": trade_id}
    _send(feed, "btcusdt@aggTrade", {"e": "aggTrade", **fields, "m": False})


def _diff(feed: Feed, first: int, last: int, bid: str) -> None:
    fields = {"U": first, "u": last, "b": [[bid, "1"]], "a": []}
    _send(feed, "btcusdt@depth@100ms", {"e": "depthUpdate", **fields})


def test_book_and_candle_changes_publish_without_copying_the_trade_window():
    feed = _feed()
    symbol = feed._symbols[SYMBOL]
    _trade(feed, 1)
    symbol.book.on_snapshot(DepthSnapshot(10, [(99.0, 1.0)], [(101.0, 1.0)]))
    feed.publish()
    first = feed.store.snapshot(SYMBOL)
    _diff(feed, 11, 11, "99.5")
    feed.publish()
    after_diff = feed.store.snapshot(SYMBOL)
    assert after_diff.seq == first.seq + 1 and after_diff.book.bid_prices[0] == 99.5
    assert after_diff.trades is first.trades
    bar = {"t": 0, "T": 59_999, "s": SYMBOL, "i": "1m", "o": "1", "c": "2", "h": "2", "l": "1"}
    bar |= {"v": "1", "n": 1, "x": False, "q": "1", "V": "1", "Q": "1"}
    _send(feed, "btcusdt@kline_1m", {"e": "kline", "k": bar})
    feed.publish()
    after_candle = feed.store.snapshot(SYMBOL)
    assert after_candle.seq == after_diff.seq + 1 and len(after_candle.candles) == 1
    ticker = {"c": "2", "o": "1", "h": "2", "l": "1", "v": "1", "q": "1"}
    _send(feed, "btcusdt@miniTicker", {"e": "24hrMiniTicker", **ticker})
    feed.publish()
    after_ticker = feed.store.snapshot(SYMBOL)
    assert after_ticker.seq == after_candle.seq + 1 and after_ticker.ticker is not None
    _trade(feed, 2)
    feed.publish()
    after_trade = feed.store.snapshot(SYMBOL)
    assert after_trade.trades.trade_id.tolist() == [1, 2]


def test_a_gap_released_by_a_failed_backfill_gets_its_own_backfill():
    async def scenario() -> None:
        feed = _feed()
        for trade_id in (1, 2, 5, 6, 9, 10):  # gap 3-4 opens; 7-8 hides among held trades
            _trade(feed, trade_id)
        while feed._tasks:
            await asyncio.gather(*feed._tasks)
        log = feed._symbols[SYMBOL].trades
        assert feed._rest.asked == [3, 7]  # type: ignore[union-attr]
        assert log.open_gap is None and log.pending == 0
        _trade(feed, 11)
        assert log.view().trade_id.tolist() == [1, 2, 5, 6, 9, 10, 11]

    asyncio.run(scenario())


async def test_a_publication_round_that_raises_is_counted_and_the_next_one_goes_on():
    feed = _feed()
    feed.config = replace(feed.config, publish_interval_s=0.01)
    rounds = []
    publish = feed.publish

    def failing_once():
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise IndexError("index 0 is out of bounds for axis 0 with size 0")
        return publish()

    feed.publish = failing_once  # type: ignore[method-assign]
    publisher = asyncio.create_task(feed._publisher())
    for _ in range(300):
        if len(rounds) >= 3:
            break
        await asyncio.sleep(0.01)
    publisher.cancel()
    assert len(rounds) >= 3
    assert feed.counters.publish_errors == 1
    assert feed.store.snapshot(SYMBOL) is not None


async def test_a_background_task_that_raises_is_counted_and_logged(caplog):
    feed = _feed()

    async def broken() -> None:
        raise RuntimeError("desk broke")

    feed._spawn(broken())
    for _ in range(10):
        await asyncio.sleep(0)
    assert feed.counters.task_errors == 1 and not feed._tasks
    assert "task_failed" in caplog.text and "desk broke" in caplog.text


def test_the_board_keeps_a_score_until_it_is_due_and_rescores_a_watched_symbol():
    feed = _feed()
    scored: list[str] = []
    update_book = feed._board.update_book

    def counting(symbol, view, infos, rescore=True):  # type: ignore[no-untyped-def]
        did = update_book(symbol, view, infos, rescore)
        if did:
            scored.append(symbol)
        return did

    feed._board.update_book = counting  # type: ignore[method-assign]
    feed._symbols[SYMBOL].book.on_snapshot(DepthSnapshot(10, [(99.0, 1.0)], [(101.0, 1.0)]))
    t0 = time.time()
    bids = iter(["99.1", "99.2", "99.3", "99.4", "99.5", "99.6"])

    def round_at(now: float) -> None:
        update_id = feed._symbols[SYMBOL].book.last_update_id + 1
        _diff(feed, update_id, update_id, next(bids))
        feed._board_published_at = -1e18  # every call is a board round
        feed._snapshot_of(SYMBOL, feed._symbols[SYMBOL], now)
        feed._publish_board(now)

    round_at(t0)
    round_at(t0 + 1.0)  # spread refreshed, score kept
    row = next(r for r in feed._board.rows(feed._infos).rows if r.symbol == SYMBOL)
    assert scored == [SYMBOL] and abs(row.spread_bps - 10_000 * 1.8 / 100.1) < 1e-3
    round_at(t0 + feed.config.watchlist_score_s)  # due again
    assert scored == [SYMBOL, SYMBOL]
    feed._requests[SYMBOL] = t0 + feed.config.watchlist_score_s  # a reader asks for it
    round_at(t0 + feed.config.watchlist_score_s + 1.0)
    assert scored == [SYMBOL] * 3


def test_with_the_all_market_array_a_symbols_ticker_comes_from_it():
    feed = _feed()  # the board is on (watchlist_interval_s): no per-symbol ticker stream
    assert not any("miniTicker" in s for s in feed._symbols[SYMBOL].streams)
    off = Feed(
        FeedConfig(
            endpoints=custom("ws://127.0.0.1:9", "http://127.0.0.1:9"), watchlist_interval_s=0.0
        ),
        MemoryStore(),
    )
    assert "btcusdt@miniTicker" in off._streams_for(SYMBOL)
    feed._infos["ETHUSDT"] = SymbolInfo("ETHUSDT")
    feed.publish()
    seq = feed.store.snapshot(SYMBOL).seq

    def array(close: str, event_time: int) -> None:
        rows = [
            {"e": "24hrMiniTicker", "E": event_time, "s": s, "c": close, "o": "1", "h": "9"}
            | {"l": "1", "v": "5", "q": "50"}
            for s in (SYMBOL, "ETHUSDT", "XYZUSDT")  # XYZUSDT: not TRADING
        ]
        raw = json.dumps({"stream": "!miniTicker@arr", "data": rows}).encode()
        feed._on_frame(Received(decode_frame(raw), time.time(), 1))

    array("2", 20)
    feed.publish()
    published = feed.store.snapshot(SYMBOL)
    assert published.seq == seq + 1 and published.ticker.last == 2.0
    assert published.ticker.event_time_ms == 20 and "XYZUSDT" not in feed._tickers
    array("3", 10)  # older than the one held: not taken
    assert feed._symbols[SYMBOL].ticker.last == 2.0
    eth = feed._add_symbol("ETHUSDT", on_demand=True)  # streamed later: starts with it
    assert eth.ticker is not None and eth.ticker.last == 2.0
