"""The local exchange over real loopback sockets, driven by plain websockets/aiohttp clients.

Frames are compared with the recording byte for byte after undoing the re-stamp of event
times (``E``, ``T``, kline ``t``: the exchange shifts them by ``now − recording start``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from services.replay.exchange import LocalExchange
from services.replay.exchange_book import ExchangeBook
from services.replay.recording import read_recording

pytestmark = pytest.mark.timeout(90)

_TIME_FIELD = re.compile(rb'"(E|T|t)":(\d{13})(?=[,}])')
_ENVELOPE = re.compile(rb'^\{"stream":"([^"]+)","data":')


def unstamp(frame: bytes, offset_ms: int) -> bytes:
    """Undo the exchange's time re-stamp (13-digit ms times in ``E``/``T``/``t``)."""
    return _TIME_FIELD.sub(lambda m: b'"%s":%d' % (m.group(1), int(m.group(2)) - offset_ms), frame)


def recorded_frames(path: Path, streams: set[str]) -> list[bytes]:
    """Recorded combined frames of some streams, in order."""
    frames = []
    for message in read_recording(path):
        head = _ENVELOPE.match(message.raw)
        if message.src == "ws" and head and head.group(1).decode() in streams:
            frames.append(message.raw)
    return frames


async def read_until_quiet(ws: websockets.ClientConnection, quiet: float = 1.0) -> list[bytes]:
    frames = []
    with contextlib.suppress(TimeoutError):
        while True:
            frame = await asyncio.wait_for(ws.recv(decode=False), quiet)
            frames.append(frame)
    return frames


@contextlib.asynccontextmanager
async def connect(url: str) -> AsyncIterator[websockets.ClientConnection]:
    async with websockets.connect(url, max_size=None, ping_interval=None, close_timeout=0.5) as ws:
        yield ws


async def get(rest: str, path: str) -> tuple[int, dict, object]:
    async with aiohttp.ClientSession() as http, http.get(rest + path) as response:
        return response.status, dict(response.headers), await response.json()


def apply_diff(book: ExchangeBook, diff: dict) -> None:
    book.apply(diff["b"], diff["a"], diff["u"])


def is_stale_diff(frame: bytes, last_update_id: int) -> bool:
    """A recorded diff older than the recorded snapshot (the exchange starts after it)."""
    data = orjson.loads(frame)["data"]
    return data.get("e") == "depthUpdate" and data["u"] <= last_update_id


async def test_combined_streams_deliver_recorded_frames(recordings, manifest):
    streams = {"btcusdt@depth@100ms", "ethusdt@aggTrade", "dotusdt@kline_1m"}
    async with LocalExchange(recordings["spot_2021"], speed="max") as ex:
        async with connect(f"{ex.ws_url}/stream?streams={'/'.join(sorted(streams))}") as ws:
            frames = await read_until_quiet(ws)
        offset = ex.player.offsets.time_ms
        assert ex.finished.is_set()
    expected = recorded_frames(recordings["spot_2021"], streams)
    # diffs before the one bridging the recorded snapshot are not part of the market
    snapshot = manifest[recordings["spot_2021"].name]["symbols"]["BTCUSDT"]["reconstruction"][0]
    expected = [f for f in expected if not is_stale_diff(f, snapshot["lastUpdateId"])]
    got = [unstamp(f, offset) for f in frames]
    assert got == expected


async def test_raw_stream_and_depth_alias(recordings):
    async with LocalExchange(recordings["spot_2021"], speed="max") as ex:
        async with (
            connect(f"{ex.ws_url}/ws/ethusdt@aggTrade") as raw,
            connect(f"{ex.ws_url}/stream?streams=btcusdt@depth") as alias,
        ):
            raw_frames, alias_frames = await asyncio.gather(
                read_until_quiet(raw), read_until_quiet(alias)
            )
        offset = ex.player.offsets.time_ms
    expected = [
        f[_ENVELOPE.match(f).end() : -1]
        for f in recorded_frames(recordings["spot_2021"], {"ethusdt@aggTrade"})
    ]
    got = [unstamp(f, offset) for f in raw_frames]
    assert got == expected[len(expected) - len(got) :]
    # btcusdt@depth is the 1000 ms speed, batched from the recorded 100 ms diffs: about one
    # merged diff per second of the 91 s recording, each continuing the previous one's ids
    diffs = [orjson.loads(f)["data"] for f in alias_frames]
    assert all(
        f.startswith(b'{"stream":"btcusdt@depth","data":{"e":"depthUpdate"') for f in alias_frames
    )
    assert 60 <= len(diffs) <= 95
    assert all(b["U"] == a["u"] + 1 for a, b in itertools.pairwise(diffs))
    assert all(
        b["E"] - a["E"] >= 1000 and b["E"] % 1000 == a["E"] % 1000
        for a, b in itertools.pairwise(diffs[:-1])  # the last is flushed at the end
    )


async def test_subscription_protocol_and_errors(recordings):
    async with (
        LocalExchange(recordings["spot_2021"], speed="max") as ex,
        connect(f"{ex.ws_url}/ws") as ws,
    ):

        async def ask(message: str | dict) -> dict:
            await ws.send(message if isinstance(message, str) else json.dumps(message))
            await asyncio.sleep(0.25)  # stay under 5 messages per second
            while True:
                answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if "id" in answer:
                    return answer

        sub = {"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade", "btcusdt@depth"], "id": 1}
        assert await ask(sub) == {"result": None, "id": 1}
        listing = await ask({"method": "LIST_SUBSCRIPTIONS", "id": 2})
        assert listing == {"result": ["btcusdt@aggTrade", "btcusdt@depth"], "id": 2}
        unsub = {"method": "UNSUBSCRIBE", "params": ["btcusdt@depth"], "id": 3}
        assert await ask(unsub) == {"result": None, "id": 3}
        listing = await ask({"method": "LIST_SUBSCRIPTIONS", "id": 4})
        assert listing["result"] == ["btcusdt@aggTrade"]
        assert await ask({"method": "GET_PROPERTY", "params": ["combined"], "id": 5}) == {
            "result": False,
            "id": 5,
        }
        set_combined = {"method": "SET_PROPERTY", "params": ["combined", True], "id": 6}
        assert await ask(set_combined) == {"result": None, "id": 6}
        assert (await ask({"method": "GET_PROPERTY", "params": ["combined"], "id": 7}))[
            "result"
        ] is True
        bad_type = {"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 8}
        assert (await ask(bad_type))["error"]["code"] == 1
        colour = await ask({"method": "GET_PROPERTY", "params": ["colour"], "id": 9})
        assert colour == {"error": {"code": 0, "msg": "Unknown property"}, "id": 9}
        assert (await ask({"method": "SUBSCRIBED", "params": [], "id": 10}))["error"]["code"] == 2
        assert (await ask({"params": ["btcusdt@trade"], "id": 11}))["error"]["code"] == 2
        too_many = [f"s{i}usdt@trade" for i in range(1024)]
        answer = await ask({"method": "SUBSCRIBE", "params": too_many, "id": 12})
        assert answer["error"]["code"] == 2 and answer["id"] == 12
        # streams the recording cannot feed are refused, all or none
        unfed = {"method": "SUBSCRIBE", "params": ["ethusdt@depth", "btcusdt@markPrice"], "id": 13}
        answer = await ask(unfed)
        assert answer["error"]["code"] == 2 and "btcusdt@markPrice" in answer["error"]["msg"]
        assert "aggTrade" in answer["error"]["msg"]  # it names what the recording has
        unknown = await ask({"method": "SUBSCRIBE", "params": ["xrpusdt@aggTrade"], "id": 14})
        assert "btcusdt, dotusdt, ethusdt" in unknown["error"]["msg"]
        listing = await ask({"method": "LIST_SUBSCRIPTIONS", "id": 15})
        assert listing["result"] == ["btcusdt@aggTrade"]
        await ws.send("{not json")
        answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert answer["error"]["code"] == 3


async def test_more_than_five_messages_per_second_closes_1008(recordings):
    async with (
        LocalExchange(recordings["spot_2021"], speed="max") as ex,
        connect(f"{ex.ws_url}/ws") as ws,
    ):
        for i in range(7):
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd.code == 1008
        assert closed.value.rcvd.reason == "Too many requests"


async def sync_book(ex: LocalExchange, stream: str, usdm: bool, read_first: int) -> ExchangeBook:
    """Read some diffs, take a REST snapshot mid-stream, apply the diffs that follow."""
    prefix = "/fapi/v1" if usdm else "/api/v3"
    async with connect(f"{ex.ws_url}/stream?streams={stream}") as ws:
        for _ in range(read_first):
            await ws.recv()
        status, _, body = await get(ex.rest_url, f"{prefix}/depth?symbol=BTCUSDT&limit=1000")
        assert status == 200
        book = ExchangeBook(body["lastUpdateId"], body["bids"], body["asks"])
        frames = await read_until_quiet(ws)
    last = body["lastUpdateId"]
    diffs = [orjson.loads(f)["data"] for f in frames]
    diffs = [d for d in diffs if (d["u"] >= last if usdm else d["u"] > last)]
    first = diffs[0]
    if usdm:  # the first diff kept contains the snapshot's update id
        assert first["U"] <= last <= first["u"]
    else:  # lastUpdateId is the last u sent: the chain continues exactly after it
        assert first["U"] == last + 1
    for diff in diffs:
        if usdm:
            assert diff is first or diff["pu"] == book.last_update_id
        else:
            assert diff is first or diff["U"] == book.last_update_id + 1
        apply_diff(book, diff)
    return book


def final_top5(manifest: dict, file: Path, symbol: str = "BTCUSDT") -> tuple[list, list]:
    entry = manifest[file.name]["symbols"][symbol]["reconstruction"][-1]
    return entry["final_top5_bids"], entry["final_top5_asks"]


async def test_snapshot_mid_stream_bridges_spot_at_max_speed(recordings, manifest):
    started = time.monotonic()
    path = recordings["spot_2024"]
    async with LocalExchange(path, speed="max", queue_size=32) as ex:
        book = await sync_book(ex, "btcusdt@depth@100ms", usdm=False, read_first=300)
        assert ex.finished.is_set()
        _, _, body = await get(ex.rest_url, "/api/v3/depth?symbol=BTCUSDT&limit=5")
        assert body["lastUpdateId"] == book.last_update_id
    assert (book.top_bids(5), book.top_asks(5)) == final_top5(manifest, path)
    assert time.monotonic() - started < 30


async def test_snapshot_mid_stream_bridges_usdm(recordings, manifest):
    path = recordings["usdm_2024"]
    async with LocalExchange(path, speed="max", queue_size=32) as ex:
        book = await sync_book(ex, "btcusdt@depth", usdm=True, read_first=1000)
    assert (book.top_bids(5), book.top_asks(5)) == final_top5(manifest, path)


async def test_loop_keeps_ids_increasing_and_seam_keeps_book_consistent(recordings, manifest):
    path = recordings["spot_2021"]
    diffs_per_pass = manifest[path.name]["symbols"]["BTCUSDT"]["reconstruction"][-1][
        "diffs_applied"
    ]
    async with LocalExchange(path, speed="max", loop=True, queue_size=64) as ex:
        # no subscriber yet: at speed max the replay waits, so this is the start book
        _, _, body = await get(ex.rest_url, "/api/v3/depth?symbol=BTCUSDT&limit=5000")
        start = ExchangeBook(body["lastUpdateId"], body["bids"], body["asks"])
        book = start.copy()
        streams = "btcusdt@depth@100ms/btcusdt@aggTrade"
        diffs, trades, times = 0, [], []
        async with connect(f"{ex.ws_url}/stream?streams={streams}") as ws:
            while diffs < 2 * diffs_per_pass + 1:
                frame = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
                data = frame["data"]
                times.append(data["E"])
                if frame["stream"] == "btcusdt@aggTrade":
                    trades.append(data)
                    continue
                if diffs:
                    assert data["U"] == book.last_update_id + 1
                else:
                    assert data["U"] <= book.last_update_id + 1 <= data["u"]
                apply_diff(book, data)
                diffs += 1
                if diffs == diffs_per_pass:
                    assert (book.top_bids(5), book.top_asks(5)) == final_top5(manifest, path)
                if diffs == diffs_per_pass + 1:  # the seam diff: back to the start book
                    assert (book.bids, book.asks) == (start.bids, start.asks)
        assert ex.player.passes >= 2
    assert (book.top_bids(5), book.top_asks(5)) == final_top5(manifest, path)
    assert [t["a"] for t in trades] == list(range(trades[0]["a"], trades[0]["a"] + len(trades)))
    assert all(b["f"] == a["l"] + 1 for a, b in itertools.pairwise(trades))
    assert len(trades) > manifest[path.name]["symbols"]["BTCUSDT"]["counts"]["aggTrade"]
    assert max(times[: len(times) // 3]) < times[-1]


async def test_exchange_info_derives_tick_and_step_sizes(recordings):
    cases = [
        ("spot_2024", "/api/v3", {"BTCUSDT": ("0.01000000", "0.00001000")}),
        ("spot_2021", "/api/v3", {"DOTUSDT": ("0.00010000", "0.01000000")}),
        ("usdm_2024", "/fapi/v1", {"BTCUSDT": ("0.10", "0.001")}),
    ]
    for name, prefix, expected in cases:
        async with LocalExchange(recordings[name], speed="max") as ex:
            status, headers, body = await get(ex.rest_url, f"{prefix}/exchangeInfo")
        assert status == 200 and headers["X-Tapescope-Derived"] == "true"
        assert "derived" in body
        for entry in body["symbols"]:
            if entry["symbol"] in expected:
                filters = {f["filterType"]: f for f in entry["filters"]}
                tick, step = expected[entry["symbol"]]
                assert filters["PRICE_FILTER"]["tickSize"] == tick
                assert filters["LOT_SIZE"]["stepSize"] == step
                assert entry["status"] == "TRADING"


async def test_rest_weights_and_errors(recordings):
    async with LocalExchange(recordings["spot_2021"], speed="max") as ex:
        rest = ex.rest_url
        status, headers, _ = await get(rest, "/api/v3/depth?symbol=BTCUSDT&limit=5")
        assert (status, headers["X-MBX-USED-WEIGHT-1M"]) == (200, "5")
        _, headers, _ = await get(rest, "/api/v3/depth?symbol=BTCUSDT&limit=1000")
        assert headers["X-MBX-USED-WEIGHT-1M"] == "55"
        _, headers, _ = await get(rest, "/api/v3/aggTrades?symbol=BTCUSDT&limit=3")
        assert headers["X-MBX-USED-WEIGHT-1M"] == "59"
        _, headers, _ = await get(rest, "/api/v3/trades?symbol=BTCUSDT")
        assert headers["X-MBX-USED-WEIGHT-1M"] == "84"
        status, _, body = await get(rest, "/api/v3/depth?symbol=NOPEUSDT")
        assert (status, body) == (400, {"code": -1121, "msg": "Invalid symbol."})
        status, _, body = await get(rest, "/api/v3/depth?symbol=BTCUSDT&limit=ten")
        assert (status, body["code"]) == (400, -1100)
        status, _, body = await get(rest, "/api/v3/klines?symbol=BTCUSDT&interval=7m")
        assert (status, body["code"]) == (400, -1120)
        status, _, body = await get(rest, "/api/v3/time")
        # the replay clock: the recording's own time (it ran 2021-04-04 20:03 UTC)
        assert abs(body["serverTime"] - ex.clock_ms()) < 5000
        assert 1617566580000 <= body["serverTime"] <= 1617566700000
        assert (await get(rest, "/api/v3/ping"))[2] == {}


async def test_trade_endpoints_serve_trades_up_to_position(recordings, manifest):
    path = recordings["spot_2024"]
    trades = manifest[path.name]["symbols"]["BTCUSDT"]["trade"]
    async with LocalExchange(path, speed="max") as ex:
        async with connect(f"{ex.ws_url}/ws/btcusdt@trade") as ws:
            await read_until_quiet(ws, 0.5)
        rest = ex.rest_url
        _, _, latest = await get(rest, "/api/v3/trades?symbol=BTCUSDT&limit=1000")
        assert len(latest) == 1000 and latest[-1]["id"] == trades["last_id"]
        assert set(latest[0]) == {
            "id",
            "price",
            "qty",
            "quoteQty",
            "time",
            "isBuyerMaker",
            "isBestMatch",
        }
        first = trades["first_id"]
        _, _, old = await get(
            rest, f"/api/v3/historicalTrades?symbol=BTCUSDT&fromId={first}&limit=5"
        )
        assert [t["id"] for t in old] == list(range(first, first + 5))
        _, headers, aggs = await get(rest, "/api/v3/aggTrades?symbol=BTCUSDT&limit=1000")
        assert headers["X-Tapescope-Derived"] == "true"
        assert set(aggs[0]) == {"a", "p", "q", "f", "l", "T", "m", "M"}
        assert all(b["f"] == a["l"] + 1 for a, b in itertools.pairwise(aggs))
        assert aggs[-1]["l"] == trades["last_id"]
        start = aggs[10]["T"]
        _, _, by_time = await get(
            rest, f"/api/v3/aggTrades?symbol=BTCUSDT&startTime={start}&limit=2"
        )
        assert by_time[0]["T"] >= start and len(by_time) == 2


async def test_derived_streams_and_endpoints(recordings):
    streams = (
        "btcusdt@depth5@100ms/btcusdt@bookTicker/btcusdt@ticker/btcusdt@miniTicker/btcusdt@kline_5m"
    )
    async with LocalExchange(recordings["spot_2021"], speed="max") as ex:
        async with connect(f"{ex.ws_url}/stream?streams={streams}") as ws:
            frames = [orjson.loads(f) for f in await read_until_quiet(ws)]
        by_stream: dict[str, list[dict]] = {}
        for frame in frames:
            by_stream.setdefault(frame["stream"], []).append(frame["data"])
        partial = by_stream["btcusdt@depth5@100ms"][-1]
        assert set(partial) == {"lastUpdateId", "bids", "asks"} and len(partial["bids"]) == 5
        ticker = by_stream["btcusdt@bookTicker"][-1]
        assert (ticker["b"], ticker["a"]) == (partial["bids"][0][0], partial["asks"][0][0])
        assert by_stream["btcusdt@ticker"][-1]["e"] == "24hrTicker"
        assert by_stream["btcusdt@miniTicker"][-1]["e"] == "24hrMiniTicker"
        assert by_stream["btcusdt@kline_5m"][-1]["k"]["i"] == "5m"
        _, headers, row = await get(ex.rest_url, "/api/v3/ticker/24hr?symbol=BTCUSDT")
        assert (
            headers["X-Tapescope-Derived"] == "true"
            and row["lastPrice"] == by_stream["btcusdt@ticker"][-1]["c"]
        )
        _, headers, klines = await get(ex.rest_url, "/api/v3/klines?symbol=BTCUSDT&interval=1m")
        assert "X-Tapescope-Derived" not in headers and len(klines[0]) == 12  # recorded 1m
        _, headers, klines = await get(ex.rest_url, "/api/v3/klines?symbol=BTCUSDT&interval=1h")
        # The ten recorded minutes are re-stamped to now, so they may straddle an hour.
        hours = {bar["k"]["t"] // 3_600_000 for bar in by_stream["btcusdt@kline_5m"]}
        assert headers["X-Tapescope-Derived"] == "true" and len(klines) == len(hours)
        assert [bar[0] // 3_600_000 for bar in klines] == sorted(hours)


async def wait_closed(ws: websockets.ClientConnection) -> ConnectionClosed:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    return closed.value


async def test_connection_faults(recordings):
    async with LocalExchange(recordings["spot_2021"], speed=1) as ex:
        async with connect(f"{ex.ws_url}/ws/btcusdt@depth") as ws:
            await ws.recv()
            assert ex.faults.drop_connections() == 1
            assert (await wait_closed(ws)).rcvd is None  # 1006: no close frame
        async with connect(f"{ex.ws_url}/stream?streams=btcusdt@depth") as ws:
            await ws.recv()
            ex.faults.server_shutdown(grace=0.2)
            seen = []
            closed = None
            with contextlib.suppress(ConnectionClosed):
                while True:
                    seen.append(orjson.loads(await asyncio.wait_for(ws.recv(), 5)))
            closed = ws.close_code
            assert any(f["stream"] == "!serverShutdown" for f in seen)
            assert closed == 1001
        async with connect(f"{ex.ws_url}/ws/btcusdt@depth") as ws:
            ex.faults.disconnect_every(0.3)
            await wait_closed(ws)
            ex.faults.cancel_periodic()
        _, _, stats = await get(ex.rest_url, "/tapescope/stats")
    assert stats["faults"]["drop_connection"] >= 2
    assert stats["faults"]["server_shutdown"] == 1


async def test_stall_and_pings_continue(recordings):
    exchange = LocalExchange(recordings["spot_2021"], speed=5, ping_interval=0.25)
    async with (
        exchange as ex,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{ex.ws_url}/ws/btcusdt@depth", autoping=False) as ws,
    ):
        await ws.receive()
        ex.faults.stall(0.8)
        pings, data, began = 0, 0, time.monotonic()
        while time.monotonic() - began < 0.6:
            message = await ws.receive(timeout=1)
            if message.type == aiohttp.WSMsgType.PING:
                pings += 1
                await ws.pong(message.data)
            elif message.type == aiohttp.WSMsgType.TEXT:
                data += 1
        assert pings >= 2
        assert data <= 1  # at most a frame already queued
        message = await ws.receive(timeout=3)
        while message.type == aiohttp.WSMsgType.PING:
            message = await ws.receive(timeout=3)
        assert message.type == aiohttp.WSMsgType.TEXT
    assert ex.stats()["faults"]["stall"] == 1


async def test_frame_faults(recordings):
    async with LocalExchange(recordings["spot_2021"], speed="max", queue_size=16) as ex:
        async with connect(f"{ex.ws_url}/ws/btcusdt@depth@100ms") as ws:
            await ws.recv()
            ex.faults.drop_next_diff("BTCUSDT")
            ex.faults.duplicate_next(1)
            ex.faults.reorder_next(1)
            ex.faults.malformed_next(1)
            frames = await read_until_quiet(ws)
        counts = ex.stats()["faults"]
    assert counts == {"gap": 1, "duplicate": 1, "reorder": 1, "malformed": 1} | counts
    broken = [f for f in frames if not f.endswith(b"}")]
    assert len(broken) == 1
    diffs = [orjson.loads(f) for f in frames if f.endswith(b"}")]
    ids = [d["u"] for d in diffs]
    assert any(a == b for a, b in itertools.pairwise(ids))  # duplicate
    assert any(b < a for a, b in itertools.pairwise(ids))  # reorder
    starts = [d["U"] for d in diffs]
    gaps = [1 for u, U in zip(ids, starts[1:], strict=False) if u + 1 < U]
    assert gaps  # the withheld diff


async def test_rest_faults(recordings):
    async with LocalExchange(recordings["spot_2021"], speed="max") as ex:
        rest = ex.rest_url
        ex.faults.rest_error(429, 2, retry_after=7, paths=["/api/v3/depth"])
        for _ in range(2):
            status, headers, body = await get(rest, "/api/v3/depth?symbol=BTCUSDT")
            assert (status, headers["Retry-After"], body["code"]) == (429, "7", -1003)
        assert (await get(rest, "/api/v3/depth?symbol=BTCUSDT"))[0] == 200
        ex.faults.rest_error(418, 1, retry_after=120)
        status, headers, body = await get(rest, "/api/v3/time")
        assert (status, headers["Retry-After"]) == (418, "120") and "banned" in body["msg"]
        ex.faults.rest_error(451, 1)
        status, _, body = await get(rest, "/api/v3/exchangeInfo")
        assert status == 451 and "restricted location" in body["msg"]
        ex.faults.rest_error(500, 1)
        assert (await get(rest, "/api/v3/ping"))[0] == 500
        ex.faults.delay_snapshots(0.4)
        began = time.monotonic()
        assert (await get(rest, "/api/v3/depth?symbol=BTCUSDT"))[0] == 200
        assert time.monotonic() - began >= 0.4
        _, _, stats = await get(rest, "/tapescope/stats")
    assert stats["faults"] == {
        "rest_429": 2,
        "rest_418": 1,
        "rest_451": 1,
        "rest_500": 1,
        "snapshot_delay": 1,
    }


def test_thread_runner_for_synchronous_callers(recordings):
    ex = LocalExchange(recordings["spot_2021"], speed=20)
    ws_url, rest_url = ex.start_in_thread()
    try:
        assert ws_url.startswith("ws://127.0.0.1:") and rest_url.startswith("http://127.0.0.1:")

        async def fetch() -> int:
            return (await get(rest_url, "/api/v3/ping"))[0]

        assert asyncio.run(fetch()) == 200
    finally:
        ex.stop()


async def test_trade_stream_from_an_agg_trade_recording_matches_rest(recordings):
    """``@trade`` of an aggTrade-only recording is derived as REST ``/trades`` is: the same
    rows (one per aggTrade), the same ids."""
    async with LocalExchange(recordings["spot_2021"], speed="max") as ex:
        async with connect(f"{ex.ws_url}/ws/dotusdt@trade") as ws:
            trades = [orjson.loads(f) for f in await read_until_quiet(ws)]
        _, headers, rows = await get(ex.rest_url, "/api/v3/trades?symbol=DOTUSDT&limit=1000")
    assert trades and headers["X-Tapescope-Derived"] == "true"
    assert all(t["e"] == "trade" and t["s"] == "DOTUSDT" for t in trades)
    streamed = [(t["t"], t["p"], t["q"], t["T"], t["m"]) for t in trades]
    served = [(r["id"], r["price"], r["qty"], r["time"], r["isBuyerMaker"]) for r in rows]
    assert streamed == served[len(served) - len(streamed) :]


async def test_all_market_ticker_arrays(recordings):
    async with (
        LocalExchange(recordings["spot_2021"], speed="max") as ex,
        connect(f"{ex.ws_url}/ws/!ticker@arr") as ws,
    ):
        arrays = [orjson.loads(f) for f in await read_until_quiet(ws)]
    assert arrays and all(isinstance(a, list) for a in arrays)
    assert {t["s"] for t in arrays[-1]} == {"BTCUSDT", "DOTUSDT", "ETHUSDT"}
    assert all(t["e"] == "24hrTicker" for t in arrays[-1])
