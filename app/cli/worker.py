"""``python -m app worker``: the ingest worker. It runs the feed alone and publishes to the
Redis store (``REDIS_URL`` or ``--redis-url``) and to the push streams' Redis Streams
(``services.redis_push``), which the web processes (gunicorn with any number of workers)
read. The market source is chosen as for ``run``: Binance live, or the
bundled recording replayed through the local exchange. Like ``run`` it records the history
(``--history-dir``; its files carry this process's writer id) and evaluates the alert rules
that the web workers write to Redis.

On a Redis Cluster URL (detected, no other setting) the worker joins the others: its
coordinator holds leases on an equal part of the shards, the feed streams only their
symbols (``--symbols``, or every TRADING symbol of the source), every write is fenced with
the shard's lease epoch, and shards are taken over when a worker dies or handed over when
one joins. Only the worker holding a symbol's shard writes its store keys, its push
streams and its history. SIGTERM releases its shards at once (the others take them over
without waiting for the lease).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import urlsplit

from app import config, market_source
from app.alerting import make_alerts, start_tap
from app.history_setup import start_history
from app.ingest import build_feed
from services import collector, event_loop
from services.cluster.coordinator import ShardCoordinator
from services.cluster.leases import ShardLeases
from services.cluster.owned_tap import OwnedTap
from services.cluster.sharded_ingest import ShardedIngest
from services.cluster.shards import shard_of
from services.market.feed import ALL_SYMBOLS, Feed
from services.push.tap import StreamTap
from services.redis_connection import is_cluster, sync_client
from services.redis_push import RedisPushWriter
from services.redis_store import RedisStore

NEEDS_REDIS = (
    "error: the worker publishes to the shared Redis store; set REDIS_URL "
    "(or pass --redis-url redis://127.0.0.1:6379/0)"
)
LEASE_MS = 6000
TICK_S = 1.0


async def run_feed(feed: Feed, ingest: ShardedIngest | None = None) -> None:
    """Run the feed (and its share of the shards) until it ends or SIGTERM/SIGINT
    arrives; a sharded worker then releases its shards."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        if ingest is None:
            await feed.run()
        else:
            try:
                await asyncio.gather(feed.run(), ingest.run())
            finally:
                await asyncio.to_thread(ingest.coordinator.leave)


def coordinate(store: RedisStore, url: str) -> ShardCoordinator:
    """The worker's coordinator on a Redis Cluster, whose token is the store's writer id,
    and the store's writes fenced with its leases."""
    client = sync_client(url, socket_timeout_s=2.0)  # a renewal never outwaits its lease
    leases = ShardLeases(client, store.writer_id, lease_ms=LEASE_MS)
    coordinator = ShardCoordinator(leases)
    store.fence_with(lambda symbol: coordinator.held.get(shard_of(symbol, leases.shards)))
    return coordinator


def owned(coordinator: ShardCoordinator) -> Callable[[str], bool]:
    """Whether the worker holds the shard of a symbol now (the history records only those,
    as the store writes only those)."""
    shards = coordinator.leases.shards
    return lambda symbol: shard_of(symbol, shards) in coordinator.held


def sharded(feed: Feed, coordinator: ShardCoordinator, universe: tuple[str, ...]) -> ShardedIngest:
    """The worker's share of a Redis Cluster: the feed follows the coordinator's shards."""
    wanted = () if tuple(s.upper() for s in universe) == (ALL_SYMBOLS,) else universe
    return ShardedIngest(feed, coordinator, universe=wanted, tick_s=TICK_S)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = config.parse(argv, prog="python -m app worker")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not settings.redis_url:
        print(NEEDS_REDIS, file=sys.stderr)
        return 2
    source = market_source.resolve(settings, records_history=settings.history)
    store = RedisStore(settings.redis_url)
    label = f"{source.source} {source.recording}".strip()
    where = urlsplit(settings.redis_url)
    cluster = is_cluster(settings.redis_url)
    mode = f"Redis Cluster via {where.hostname}:{where.port}, worker {store.writer_id}"
    if not cluster:
        mode = f"Redis {where.hostname}:{where.port}"
    print(f"Tapescope worker: {label} -> {mode}", flush=True)
    history = start_history(settings, source)
    tap = start_tap(make_alerts(settings), market=str(source.endpoints.market))
    push = RedisPushWriter(settings.redis_url)
    streams = StreamTap(sinks=(push,))
    feed_config = market_source.feed_config(settings, source)
    coordinator = coordinate(store, settings.redis_url) if cluster else None
    if coordinator is not None:
        feed_config = replace(feed_config, follow=True)
    owns = None if coordinator is None else owned(coordinator)
    # One writer per symbol's push streams, as for its store keys.
    pushed = streams if owns is None else OwnedTap(streams, owns)
    feed = build_feed(settings, source, store, history, (tap, pushed), feed_config, owns)
    try:
        collector.tune_for_ingest()
        ingest = None if coordinator is None else sharded(feed, coordinator, settings.symbols)
        event_loop.run(run_feed(feed, ingest))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        tap.stop()
        if history is not None:
            history.stop()
        source.close()
        push.close()
        store.close()
        if store.refused["FENCED"] or store.refused["BACKWARDS"]:
            print(f"writes refused: {store.refused}", flush=True)
    return 0
