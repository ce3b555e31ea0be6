"""Three feeds share the symbols of a relabelled real recording through shard leases on a
real 6-node Redis Cluster: each streams the symbols of its shards, together all of them,
none twice; when one stops without releasing (a crash), the other two take its shards
over and sync its books from the exchange."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest

from scripts.soak import FAST_BACKOFF
from services.binance.endpoints import custom
from services.cluster.coordinator import ShardCoordinator
from services.cluster.leases import ShardLeases
from services.cluster.sharded_ingest import ShardedIngest
from services.market.feed import Feed, FeedConfig
from services.redis_connection import sync_client
from services.replay.exchange import LocalExchange
from services.replay.recording import SPOT_2021
from services.replay.relabel import relabel_recording
from services.store import MemoryStore
from tests.integration.test_cluster_shards import client, cluster  # noqa: F401 - fixtures

pytestmark = pytest.mark.redis
SYMBOLS = 30
LEASE_MS = 3000


def following_config(exchange: LocalExchange) -> FeedConfig:
    """A feed that streams the symbols it is told to follow, from the local exchange."""
    return FeedConfig(
        endpoints=custom(exchange.ws_url, exchange.rest_url, market=exchange.market),
        follow=True,
        publish_interval_s=0.1,
        idle_timeout_s=5.0,
        backoff=FAST_BACKOFF,
    )


class Worker:
    """A feed and its sharded ingest, in this event loop."""

    def __init__(self, exchange: LocalExchange, url: str, token: str) -> None:
        self.store = MemoryStore()
        self.feed = Feed(following_config(exchange), self.store)
        coordinator = ShardCoordinator(ShardLeases(sync_client(url), token, LEASE_MS))
        self.ingest = ShardedIngest(self.feed, coordinator, tick_s=0.5)
        self.tasks = [
            asyncio.create_task(self.feed.run()),
            asyncio.create_task(self.ingest.run()),
        ]

    def live(self) -> set[str]:
        return {
            s
            for s in self.ingest.share.symbols
            if (snap := self.store.snapshot(s)) is not None and snap.book.is_live
        }

    async def crash(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def until(predicate, timeout_s: float, what: str, watch=None, poll_s: float = 0.1) -> float:
    """Seconds until ``predicate()`` holds (``watch()`` called on each look), polled every
    ``poll_s``; fails after ``timeout_s``."""
    started = time.monotonic()
    while not predicate():
        if watch is not None:
            watch()
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"{what} not within {timeout_s} s")
        await asyncio.sleep(poll_s)
    return time.monotonic() - started


@pytest.mark.timeout(180)
async def test_three_feeds_share_the_symbols_and_take_over_a_crashed_one(
    cluster,  # noqa: F811 - the module's fixture
    client,  # noqa: F811 - flushes the cluster
    tmp_path: Path,
) -> None:
    recording = tmp_path / "shared.jsonl.gz"
    symbols = set(await asyncio.to_thread(relabel_recording, SPOT_2021, recording, SYMBOLS))
    async with LocalExchange(recording, speed=1.0, loop=True) as exchange:
        workers = [Worker(exchange, cluster.url, f"w{i}") for i in range(3)]
        try:

            def shared() -> bool:
                shares = [set(w.ingest.share.symbols) for w in workers]
                return sum(map(len, shares)) == len(symbols) and set().union(*shares) == symbols

            await until(
                lambda: shared() and all(len(w.ingest.share.shards) >= 20 for w in workers),
                40,
                "the symbols shared by three feeds",
            )
            await until(
                lambda: set().union(*(w.live() for w in workers)) == symbols,
                40,
                "every book LIVE",
            )
            victim, rest = workers[0], workers[1:]
            orphaned = set(victim.ingest.share.symbols)
            assert orphaned
            await victim.crash()
            took = await until(
                lambda: set().union(*(w.live() for w in rest)) == symbols,
                LEASE_MS / 1000 + 20,
                "the crashed feed's books LIVE on the others",
            )
            print(f"\n{len(orphaned)} symbols of a crashed feed LIVE again {took:.1f} s later")
            assert sum(len(w.ingest.share.symbols) for w in rest) == len(symbols)
        finally:
            for worker in workers:
                await worker.crash()
