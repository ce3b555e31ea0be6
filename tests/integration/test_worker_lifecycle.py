"""Real ``python -m app worker`` processes joining, pausing and riding out a master
failover on a real 6-node Redis Cluster, replayed by the local exchange, while a reader
watches every book (a web worker's view):

- a worker joins a running one, then a third joins: the shards move make-before-break,
  the watcher never sees a book away from LIVE, no trade is lost or duplicated in the
  store, every book ends equal to the exchange's;
- one is SIGSTOPped past its lease → its books LIVE on the others; SIGCONT → its late
  writes are refused by the cluster, it rejoins and every book is LIVE and equal again;
- a Redis master is killed → every book is written again and LIVE, trade windows
  continuous across it; meanwhile only the killed master's books are ever seen away from
  LIVE (the other masters' are read and written all along).
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.cli.worker import LEASE_MS
from services.cluster.shards import DEFAULT_SHARDS
from services.redis_store import RedisStore
from services.replay.exchange import LocalExchange
from tests.integration.test_cluster_shards import _owners, client, cluster  # noqa: F401
from tests.integration.test_sharded_workers import (
    HANDOVER_S,
    Worker,
    _all_live_without,
    _all_written_since,
    _assert_continuous,
    _books,
    _books_equal_exchange,
    _live_owners,
    _trade_ids,
    _until,
    replayed_market,
)
from tests.integration.test_store_failover import _served_by
from tests.redis_cluster import RedisCluster

pytestmark = pytest.mark.redis
SYMBOLS = 40


@dataclass
class Watcher:
    """Reads every book over and over on its own reader (as a web worker would) and
    records each sighting of a book not LIVE, with the phase it happened in."""

    url: str
    symbols: list[str]
    phase: str = "start"
    sightings: list[tuple[str, str, str]] = field(default_factory=list)
    sweeps: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, name="book-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        reader = RedisStore(self.url, poll_s=0)
        try:
            while not self._stop.is_set():
                for symbol in self.symbols:
                    snap = reader.snapshot(symbol)
                    if snap is None or not snap.book.is_live:
                        seen = "none"
                        if snap is not None:
                            seen = f"{snap.book.sync_state}: {snap.book.resync_reason}"
                            seen += f" (owner {o[0] if (o := reader.owner(symbol)) else ''})"
                        self.sightings.append((self.phase, symbol, seen))
                self.sweeps += 1
                time.sleep(0.02)
        finally:
            reader.close()

    def seen_in(self, phase: str) -> list[tuple[str, str, str]]:
        return [s for s in self.sightings if s[0] == phase]

    def reasons(self, phase: str) -> Counter[str]:
        """How many sightings in ``phase`` had each state, reason and owner."""
        return Counter(reason for _, _, reason in self.seen_in(phase))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _shares(client) -> dict[str, int]:  # noqa: F811 - the module's fixture
    """Shards held by each worker (by lease)."""
    counts: dict[str, int] = {}
    for token in _owners(client).values():
        counts[token] = counts.get(token, 0) + 1
    return counts


def _balanced(client, workers: list[Worker]) -> bool:  # noqa: F811
    """Every shard held, each worker within one of its fair share."""
    shares = _shares(client)
    fair = -(-DEFAULT_SHARDS // len(workers))
    return (
        sum(shares.values()) == DEFAULT_SHARDS
        and set(shares) == {w.writer_id for w in workers}
        and all(fair - 2 <= n <= fair for n in shares.values())
    )


def _last_stored(reader: RedisStore, symbols: list[str]) -> dict[str, int]:
    return {s: int(ids[-1]) for s in symbols if (ids := _trade_ids(reader, s)).size}


def _join(
    exchange: LocalExchange,
    cluster: RedisCluster,  # noqa: F811
    client,  # noqa: F811
    reader: RedisStore,
    watcher: Watcher,
    workers: list[Worker],
    out: Path,
) -> None:
    """Start one more worker; the shards rebalance with no book seen away from LIVE and
    the trade windows continuous across it."""
    symbols = watcher.symbols
    stored = _last_stored(reader, symbols)
    watcher.phase = f"join {len(workers) + 1}"
    sweeps = watcher.sweeps
    workers.append(Worker(exchange, cluster.url, out))
    took = _until(
        lambda: _balanced(client, workers) and _all_live_without(reader, symbols, set()),
        45,
        f"the shards rebalanced over {len(workers)} workers",
        lambda: (_shares(client), _books(reader, symbols)),
    )
    moved = sum(1 for w in _live_owners(reader, symbols).values() if w == workers[-1].writer_id)
    time.sleep(1.0)  # the watcher reads on past the last take
    seen = watcher.seen_in(watcher.phase)
    print(
        f"{watcher.phase}: {moved} of {len(symbols)} books moved in {took:.1f} s; "
        f"{watcher.sweeps - sweeps} sweeps of every book, {len(seen)} seen away from LIVE"
    )
    assert not seen, seen[:10]
    _assert_continuous(reader, symbols, stored)


@dataclass
class Market:
    exchange: LocalExchange
    reader: RedisStore
    watcher: Watcher
    workers: list[Worker]


@pytest.fixture
def market(
    cluster: RedisCluster,  # noqa: F811 - the module's fixture
    client,  # noqa: F811 - flushes the cluster
    tmp_path: Path,
) -> Iterator[Market]:
    """One worker streaming every book LIVE, a watcher on every book."""
    with replayed_market(cluster.url, tmp_path, SYMBOLS, start_s=60) as replayed:
        exchange, reader, workers, symbols = (
            replayed.exchange,
            replayed.reader,
            replayed.workers,
            replayed.symbols,
        )
        watcher = Watcher(cluster.url, symbols)
        try:
            workers.append(Worker(exchange, cluster.url, tmp_path / "w0"))
            took = _until(
                lambda: len(_live_owners(reader, symbols)) == len(symbols),
                60,
                "every book LIVE on the first worker",
                lambda: _books(reader, symbols),
            )
            print(f"\n{len(symbols)} books LIVE on one worker {took:.1f} s after start")
            yield Market(exchange, reader, watcher, workers)
        finally:
            watcher.stop()


@pytest.mark.timeout(240)
def test_workers_join_pause_and_ride_out_a_master_failover(
    market: Market,
    cluster: RedisCluster,  # noqa: F811
    client,  # noqa: F811
    tmp_path: Path,
) -> None:
    exchange, reader, watcher, workers = (
        market.exchange,
        market.reader,
        market.watcher,
        market.workers,
    )
    symbols = watcher.symbols
    for name in ("w1", "w2"):
        _join(exchange, cluster, client, reader, watcher, workers, tmp_path / name)
    _books_equal_exchange(reader, exchange, symbols, 30)

    # SIGSTOP past the lease: its books LIVE on the others; SIGCONT: refused, rejoins.
    paused = workers[1]
    watcher.phase = "paused"
    paused.process.send_signal(signal.SIGSTOP)
    took = _until(
        lambda: _all_live_without(reader, symbols, {paused.writer_id}),
        LEASE_MS / 1000 + HANDOVER_S,
        "the paused worker's books LIVE on the others",
        lambda: _books(reader, symbols),
    )
    print(f"paused worker's books LIVE on the others in {took:.1f} s")
    stored = _last_stored(reader, symbols)
    watcher.phase = "resumed"
    paused.process.send_signal(signal.SIGCONT)
    took = _until(
        lambda: _balanced(client, workers) and _all_live_without(reader, symbols, set()),
        45,
        "the resumed worker holding its share again, every book LIVE",
        lambda: (_shares(client), _books(reader, symbols)),
    )
    refused = paused.refused_writes()
    print(
        f"resumed worker rejoined in {took:.1f} s; late writes refused: {refused}; "
        f"books seen away from LIVE while it rejoined: {watcher.reasons('resumed')}"
    )
    assert refused > 0
    _books_equal_exchange(reader, exchange, symbols, 30)
    _assert_continuous(reader, symbols, stored)

    # A master killed: its replica promoted, every book written again and LIVE.
    stored = _last_stored(reader, symbols)
    on_victim = _served_by(cluster.url, cluster.masters()[0], symbols)
    watcher.phase = "failover"
    cluster.kill_master(0)
    killed_at = time.time()
    took = _until(
        lambda: (
            _all_live_without(reader, symbols, set())
            and _all_written_since(reader, symbols, killed_at)
        ),
        30,
        "every book written again and LIVE after a master failover",
        lambda: _books(reader, symbols),
    )
    print(
        f"every book written again and LIVE {took:.1f} s after a master was killed "
        f"(seen away from LIVE meanwhile: {watcher.reasons('failover')})"
    )
    away = {symbol for _, symbol, _ in watcher.seen_in("failover")}
    assert away <= on_victim, f"books of live masters seen away from LIVE: {away - on_victim}"
    _books_equal_exchange(reader, exchange, symbols, 30)
    _assert_continuous(reader, symbols, stored)
    assert all(w.process.poll() is None for w in workers)
