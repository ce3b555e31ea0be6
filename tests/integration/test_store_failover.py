"""A worker's batched writes across a Redis master failover, on a real 6-node cluster of
its own (the failover leaves a cluster degraded): the round's pipelines go to each node's
own client, so after the master is killed the store must read the cluster's layout again
and write its slots to the promoted replica — not go on sending them to the dead node
until the records expire — while the other masters' books are written and read all
along (one node down backs off that node only, not the whole store)."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
import redis

from app.server import create_app
from services.cluster.leases import ShardLeases
from services.cluster.shards import shard_of
from services.redis_connection import sync_client
from services.redis_store import SYMBOLS_KEY, RedisStore, sym_key
from services.store import FeedStatus
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


def _master_of(url: str, key: str) -> int:
    """The port of the master serving ``key``."""
    cluster = sync_client(url)
    try:
        return cluster.nodes_manager.get_node_from_slot(cluster.keyslot(key)).port
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


class _Publishing:
    """A writer publishing every symbol, its status and the symbol list each round in a
    thread (a worker's rounds), until stopped."""

    def __init__(self, writer: RedisStore) -> None:
        self.writer = writer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        infos = [book_snapshot(s, 1, 0).info for s in SYMBOLS]
        seq = 0
        while not self._stop.is_set():
            seq += 1
            _round(self.writer, seq)
            self.writer.publish_status(FeedStatus(connection_state="CONNECTED"))
            self.writer.publish_symbols(infos)
            self._stop.wait(0.1)

    def __enter__(self) -> _Publishing:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _replica_of(cluster: RedisCluster, master: int) -> int:
    """The port of ``master``'s replica."""
    return next(
        port
        for port in cluster.ports
        if port != master
        and (info := cluster._client(port).info("replication")).get("role") == "slave"
        and int(info["master_port"]) == master
    )


def _role(cluster: RedisCluster, port: int) -> str:
    try:
        return str(cluster._client(port).info("replication").get("role"))
    except (redis.RedisError, OSError):
        return "unreachable"


LATE = [f"L{i}USDT" for i in range(30)]


def _late_worker_writes(url: str) -> set[str]:
    """A worker starting now (a master down, its replica not promoted yet) claims the
    shards of ``LATE`` and publishes their books once: the symbols it wrote (those of
    the live masters; its scripts load on them, not on every master)."""
    client = sync_client(url, socket_timeout_s=2.0)
    leases = ShardLeases(client, "late", lease_ms=5000)
    held = {}
    for shard in {shard_of(s) for s in LATE}:
        with contextlib.suppress(redis.RedisError, redis.exceptions.RedisClusterException):
            if (lease := leases.claim(shard)) is not None:
                held[shard] = lease
    writer = RedisStore(url, writer_id="late")
    writer.fence_with(lambda symbol: held.get(shard_of(symbol)))
    writer.publish_many([book_snapshot(s, time.time_ns() // 1000, 1) for s in LATE])
    written = {s for s in LATE if (w := writer.written(s)) is not None and w[1] == "late"}
    writer.close()
    client.close()
    return written


@pytest.mark.timeout(90)
def test_a_reader_started_mid_failover_shows_books_unavailable_until_promoted() -> None:
    """A web worker starts after a master (the one holding the symbol list) is killed and
    before its replica is promoted: it reads the live masters' books at once (its scripts
    load on those nodes, not on every master), says the killed master's books are
    unavailable — in the store, the API and /healthz — never absent or unknown, and reads
    them within a bound once the replica is promoted."""
    with RedisCluster() as cluster:
        writer = RedisStore(cluster.url, writer_id="w", poll_s=0)
        with _Publishing(writer):
            probe = RedisStore(cluster.url, poll_s=0)
            deadline = time.monotonic() + 10
            while len(_written_since(probe, 0)) < len(SYMBOLS) and time.monotonic() < deadline:
                time.sleep(0.05)
            probe.close()
            victim = _master_of(cluster.url, SYMBOLS_KEY)
            replica = _replica_of(cluster, victim)
            on_victim = _served_by(cluster.url, victim)
            assert 0 < len(on_victim) < len(SYMBOLS)
            cluster.kill_master(cluster.masters().index(victim))
            killed = time.monotonic()
            reader = RedisStore(cluster.url, poll_s=0)  # a web worker starting now
            api = create_app(reader).server.test_client()
            late_written = _late_worker_writes(cluster.url)
            promoted = read_all = None
            before: list[set[str]] = []  # per sweep before the promotion: books not read
            absent: set[str] = set()
            while read_all is None and time.monotonic() - killed < 30:
                if promoted is None and _role(cluster, replica) == "master":
                    promoted = time.monotonic()
                unread = {s for s in SYMBOLS if reader.snapshot(s) is None}
                absent |= {s for s in unread if reader.unavailable(s) is None}
                if promoted is None:
                    before.append(unread)
                    if len(before) == 1:
                        orderbook = api.get(f"/api/assets/crypto/{min(on_victim)}/orderbook")
                        live = min(set(SYMBOLS) - on_victim)
                        live_book = api.get(f"/api/assets/crypto/{live}/orderbook")
                        healthz = api.get("/healthz")
                elif not unread:
                    read_all = time.monotonic()
                time.sleep(0.05)
            assert promoted is not None and read_all is not None, "never read every book"
            print(
                f"\nreplica promoted {promoted - killed:.2f} s after the kill, every book "
                f"read {read_all - promoted:.2f} s after the promotion ({len(before)} sweeps "
                "before it)"
            )
            assert before, "the replica was promoted before the reader's first read"
            assert all(unread <= on_victim for unread in before), "a live master's book unread"
            assert not absent, f"books shown as absent, not unavailable: {sorted(absent)}"
            assert read_all - promoted <= 3.0
            # loaded once on each master that served a read: the live two and the
            # promoted replica (script caches are not replicated), never the dead one
            assert reader._snapshot_script.loads == 3
            late_on_live = set(LATE) - _served_by(cluster.url, replica, LATE)
            assert late_on_live <= late_written, "a worker started mid-failover: books unwritten"
            assert orderbook.status_code == 503
            assert orderbook.get_json()["state"] == "unavailable"
            assert live_book.status_code == 200, live_book.get_json()
            assert healthz.status_code == 200
            assert healthz.get_json()["status"] == "degraded"
            assert healthz.get_json()["store"]["state"] == "failing_over"
            states = [reader.health()]
            while states[-1]["state"] != "ok" and time.monotonic() - read_all < 5:
                time.sleep(0.1)
                states.append(reader.health())
            print(f"store healthy {time.monotonic() - read_all:.2f} s after every book read")
            assert states[-1]["state"] == "ok", states
            reader.close()
        writer.close()
