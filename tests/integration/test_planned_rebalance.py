"""A worker joins a running one (planned rebalance) on a real 6-node Redis Cluster with real
feeds on the local exchange: make-before-break — the joiner syncs the offered shards'
books before it takes them, so a reader polling every book never sees one leave LIVE
while the shards move, and each moved book ends written by the joiner."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from services.cluster.coordinator import ShardCoordinator, fair_share
from services.cluster.leases import ShardLeases
from services.cluster.sharded_ingest import ShardedIngest
from services.cluster.shards import DEFAULT_SHARDS, shard_of
from services.market.feed import Feed
from services.redis_connection import sync_client
from services.redis_store import RedisStore
from services.replay.exchange import LocalExchange
from services.replay.recording import SPOT_2021
from services.replay.relabel import relabel_recording
from tests.integration.test_cluster_shards import client, cluster  # noqa: F401 - fixtures
from tests.integration.test_sharded_feeds import following_config, until

pytestmark = pytest.mark.redis
SYMBOLS = 24
LEASE_MS = 3000


class Worker:
    """A feed writing to the cluster, fenced with its coordinator's leases."""

    def __init__(self, exchange: LocalExchange, url: str, token: str) -> None:
        self.store = RedisStore(url, writer_id=token)
        self.feed = Feed(following_config(exchange), self.store)
        self.coordinator = ShardCoordinator(ShardLeases(sync_client(url), token, LEASE_MS))
        self.store.fence_with(lambda s: self.coordinator.held.get(shard_of(s)))
        self.ingest = ShardedIngest(self.feed, self.coordinator, tick_s=0.5)
        self.tasks = [
            asyncio.create_task(self.feed.run()),
            asyncio.create_task(self.ingest.run()),
        ]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.store.close()


def _not_live(reader: RedisStore, symbols: set[str]) -> dict[str, str]:
    found = {}
    for symbol in symbols:
        snap = reader.snapshot(symbol)
        if snap is None or not snap.book.is_live:
            found[symbol] = "none" if snap is None else snap.book.resync_reason
    return found


@pytest.mark.timeout(150)
async def test_a_joining_worker_takes_its_share_without_a_gap(
    cluster,  # noqa: F811 - the module's fixture
    client,  # noqa: F811 - flushes the cluster
    tmp_path: Path,
) -> None:
    recording = tmp_path / "rebalance.jsonl.gz"
    symbols = set(await asyncio.to_thread(relabel_recording, SPOT_2021, recording, SYMBOLS))
    reader = RedisStore(cluster.url, poll_s=0)
    async with LocalExchange(recording, speed=1.0, loop=True) as exchange:
        first = Worker(exchange, cluster.url, "a")
        workers = [first]
        try:
            await until(
                lambda: (
                    len(first.coordinator.held) == DEFAULT_SHARDS and not _not_live(reader, symbols)
                ),
                60,
                "every book LIVE from the first worker",
                poll_s=0.05,
            )
            gaps: list[tuple[str, str]] = []

            def watch() -> None:
                gaps.extend(_not_live(reader, symbols).items())

            second = Worker(exchange, cluster.url, "b")
            workers.append(second)
            share = fair_share(DEFAULT_SHARDS, 2)

            def moved() -> bool:
                mine = {s for s in symbols if shard_of(s) in second.coordinator.held}
                return (
                    len(second.coordinator.held) >= share - 1
                    and len(first.coordinator.held) <= DEFAULT_SHARDS - share + 1
                    and all((o := reader.owner(s)) and o[0] == "b" for s in mine)
                    and all(reader.written(s)[1] == "b" for s in mine)
                )

            took = await until(
                moved, 40, "the joiner's share taken and written", watch, poll_s=0.05
            )
            for _ in range(20):  # and a second after
                watch()
                await asyncio.sleep(0.05)
            taken = [s for s in symbols if shard_of(s) in second.coordinator.held]
            print(
                f"\nrebalance: {len(taken)} of {len(symbols)} symbols moved in {took:.1f} s; "
                f"books seen away from LIVE meanwhile: {len(gaps)}; late writes of the "
                f"first refused: {first.store.refused}"
            )
            assert taken
            assert not gaps, gaps[:5]
        finally:
            for worker in workers:
                await worker.stop()
            reader.close()
