"""A test process holding shard leases: it runs ``ShardCoordinator`` and, for every symbol
of every shard it holds, publishes a book each round through the Redis store's fenced
write (``RedisStore.fence_with``, the path a real worker takes; the update id is the wall
time in µs, so it only grows). Its counters (writes OK / FENCED / BACKWARDS, errors, shards
lost and gained) go to a JSON file after every round, so a test can watch it, kill -9 it,
SIGSTOP and SIGCONT it.

Run: ``python -m tests.cluster_worker URL TOKEN STATS_FILE SYMBOL...``
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from services.cluster.coordinator import ShardCoordinator
from services.cluster.leases import ShardLeases
from services.cluster.shards import shard_of, symbols_by_shard
from services.market.views import BookView, SymbolInfo, SyncState, TradeView
from services.redis_connection import sync_client
from services.redis_store import RedisStore
from services.store import SymbolSnapshot

LEASE_MS = 5000
ROUND_S = 0.25


def book_snapshot(symbol: str, update_id: int, seq: int) -> SymbolSnapshot:
    """A one-level LIVE book of ``symbol`` at ``update_id`` (no trades)."""
    book = BookView(
        symbol,
        bid_prices=np.array([100.0]),
        bid_qtys=np.array([1.0]),
        ask_prices=np.array([100.5]),
        ask_qtys=np.array([1.0]),
        last_update_id=update_id,
        sync_state=SyncState.LIVE,
    )
    info = SymbolInfo(symbol, base_asset=symbol[:-4], quote_asset="USDT")
    return SymbolSnapshot(symbol, seq, book, TradeView(symbol), info)


def fenced_write(store: RedisStore, snapshot: SymbolSnapshot) -> str:
    """Publish ``snapshot``; what the store did: OK, FENCED, BACKWARDS or errors."""
    refused = dict(store.refused)
    store.publish(snapshot)
    if store.availability.down:
        return "errors"
    return next((k for k, n in store.refused.items() if n > refused[k]), "OK")


def main(argv: list[str]) -> None:
    url, token, stats_path, *symbols = argv
    store = RedisStore(url, writer_id=token)
    leases = ShardLeases(sync_client(url, socket_timeout_s=2.0), token, lease_ms=LEASE_MS)
    coordinator = ShardCoordinator(leases)
    store.fence_with(lambda symbol: coordinator.held.get(shard_of(symbol, leases.shards)))
    by_shard = symbols_by_shard(symbols, leases.shards)
    counts = dict.fromkeys(("OK", "FENCED", "BACKWARDS", "errors", "lost", "gained"), 0)
    stats = Path(stats_path)
    seq = 0
    while True:
        for shard in list(coordinator.held):
            for symbol in by_shard.get(shard, ()):
                seq += 1
                update_id = time.time_ns() // 1000
                counts[fenced_write(store, book_snapshot(symbol, update_id, seq))] += 1
        changes = coordinator.tick()
        counts["lost"] += len(changes.lost)
        counts["gained"] += len(changes.gained)
        body = counts | {"held": sorted(coordinator.held), "pid": os.getpid(), "at": time.time()}
        tmp = stats.with_suffix(".tmp")
        tmp.write_text(json.dumps(body))
        tmp.replace(stats)
        time.sleep(ROUND_S)


if __name__ == "__main__":
    main(sys.argv[1:])
