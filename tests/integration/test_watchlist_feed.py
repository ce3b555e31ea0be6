"""The market board end to end: the local exchange derives ``!miniTicker@arr``, the feed
seeds the board from ``ticker/24hr``, keeps it from the array and adds the streamed
books' spread, liquidity score and state; the store hands it to the watchlist."""

from __future__ import annotations

import asyncio
import urllib.request

import orjson
import websockets

from services.binance.messages import MiniTicker, decode_frame
from services.market.market_board import WatchlistRows
from services.replay.exchange import LocalExchange
from tests.integration.test_feed_replay import _until, running_feed


async def test_the_exchange_serves_the_all_market_mini_ticker_array(recordings):
    async with LocalExchange(recordings["spot_2021"], speed=10) as exchange:
        url = f"{exchange.ws_url}/stream?streams=!miniTicker@arr"
        async with websockets.connect(url) as ws:
            frames = [decode_frame(await asyncio.wait_for(ws.recv(), 5)) for _ in range(3)]
    seen: set[str] = set()
    for frame in frames:
        assert frame.stream == "!miniTicker@arr"
        assert isinstance(frame.event, list) and frame.event
        assert all(isinstance(t, MiniTicker) and t.l <= t.c <= t.h for t in frame.event)
        seen |= {t.s for t in frame.event}
    assert seen <= {"BTCUSDT", "ETHUSDT", "DOTUSDT"} and "BTCUSDT" in seen


async def test_the_board_lists_every_symbol_with_ticker_and_book_figures(recordings):
    async with (
        LocalExchange(recordings["spot_2021"], speed=5) as exchange,
        running_feed(exchange, symbols=("BTCUSDT", "ETHUSDT")) as (_, store),
    ):

        def complete() -> bool:
            board = store.watchlist()
            rows = {row.symbol: row for row in board.rows}
            return (
                set(rows) == {"BTCUSDT", "ETHUSDT", "DOTUSDT"}
                and all(row.last is not None for row in rows.values())
                and rows["BTCUSDT"].sync_state == "LIVE"
                and rows["BTCUSDT"].spread_bps is not None
                and rows["ETHUSDT"].liquidity is not None
            )

        await _until(complete, 20, "a complete board")
        board = store.watchlist()
        rows = {row.symbol: row for row in board.rows}
        dot = rows["DOTUSDT"]  # not streamed: ticker figures only
        assert dot.sync_state == "" and dot.spread_bps is None and dot.liquidity is None
        btc = rows["BTCUSDT"]
        assert btc.quote == "USDT" and btc.base == "BTC"
        assert btc.low <= btc.last <= btc.high and btc.quote_volume > 0
        assert 0 <= btc.spread_bps < 10 and 0 <= rows["BTCUSDT"].liquidity <= 100
        rest = {
            row["symbol"]: row
            for row in orjson.loads(
                await asyncio.to_thread(_get, f"{exchange.rest_url}/api/v3/ticker/24hr")
            )
        }
        assert abs(float(rest["DOTUSDT"]["lastPrice"]) - dot.last) <= 0.01 * dot.last
        # Readers that saw an older version get only what changed since.
        await asyncio.sleep(1.5)
        later = store.watchlist()
        assert later.version > board.version
        assert {r.symbol for r in later.since(board.version)} <= set(rows)
        assert all(r.version > board.version for r in later.since(board.version))
        assert isinstance(later, WatchlistRows)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return reply.read()


async def test_symbols_all_streams_every_trading_symbol(recordings):
    async with (
        LocalExchange(recordings["spot_2021"], speed=5) as exchange,
        running_feed(exchange, symbols=("ALL",)) as (_, store),
    ):
        await _until(
            lambda: all(
                (snap := store.snapshot(s)) is not None and snap.book.is_live
                for s in ("BTCUSDT", "ETHUSDT", "DOTUSDT")
            ),
            20,
            "every symbol LIVE",
        )
