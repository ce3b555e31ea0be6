"""Capacity of one ingest worker: how much of one core, memory and Redis bandwidth a feed
needs per symbol kept LIVE at real rates, for a quiet mix (N relabelled copies of the real
3-symbol 2021 recording) and a busy one (relabelled copies of the real BTCUSDT 2024
recording). The local exchange runs in its own process (``python -m app exchange``) so
only the feed's work is counted; the feed publishes to a real redis-server.

Figures, over ``--window`` seconds once every book is LIVE: core_pct (the feed process's
CPU time / wall time · 100), rss_mb_per_symbol (resident memory growth from before the
feed started, per symbol), redis_kb_s_per_symbol (bytes Redis received per second, per
symbol), and symbols_at_80pct (N · 80 / core_pct: the symbols one worker would keep LIVE
within 80 % of a core at this per-symbol cost — a linear extrapolation).

Run: ``.venv/bin/python bench/bench_capacity.py [--quiet 200] [--busy 4] [--window 20]``.
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from scripts.soak import FAST_BACKOFF
from services.binance.endpoints import custom
from services.market.feed import Feed, FeedConfig
from services.redis_store import RedisStore
from services.replay.recording import SPOT_2021, SPOT_2024
from services.replay.relabel import relabel_recording
from tests.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[1]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _wait_port(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the exchange did not listen on {port}")


async def _measure(port: int, symbols: list[str], redis_url: str, window_s: float) -> dict:
    base = f"127.0.0.1:{port}"
    store = RedisStore(redis_url)
    config = FeedConfig(
        endpoints=custom(f"ws://{base}", f"http://{base}", market="spot"),
        symbols=tuple(symbols),
        backoff=FAST_BACKOFF,
        idle_timeout_s=15.0,
    )
    rss_before = _rss_mb()
    feed = Feed(config, store)
    task = asyncio.create_task(feed.run())
    probe = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            live = [s for s in symbols if (x := store.snapshot(s)) and x.book.is_live]
            if len(live) == len(symbols):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2.0)
        net0 = probe.info("stats")["total_net_input_bytes"]
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(window_s)
        cpu = time.process_time() - cpu0
        wall = time.monotonic() - wall0
        net = probe.info("stats")["total_net_input_bytes"] - net0
        live = sum(1 for s in symbols if (x := store.snapshot(s)) and x.book.is_live)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        store.close()
    core_pct = cpu / wall * 100
    n = len(symbols)
    return {
        "symbols": n,
        "live": live,
        "core_pct": round(core_pct, 1),
        "rss_mb_per_symbol": round((_rss_mb() - rss_before) / n, 3),
        "redis_kb_s_per_symbol": round(net / wall / 1024 / n, 2),
        "symbols_at_80pct": int(n * 80 / core_pct) if core_pct else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def one_mix(source: Path, count: int, window_s: float, redis_url: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        recording = Path(tmp) / "mix.jsonl.gz"
        symbols = relabel_recording(source, recording, count)
        port = free_port()
        exchange = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app",
                "exchange",
                "--recording",
                str(recording),
                "--port",
                str(port),
                "--loop",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        try:
            _wait_port(port, 300)
            redis.Redis.from_url(redis_url).flushdb()
            return asyncio.run(_measure(port, symbols, redis_url, window_s))
        finally:
            exchange.kill()
            exchange.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quiet", type=int, default=200)
    parser.add_argument("--busy", type=int, default=4)
    parser.add_argument("--window", type=float, default=20.0)
    args = parser.parse_args()
    with RedisServer() as server:
        quiet = one_mix(SPOT_2021, args.quiet, args.window, server.url)
        busy = one_mix(SPOT_2024, args.busy, args.window, server.url)
    print("one worker at real rates (exchange in its own process, Redis store)")
    print(
        f"{'mix':<26} {'N':>5} {'LIVE':>5} {'core %':>7} {'MB/sym':>7} {'KB/s/sym':>9} {'N@80%':>7}"
    )
    for name, r in (("quiet (2021 3-symbol)", quiet), ("busy (BTCUSDT 2024)", busy)):
        print(
            f"{name:<26} {r['symbols']:>5} {r['live']:>5} {r['core_pct']:>7} "
            f"{r['rss_mb_per_symbol']:>7} {r['redis_kb_s_per_symbol']:>9} "
            f"{r['symbols_at_80pct']!s:>7}"
        )
    print("goal: >= 1500 symbols of the quiet mix per worker at < 80 % of a core")
    print(
        json.dumps(
            {f"quiet_{k}": v for k, v in quiet.items()} | {f"busy_{k}": v for k, v in busy.items()}
        )
    )


if __name__ == "__main__":
    main()
