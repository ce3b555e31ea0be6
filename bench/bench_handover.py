"""Hand-over on a real 6-node Redis Cluster (3 masters, 3 replicas, loopback): three
worker processes (``tests.cluster_worker``: shard coordinator + a book published per
symbol per round through the Redis store's fenced write) share 64 shards of N symbols;
then

- kill -9 one worker: seconds until every shard has a live owner again and every symbol's
  book has been written by that owner (``takeover_s``);
- add a worker (three alive again): seconds until it holds what the other two leave at
  their fair share, every shard owned (``rebalance_s``);
- kill -9 a Redis master: seconds until every shard is owned and every book written again
  (``failover_s``).

The books a new owner takes over must then be resynced from Binance; that part is bounded
by the REST budget and measured here too: a cold start of the moved symbols' count
(``resync_s``, ``scripts.cold_start``). ``takeover_s + resync_s`` is the time until every
moved symbol is LIVE again (goal ≤ 15 s for 200 symbols).

Run: ``.venv/bin/python bench/bench_handover.py [--symbols 200] [--runs 1]``. Ends with
one JSON line (medians over runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.cold_start import cold_start, relabelled
from services.cluster.coordinator import fair_share
from services.cluster.leases import ShardLeases
from services.cluster.shards import DEFAULT_SHARDS, shard_of
from services.redis_connection import sync_client
from services.redis_store import RedisStore
from tests.cluster_worker import LEASE_MS
from tests.redis_cluster import RedisCluster

ROOT = Path(__file__).resolve().parents[1]


def _spawn(url: str, token: str, directory: Path, symbols: list[str]) -> subprocess.Popen:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    stats = directory / f"{token}.json"
    return subprocess.Popen(
        [sys.executable, "-m", "tests.cluster_worker", url, token, str(stats), *symbols],
        cwd=ROOT,
        env=env,
    )


def _until(predicate, timeout_s: float) -> float:
    started = time.monotonic()
    while True:
        try:
            if predicate():
                return time.monotonic() - started
        except Exception:
            pass
        if time.monotonic() - started > timeout_s:
            return float("nan")
        time.sleep(0.05)


def _owners(leases: ShardLeases) -> dict[int, str]:
    return {s: o.token for s in range(DEFAULT_SHARDS) if (o := leases.owner(s)) is not None}


def _all_written(leases: ShardLeases, store: RedisStore, symbols: list[str], after_us: int) -> bool:
    owners = _owners(leases)
    if len(owners) < DEFAULT_SHARDS:
        return False
    for symbol in symbols:
        written = store.written(symbol)
        if written is None or written[0] < after_us or written[1] != owners[shard_of(symbol)]:
            return False
    return True


def one_run(symbols: list[str]) -> dict[str, float]:
    with RedisCluster() as cluster, tempfile.TemporaryDirectory() as tmp:
        leases = ShardLeases(sync_client(cluster.url), "bench")
        store = RedisStore(cluster.url, poll_s=0)
        workers = [_spawn(cluster.url, f"w{i}", Path(tmp), symbols) for i in range(3)]
        try:
            _until(lambda: len(set(_owners(leases).values())) == 3, 30)
            _until(lambda: _all_written(leases, store, symbols, 0), 30)
            moved = sum(1 for s in symbols if _owners(leases)[shard_of(s)] == "w0")
            workers[0].kill()
            killed = time.time_ns() // 1000
            takeover = _until(lambda: _all_written(leases, store, symbols, killed), 30)
            # Three live workers again: the newcomer's part is what the other two leave
            # when each keeps its fair share.
            part = DEFAULT_SHARDS - 2 * fair_share(DEFAULT_SHARDS, 3)
            workers.append(_spawn(cluster.url, "w3", Path(tmp), symbols))
            rebalance = _until(
                lambda: (
                    len(_owners(leases)) == DEFAULT_SHARDS
                    and list(_owners(leases).values()).count("w3") >= part
                ),
                30,
            )
            cluster.kill_master(0)
            failed = time.time_ns() // 1000
            failover = _until(lambda: _all_written(leases, store, symbols, failed), 60)
        finally:
            for process in workers:
                if process.poll() is None:
                    process.send_signal(signal.SIGKILL)
                    process.wait(timeout=10)
    return {
        "takeover_s": takeover,
        "rebalance_s": rebalance,
        "failover_s": failover,
        "moved": moved,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    names = [f"S{i}USDT" for i in range(args.symbols)]
    runs = [one_run(names) for _ in range(args.runs)]
    moved = int(statistics.median(r["moved"] for r in runs))
    with tempfile.TemporaryDirectory() as tmp:
        recording, symbols = relabelled(moved, Path(tmp))
        resync = asyncio.run(cold_start(recording, symbols, 60.0)).all_live_s or float("nan")
    keys = ("takeover_s", "rebalance_s", "failover_s")
    med = {k: statistics.median(r[k] for r in runs) for k in keys}
    print(f"hand-over: {args.symbols} symbols, 64 shards, 3 workers, lease {LEASE_MS} ms")
    print(f"{'event':<40} {'seconds':>8}")
    print(f"{'kill -9 a worker: shards owned + written':<40} {med['takeover_s']:>8.2f}")
    print(f"{'resync of its ' + str(moved) + ' symbols (REST budget)':<40} {resync:>8.2f}")
    print(f"{'  = every moved symbol LIVE again':<40} {med['takeover_s'] + resync:>8.2f}")
    print(f"{'add a worker: fair share reached':<40} {med['rebalance_s']:>8.2f}")
    print(f"{'kill -9 a Redis master: all written':<40} {med['failover_s']:>8.2f}")
    print(
        json.dumps(
            {
                "handover_symbols": args.symbols,
                "handover_lease_ms": LEASE_MS,
                "handover_takeover_s": round(med["takeover_s"], 2),
                "handover_moved_symbols": moved,
                "handover_resync_s": round(resync, 2),
                "handover_all_live_s": round(med["takeover_s"] + resync, 2),
                "rebalance_s": round(med["rebalance_s"], 2),
                "master_failover_s": round(med["failover_s"], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
