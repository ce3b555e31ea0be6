"""Fuzzed market data into the book sync, the trade log and the feed's frame handler.

Whatever the values — NaN, infinite, negative or zero prices, negative quantities, ids out
of order or far apart, symbols nobody subscribed to, huge level arrays — nothing raises, a
LIVE book is never crossed, and every refused frame is counted in the feed's stats.
"""

from __future__ import annotations

import asyncio
import json
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.binance.endpoints import custom
from services.binance.messages import (
    DepthSnapshot,
    DepthUpdate,
    MalformedFrame,
    decode_frame,
)
from services.binance.rate_limit import WeightBudget
from services.binance.ws_client import Received
from services.market.book_sync import BookSync
from services.market.feed import Feed, FeedConfig
from services.market.trade_log import TradeLog
from services.market.views import SymbolInfo, SyncState
from services.store import MemoryStore

STREAMED = ("BTCUSDT", "ETHUSDT")
SYMBOLS = (*STREAMED, "NOPEUSDT")
INT64 = 2**63 - 1

prices = st.one_of(
    st.floats(min_value=0.01, max_value=100.0),
    st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, -0.0]),
)
quantities = st.one_of(
    st.floats(min_value=0.0, max_value=50.0),
    st.sampled_from([math.nan, math.inf, -1.0, 0.0]),
)
levels = st.lists(st.tuples(prices, quantities), max_size=6)
ids = st.integers(min_value=-5, max_value=60)


def _text(value: float) -> str:
    return repr(value) if math.isfinite(value) else {"nan": "NaN"}.get(str(value), str(value))


def _wire_levels(side: list[tuple[float, float]]) -> list[list[str]]:
    return [[_text(p), _text(q)] for p, q in side]


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """One wire frame of a streamed or unknown symbol, with fuzzed values."""
    symbol = draw(st.sampled_from(SYMBOLS))
    kind = draw(st.sampled_from(["depth", "aggTrade", "miniTicker", "kline", "junk"]))
    stream = f"{symbol.lower()}@{kind}"
    if kind == "depth":
        first = draw(ids)
        data = {
            "e": "depthUpdate",
            "E": 1,
            "s": symbol,
            "U": first,
            "u": first + draw(st.integers(0, 3)),
            "b": _wire_levels(draw(levels)),
            "a": _wire_levels(draw(levels)),
        }
    elif kind == "aggTrade":
        data = {
            "e": "aggTrade",
            "E": 1,
            "s": symbol,
            "a": draw(st.integers(-5, INT64)),
            "p": _text(draw(prices)),
            "q": _text(draw(quantities)),
            "f": 1,
            "l": 1,
            "T": draw(st.integers(0, 2**40)),
            "m": draw(st.booleans()),
        }
    elif kind == "miniTicker":
        value = _text(draw(prices))
        data = {
            "e": "24hrMiniTicker",
            "E": 1,
            "s": symbol,
            "c": value,
            "o": value,
            "h": value,
            "l": value,
            "v": "1",
            "q": "1",
        }
    elif kind == "kline":
        stream = f"{symbol.lower()}@kline_1m"
        value = _text(draw(prices))
        data = {
            "e": "kline",
            "E": 1,
            "s": symbol,
            "k": {
                "t": draw(st.integers(0, 5)) * 60_000,
                "T": 1,
                "s": symbol,
                "i": "1m",
                "o": value,
                "c": value,
                "h": value,
                "l": value,
                "v": "1",
                "n": 1,
                "x": False,
                "q": "1",
                "V": "1",
                "Q": "1",
            },
        }
    else:
        data = {"e": draw(st.text(max_size=8)), "E": 1, "s": symbol}
    raw = json.dumps({"stream": stream, "data": data}).encode()
    if draw(st.integers(0, 9)) == 0:
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    return raw


class _RefusingRest:
    """Stands in for the REST client: every backfill fails like an unreachable exchange."""

    def __init__(self) -> None:
        self.budget = WeightBudget()

    async def agg_trades(self, *args: object, **kwargs: object) -> list:
        from services.binance.rest_client import BinanceUnavailable

        raise BinanceUnavailable("/api/v3/aggTrades", 503)


def _feed() -> tuple[Feed, MemoryStore]:
    store = MemoryStore()
    feed = Feed(FeedConfig(endpoints=custom("ws://127.0.0.1:9", "http://127.0.0.1:9")), store)
    feed._infos = {s: SymbolInfo(s) for s in STREAMED}
    for symbol in STREAMED:
        feed._add_symbol(symbol, on_demand=False)
    feed._rest = _RefusingRest()  # type: ignore[assignment]
    return feed, store


def _assert_sane(store: MemoryStore) -> None:
    for symbol in STREAMED:
        snapshot = store.snapshot(symbol)
        if snapshot is None:
            continue
        book = snapshot.book
        for side in (book.bid_prices, book.ask_prices, book.bid_qtys, book.ask_qtys):
            assert np.isfinite(side).all() and (side > 0).all()
        if book.is_live and book.bid_prices.size and book.ask_prices.size:
            assert book.bid_prices[0] < book.ask_prices[0]
        assert (np.diff(snapshot.trades.trade_id) > 0).all()


@settings(max_examples=150, deadline=None)
@given(st.lists(frames(), min_size=1, max_size=40))
def test_feed_frame_handler_survives_and_counts(raws: list[bytes]) -> None:
    async def scenario() -> None:
        feed, store = _feed()
        feed._snapshot_queue = asyncio.Queue()
        malformed = 0
        for raw in raws:
            try:
                frame = decode_frame(raw)
            except MalformedFrame:
                malformed += 1
                continue
            feed._on_frame(Received(frame, time.time(), 1))
            assert feed.counters.frame_errors == 0
            await asyncio.sleep(0)
        for symbol in STREAMED:
            feed._symbols[symbol].book.on_snapshot(DepthSnapshot(5, [(1.0, 1.0)], [(2.0, 1.0)]))
        feed.publish()
        _assert_sane(store)
        counters = feed.stats().counters
        refused = counters.unknown_symbol_frames
        assert refused + malformed <= len(raws)
        for task in list(feed._tasks):
            task.cancel()

    asyncio.run(scenario())


def test_each_refusal_is_counted() -> None:
    async def scenario() -> None:
        feed, _ = _feed()
        feed._snapshot_queue = asyncio.Queue()

        def agg_trade(symbol: str, trade_id: int, price: str) -> dict:
            data = {"e": "aggTrade", "E": 1, "s": symbol.upper(), "a": trade_id, "p": price}
            data |= {"q": "1", "f": 1, "l": 1, "T": 1, "m": True}
            return {"stream": f"{symbol}@aggTrade", "data": data}

        def depth(symbol: str, bid: list[str]) -> dict:
            data = {"e": "depthUpdate", "E": 1, "s": symbol.upper(), "U": 1, "u": 2}
            return {"stream": f"{symbol}@depth", "data": data | {"b": [bid], "a": []}}

        wire = [
            agg_trade("nopeusdt", 1, "1"),
            agg_trade("btcusdt", 1, "NaN"),
            agg_trade("btcusdt", 2, "-3"),
            depth("btcusdt", ["1", "Infinity"]),
            depth("ethusdt", ["0", "1"]),
        ]
        unknown, out_of_range = wire[0], wire[1:]
        for body in out_of_range:
            with pytest.raises(MalformedFrame):
                decode_frame(json.dumps(body).encode())
        feed._on_frame(Received(decode_frame(json.dumps(unknown).encode()), time.time(), 1))
        counters = feed.stats().counters
        assert counters.unknown_symbol_frames == 1
        assert counters.frame_errors == 0
        assert feed.events.faults == {"unknown_symbol_frame": 1}

    asyncio.run(scenario())


finite_levels = st.lists(
    st.tuples(st.floats(min_value=1.0, max_value=20.0), st.floats(min_value=0.0, max_value=5.0)),
    max_size=8,
)


@st.composite
def diffs(draw: st.DrawFn) -> DepthUpdate:
    first = draw(st.integers(0, 80))
    last = first + draw(st.integers(0, 3))
    return DepthUpdate(
        "depthUpdate", 1, "BTCUSDT", first, last, draw(finite_levels), draw(finite_levels)
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            diffs(),
            st.builds(DepthSnapshot, st.integers(0, 80), finite_levels, finite_levels),
            st.just("disconnect"),
        ),
        max_size=60,
    ),
    st.sampled_from(["spot", "usdm"]),
)
def test_book_sync_never_raises_nor_shows_a_crossed_live_book(steps: list, market: str) -> None:
    sync = BookSync("BTCUSDT", market, max_buffer=16)
    for step in steps:
        if step == "disconnect":
            sync.on_disconnect()
        elif isinstance(step, DepthSnapshot):
            sync.on_snapshot(step)
        else:
            sync.on_diff(step)
        view = sync.view()
        if view.sync_state is SyncState.LIVE and view.bid_prices.size and view.ask_prices.size:
            assert view.bid_prices[0] < view.ask_prices[0]
        assert sync.buffered <= 16


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-3, INT64),
            st.integers(0, 2**41),
            st.floats(0.01, 1e6),
            st.floats(0.0, 1e3),
            st.booleans(),
        ),
        max_size=80,
    ),
    st.booleans(),
)
def test_trade_log_never_raises_and_keeps_ids_increasing(rows: list, backfill: bool) -> None:
    log = TradeLog("BTCUSDT", capacity=16, kind="aggTrade", backfill_gaps=backfill, max_pending=8)
    for row in rows:
        gap = log.add(*row)
        if gap is not None:
            log.abandon_backfill()
    view = log.view()
    assert len(view) <= 16
    assert (np.diff(view.trade_id) > 0).all()
    assert log.pending <= 9
