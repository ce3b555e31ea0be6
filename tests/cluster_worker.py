"""A test process holding shard leases: it runs ``ShardCoordinator`` and, for every symbol
of every shard it holds, makes a fenced book write each round (the update id is the wall
time in µs, so it only grows). Its counters go to a JSON file after every round, so a test
can watch it, kill -9 it, SIGSTOP and SIGCONT it.

Run: ``python -m tests.cluster_worker URL TOKEN STATS_FILE SYMBOL...``
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from services.cluster.coordinator import ShardCoordinator
from services.cluster.leases import ShardLeases, WriteResult
from services.cluster.shards import symbols_by_shard
from services.redis_connection import sync_client

LEASE_MS = 5000
ROUND_S = 0.25


def main(argv: list[str]) -> None:
    url, token, stats_path, *symbols = argv
    leases = ShardLeases(sync_client(url), token, lease_ms=LEASE_MS)
    coordinator = ShardCoordinator(leases)
    by_shard = symbols_by_shard(symbols, leases.shards)
    counts = {result.value: 0 for result in WriteResult} | {"errors": 0, "lost": 0, "gained": 0}
    stats = Path(stats_path)
    while True:
        for shard, lease in list(coordinator.held.items()):
            for symbol in by_shard.get(shard, ()):
                try:
                    result = leases.write_book(lease, symbol, time.time_ns() // 1000, b"book")
                    counts[result.value] += 1
                except Exception:
                    counts["errors"] += 1
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
