"""The push streams on a real 6-node Redis Cluster (3 masters, 3 replicas): the worker's
writer and two web workers' readers, symbols spread over several slots and masters. Every
reader gets every symbol's trades contiguous, none lost or repeated, across a forced
reconnect of every client connection (``CLIENT KILL`` on every master)."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest
import redis

from services.market.views import SyncState
from services.push.events import EventHub
from services.push.hub import PushHub
from services.push.messages import top_of_book
from services.redis_push import (
    ALERTS_KEY,
    RedisEventSink,
    RedisPushReader,
    RedisPushWriter,
    key,
    slot_groups,
)
from tests.integration.test_cluster_shards import client, cluster  # noqa: F401 - fixtures
from tests.integration.test_multiprocess import wait_for
from tests.integration.test_push_redis import _taken_ids, _view
from tests.integration.test_push_redis import (
    test_two_gunicorn_workers_serve_every_stream_from_redis as serve_every_stream,
)
from tests.redis_cluster import RedisCluster

pytestmark = pytest.mark.redis
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "BNBUSDT")


def _publish(writer: RedisPushWriter, start: int, stop: int) -> None:
    for first in range(start, stop, 10):
        for symbol in SYMBOLS:
            writer.publish_trades(symbol, _view(range(first, first + 10), symbol))


def _kill_clients(running: RedisCluster) -> int:
    """Close every client connection on every master; how many were closed."""
    killed = 0
    for port in running.masters():
        node = redis.Redis(port=port, socket_timeout=2.0)
        killed += int(node.client_kill_filter(_type="normal", skipme=True))
        node.close()
    return killed


def test_slot_groups_keep_each_xread_in_one_slot() -> None:
    cursors = {key(s, stream): "0-0" for s in SYMBOLS for stream in ("trades", "prices")}
    groups = slot_groups(cursors | {ALERTS_KEY: "0-0"})
    assert sum(len(g) for g in groups) == 2 * len(SYMBOLS) + 1
    for symbol in SYMBOLS:  # a symbol's two streams always share a slot
        assert any({key(symbol, "trades"), key(symbol, "prices")} <= g.keys() for g in groups)


def test_two_readers_get_every_trade_in_order_across_a_reconnect(
    cluster: RedisCluster,  # noqa: F811 - the module's fixture
    client,  # noqa: F811 - flushes the cluster
) -> None:
    nodes = {client.get_node_from_key(key(s, "trades")).name for s in SYMBOLS}
    assert len(nodes) >= 2, "the symbols must live on several masters"
    writer = RedisPushWriter(cluster.url, retry_s=0.05)
    first_hub, second_hub, events = PushHub(), PushHub(), EventHub()
    first_subs = {s: first_hub.subscribe_trades(s) for s in SYMBOLS}
    prices = first_hub.subscribe_prices("SOLUSDT")
    alerts = events.subscribe()
    first = RedisPushReader(cluster.url, first_hub, events, block_ms=100, retry_s=0.05)
    second = RedisPushReader(cluster.url, second_hub, EventHub(), block_ms=100, retry_s=0.05)
    first.start()
    try:
        _publish(writer, 0, 100)
        assert writer.flush(timeout=10)
        wait_for(lambda: all(first_hub.last_trade_id(s) == 99 for s in SYMBOLS), 10, "100 trades")
        assert _kill_clients(cluster) >= 2, "the writer's and the reader's links were cut"
        _publish(writer, 100, 200)
        assert writer.flush(timeout=10)
        # A second web worker starting now serves every symbol too, from the streams.
        second_subs = {s: second_hub.subscribe_trades(s) for s in SYMBOLS}
        second.start()
        assert _kill_clients(cluster) >= 2
        _publish(writer, 150, 300)  # a restarted worker's warm-up repeats 150..199
        writer.publish_prices(
            top_of_book("SOLUSDT", SyncState.LIVE, (100.0, 1.0), (100.5, 2.0), 100.2, 299, 5)
        )
        RedisEventSink(writer).publish({"rule": "large_trade", "symbol": "SOLUSDT"})
        assert writer.flush(timeout=10)
        for hub in (first_hub, second_hub):
            wait_for(
                lambda h=hub: all(h.last_trade_id(s) == 299 for s in SYMBOLS), 15, "300 trades"
            )
        wait_for(lambda: events.published >= 1, 10, "the alert event")
    finally:
        first.stop()
        second.stop()
        writer.close()
    for symbol in SYMBOLS:
        assert _taken_ids(first_subs[symbol]) == list(range(300)), symbol
        assert _taken_ids(second_subs[symbol]) == list(range(300)), symbol
    _, message = prices.newer_than(0, 1.0)
    assert json.loads(message)["best_ask"] == 100.5
    assert json.loads(alerts.take(1.0))["symbol"] == "SOLUSDT"


def test_a_stream_written_meanwhile_by_another_owner_is_continued_not_repeated(
    cluster: RedisCluster,  # noqa: F811 - the module's fixture
    client,  # noqa: F811 - flushes the cluster
) -> None:
    """A worker that gets a symbol back after another owner wrote its stream: its batch
    below the stream's newest id is refused alone (not the alert beside it), re-read and
    skipped; readers see every trade once."""
    symbol = "SOLUSDT"
    first, second = (RedisPushWriter(cluster.url, retry_s=0.05) for _ in range(2))
    hub, events = PushHub(), EventHub()
    sub = hub.subscribe_trades(symbol)
    alerts = events.subscribe()
    reader = RedisPushReader(cluster.url, hub, events, block_ms=100, retry_s=0.05)
    reader.start()
    try:
        first.publish_trades(symbol, _view(range(0, 10), symbol))
        assert first.flush()
        second.publish_trades(symbol, _view(range(0, 30), symbol))  # the other owner
        assert second.flush()
        first.publish_trades(symbol, _view(range(10, 20), symbol))  # its top is stale
        RedisEventSink(first).publish({"rule": "large_trade", "symbol": symbol})
        first.publish_trades(symbol, _view(range(20, 40), symbol))
        assert first.flush(timeout=10)
        wait_for(lambda: hub.last_trade_id(symbol) == 39, 10, "40 trades")
        wait_for(lambda: events.published >= 1, 10, "the alert")
        time.sleep(0.3)
    finally:
        reader.stop()
        first.close()
        second.close()
    assert _taken_ids(sub) == list(range(40))
    assert first.failures >= 1, "the stale batch was refused"
    assert [json.loads(alerts.take(0.5))["symbol"]] == [symbol]
    assert alerts.take(0) is None, "the alert was written once"


@pytest.mark.slow  # ~40 s: the several-process run of test_push_redis, on the cluster
@pytest.mark.timeout(200)
def test_gunicorn_web_workers_serve_every_stream_from_the_cluster(
    cluster: RedisCluster,  # noqa: F811 - the module's fixture
    client,  # noqa: F811 - flushes the cluster
) -> None:
    """One ingest worker (holding every shard) replaying the bundled recording and two
    gunicorn web workers, all on the cluster URL: every stream is served, trades in order
    from ``from_id``, prices never crossed."""
    serve_every_stream(SimpleNamespace(url=cluster.url))


@pytest.mark.slow  # a master failover (~5 s) leaves the module's cluster degraded: last
@pytest.mark.timeout(120)
def test_a_master_failover_the_reader_follows_the_promoted_replica(
    cluster: RedisCluster,  # noqa: F811 - the module's fixture
    client,  # noqa: F811 - flushes the cluster
) -> None:
    """A master killed while trades are written: the writer keeps what it could not write,
    the readers re-read the cluster's layout; every trade after the kill arrives once, in
    order. (Redis replicates asynchronously: a write acknowledged just before the kill can
    be lost with its master — counted, none seen on loopback.)"""
    writer = RedisPushWriter(cluster.url, retry_s=0.1)
    hub = PushHub()
    subs = {s: hub.subscribe_trades(s) for s in SYMBOLS}
    reader = RedisPushReader(cluster.url, hub, EventHub(), block_ms=200, retry_s=0.1)
    reader.start()
    try:
        _publish(writer, 1, 101)
        assert writer.flush(timeout=10)
        wait_for(lambda: all(hub.last_trade_id(s) == 100 for s in SYMBOLS), 10, "100 trades")
        cluster.kill_master(0)
        _publish(writer, 101, 301)
        assert writer.flush(timeout=30)
        wait_for(lambda: all(hub.last_trade_id(s) == 300 for s in SYMBOLS), 30, "the rest")
    finally:
        reader.stop()
        writer.close()
    for symbol in SYMBOLS:
        ids = _taken_ids(subs[symbol])
        assert ids == sorted(set(ids)), f"{symbol}: a repeat or out of order"
        assert ids[-200:] == list(range(101, 301)), f"{symbol}: a trade after the kill lost"
        print(f"{symbol}: {300 - len(ids)} of the 100 trades before the kill lost")
