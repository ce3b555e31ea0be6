"""Stream names, combined URLs, chunking and USD-M routing (no I/O)."""

from __future__ import annotations

import pytest

from services.binance import streams
from services.binance.endpoints import PRESETS, Market, custom, preset
from services.binance.ws_client import BinanceWebSocketClient


def test_stream_names_are_lowercase_binance_names() -> None:
    assert streams.diff_depth("BTCUSDT") == "btcusdt@depth@100ms"
    assert streams.diff_depth("BTCUSDT", None) == "btcusdt@depth"
    assert streams.partial_depth("ethusdt", 5, None) == "ethusdt@depth5"
    assert streams.partial_depth("ethusdt", 20) == "ethusdt@depth20@100ms"
    assert streams.trade("BTCUSDT") == "btcusdt@trade"
    assert streams.agg_trade("BTCUSDT") == "btcusdt@aggTrade"
    assert streams.kline("BTCUSDT", "1M") == "btcusdt@kline_1M"
    assert streams.mini_ticker("BTCUSDT") == "btcusdt@miniTicker"
    assert streams.ticker("BTCUSDT") == "btcusdt@ticker"
    assert streams.book_ticker("BTCUSDT") == "btcusdt@bookTicker"


@pytest.mark.parametrize(
    "build",
    [
        lambda: streams.partial_depth("btcusdt", 15),
        lambda: streams.diff_depth("btcusdt", 10),
        lambda: streams.kline("btcusdt", "2m"),
        lambda: streams.trade(" "),
    ],
)
def test_invalid_names_are_refused(build) -> None:
    with pytest.raises(ValueError):
        build()


def test_combined_url_and_chunks() -> None:
    url = streams.combined_url("wss://stream.binance.com:9443", ["a@trade", "b@trade"])
    assert url == "wss://stream.binance.com:9443/stream?streams=a@trade/b@trade"
    assert streams.combined_url("ws://127.0.0.1:1/", []) == "ws://127.0.0.1:1/stream"


async def test_client_spreads_streams_over_connections_of_1024() -> None:
    client = BinanceWebSocketClient(preset("spot"))
    await client.subscribe([f"s{i}@trade" for i in range(2500)] + ["s0@trade"])
    assert [s.streams for s in client.get_stats()] == [1024, 1024, 452]


def test_presets() -> None:
    assert set(PRESETS) == {"spot", "spot-data", "us", "usdm"}
    assert preset("spot-data").rest_base == "https://data-api.binance.vision"
    assert preset("us").ws_base == "wss://stream.binance.us:9443"
    assert preset("usdm").rest_prefix == "/fapi/v1" and preset("spot").rest_prefix == "/api/v3"
    with pytest.raises(KeyError, match="spot-data"):
        preset("mars")


async def test_usdm_streams_are_routed_and_chunked_at_200() -> None:
    usdm = preset("usdm")
    assert usdm.route("btcusdt@depth@100ms") == "/public"
    assert usdm.route("btcusdt@depth20@100ms") == "/public"
    assert usdm.route("btcusdt@bookTicker") == "/public"
    assert usdm.route("btcusdt@aggTrade") == "/market"
    assert usdm.route("btcusdt@kline_1m") == "/market"
    assert usdm.ws_url("/public") == "wss://fstream.binance.com/public"
    names = [f"s{i}usdt@depth@100ms" for i in range(250)] + ["btcusdt@aggTrade"]
    client = BinanceWebSocketClient(usdm)
    await client.subscribe(names)
    assert [(s.url, s.streams) for s in client.get_stats()] == [
        ("wss://fstream.binance.com/public/stream", 200),
        ("wss://fstream.binance.com/public/stream", 50),
        ("wss://fstream.binance.com/market/stream", 1),
    ]
    spot = BinanceWebSocketClient(preset("spot"))
    await spot.subscribe(names)
    assert [s.streams for s in spot.get_stats()] == [251]


def test_custom_endpoints() -> None:
    local = custom("ws://127.0.0.1:9001", "http://127.0.0.1:9002", "usdm")
    assert local.market is Market.USDM and local.max_streams_per_connection == 200
    assert local.route("btcusdt@depth") == ""
    split = custom("ws://127.0.0.1:9001", "http://127.0.0.1:9002", "usdm", split_routes=True)
    assert split.route("btcusdt@depth") == "/public"
