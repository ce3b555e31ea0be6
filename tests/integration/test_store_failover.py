"""A worker's batched writes across a Redis master failover, on a real 6-node cluster of
its own (the failover leaves a cluster degraded): the round's pipelines go to each node's
own client, so after the master is killed the store must read the cluster's layout again
and write its slots to the promoted replica — not go on sending them to the dead node
until the records expire — while the other masters' books are written and read all
along (one node down backs off that node only, not the whole store)."""

from __future__ import annotations

import time

import pytest

from services.cluster.shards import shard_of
from services.redis_connection import sync_client
from services.redis_store import RedisStore, sym_key
from tests.cluster_worker import book_snapshot
from tests.redis_cluster import RedisCluster

pytestmark = pytest.mark.redis
SYMBOLS = [f"F{i}USDT" for i in range(60)]
ROUND_S = 0.25


def _round(writer: RedisStore, seq: int) -> int:
    """One publication round of every symbol at a new update id (wall µs); that id."""
    update_id = time.time_ns() // 1000
    writer.publish_many([book_snapshot(s, update_id, seq) for s in SYMBOLS])
    return update_id


def _served_by(url: str, port: int, symbols: list[str] = SYMBOLS) -> set[str]:
    """The ``symbols`` whose records live on the master at ``port``."""
    cluster = sync_client(url)
    try:
        nodes = cluster.nodes_manager
        return {
            s for s in symbols if nodes.get_node_from_slot(cluster.keyslot(sym_key(s))).port == port
        }
    finally:
        cluster.close()


def _written_since(reader: RedisStore, update_id: int) -> set[str]:
    return {s for s in SYMBOLS if (w := reader.written(s)) is not None and w[0] >= update_id}


@pytest.mark.timeout(120)
def test_batched_writes_follow_a_master_failover() -> None:
    with RedisCluster() as cluster:
        writer = RedisStore(cluster.url, writer_id="w", poll_s=0)
        reader = RedisStore(cluster.url, poll_s=0)
        try:
            for seq in range(3):
                _round(writer, seq)
                time.sleep(ROUND_S)
            assert len({shard_of(s) for s in SYMBOLS}) > 3  # slots on every master
            # A web worker has read every book before (its scripts are loaded on every
            # master: a first EVALSHA's NOSCRIPT makes redis-py load the script on all
            # masters, the dead one too, which fails until the layout changes).
            assert all(reader.snapshot(s) is not None for s in SYMBOLS)
            on_victim = _served_by(cluster.url, cluster.masters()[0])
            assert 0 < len(on_victim) < len(SYMBOLS)
            killed_port = cluster.kill_master(0)
            killed_at = time.time_ns() // 1000
            started = time.monotonic()
            seq, written, blank = 3, set(), set()
            while time.monotonic() - started < 30 and written != set(SYMBOLS):
                seq += 1
                _round(writer, seq)
                time.sleep(ROUND_S)
                written = _written_since(reader, killed_at)
                blank |= {s for s in SYMBOLS if reader.snapshot(s) is None}
            took = time.monotonic() - started
            print(f"\nmaster {killed_port} killed: every book written again {took:.1f} s later")
            assert written == set(SYMBOLS), f"{len(SYMBOLS) - len(written)} never written"
            assert not writer.availability.down
            assert not blank - on_victim, "a book on a live master read as none"
            books = [reader.snapshot(s) for s in SYMBOLS]
            assert all(b is not None and b.book.is_live for b in books)
        finally:
            writer.close()
            reader.close()
