"""The push streams end to end: the local exchange replays a real recording, the feed runs
with the push tap, the dashboard's Flask server serves ``/ws/...`` on loopback, and real
WebSocket clients (the ``websockets`` library) read them."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
import websockets

from app.alerting import Alerts, start_tap
from app.callbacks.status import symbol_status
from services.alerts.events import FileEventLog
from services.alerts.rule_store import FileRuleStore
from services.alerts.rules import validate
from services.alerts.webhook_policy import WebhookPolicy
from services.market.views import SymbolInfo
from services.push.service import PushLimits, PushService
from services.replay.exchange import LocalExchange
from services.store import MemoryStore
from tests.push_server import embedded, web_server

FILE = "spot_BTCUSDT-ETHUSDT-DOTUSDT_20210404T2003Z_cryptofeed.jsonl.gz"


class TradeClient:
    """Reads one symbol's trades stream into ``ids``; ``resume()`` reconnects with
    ``from_id`` = the last id it got."""

    def __init__(self, base: str, symbol: str, from_id: int) -> None:
        self.base, self.symbol = base, symbol
        self.ids: list[int] = []
        self.from_id = from_id
        self.connections = 0
        self.task: asyncio.Task | None = None

    def url(self) -> str:
        last = self.ids[-1] if self.ids else self.from_id
        return f"{self.base}/ws/asset/{self.symbol}/trades/?from_id={last}"

    async def read(self, stop_after: int | None = None) -> None:
        async with websockets.connect(self.url()) as ws:
            self.connections += 1
            async for raw in ws:
                message = json.loads(raw)
                assert message["type"] == "trades"
                self.ids.extend(t["id"] for t in message["trades"])
                if stop_after is not None and len(self.ids) >= stop_after:
                    return

    def start(self, stop_after: int | None = None) -> None:
        self.task = asyncio.create_task(self.read(stop_after))


async def _until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _symbols_known(store) -> None:
    await _until(lambda: len(store.symbols()) > 0, 10, "the symbol list")


@pytest.mark.timeout(90)
async def test_two_clients_per_symbol_get_every_trade_across_disconnects(manifest, recordings):
    """Per symbol, one client stays connected and one disconnects a third of the way and
    resumes with from_id; the exchange drops the feed's connections twice on the way. Both
    end with every recorded aggTrade id once, in order. Prices never show a crossed book and
    come at most once per 100 ms; book messages are never crossed."""
    facts = {s: manifest[FILE]["symbols"][s]["aggTrade"] for s in ("BTCUSDT", "ETHUSDT")}
    limits = PushLimits(ring_trades=100)  # a resume reaches back into the trade window
    async with LocalExchange(recordings["spot_2021"], speed=8) as exchange:
        with embedded(exchange, limits) as (served, feed):
            await _symbols_known(served.store)
            clients = []
            for symbol, fact in facts.items():
                steady = TradeClient(served.ws, symbol, fact["first_id"] - 1)
                resuming = TradeClient(served.ws, symbol, fact["first_id"] - 1)
                steady.start()
                resuming.start(stop_after=(fact["last_id"] - fact["first_id"]) // 3)
                clients.append((fact, steady, resuming))
            prices: list[tuple[float, dict]] = []
            books: list[dict] = []

            async def read_prices() -> None:
                async with websockets.connect(f"{served.ws}/ws/asset/BTCUSDT/prices/") as ws:
                    async for raw in ws:
                        prices.append((time.monotonic(), json.loads(raw)))

            async def read_book() -> None:
                async with websockets.connect(f"{served.ws}/ws/asset/BTCUSDT/book/?levels=5") as ws:
                    async for raw in ws:
                        books.append(json.loads(raw))

            side = [asyncio.create_task(read_prices()), asyncio.create_task(read_book())]
            await asyncio.sleep(2.5)
            assert exchange.faults.drop_connections() > 0
            for _, _, resuming in clients:
                await resuming.task
                resuming.start()  # reconnects with from_id = its last id
            await asyncio.sleep(2.5)
            assert exchange.faults.drop_connections() > 0
            for fact, steady, resuming in clients:
                await _until(
                    lambda f=fact, a=steady, b=resuming: (
                        a.ids[-1:] == [f["last_id"]] and b.ids[-1:] == [f["last_id"]]
                    ),
                    60,
                    "every trade at both clients",
                )
            for task in side:
                task.cancel()
            stats = feed.stats()
    for fact, steady, resuming in clients:
        expected = list(range(fact["first_id"], fact["last_id"] + 1))
        assert steady.ids == expected
        assert resuming.ids == expected
        assert resuming.connections == 2
    assert stats.counters.tap_errors == 0
    live = [p for _, p in prices if p["sync_state"] == "LIVE" and p["best_bid"] is not None]
    assert len(live) > 20
    assert all(p["best_bid"] < p["best_ask"] for p in live)
    assert all(p["best_bid"] is None for _, p in prices if p["sync_state"] != "LIVE")
    # Coalesced: at most one message per 100 ms. Arrival times jitter (a late message
    # followed by punctual ones), so look at 21 consecutive messages: they span ≥ ~2 s.
    times = [t for t, _ in prices]
    assert min(b - a for a, b in zip(times, times[20:], strict=False)) >= 1.8
    shown = [b for b in books if b["bids"]]
    assert shown and all(b["sync_state"] == "LIVE" for b in shown)
    assert all(len(b["bids"]) <= 5 and b["bids"][0][0] < b["asks"][0][0] for b in shown)


def _small_receive_buffer_socket(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    return sock


@pytest.mark.timeout(60)
async def test_a_slow_consumer_is_cut_with_a_reason_and_a_fast_one_is_not(manifest, recordings):
    fact = manifest[FILE]["symbols"]["BTCUSDT"]["aggTrade"]
    limits = PushLimits(max_queue=100, send_buffer=4096)
    async with LocalExchange(recordings["spot_2021"], speed=25) as exchange:
        with embedded(exchange, limits) as (served, feed):
            await _symbols_known(served.store)
            url = f"{served.ws}/ws/asset/BTCUSDT/trades/?from_id={fact['first_id'] - 1}"
            slow = await websockets.connect(
                url, sock=_small_receive_buffer_socket(served.port), max_queue=1
            )
            fast = TradeClient(served.ws, "BTCUSDT", fact["first_id"] - 1)
            fast.start()
            await _until(lambda: served.push.hub.stats().cut >= 1, 30, "the slow client cut")
            await _until(lambda: fast.ids[-1:] == [fact["last_id"]], 40, "every trade, fast")
            received = 0
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    received += len(json.loads(await slow.recv())["trades"])
            fast.task.cancel()
    assert fast.ids == list(range(fact["first_id"], fact["last_id"] + 1))
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert "slow consumer" in closed.value.rcvd.reason
    assert 0 < received < len(fast.ids)
    assert feed.counters.tap_errors == 0


def _store_with(symbols: list[str]) -> MemoryStore:
    store = MemoryStore()
    store.publish_symbols([SymbolInfo(symbol) for symbol in symbols])
    return store


async def test_unknown_symbol_closes_4404_naming_valid_ones():
    store = _store_with(["BTCUSDT", "ETHUSDT"])
    with web_server(store, PushService.embedded(store)) as served:
        for stream in ("trades", "prices", "book", "status"):
            async with websockets.connect(f"{served.ws}/ws/asset/BTCUSD/{stream}/") as ws:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.recv()
            assert closed.value.rcvd.code == 4404
            assert "unknown symbol BTCUSD" in closed.value.rcvd.reason
            assert "BTCUSDT" in closed.value.rcvd.reason


async def test_the_status_stream_sends_the_status_bar_each_second_until_paused():
    store = _store_with(["BTCUSDT"])
    push = PushService.embedded(store)
    with web_server(store, push) as served:
        async with websockets.connect(f"{served.ws}/ws/asset/btcusdt/status/") as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), 5))
            second = json.loads(await asyncio.wait_for(ws.recv(), 5))
            expected = [
                {"label": i.label, "value": i.value, "level": i.level}
                for i in symbol_status(store, "BTCUSDT", time.time())
            ]
            assert first["type"] == "status" and first["symbol"] == "BTCUSDT"
            assert first["items"] == second["items"] == expected
            assert first["sync_state"] is None  # no snapshot yet
            assert 500 <= second["time"] - first["time"] <= 3000
            push.pause("restart")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd.code == 1008
        assert "paused" in closed.value.rcvd.reason
        push.resume()


async def test_origin_and_parameters_are_checked_before_the_handshake():
    store = _store_with(["BTCUSDT"])
    push = PushService.embedded(store)
    with web_server(store, push, ws_origins="https://desk.example") as served:
        url = f"{served.ws}/ws/asset/BTCUSDT/prices/"
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(url, origin="https://evil.example")
        assert refused.value.response.status_code == 403
        assert b"https://evil.example is not allowed" in refused.value.response.body
        async with websockets.connect(url, origin="https://desk.example"):
            pass
        for query, problem in (("from_id=x", b"from_id"), ("levels=0", b"levels")):
            stream = "trades" if "from_id" in query else "book"
            with pytest.raises(websockets.InvalidStatus) as bad:
                await websockets.connect(f"{served.ws}/ws/asset/BTCUSDT/{stream}/?{query}")
            assert bad.value.response.status_code == 400
            assert problem in bad.value.response.body
    # Default: only the dashboard's own host.
    with web_server(store, PushService.embedded(store)) as served:
        own = f"http://127.0.0.1:{served.port}"
        async with websockets.connect(f"{served.ws}/ws/alerts/", origin=own):
            pass
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(f"{served.ws}/ws/alerts/", origin="http://other:1")


async def test_a_published_alert_event_reaches_a_client():
    store = _store_with(["BTCUSDT"])
    push = PushService.embedded(store)
    with web_server(store, push) as served:
        async with websockets.connect(f"{served.ws}/ws/alerts/") as ws:
            await _until(lambda: push.events.subscribers() == 1, 5, "the alerts client")
            push.events.publish({"rule": "large_trade", "symbol": "BTCUSDT", "qty": 12.5})
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert message == {"type": "alert", "rule": "large_trade", "symbol": "BTCUSDT", "qty": 12.5}


@pytest.mark.timeout(90)
async def test_a_rule_firing_on_the_replay_reaches_an_alerts_client_as_it_is_logged(
    recordings, tmp_path
):
    """A real large-trade rule, the feed's AlertTap and its dispatcher writing the file
    event log, the relay of ``create_app`` and a real WebSocket client on ``/ws/alerts/``:
    every event reaches the client once, in order, with the logged fields, and soon after
    it is logged — the relay reads on each append (its idle poll is 10 s)."""
    rules = FileRuleStore(tmp_path)
    payload = {"kind": "large_trade", "symbol": "BTCUSDT", "params": {"min_notional": 5000}}
    rule = validate(payload, {"BTCUSDT", "ETHUSDT", "DOTUSDT"})
    rules.put(rule)
    alerts = Alerts(rules, FileEventLog(tmp_path), WebhookPolicy(("127.0.0.1",)))
    logged: dict[int, float] = {}
    alerts.events.appended.append(lambda event: logged.setdefault(event.id, time.monotonic()))
    tap = start_tap(alerts)
    received: list[tuple[dict, float]] = []
    try:
        async with LocalExchange(recordings["spot_2021"], speed=4) as exchange:
            with embedded(exchange, alerts=alerts, taps=(tap,)) as (served, _feed):
                async with websockets.connect(f"{served.ws}/ws/alerts/") as ws:
                    while len(received) < 3:
                        message = json.loads(await asyncio.wait_for(ws.recv(), 30))
                        received.append((message, time.monotonic()))
                assert served.push.alert_relay is not None and served.push.alert_relay.on_append
    finally:
        tap.stop()
    logged_events = {e.id: e.to_json() for e in alerts.events.since(0)}
    ids = [m["id"] for m, _ in received]
    assert ids == list(range(ids[0], ids[0] + 3))  # once each, in order
    for message, at in received:
        assert message == {**logged_events[message["id"]], "type": "alert"}
        assert message["rule_id"] == rule.id and message["symbol"] == "BTCUSDT"
        assert at - logged[message["id"]] < 2.0
