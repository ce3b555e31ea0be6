"""The WebSocket client against a small Binance-like combined-stream server on loopback.

The server speaks the protocol the client relies on: streams in the URL, SUBSCRIBE /
UNSUBSCRIBE / LIST_SUBSCRIPTIONS answers (refusals in the live ``{"error": ...}`` form),
pings, close 1008 above 5 incoming messages per second, ``serverShutdown``. Every
subscribed ``aggTrade`` stream gets a numbered sequence (``a`` = 1, 2, 3, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from services.binance.backoff import Backoff
from services.binance.endpoints import Endpoints, custom
from services.binance.messages import AggTrade
from services.binance.rate_limit import SlidingWindowLimiter
from services.binance.ws_client import (
    BinanceWebSocketClient,
    ConnectionEvent,
    ControlError,
    LifecycleKind,
    Received,
)

pytestmark = pytest.mark.timeout(20)

BTC = "btcusdt@aggTrade"
ETH = "ethusdt@aggTrade"


@dataclass
class Peer:
    """One client connection as the server sees it."""

    ws: ServerConnection
    path: str
    streams: set[str]
    incoming: list[float] = field(default_factory=list)
    stalled: bool = False


class FakeBinance:
    """Combined-stream server: numbered aggTrades every ``period_s`` on each stream."""

    def __init__(self, period_s: float = 0.01, ping_interval: float | None = None) -> None:
        self.period_s = period_s
        self.ping_interval = ping_interval
        self.peers: list[Peer] = []
        self.attempts: list[float] = []
        self.paths: list[str] = []
        self.control: list[dict] = []
        self.close_on_connect: int | None = None
        self.seq = 0
        self._server = None
        self._ticker: asyncio.Task | None = None

    @property
    def endpoints(self) -> Endpoints:
        return custom(f"ws://127.0.0.1:{self.port}", "http://127.0.0.1:1")

    async def __aenter__(self) -> FakeBinance:
        self._server = await serve(
            self._handler, "127.0.0.1", 0, ping_interval=self.ping_interval, ping_timeout=1.0
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ticker = asyncio.get_running_loop().create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._ticker.cancel()
        self._server.close()
        for peer in self.peers:
            peer.ws.transport.abort()
        with contextlib.suppress(Exception):
            await self._server.wait_closed()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.period_s)
            self.seq += 1
            await self.publish_seq(self.seq)

    async def publish_seq(self, seq: int) -> None:
        now = int(time.time() * 1000)
        for peer in list(self.peers):
            if peer.stalled:
                continue
            for stream in sorted(peer.streams):
                if not stream.endswith("@aggTrade"):
                    continue
                data = {
                    "e": "aggTrade",
                    "E": now,
                    "s": stream.split("@")[0].upper(),
                    "a": seq,
                    "p": "100.5",
                    "q": "0.25",
                    "f": seq,
                    "l": seq,
                    "T": now,
                    "m": False,
                    "M": True,
                }
                await self.send(peer, {"stream": stream, "data": data})

    async def send(self, peer: Peer, message: dict | str) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        with contextlib.suppress(Exception):
            await peer.ws.send(text)

    async def _handler(self, ws: ServerConnection) -> None:
        self.attempts.append(time.monotonic())
        path = ws.request.path
        self.paths.append(path)
        if self.close_on_connect is not None:
            await ws.close(self.close_on_connect, "Too many requests")
            return
        query = parse_qs(urlsplit(path).query).get("streams", [""])[0]
        peer = Peer(ws, urlsplit(path).path, {s for s in query.split("/") if s})
        self.peers.append(peer)
        try:
            await self._serve(peer, ws)
        except ConnectionClosed:
            pass
        finally:
            self.peers.remove(peer)

    async def _serve(self, peer: Peer, ws: ServerConnection) -> None:
        async for raw in ws:
            now = time.monotonic()
            peer.incoming = [t for t in peer.incoming if t > now - 1.0] + [now]
            if len(peer.incoming) > 5:
                await ws.close(1008, "Too many requests")
                return
            message = json.loads(raw)
            self.control.append({**message, "at": now})
            await self.send(peer, self._answer(peer, message))

    def _answer(self, peer: Peer, message: dict) -> dict:
        method, params, request_id = message.get("method"), message.get("params"), message["id"]
        if method == "SUBSCRIBE":
            if any(p.startswith("bad") for p in params):
                return {"error": {"code": 2, "msg": "Invalid request"}, "id": request_id}
            peer.streams.update(params)
            return {"result": None, "id": request_id}
        if method == "UNSUBSCRIBE":
            peer.streams.difference_update(params)
            return {"result": None, "id": request_id}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(peer.streams), "id": request_id}
        return {"code": 2, "msg": "Invalid request", "id": request_id}


@pytest.fixture
async def server() -> AsyncIterator[FakeBinance]:
    async with FakeBinance() as fake:
        yield fake


def fast_client(endpoints: Endpoints, **overrides) -> BinanceWebSocketClient:
    options = {
        "idle_timeout_s": 2.0,
        "control_rate": 3.0,
        "control_timeout_s": 2.0,
        "backoff": Backoff(initial=0.1, cap=0.5, floor=0.05),
        "stable_after_s": 0.5,
        "rotation_overlap_s": 0.2,
        "open_timeout_s": 2.0,
        "close_timeout_s": 0.5,
    }
    options.update(overrides)
    return BinanceWebSocketClient(endpoints, **options)


def open_http_sessions() -> int:
    """aiohttp client sessions not closed (each WebSocket session has its own)."""
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, aiohttp.ClientSession) and not o.closed)


async def collect(
    client: BinanceWebSocketClient, seconds: float, until=None
) -> tuple[list[Received], list[ConnectionEvent]]:
    """Frames and lifecycle events for ``seconds`` (or until ``until(frames, events)``)."""
    frames: list[Received] = []
    events: list[ConnectionEvent] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            async for item in client.listen_with_reconnect():
                (frames if isinstance(item, Received) else events).append(item)
                if until is not None and until(frames, events):
                    break
    return frames, events


def ids_of(frames: list[Received], stream: str) -> list[int]:
    return [f.frame.event.a for f in frames if f.frame.stream == stream]


async def test_subscribe_unsubscribe_and_list_live(server: FakeBinance) -> None:
    client = fast_client(server.endpoints)
    await client.connect([BTC])
    try:
        assert server.paths[0] == f"/stream?streams={BTC}"
        frames, events = await collect(client, 2.0, lambda f, e: len(f) >= 3)
        assert [e.kind for e in events] == [LifecycleKind.CONNECTED]
        assert isinstance(frames[0].frame.event, AggTrade)
        assert frames[0].received_at == pytest.approx(time.time(), abs=2.0)

        await client.subscribe_agg_trade("ETHUSDT")
        assert await client.list_subscriptions() == sorted([BTC, ETH])
        frames, _ = await collect(client, 2.0, lambda f, e: len(ids_of(f, ETH)) >= 3)
        assert len(ids_of(frames, ETH)) >= 3

        await client.unsubscribe([BTC])
        assert await client.list_subscriptions() == [ETH]
        await collect(client, 0.1)
        frames, _ = await collect(client, 0.3)
        assert frames and not ids_of(frames, BTC)

        with pytest.raises(ControlError) as refused:
            await client.subscribe(["badusdt@aggTrade"])
        assert refused.value.code == 2
        assert client.streams == (ETH,)
        methods = [m["method"] for m in server.control]
        assert methods.count("SUBSCRIBE") == 2 and methods.count("UNSUBSCRIBE") == 1
    finally:
        await client.close()


async def test_control_messages_are_paced_and_batched(server: FakeBinance) -> None:
    client = fast_client(server.endpoints, control_rate=4.0)
    await client.connect([BTC])
    try:
        symbols = [f"s{i}usdt@aggTrade" for i in range(8)]
        await asyncio.gather(*(client.subscribe([s]) for s in symbols))
        await client.subscribe([f"x{i}usdt@trade" for i in range(30)])
        subscribes = [m for m in server.control if m["method"] == "SUBSCRIBE"]
        assert len(subscribes) == 9
        assert len(subscribes[-1]["params"]) == 30
        times = [m["at"] for m in subscribes]
        assert min(b - a for a, b in itertools.pairwise(times)) >= 0.2
        assert client.get_stats()[0].policy_closes == 0
        assert client.get_stats()[0].reconnects == 0
    finally:
        await client.close()


async def test_server_pings_are_answered() -> None:
    async with FakeBinance(ping_interval=0.2) as server:
        client = fast_client(server.endpoints)
        await client.connect([BTC])
        try:
            _, events = await collect(client, 1.5)
            assert [e.kind for e in events] == [LifecycleKind.CONNECTED]
            assert server.peers[0].ws.latency > 0
            assert client.get_stats()[0].reconnects == 0
        finally:
            await client.close()


async def test_forced_disconnect_reconnects_with_backoff_and_resubscribes(
    server: FakeBinance,
) -> None:
    client = fast_client(server.endpoints)
    await client.connect([BTC])
    try:
        await client.subscribe([ETH])
        dropped_at = time.monotonic()
        server.peers[0].ws.transport.abort()
        _frames, events = await collect(
            client,
            5.0,
            lambda f, e: (
                e
                and e[-1].kind is LifecycleKind.RECONNECTED
                and len(ids_of(f, ETH)) >= 2
                and len(ids_of(f, BTC)) >= 2
            ),
        )
        kinds = [e.kind for e in events]
        assert kinds[-2:] == [LifecycleKind.DISCONNECTED, LifecycleKind.RECONNECTED]
        assert "without a close frame" in events[-2].reason
        assert server.attempts[-1] - dropped_at >= 0.05
        assert set(events[-1].streams) == {BTC, ETH}
        assert sorted(server.peers[0].streams) == sorted([BTC, ETH])
        assert client.get_stats()[0].reconnects == 1
    finally:
        await client.close()


async def test_silent_stall_is_detected_by_the_idle_watchdog(server: FakeBinance) -> None:
    client = fast_client(server.endpoints, idle_timeout_s=0.4)
    await client.connect([BTC])
    try:
        await collect(client, 0.2)
        server.peers[0].stalled = True
        stalled_at = time.monotonic()
        frames, events = await collect(
            client, 4.0, lambda f, e: e and e[-1].kind is LifecycleKind.RECONNECTED
        )
        disconnected = [e for e in events if e.kind is LifecycleKind.DISCONNECTED]
        assert disconnected and disconnected[0].reason.startswith("idle")
        assert disconnected[0].at - time.time() + time.monotonic() - stalled_at >= 0.35
        frames, _ = await collect(client, 2.0, lambda f, e: len(f) >= 3)
        assert len(frames) >= 3
    finally:
        await client.close()


async def test_server_shutdown_rotates_make_before_break_without_loss(
    server: FakeBinance,
) -> None:
    client = fast_client(server.endpoints)
    await client.connect([BTC])
    try:
        await collect(client, 2.0, lambda f, e: len(f) >= 10)
        old = server.peers[0]
        await server.send(
            old, {"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": 1}}
        )

        async def close_old_later() -> None:
            await asyncio.sleep(0.6)
            await old.ws.close(1001, "going away")

        closer = asyncio.get_running_loop().create_task(close_old_later())
        frames, events = await collect(client, 2.0)
        await closer
        ids = ids_of(frames, BTC)
        assert [e.kind for e in events] == [LifecycleKind.ROTATED]
        assert events[0].reason == "serverShutdown"
        assert set(range(min(ids), max(ids) + 1)) == set(ids)
        assert len(server.attempts) == 2 and len(server.peers) == 1 and server.peers[0] is not old
        stats = client.get_stats()[0]
        assert stats.rotations == 1 and stats.reconnects == 0
    finally:
        await client.close()
    assert open_http_sessions() == 0


async def test_rotation_before_the_age_limit_loses_nothing(server: FakeBinance) -> None:
    client = fast_client(server.endpoints, rotate_after_s=0.5)
    await client.connect([BTC])
    try:
        frames, events = await collect(
            client, 5.0, lambda f, e: sum(x.kind is LifecycleKind.ROTATED for x in e) >= 2
        )
        frames += (await collect(client, 0.3))[0]
        ids = ids_of(frames, BTC)
        assert set(range(min(ids), max(ids) + 1)) == set(ids)
        assert events[0].kind is LifecycleKind.CONNECTED
        assert all(e.kind is LifecycleKind.ROTATED for e in events[1:])
    finally:
        await client.close()


async def test_close_1008_backs_off_instead_of_looping(server: FakeBinance) -> None:
    server.close_on_connect = 1008
    client = fast_client(server.endpoints, backoff=Backoff(initial=0.1, cap=0.4, floor=0.1))
    connecting = asyncio.get_running_loop().create_task(client.connect([BTC]))
    await asyncio.sleep(2.0)
    try:
        gaps = [b - a for a, b in zip(server.attempts, server.attempts[1:], strict=False)]
        assert 3 <= len(server.attempts) <= 12
        assert min(gaps) >= 0.1
        assert client.get_stats()[0].policy_closes >= 2
        assert open_http_sessions() <= 1  # the sessions closed by the server are released
    finally:
        connecting.cancel()
        await client.close()
    assert open_http_sessions() == 0


async def test_policy_close_after_open_is_counted_and_backed_off(server: FakeBinance) -> None:
    client = fast_client(server.endpoints, backoff=Backoff(initial=0.2, cap=0.4, floor=0.2))
    await client.connect([BTC])
    try:
        await server.peers[0].ws.close(1008, "Too many requests")
        closed_at = time.monotonic()
        _, events = await collect(
            client, 3.0, lambda f, e: e and e[-1].kind is LifecycleKind.RECONNECTED
        )
        disconnected = [e for e in events if e.kind is LifecycleKind.DISCONNECTED]
        assert "1008" in disconnected[0].reason
        assert server.attempts[-1] - closed_at >= 0.2
        assert client.get_stats()[0].policy_closes == 1
    finally:
        await client.close()


async def test_connection_attempts_are_limited(server: FakeBinance) -> None:
    server.close_on_connect = 1011
    attempts = SlidingWindowLimiter(3, 1.0)
    client = fast_client(
        server.endpoints,
        backoff=Backoff(initial=0.01, cap=0.01, floor=0.01),
        connection_attempts=attempts,
    )
    connecting = asyncio.get_running_loop().create_task(client.connect([BTC]))
    await asyncio.sleep(1.5)
    connecting.cancel()
    await client.close()
    assert len(server.attempts) <= 6


async def test_malformed_frames_and_unknown_events_are_counted_and_skipped(
    server: FakeBinance,
) -> None:
    client = fast_client(server.endpoints)
    await client.connect([BTC])
    try:
        peer = server.peers[0]
        await server.send(peer, "not json at all")
        await server.send(peer, {"stream": BTC, "data": {"e": "aggTrade", "a": "x"}})
        await server.send(peer, {"stream": "btcusdt@mystery", "data": {"e": "mystery"}})
        frames, events = await collect(client, 2.0, lambda f, e: len(f) >= 20)
        assert len(frames) >= 20 and [e.kind for e in events] == [LifecycleKind.CONNECTED]
        stats = client.get_stats()[0]
        assert stats.malformed == 2
        assert stats.unknown == 1
        assert stats.reconnects == 0
    finally:
        await client.close()


async def test_hostile_frames_cost_neither_the_session_nor_a_frame_of_data(
    server: FakeBinance,
) -> None:
    """Frames that make the decoder raise RecursionError or UnicodeDecodeError are counted
    as malformed; the session keeps reading (no "reader failed", no reconnect)."""
    client = fast_client(server.endpoints, max_message_bytes=12_000_000)
    await client.connect([BTC])
    try:
        peer = server.peers[0]
        hostile = [
            '{"stream":"btcusdt@aggTrade","data":' + "[" * 100_000 + "]" * 100_000 + "}",
            '{"e":"aggTrade","x":' + '{"k":' * 50_000 + "1" + "}" * 50_000 + "}",
            '{"result":' + "[" * 100_000 + "]" * 100_000 + ',"id":1}',
            '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1e999999}}',
            '{"stream":"btcusdt@trade","data":{"e":"trade","s":"' + "A" * 10_000_000 + '"}}',
        ]
        for text in hostile:
            await server.send(peer, text)
        with contextlib.suppress(Exception):
            await peer.ws.send(b'{"e":"\xff\xfe","E":1}')  # binary frame, invalid UTF-8
        frames, events = await collect(client, 3.0, lambda f, e: len(f) >= 30)
        assert [e.kind for e in events] == [LifecycleKind.CONNECTED]
        stats = client.get_stats()[0]
        assert stats.malformed == len(hostile) + 1
        assert stats.reconnects == 0 and stats.connected
        ids = [f.frame.event.a for f in frames]
        assert ids == list(range(ids[0], ids[0] + len(ids)))  # nothing lost around them
    finally:
        await client.close()


async def test_stats_report_volume_lag_and_age(server: FakeBinance) -> None:
    client = fast_client(server.endpoints)
    await client.connect([BTC, ETH])
    try:
        frames, _ = await collect(client, 2.0, lambda f, e: len(f) >= 20)
        await client.list_subscriptions()
        stats = client.get_stats()
        assert len(stats) == 1
        only = stats[0]
        assert only.connected and only.streams == 2 and only.uptime_s > 0
        assert only.messages_by_kind["aggTrade"] >= len(frames)
        assert only.bytes_by_kind["aggTrade"] > 100 * only.messages_by_kind["aggTrade"] // 2
        assert only.control_sent == 1 and only.messages_by_kind["control"] == 1
        assert only.lag_ms_median is not None and -50 < only.lag_ms_median < 500
        assert only.lag_ms_p95 >= only.lag_ms_median
        assert only.last_message_age_s is not None and only.last_message_age_s < 1.0
        assert only.url == f"ws://127.0.0.1:{server.port}/stream"
    finally:
        await client.close()


async def test_streams_are_split_by_route_and_per_connection_limit(server: FakeBinance) -> None:
    endpoints = custom(
        f"ws://127.0.0.1:{server.port}",
        "http://127.0.0.1:1",
        "usdm",
        split_routes=True,
        max_streams_per_connection=2,
    )
    client = fast_client(endpoints)
    depth = ["btcusdt@depth@100ms", "ethusdt@depth@100ms", "solusdt@bookTicker"]
    await client.connect([*depth, BTC, ETH])
    try:
        assert sorted(urlsplit(p).path for p in server.paths) == [
            "/market/stream",
            "/public/stream",
            "/public/stream",
        ]
        assert [s.streams for s in client.get_stats()] == [2, 1, 2]
        await client.subscribe(["xrpusdt@aggTrade"])
        assert len(client.get_stats()) == 4
    finally:
        await client.close()


async def test_slow_consumer_gets_a_dropped_event(server: FakeBinance) -> None:
    client = fast_client(server.endpoints, max_pending=5)
    await client.connect([BTC])
    try:
        await asyncio.sleep(0.3)
        _frames, events = await collect(
            client, 2.0, lambda f, e: any(x.kind is LifecycleKind.DROPPED for x in e)
        )
        dropped = [e for e in events if e.kind is LifecycleKind.DROPPED]
        assert dropped and "dropped" in dropped[0].reason
        assert client.get_stats()[0].dropped > 0
    finally:
        await client.close()


async def test_listen_ends_at_the_first_disconnect(server: FakeBinance) -> None:
    client = fast_client(server.endpoints)
    await client.connect([BTC])
    received = 0
    async with asyncio.timeout(3.0):
        async for _item in client.listen():
            received += 1
            if received == 5:
                server.peers[0].ws.transport.abort()
    assert received >= 5
    assert not server.peers or len(server.attempts) == 1


async def test_fragmented_and_oversized_messages_and_a_clean_close(server: FakeBinance) -> None:
    """A message sent in fragments arrives as one frame; a message above
    ``max_message_bytes`` closes the session with 1009 (a protocol close, then a reconnect);
    the client's own close is a clean close handshake (code 1000 at the server)."""
    client = fast_client(server.endpoints, max_message_bytes=100_000)
    await client.connect([BTC])
    try:
        peer = server.peers[0]
        text = json.dumps(
            {
                "stream": BTC,
                "data": {
                    "e": "aggTrade", "E": 1, "s": "BTCUSDT", "a": 10**9, "p": "100.5",
                    "q": "0.25", "f": 1, "l": 1, "T": 1, "m": False, "M": True,
                },
            }
        )  # fmt: skip
        await peer.ws.send(text[i : i + 7] for i in range(0, len(text), 7))
        frames, _ = await collect(
            client, 3.0, lambda f, e: any(x.frame.event.a == 10**9 for x in f)
        )
        assert any(f.frame.event.a == 10**9 for f in frames)
        assert client.get_stats()[0].malformed == 0
        await server.send(peer, '{"stream":"btcusdt@aggTrade","data":"' + "x" * 200_000 + '"}')
        _, events = await collect(
            client, 5.0, lambda f, e: bool(e) and e[-1].kind is LifecycleKind.RECONNECTED
        )
        assert [e.kind for e in events][-2:] == [
            LifecycleKind.DISCONNECTED,
            LifecycleKind.RECONNECTED,
        ]
        assert "1009" in events[-2].reason
        assert peer.ws.close_code == 1009
        last = server.peers[-1]
    finally:
        await client.close()
    await asyncio.wait_for(last.ws.wait_closed(), 2.0)
    assert last.ws.close_code == 1000
    assert open_http_sessions() == 0
