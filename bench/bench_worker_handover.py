"""Hand-over with real ``python -m app worker`` processes on a real 6-node Redis Cluster
(3 masters, 3 replicas, loopback), N symbols relabelled from the real 2021 recording and
replayed by the local exchange at real speed, a watcher reading every book over and over
(as a web worker does). Unlike ``bench_handover.py`` (the lease layer with synthetic books)
every figure here includes the new owner's resync by Binance's procedure and its REST
trade backfill.

Metrics (seconds are wall time):
- ``cold_start_s``: three workers started together until every book is LIVE, shared by
  the three.
- ``kill9_all_live_s``: ``kill -9`` of one worker until every book is LIVE again on the
  other two (goal ≤ 15 s at 200 symbols); ``kill9_moved``: how many books it held.
- ``join_balanced_s``: a new worker started until every worker holds its fair share
  (within two shards) and every book is LIVE; ``join_moved``: books it then holds;
  ``join_not_live_sightings``: times the watcher saw a book away from LIVE meanwhile
  (make-before-break: expected 0); ``join_sweeps``: full sweeps of every book meanwhile.
- ``kill9_trade_window_problems`` / ``join_trade_window_problems``: trade windows in the
  store with a gap or a duplicate, or not reaching back to the last trade stored before
  the event (lost trades), once the new owners' REST backfill had up to 70 s to land;
  ``*_trades_continuous_s``: seconds (after every book was LIVE) until none had one.
- ``load_1m``: the machine's 1-minute load average at the end (2 shared cores).

Run: ``.venv/bin/python bench/bench_worker_handover.py [--symbols 200]``. Ends with one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from services.redis_connection import sync_client
from services.redis_store import RedisStore
from tests.integration.test_sharded_workers import (
    Worker,
    _all_live_without,
    _live_on,
    _live_owners,
    _until,
    _window_problems,
    replayed_market,
)
from tests.integration.test_worker_lifecycle import Watcher, _balanced, _last_stored
from tests.redis_cluster import RedisCluster


def _problems(reader: RedisStore, symbols: list[str], since: dict[str, int]) -> tuple[list, float]:
    """Trade window problems left once the new owners' REST backfill had up to 70 s to
    land (it waits for the host's REST weight when a take-over used the minute up), and
    the seconds until there were none."""
    started = time.monotonic()
    while (problems := _window_problems(reader, symbols, since)) and (
        time.monotonic() - started < 70
    ):
        time.sleep(0.5)
    return problems, time.monotonic() - started


def run(count: int, workdir: Path) -> dict[str, float | int]:
    with RedisCluster() as cluster, replayed_market(cluster.url, workdir, count, 300) as market:
        exchange, reader, workers, symbols = (
            market.exchange,
            market.reader,
            market.workers,
            market.symbols,
        )
        leases_client = sync_client(cluster.url)
        watcher = Watcher(cluster.url, symbols)
        try:
            workers.extend(Worker(exchange, cluster.url, workdir / f"w{i}") for i in range(3))
            cold = _until(
                lambda: _live_on(reader, symbols, 3), 300, "every book LIVE on three workers"
            )
            victim = workers[0]
            moved = sum(1 for w in _live_owners(reader, symbols).values() if w == victim.writer_id)
            stored = _last_stored(reader, symbols)
            victim.process.kill()
            kill9 = _until(
                lambda: _all_live_without(reader, symbols, {victim.writer_id}),
                120,
                "the killed worker's books LIVE on the others",
            )
            kill_problems, kill_trades_s = _problems(reader, symbols, stored)
            alive = workers[1:]
            _until(lambda: _balanced(leases_client, alive), 60, "two workers balanced")
            stored = _last_stored(reader, symbols)
            watcher.phase = "join"
            sweeps = watcher.sweeps
            alive.append(Worker(exchange, cluster.url, workdir / "w3"))
            workers.append(alive[-1])
            join = _until(
                lambda: (
                    _balanced(leases_client, alive) and _all_live_without(reader, symbols, set())
                ),
                120,
                "the joiner's share taken",
            )
            time.sleep(1.0)
            joined = sum(
                1 for w in _live_owners(reader, symbols).values() if w == alive[-1].writer_id
            )
            join_sweeps = watcher.sweeps - sweeps
            sightings = len(watcher.seen_in("join"))
            print(f"join: books away from LIVE, by reason: {watcher.reasons('join')}")
            print(
                f"join: symbols seen away from LIVE: {len({x[1] for x in watcher.seen_in('join')})}"
            )
            join_problems, join_trades_s = _problems(reader, symbols, stored)
            print(f"trade window problems (first 3): {kill_problems[:3]}, {join_problems[:3]}")
        finally:
            watcher.stop()
            leases_client.close()
    return {
        "symbols": len(symbols),
        "cold_start_s": round(cold, 2),
        "kill9_all_live_s": round(kill9, 2),
        "kill9_moved": moved,
        "join_balanced_s": round(join, 2),
        "join_moved": joined,
        "join_not_live_sightings": sightings,
        "join_sweeps": join_sweeps,
        "kill9_trade_window_problems": len(kill_problems),
        "kill9_trades_continuous_s": round(kill_trades_s, 2),
        "join_trade_window_problems": len(join_problems),
        "join_trades_continuous_s": round(join_trades_s, 2),
        "load_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--workdir", help="keep the recording and workers' logs here")
    args = parser.parse_args()
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        result = run(args.symbols, Path(args.workdir))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = run(args.symbols, Path(tmp))
    print(f"real workers: {result['symbols']} symbols, 3 workers, 6-node cluster")
    print(f"{'event':<48} {'value':>8}")
    rows = [
        ("cold start, every book LIVE on 3 workers (s)", result["cold_start_s"]),
        (
            f"kill -9: its {result['kill9_moved']} books LIVE on the others (s)",
            result["kill9_all_live_s"],
        ),
        (
            f"join: fair share taken, {result['join_moved']} books moved (s)",
            result["join_balanced_s"],
        ),
        ("join: sightings of a book away from LIVE", result["join_not_live_sightings"]),
        ("join: watcher sweeps of every book meanwhile", result["join_sweeps"]),
        ("kill -9: trade windows with a gap/dup/loss", result["kill9_trade_window_problems"]),
        ("kill -9: trade windows continuous after (s)", result["kill9_trades_continuous_s"]),
        ("join: trade windows with a gap/dup/loss", result["join_trade_window_problems"]),
        ("load average (1 min) at the end", result["load_1m"]),
    ]
    for name, value in rows:
        print(f"{name:<48} {value:>8}")
    print(json.dumps({f"worker_handover_{k}": v for k, v in result.items()}))


if __name__ == "__main__":
    main()
