"""ccxt (``binance`` for spot, ``binanceusdm`` for USD-M) and ccxt.pro against the local
exchange, unchanged but for base URLs: ccxt's ``binance`` loads spot, USD-M and COIN-M
markets from three hosts; the local exchange answers the markets it does not replay with
no symbols."""

from __future__ import annotations

import asyncio

import ccxt
import ccxt.pro
import pytest

from tests.clients.conftest import Venue

pytestmark = pytest.mark.timeout(60)


def configure(exchange: ccxt.Exchange, venue: Venue) -> None:
    """Point every REST and WebSocket base URL ccxt uses at the local exchange."""
    api = exchange.urls["api"]
    for key, url in list(api.items()):
        if isinstance(url, str) and url.startswith("https://"):
            path = url.split("/", 3)[3]
            api[key] = f"{venue.rest}/{path}"
    if isinstance(api.get("ws"), dict):
        for key, url in list(api["ws"].items()):
            if isinstance(url, str) and url.startswith("wss://"):
                api["ws"][key] = f"{venue.ws}/{url.split('/', 3)[3]}"


def unified(venue: Venue) -> str:
    base, quote = venue.symbol[:-4], venue.symbol[-4:]
    return f"{base}/{quote}" if venue.market == "spot" else f"{base}/{quote}:{quote}"


def test_markets_order_book_trades_and_ohlcv(venue: Venue):
    exchange = ccxt.binance() if venue.market == "spot" else ccxt.binanceusdm()
    configure(exchange, venue)
    markets = exchange.load_markets()
    symbol = unified(venue)
    assert symbol in markets and markets[symbol]["id"] == venue.symbol
    market = markets[symbol]
    assert market["precision"]["price"] > 0 and market["limits"]["amount"]["max"] > 0
    book = exchange.fetch_order_book(symbol, limit=100)
    assert book["nonce"] > 0 and book["bids"][0][0] < book["asks"][0][0]
    trades = exchange.fetch_trades(symbol, limit=20)
    assert 0 < len(trades) <= 20 and all(t["symbol"] == symbol for t in trades)
    start = venue.exchange.recording_start_ms
    assert all(start - 60_000 <= t["timestamp"] <= start + 40 * 86_400_000 for t in trades)
    bars = exchange.fetch_ohlcv(symbol, "1m")
    assert bars and all(bar[0] % 60_000 == 0 for bar in bars)
    assert exchange.fetch_ticker(symbol)["symbol"] == symbol


async def test_pro_watch_order_book(venue: Venue):
    exchange = ccxt.pro.binance() if venue.market == "spot" else ccxt.pro.binanceusdm()
    configure(exchange, venue)
    try:
        symbol = unified(venue)
        nonces = []
        for _ in range(3):
            book = await asyncio.wait_for(exchange.watch_order_book(symbol), 20)
            assert book["bids"][0][0] < book["asks"][0][0]
            nonces.append(book["nonce"])
        assert nonces == sorted(nonces)
        rest = await exchange.fetch_order_book(symbol, limit=5)
        assert rest["nonce"] >= nonces[0]
    finally:
        await exchange.close()


async def test_pro_refused_subscription_raises(venue: Venue):
    """A stream the replay cannot feed is refused with the error shape ccxt.pro reads, so
    the watch call fails at once instead of waiting forever."""
    exchange = ccxt.pro.binance() if venue.market == "spot" else ccxt.pro.binanceusdm()
    configure(exchange, venue)
    try:
        await exchange.load_markets()
        url = exchange.urls["api"]["ws"]["spot" if venue.market == "spot" else "linear"]
        hash_ = "refused"
        request = {"method": "SUBSCRIBE", "params": ["nopeusdt@depth"], "id": 77}
        with pytest.raises(ccxt.BaseError, match="nopeusdt"):
            await asyncio.wait_for(exchange.watch(url, hash_, request, hash_, {"id": "77"}), 10)
    finally:
        await exchange.close()
