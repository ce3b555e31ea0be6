"""python-binance against the local exchange, unchanged but for its base URLs:
``Client``, ``AsyncClient``, ``BinanceSocketManager`` (single, multiplex and USD-M futures
sockets) and ``DepthCacheManager`` / ``FuturesDepthCacheManager``."""

from __future__ import annotations

import asyncio
import time

import pytest
from binance import AsyncClient, BinanceSocketManager, Client, DepthCacheManager
from binance.ws.depthcache import FuturesDepthCacheManager

from tests.clients.conftest import Venue

pytestmark = pytest.mark.timeout(60)


def base_urls(client: Client | AsyncClient, venue: Venue) -> None:
    """The only change a user makes: where the REST API lives."""
    client.API_URL = f"{venue.rest}/api"
    client.FUTURES_URL = f"{venue.rest}/fapi"


def sockets(client: AsyncClient, venue: Venue) -> BinanceSocketManager:
    manager = BinanceSocketManager(client)
    manager.STREAM_URL = f"{venue.ws}/"
    manager.FSTREAM_URL = f"{venue.ws}/"
    return manager


def test_client_rest_calls(venue: Venue):
    client = Client(ping=False)
    base_urls(client, venue)
    symbol = venue.symbol
    if venue.market == "spot":
        assert client.ping() == {}
        server_time = client.get_server_time()["serverTime"]
        info = client.get_symbol_info(symbol)
        book = client.get_order_book(symbol=symbol, limit=100)
        trades = client.get_recent_trades(symbol=symbol, limit=10)
        aggs = client.get_aggregate_trades(symbol=symbol, limit=10)
        klines = client.get_klines(symbol=symbol, interval=Client.KLINE_INTERVAL_1MINUTE)
        assert client.get_avg_price(symbol=symbol)["mins"] == 5
        assert client.get_symbol_ticker(symbol=symbol)["symbol"] == symbol
        assert client.get_orderbook_ticker(symbol=symbol)["symbol"] == symbol
        assert client.get_ticker(symbol=symbol)["symbol"] == symbol
        assert {s["symbol"] for s in client.get_exchange_info()["symbols"]} == set(
            venue.exchange.markets
        )
    else:
        assert client.futures_ping() == {}
        server_time = client.futures_time()["serverTime"]
        info = next(s for s in client.futures_exchange_info()["symbols"] if s["symbol"] == symbol)
        book = client.futures_order_book(symbol=symbol, limit=100)
        trades = client.futures_recent_trades(symbol=symbol, limit=10)
        aggs = client.futures_aggregate_trades(symbol=symbol, limit=10)
        klines = client.futures_klines(symbol=symbol, interval=Client.KLINE_INTERVAL_1MINUTE)
        assert client.futures_mark_price(symbol=symbol)["symbol"] == symbol
        assert client.futures_symbol_ticker(symbol=symbol)["symbol"] == symbol
        assert client.futures_orderbook_ticker(symbol=symbol)["symbol"] == symbol
        assert client.futures_ticker(symbol=symbol)["symbol"] == symbol
    start = venue.exchange.recording_start_ms
    assert start - 60_000 <= server_time <= start + 40 * 86_400_000  # the recording's time
    filters = {f["filterType"]: f for f in info["filters"]}
    assert float(filters["PRICE_FILTER"]["maxPrice"]) > 0
    assert float(filters["LOT_SIZE"]["maxQty"]) > 0
    assert float(book["bids"][0][0]) < float(book["asks"][0][0])
    assert len(trades) == 10 and len(aggs) == 10
    assert klines and all(row[0] % 60_000 == 0 for row in klines)


async def test_async_client_and_socket_manager(venue: Venue):
    client = AsyncClient()
    base_urls(client, venue)
    try:
        symbol = venue.symbol
        depth = await (
            client.get_order_book(symbol=symbol, limit=5)
            if venue.market == "spot"
            else client.futures_order_book(symbol=symbol, limit=5)
        )
        assert depth["lastUpdateId"] > 0
        manager = sockets(client, venue)
        s = venue.stream_symbol
        if venue.market == "spot":
            trade = (
                manager.trade_socket(symbol)
                if venue.trade_kind == "trade"
                else manager.aggtrade_socket(symbol)
            )
            singles = [
                manager.depth_socket(symbol),
                trade,
                manager.kline_socket(symbol),
                manager.symbol_book_ticker_socket(symbol),
            ]
            multiplex = manager.multiplex_socket(
                [f"{s}@depth@100ms", f"{s}@aggTrade", f"{s}@miniTicker"]
            )
        else:
            singles = [
                manager.futures_depth_socket(symbol),
                manager.aggtrade_futures_socket(symbol),
                manager.kline_futures_socket(symbol),
                manager.symbol_ticker_futures_socket(symbol),
            ]
            multiplex = manager.futures_multiplex_socket([f"{s}@aggTrade", f"{s}@kline_1m"])
        for socket in [*singles, multiplex]:
            async with socket as stream:
                message = await asyncio.wait_for(stream.recv(), 15)
                assert message and message.get("e") != "error", message
                if socket is multiplex:
                    assert message["stream"].startswith(s)
    finally:
        await client.close_connection()


async def test_depth_cache_equals_the_exchange_book(spot_venue: Venue):
    """DepthCacheManager (snapshot + diffs from ``@depth``, 1000 ms) equals the exchange's
    REST depth whenever both are at the same update id."""
    venue = spot_venue
    client = AsyncClient()
    base_urls(client, venue)
    try:
        async with DepthCacheManager(
            client, venue.symbol, bm=sockets(client, venue), refresh_interval=None
        ) as cache_socket:
            deadline = time.monotonic() + 30
            matched = 0
            while matched < 2 and time.monotonic() < deadline:
                cache = await asyncio.wait_for(cache_socket.recv(), 10)
                rest = await client.get_order_book(symbol=venue.symbol, limit=50)
                if rest["lastUpdateId"] != cache_socket._last_update_id:
                    continue  # the market moved between the two reads: try the next update
                assert cache.get_bids()[:50] == [[float(p), float(q)] for p, q in rest["bids"]]
                assert cache.get_asks()[:50] == [[float(p), float(q)] for p, q in rest["asks"]]
                matched += 1
            assert matched == 2
    finally:
        await client.close_connection()


async def test_futures_depth_cache_follows_the_exchange_book(venue: Venue):
    """FuturesDepthCacheManager is python-binance's partial-depth cache (``@depth10`` on
    ``/public``, each push replacing the book; it keeps no update id): pushes arrive in time
    order, ten uncrossed levels a side, at the replay clock's time."""
    if venue.market != "usdm":
        pytest.skip("USD-M only")
    client = AsyncClient()
    base_urls(client, venue)
    try:
        async with FuturesDepthCacheManager(
            client, venue.symbol, bm=sockets(client, venue), refresh_interval=None
        ) as cache_socket:
            times: list[int] = []
            while len(times) < 5:
                cache = await asyncio.wait_for(cache_socket.recv(), 10)
                bids, asks = cache.get_bids(), cache.get_asks()
                assert len(bids) == len(asks) == 10 and bids[0][0] < asks[0][0]
                times.append(cache.update_time)
            assert times == sorted(times) and len(set(times)) == len(times)
            assert abs(times[-1] - venue.exchange.clock_ms()) < 5000
    finally:
        await client.close_connection()
