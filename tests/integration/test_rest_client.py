"""The REST client against a small aiohttp server on loopback that answers like Binance:
used-weight headers, 429/418 with ``Retry-After``, 451, 5xx and error bodies."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from services.binance.backoff import Backoff
from services.binance.endpoints import Market, custom
from services.binance.messages import AggTrade, MalformedFrame, Trade
from services.binance.rest_client import (
    BinanceHttpError,
    BinanceRestClient,
    BinanceUnavailable,
    IpBanned,
    RestrictedLocation,
    depth_weight,
    klines_weight,
)

pytestmark = pytest.mark.timeout(20)

DEPTH = {
    "lastUpdateId": 1027024,
    "bids": [["4.00000000", "431.0"]],
    "asks": [["4.0000200", "12.0"]],
}
EXCHANGE_INFO = {
    "symbols": [
        {
            "symbol": "BTCUSDT",
            "status": "TRADING",
            "baseAsset": "BTC",
            "quoteAsset": "USDT",
            "filters": [
                {"filterType": "PRICE_FILTER", "tickSize": "0.01000000", "minPrice": "0.01"},
                {"filterType": "LOT_SIZE", "stepSize": "0.00001000", "minQty": "0.00001"},
            ],
        },
        {
            "symbol": "SHIBUSDT",
            "status": "HALT",
            "baseAsset": "SHIB",
            "quoteAsset": "USDT",
            "filters": [
                {"filterType": "PRICE_FILTER", "tickSize": "0.00000001"},
                {"filterType": "LOT_SIZE", "stepSize": "1.00000000"},
            ],
        },
    ]
}


@dataclass
class Reply:
    status: int = 200
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeRest:
    """Answers scripted replies per path (then 200 with a default body); records hits."""

    script: dict[str, list[Reply]] = field(default_factory=dict)
    hits: list[tuple[float, str, dict[str, str]]] = field(default_factory=list)
    used_weight: int | None = None
    port: int = 0

    def defaults(self, path: str) -> object:
        return {
            "/api/v3/depth": DEPTH,
            "/fapi/v1/depth": DEPTH,
            "/api/v3/exchangeInfo": EXCHANGE_INFO,
            "/api/v3/aggTrades": [
                {
                    "a": 26129,
                    "p": "0.01633102",
                    "q": "4.70443515",
                    "f": 27781,
                    "l": 27781,
                    "T": 1498793709153,
                    "m": True,
                    "M": True,
                }
            ],
            "/api/v3/trades": [
                {
                    "id": 28457,
                    "price": "4.00000100",
                    "qty": "12.00000000",
                    "quoteQty": "48.0",
                    "time": 1499865549590,
                    "isBuyerMaker": True,
                    "isBestMatch": True,
                }
            ],
            "/api/v3/historicalTrades": [
                {
                    "id": 28458,
                    "price": "4.1",
                    "qty": "1.5",
                    "quoteQty": "6.15",
                    "time": 1499865549591,
                    "isBuyerMaker": False,
                    "isBestMatch": True,
                }
            ],
            "/api/v3/klines": [
                [
                    1499040000000,
                    "0.01634790",
                    "0.80000000",
                    "0.01575800",
                    "0.01577100",
                    "148976.11427815",
                    1499644799999,
                    "2434.19055334",
                    308,
                    "1756.87402397",
                    "28.46694368",
                    "0",
                ]
            ],
            "/api/v3/ticker/24hr": {"symbol": "BTCUSDT", "lastPrice": "4.00000200"},
            "/api/v3/time": {"serverTime": 1499644799999 + 60_000},
        }.get(path, {})

    async def handle(self, request: web.Request) -> web.Response:
        self.hits.append((time.monotonic(), request.path, dict(request.query)))
        queue = self.script.get(request.path)
        reply = queue.pop(0) if queue else Reply()
        body = reply.body if reply.body is not None else self.defaults(request.path)
        headers = dict(reply.headers)
        if self.used_weight is not None:
            headers.setdefault("X-MBX-USED-WEIGHT-1M", str(self.used_weight))
        return web.Response(
            status=reply.status,
            body=body if isinstance(body, bytes) else json.dumps(body).encode(),
            headers=headers,
            content_type="application/json",
        )

    def times(self, path: str) -> list[float]:
        return [t for t, p, _ in self.hits if p == path]


@pytest.fixture
async def rest() -> AsyncIterator[FakeRest]:
    fake = FakeRest()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.port = site._server.sockets[0].getsockname()[1]
    yield fake
    await runner.cleanup()


def client_for(fake: FakeRest, market: str = "spot", **overrides) -> BinanceRestClient:
    options = {
        "backoff": Backoff(initial=0.1, cap=0.3, floor=0.1),
        "timeout_s": 2.0,
        "max_attempts": 3,
    }
    options.update(overrides)
    endpoints = custom("ws://127.0.0.1:1", f"http://127.0.0.1:{fake.port}", market)
    return BinanceRestClient(endpoints, **options)


def test_weight_tables() -> None:
    assert [depth_weight(n) for n in (1, 100, 101, 500, 501, 1000, 1001, 5000)] == [
        5,
        5,
        25,
        25,
        50,
        50,
        250,
        250,
    ]
    assert [depth_weight(n, Market.USDM) for n in (5, 10, 20, 50, 100, 500, 1000)] == [
        2,
        2,
        2,
        2,
        5,
        10,
        20,
    ]
    with pytest.raises(ValueError):
        depth_weight(200, Market.USDM)
    with pytest.raises(ValueError):
        depth_weight(5001)
    assert klines_weight(500) == 2


async def test_endpoints_decode_and_track_used_weight(rest: FakeRest) -> None:
    rest.used_weight = 57
    async with client_for(rest) as client:
        snapshot = await client.depth_snapshot("btcusdt", limit=1000)
        assert snapshot.lastUpdateId == 1027024 and snapshot.bids == [(4.0, 431.0)]
        assert rest.hits[-1][2] == {"symbol": "BTCUSDT", "limit": "1000"}
        assert client.budget.stats().used_weight == 57
        assert client.budget.stats().granted_weight == 50

        trades = await client.agg_trades("BTCUSDT", from_id=26129, end_time=1498793709999)
        assert rest.hits[-1][2] == {
            "symbol": "BTCUSDT",
            "fromId": "26129",
            "endTime": "1498793709999",
            "limit": "500",
        }
        assert trades == [
            AggTrade(
                "aggTrade",
                1498793709153,
                "BTCUSDT",
                26129,
                0.01633102,
                4.70443515,
                27781,
                27781,
                1498793709153,
                True,
            )
        ]
        recent = await client.trades("BTCUSDT", limit=10)
        assert isinstance(recent[0], Trade) and recent[0].t == 28457 and recent[0].m
        older = await client.historical_trades("BTCUSDT", from_id=28458)
        assert older[0].t == 28458 and not older[0].m
        assert rest.hits[-1][2]["fromId"] == "28458"
        bars = await client.klines("BTCUSDT", "1h", start_time=1499040000000, limit=1)
        assert bars[0].t == 1499040000000 and bars[0].n == 308 and bars[0].x
        assert pytest.approx(1756.87402397) == bars[0].V
        assert (await client.ticker_24hr("btcusdt"))["lastPrice"] == "4.00000200"
        assert client.budget.stats().granted_weight == 50 + 4 + 25 + 25 + 2 + 1 + 2


async def test_kline_closed_is_judged_by_the_servers_clock(rest: FakeRest) -> None:
    """A replay exchange's clock is years behind this machine's: a bar whose close time
    is after the server's time is still open, whatever the local clock says."""
    rest.script["/api/v3/time"] = [Reply(200, {"serverTime": 1499644799999 - 1})]
    async with client_for(rest) as client:
        bars = await client.klines("BTCUSDT", "1h", limit=1)
        assert not bars[0].x
        assert await client.server_time_ms() < 1499644799999 + 1000
        assert [hit[1] for hit in rest.hits].count("/api/v3/time") == 1


async def test_exchange_info_gives_symbol_rules(rest: FakeRest) -> None:
    async with client_for(rest) as client:
        infos = await client.exchange_info()
        btc, shib = infos
        assert (btc.symbol, btc.status, btc.base_asset, btc.quote_asset) == (
            "BTCUSDT",
            "TRADING",
            "BTC",
            "USDT",
        )
        assert (btc.tick_size, btc.price_decimals, btc.step_size, btc.qty_decimals) == (
            0.01,
            2,
            0.00001,
            5,
        )
        assert (shib.status, shib.price_decimals, shib.qty_decimals) == ("HALT", 8, 0)
        only = await client.exchange_info(["btcusdt"])
        assert [i.symbol for i in only] == ["BTCUSDT"]
        assert rest.hits[-1][2] == {"symbols": '["BTCUSDT"]'}


HOSTILE_BODIES = (
    b"[" * 100_000 + b"]" * 100_000,
    b'[{"a":"\xff\xfe"}]',
    b'{"symbols":' + b'[{"k":' * 50_000 + b"1" + b"}]" * 50_000 + b"}",
    b'"a JSON string"',
    b"[1e999999]",
)


@pytest.mark.parametrize("body", HOSTILE_BODIES)
async def test_hostile_bodies_are_malformed_never_another_exception(
    rest: FakeRest, body: bytes
) -> None:
    """Callers (the feed's warm-up, backfill, symbol loading) catch ``MalformedFrame``; any
    other exception from decoding a body would end their task."""
    calls = {
        "/api/v3/aggTrades": lambda c: c.agg_trades("BTCUSDT", limit=1),
        "/api/v3/trades": lambda c: c.trades("BTCUSDT", limit=1),
        "/api/v3/klines": lambda c: c.klines("BTCUSDT", limit=1),
        "/api/v3/exchangeInfo": lambda c: c.exchange_info(),
        "/api/v3/depth": lambda c: c.depth_snapshot("BTCUSDT", limit=5),
    }
    async with client_for(rest) as client:
        for path, call in calls.items():
            rest.script[path] = [Reply(body=body)]
            with pytest.raises(MalformedFrame):
                await call(client)


@pytest.mark.parametrize("body", HOSTILE_BODIES)
async def test_a_hostile_time_body_leaves_the_clock_offset_at_zero(
    rest: FakeRest, body: bytes
) -> None:
    """``server_time_ms`` (asked by ``klines``) survives any body, as a server that cannot
    tell its time: this machine's clock, and the server is not asked again."""
    rest.script["/api/v3/time"] = [Reply(body=body)]
    async with client_for(rest) as client:
        assert len(await client.klines("BTCUSDT", limit=1)) == 1
        assert abs(await client.server_time_ms() - time.time() * 1000) < 5000
        assert [hit[1] for hit in rest.hits].count("/api/v3/time") == 1


async def test_usdm_paths_and_weights(rest: FakeRest) -> None:
    async with client_for(rest, market="usdm") as client:
        await client.depth_snapshot("BTCUSDT", limit=500)
        assert rest.hits[-1][1] == "/fapi/v1/depth"
        assert client.budget.stats().granted_weight == 10


async def test_429_retry_after_holds_every_request_back(rest: FakeRest) -> None:
    rest.script["/api/v3/depth"] = [
        Reply(429, {"code": -1003, "msg": "Too much request weight used"}, {"Retry-After": "1"})
    ]
    async with client_for(rest) as client:
        first = asyncio.create_task(client.depth_snapshot("BTCUSDT", 100))
        await asyncio.sleep(0.2)
        second = asyncio.create_task(client.trades("BTCUSDT"))
        await asyncio.gather(first, second)
    limited_at = rest.hits[0][0]
    assert [p for _, p, _ in rest.hits] == ["/api/v3/depth", "/api/v3/depth", "/api/v3/trades"]
    assert all(t - limited_at >= 0.95 for t, _, _ in rest.hits[1:])


async def test_418_ban_blocks_all_callers_until_it_expires(rest: FakeRest) -> None:
    rest.script["/api/v3/depth"] = [
        Reply(
            418,
            {"code": -1003, "msg": "Way too much request weight used; IP banned"},
            {"Retry-After": "1"},
        )
    ]
    async with client_for(rest) as client:
        banned = asyncio.create_task(client.depth_snapshot("BTCUSDT", 100))
        await asyncio.sleep(0.2)
        results = await asyncio.gather(banned, *(client.agg_trades("BTCUSDT") for _ in range(3)))
    assert len(results) == 4
    banned_at = rest.hits[0][0]
    assert len(rest.hits) == 5
    assert all(t - banned_at >= 0.95 for t, _, _ in rest.hits[1:])


async def test_long_ban_raises_without_sending(rest: FakeRest) -> None:
    rest.script["/api/v3/depth"] = [
        Reply(418, {"code": -1003, "msg": "IP banned until 1700000000000"}, {"Retry-After": "600"})
    ]
    async with client_for(rest, max_ban_wait_s=1.0) as client:
        with pytest.raises(IpBanned) as banned:
            await client.depth_snapshot("BTCUSDT", 100)
        assert banned.value.retry_after_s > 590
        with pytest.raises(IpBanned):
            await client.trades("BTCUSDT")
    assert len(rest.hits) == 1


async def test_451_is_a_configuration_error_naming_presets(rest: FakeRest) -> None:
    rest.script["/api/v3/depth"] = [
        Reply(451, {"code": 0, "msg": "Service unavailable from a restricted location"})
    ]
    async with client_for(rest) as client:
        with pytest.raises(RestrictedLocation) as refused:
            await client.depth_snapshot("BTCUSDT")
    text = str(refused.value)
    assert "--preset spot-data" in text and "--preset us" in text and "--source replay" in text
    assert "restricted location" in text and refused.value.code == 0
    assert len(rest.hits) == 1


async def test_5xx_is_retried_with_backoff(rest: FakeRest) -> None:
    rest.script["/api/v3/depth"] = [Reply(503, {"code": -1001, "msg": "down"}), Reply(502, "")]
    async with client_for(rest) as client:
        snapshot = await client.depth_snapshot("BTCUSDT")
    assert snapshot.lastUpdateId == 1027024
    times = rest.times("/api/v3/depth")
    assert len(times) == 3
    assert all(b - a >= 0.1 for a, b in itertools.pairwise(times))


async def test_persistent_5xx_gives_up_after_max_attempts(rest: FakeRest) -> None:
    rest.script["/api/v3/depth"] = [Reply(500, {"code": -1000, "msg": "unknown"})] * 5
    async with client_for(rest) as client:
        with pytest.raises(BinanceUnavailable) as failed:
            await client.depth_snapshot("BTCUSDT")
    assert failed.value.status == 500 and failed.value.code == -1000
    assert len(rest.hits) == 3


async def test_connection_errors_are_retried_then_raised() -> None:
    endpoints = custom("ws://127.0.0.1:1", "http://127.0.0.1:9", "spot")
    client = BinanceRestClient(
        endpoints, backoff=Backoff(initial=0.1, cap=0.1, floor=0.1), max_attempts=3
    )
    started = time.monotonic()
    async with client:
        with pytest.raises(BinanceUnavailable):
            await client.depth_snapshot("BTCUSDT")
    assert time.monotonic() - started >= 0.3


async def test_client_errors_carry_binance_code_and_msg(rest: FakeRest) -> None:
    rest.script["/api/v3/depth"] = [Reply(400, {"code": -1121, "msg": "Invalid symbol."})]
    async with client_for(rest) as client:
        with pytest.raises(BinanceHttpError) as failed:
            await client.depth_snapshot("NOPE")
    assert (failed.value.status, failed.value.code, failed.value.msg) == (
        400,
        -1121,
        "Invalid symbol.",
    )
    assert len(rest.hits) == 1


async def test_snapshot_herd_is_staggered_by_the_budget(rest: FakeRest) -> None:
    """Six snapshots of weight 25 under 100 a second (98 with the headroom), burst 50: two
    go at once, the third after the bucket's refill (25 / 98 s), and no second of the
    server's arrivals ever holds a fourth (100 > 98)."""
    async with client_for(rest, weight_per_minute=100, burst_weight=50, window_s=1.0) as client:
        await asyncio.gather(*(client.depth_snapshot(f"S{i}USDT", 500) for i in range(6)))
    times = sorted(rest.times("/api/v3/depth"))
    start = times[0]
    assert times[1] - start < 0.2
    assert times[2] - start >= 0.2
    assert all(times[i + 3] - times[i] >= 0.99 for i in range(3))


async def test_server_reported_weight_holds_requests_to_the_next_window(rest: FakeRest) -> None:
    rest.used_weight = 98
    async with client_for(rest, weight_per_minute=100, burst_weight=100, window_s=1.0) as client:
        await client.depth_snapshot("BTCUSDT", 100)
        rest.used_weight = 5
        reported_at = time.time()
        await client.depth_snapshot("BTCUSDT", 100)
    assert int(time.time()) > int(reported_at) or time.time() - reported_at >= 0.99
