"""The push streams in the several-process mode, against a real redis-server: the worker's
writer and a web worker's reader across a Redis restart (nothing lost, nothing twice), and
gunicorn with two web workers serving every stream from Redis while the ingest worker
replays the bundled recording."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import numpy as np
import pytest
import websockets

from app.config import Settings
from app.history_setup import web_push_history
from services.history.reader import HistoryReader
from services.market.views import SymbolInfo, SyncState, TradeView
from services.push.archive import between
from services.push.events import EventHub
from services.push.history_archive import HistoryArchive
from services.push.hub import PushHub
from services.push.messages import top_of_book
from services.push.service import PushService
from services.redis_push import RedisEventSink, RedisPushReader, RedisPushWriter
from services.redis_store import RedisStore
from services.replay.recording import SPOT_2021
from services.store import FeedStatus
from tests.integration.test_multiprocess import (
    get_json,
    start_gunicorn,
    start_worker,
    stop,
    wait_for,
)
from tests.push_server import web_server
from tests.redis_server import RedisServer, free_port

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


def _view(ids: range, symbol: str = "BTCUSDT") -> TradeView:
    n = len(ids)
    return TradeView(
        symbol=symbol,
        trade_id=np.asarray(ids, dtype=np.int64),
        time_ms=np.arange(n, dtype=np.int64) + 1_700_000_000_000,
        price=np.linspace(100.0, 101.0, n),
        qty=np.full(n, 0.25),
        side=np.where(np.arange(n) % 2 == 0, 1.0, -1.0),
    )


def _taken_ids(sub) -> list[int]:
    ids: list[int] = []
    while (batch := sub.take(0)) is not None:
        ids.extend(batch.trades.trade_id.tolist())
    return ids


def test_a_redis_restart_loses_no_trade_and_repeats_none(redis_server: RedisServer) -> None:
    writer = RedisPushWriter(redis_server.url, retry_s=0.05)
    hub, events = PushHub(), EventHub()
    reader = RedisPushReader(redis_server.url, hub, events, block_ms=100, retry_s=0.05)
    sub = hub.subscribe_trades("BTCUSDT")
    prices = hub.subscribe_prices("BTCUSDT")
    alerts = events.subscribe()
    reader.start()
    try:
        for start in range(0, 100, 10):
            writer.publish_trades("BTCUSDT", _view(range(start, start + 10)))
        assert writer.flush()
        wait_for(lambda: hub.last_trade_id("BTCUSDT") == 99, 10, "the first 100 trades")
        redis_server.stop()
        for start in range(100, 200, 10):
            writer.publish_trades("BTCUSDT", _view(range(start, start + 10)))
        time.sleep(0.5)
        assert not writer.flush(timeout=0.2), "nothing can be written while Redis is down"
        redis_server.start()
        assert writer.flush(timeout=10)
        # A restarted worker's warm-up repeats trades already written: skipped.
        writer.publish_trades("BTCUSDT", _view(range(150, 210)))
        writer.publish_prices(
            top_of_book("BTCUSDT", SyncState.LIVE, (100.0, 1.0), (100.5, 2.0), 100.2, 209, 5)
        )
        RedisEventSink(writer).publish({"rule": "large_trade", "symbol": "BTCUSDT"})
        assert writer.flush(timeout=10)
        wait_for(lambda: hub.last_trade_id("BTCUSDT") == 209, 10, "trades after the restart")
        wait_for(lambda: events.published >= 1, 10, "the alert event")
    finally:
        reader.stop()
        writer.close()
    assert _taken_ids(sub) == list(range(210))
    assert reader.reconnects >= 1 and writer.failures >= 1
    _, message = prices.newer_than(0, 1.0)
    assert json.loads(message)["best_ask"] == 100.5
    assert json.loads(alerts.take(1.0)) == {
        "rule": "large_trade",
        "symbol": "BTCUSDT",
        "type": "alert",
    }


async def _read_trades(url: str, count: int) -> list[int]:
    ids: list[int] = []
    async with websockets.connect(url) as ws:
        while len(ids) < count:
            message = json.loads(await asyncio.wait_for(ws.recv(), 20))
            ids.extend(t["id"] for t in message["trades"])
    return ids


async def _read_messages(url: str, count: int) -> list[dict]:
    async with websockets.connect(url) as ws:
        return [json.loads(await asyncio.wait_for(ws.recv(), 20)) for _ in range(count)]


@pytest.mark.timeout(150)
def test_two_gunicorn_workers_serve_every_stream_from_redis(redis_server: RedisServer) -> None:
    url = redis_server.url
    reader = RedisStore(url, poll_s=0)
    worker = start_worker(url)
    port = free_port()
    web = start_gunicorn(url, port, threads=16)
    try:
        snap = wait_for(
            lambda: (s := reader.snapshot("BTCUSDT")) and len(s.trades) > 50 and s,
            60,
            "BTCUSDT trades from the worker",
        )
        wait_for(lambda: get_json(f"http://127.0.0.1:{port}/healthz")[0] == 200, 60, "gunicorn")
        from_id = int(snap.trades.trade_id[10])
        base = f"ws://127.0.0.1:{port}/ws/asset"

        async def clients() -> tuple:
            return await asyncio.gather(
                *(_read_trades(f"{base}/BTCUSDT/trades/?from_id={from_id}", 150) for _ in range(6)),
                *(_read_messages(f"{base}/BTCUSDT/prices/", 3) for _ in range(2)),
                *(_read_messages(f"{base}/ETHUSDT/book/?levels=3", 2) for _ in range(2)),
            )

        results = asyncio.run(clients())
    finally:
        stop(web)
        stop(worker)
    trade_runs, price_runs, book_runs = results[:6], results[6:8], results[8:]
    for ids in trade_runs:
        assert ids[:150] == list(range(from_id + 1, from_id + 151))
    for messages in price_runs:
        assert all(m["type"] == "prices" and m["symbol"] == "BTCUSDT" for m in messages)
        assert any(m["best_bid"] is not None for m in messages)
        shown = [m for m in messages if m["best_bid"] is not None]
        assert all(m["best_bid"] < m["best_ask"] for m in shown)
    for messages in book_runs:
        assert all(m["type"] == "book" and m["symbol"] == "ETHUSDT" for m in messages)
        assert any(len(m["bids"]) == 3 for m in messages)


@pytest.mark.timeout(60)
async def test_a_web_worker_resumes_from_history_then_redis_then_live(
    redis_server: RedisServer, history_2021, manifest
) -> None:
    """Several-process mode: the Redis stream holds only the newest trades; a client
    resuming from an id older than that gets the trades in between from the history store
    (Parquet written by the history writer), then the stream's, then live ones — each once,
    in order — while the ingest worker's feed is LIVE; not from history when it replays."""
    facts = manifest[SPOT_2021.name]["symbols"]["BTCUSDT"]["aggTrade"]
    first, last = facts["first_id"], facts["last_id"]
    stored = HistoryArchive(HistoryReader(history_2021), "spot").trades_between(
        "BTCUSDT", first - 1, None
    )
    redis_from, live_from = last - 300, last - 49
    worker_store = RedisStore(redis_server.url, writer_id="ingest-1")
    worker_store.publish_symbols([SymbolInfo("BTCUSDT")])
    worker_store.publish_status(FeedStatus(source="LIVE", connection_state="CONNECTED"))
    writer = RedisPushWriter(redis_server.url)
    for start in range(redis_from, live_from, 50):  # the stream: only the newest trades
        writer.publish_trades("BTCUSDT", between(stored, start - 1, min(start + 50, live_from)))
    assert writer.flush()
    web_store = RedisStore(redis_server.url)
    settings = Settings(history_dir=history_2021, preset="spot")
    push = PushService.from_redis(web_store, redis_server.url)
    push.use_history(web_push_history(settings, web_store))
    url = "/ws/asset/BTCUSDT/trades/?from_id={}"
    try:
        with web_server(web_store, push) as served:
            async with websockets.connect(served.ws + url.format(first + 9)) as ws:
                ids: list[int] = []
                while not ids or ids[-1] < live_from - 1:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 20))
                    ids.extend(t["id"] for t in message["trades"])
                writer.publish_trades("BTCUSDT", between(stored, live_from - 1, None))
                assert writer.flush()
                while ids[-1] < last:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 20))
                    ids.extend(t["id"] for t in message["trades"])
            assert ids == list(range(first + 10, last + 1))
            worker_store.publish_status(FeedStatus(source="REPLAY", connection_state="CONNECTED"))
            await asyncio.sleep(1.5)  # past the web store's status cache
            async with websockets.connect(served.ws + url.format(first + 9)) as ws:
                message = json.loads(await asyncio.wait_for(ws.recv(), 20))
            assert message["trades"][0]["id"] == redis_from  # a replay's ids: no history
    finally:
        writer.close()
