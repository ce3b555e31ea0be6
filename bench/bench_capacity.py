"""Capacity of one ingest worker: how much of one core, memory and Redis bandwidth a feed
needs per symbol kept LIVE at real rates, for a quiet mix (N relabelled copies of the real
3-symbol 2021 recording) and a busy one (relabelled copies of the real BTCUSDT 2024
recording). The local exchange runs in its own process (``python -m app exchange``) so
only the feed's work is counted; the feed publishes to a real redis-server.

First, one publication round of ``--quiet`` synthetic LIVE symbols (1,000 levels a side,
100 trades) to the real Redis, per symbol and batched: round_cpu_ms / round_wall_ms
(medians) — the part of the worker's cost this changed, measured on identical work.
Then the quiet mix runs twice on the same exchange, in this one process: first as the feed
published before (one Redis round trip per symbol, no publication budget: "per-symbol"),
then as it does now (a round's snapshots in one pipeline, at most
``publish_budget_per_s`` symbol publications a second: "batched").

Figures, over ``--window`` seconds once every book is LIVE: core_pct (the feed process's
CPU time / wall time · 100), core_pct_per_100 (core_pct per 100 symbols),
publications_per_s (symbol writes sent to Redis a second, ``RedisStore.writes``),
rss_mb_per_symbol (resident memory growth from before the feed started, per symbol),
redis_kb_s_per_symbol (bytes Redis received per second, per symbol), symbols_at_80pct
(N · 80 / core_pct: the symbols one worker would keep LIVE within 80 % of a core at this
per-symbol cost — a linear extrapolation), publisher_core_pct (the CPU of the publisher's
rounds: snapshots, records, Redis pipeline, board, status), us_per_publication (that CPU
per symbol publication), symbols_at_80pct_budgeted (``symbols_within``: the same
extrapolation with the publications capped at ``publish_budget_per_s`` — what a worker
streaming more symbols than the budget publishes at its rate costs),
frame_core_pct_per_100 (CPU per 100 symbols spent handling frames in the feed: dispatch,
book diffs, trades — not the WebSocket client's receiving and decoding; a floor no
publication change lowers; timed on one frame in ``FRAME_SAMPLE`` and scaled),
frames_per_s (frames received a second), unwatched_depth_ms (the diff-depth speed of
the books, none watched: the feed's default for this many symbols, as a worker's —
``FeedConfig.unwatched_depth_ms``). The feed runs on the worker's event loop
(``services.event_loop``: uvloop where installed; ``TAPESCOPE_EVENT_LOOP=asyncio`` measures
asyncio's) with the worker's GC thresholds (``services.collector``).

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
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import redis

from scripts.soak import FAST_BACKOFF
from services import collector, event_loop
from services.binance.endpoints import custom
from services.market.feed import Feed, FeedConfig
from services.market.views import BookView, SymbolInfo, SyncState, TradeView
from services.redis_store import RedisStore
from services.replay.recording import SPOT_2021, SPOT_2024
from services.replay.relabel import relabel_recording
from services.store import SymbolSnapshot
from tests.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[1]
# One frame in FRAME_SAMPLE is timed (two thread_time() calls cost as much as handling a
# frame: timing every one added ≈ 10 % to the measured core); the sum is scaled back.
FRAME_SAMPLE = 16


class PerSymbolStore:
    """A RedisStore as the feed used it before batching: no ``publish_many``, so every
    symbol of a round is one round trip."""

    def __init__(self, store: RedisStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        if name == "publish_many":
            raise AttributeError(name)
        return getattr(self._store, name)


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


def _round_snapshots(count: int, levels: int, seq: int) -> list[SymbolSnapshot]:
    """``count`` LIVE symbols of ``levels`` levels a side and 100 trades each, at ``seq``."""
    rng = np.random.default_rng(7)
    snapshots = []
    for index in range(count):
        symbol = f"S{index}USDT"
        book = BookView(
            symbol,
            bid_prices=100.0 - np.arange(levels) * 0.01,
            bid_qtys=rng.random(levels),
            ask_prices=100.01 + np.arange(levels) * 0.01,
            ask_qtys=rng.random(levels),
            last_update_id=1000 + seq,
            sync_state=SyncState.LIVE,
        )
        ids = np.arange(100, dtype=np.int64)
        trades = TradeView(
            symbol, ids, ids * 10, np.full(100, 100.0), rng.random(100), np.ones(100)
        )
        info = SymbolInfo(symbol, base_asset=f"S{index}", quote_asset="USDT")
        snapshots.append(SymbolSnapshot(symbol, seq, book, trades, info))
    return snapshots


def publication_rounds(redis_url: str, count: int, levels: int, rounds: int) -> dict:
    """One publication round of ``count`` symbols to Redis, per symbol (one round trip
    each, as before) and batched (``publish_many``): median CPU ms and wall ms a round —
    the same snapshots either way, independent of the exchange and the machine's load on
    the stream side."""
    figures: dict[str, float] = {}
    for name in ("per_symbol", "batched"):
        redis.Redis.from_url(redis_url).flushdb()
        store = RedisStore(redis_url)
        cpu, wall = [], []
        for seq in range(1, rounds + 1):
            snapshots = _round_snapshots(count, levels, seq)
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            if name == "batched":
                store.publish_many(snapshots)
            else:
                for snapshot in snapshots:
                    store.publish(snapshot)
            cpu.append(time.thread_time() - cpu0)
            wall.append(time.perf_counter() - wall0)
        store.close()
        figures[f"{name}_round_cpu_ms"] = round(statistics.median(cpu[1:]) * 1000, 1)
        figures[f"{name}_round_wall_ms"] = round(statistics.median(wall[1:]) * 1000, 1)
    return figures


def symbols_within(
    core_pct: float,
    stream_pct_per_symbol: float,
    publications_per_symbol: float,
    publication_s: float,
    budget_per_s: float,
) -> int:
    """Symbols one worker keeps within ``core_pct`` of a core when every symbol costs
    ``stream_pct_per_symbol`` (frames, WebSocket client, event loop: everything but the
    publisher) and wants ``publications_per_symbol`` a second at ``publication_s`` CPU
    seconds each (the publisher's CPU per publication: snapshot, record, Redis, board and
    status rounds) — but the publication budget runs at most ``budget_per_s`` (0: no cap)
    whatever N. Linear in N below the cap; above it the publications cost a fixed
    ``budget_per_s · publication_s``."""
    per_publication_pct = publication_s * 100
    linear = stream_pct_per_symbol + publications_per_symbol * per_publication_pct
    n = core_pct / linear if linear > 0 else 0.0
    if budget_per_s and n * publications_per_symbol > budget_per_s and stream_pct_per_symbol:
        n = max(core_pct - budget_per_s * per_publication_pct, 0.0) / stream_pct_per_symbol
    return int(n)


async def _measure(
    port: int, symbols: list[str], redis_url: str, window_s: float, batched: bool
) -> dict:
    base = f"127.0.0.1:{port}"
    store = RedisStore(redis_url)
    config = FeedConfig(
        endpoints=custom(f"ws://{base}", f"http://{base}", market="spot"),
        symbols=tuple(symbols),
        backoff=FAST_BACKOFF,
        idle_timeout_s=15.0,
        **({} if batched else {"publish_budget_per_s": 0.0}),  # type: ignore[arg-type]
    )
    rss_before = _rss_mb()
    feed = Feed(config, store if batched else PerSymbolStore(store))  # type: ignore[arg-type]
    frames = [0.0, 0]  # CPU seconds of the timed frames, frames seen
    on_frame = feed._on_frame

    def timed_frame(item: Any) -> None:
        frames[1] += 1
        if frames[1] % FRAME_SAMPLE:
            on_frame(item)
            return
        started = time.thread_time()
        on_frame(item)
        frames[0] += time.thread_time() - started

    feed._on_frame = timed_frame  # type: ignore[method-assign]
    publishing = [0.0]
    publish = feed.publish

    def timed_publish() -> Any:
        started = time.thread_time()
        try:
            return publish()
        finally:
            publishing[0] += time.thread_time() - started

    feed.publish = timed_publish  # type: ignore[method-assign]
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
        net0, calls0 = probe.info("stats")["total_net_input_bytes"], store.writes
        frames[0], frames[1], publishing[0] = 0.0, 0, 0.0
        received0 = sum(c.messages for c in feed.stats().connections)
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(window_s)
        cpu = time.process_time() - cpu0
        wall = time.monotonic() - wall0
        frame_cpu = frames[0] * FRAME_SAMPLE
        publish_cpu = publishing[0]
        received = sum(c.messages for c in feed.stats().connections) - received0
        net = probe.info("stats")["total_net_input_bytes"] - net0
        calls = store.writes - calls0
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
        "core_pct_per_100": round(core_pct * 100 / n, 2),
        "frame_core_pct_per_100": round(frame_cpu / wall * 100 * 100 / n, 2),
        "frames_per_s": round(received / wall),
        "publications_per_s": round(calls / wall),
        "rss_mb_per_symbol": round((_rss_mb() - rss_before) / n, 3),
        "redis_kb_s_per_symbol": round(net / wall / 1024 / n, 2),
        "symbols_at_80pct": int(n * 80 / core_pct) if core_pct else None,
        "publisher_core_pct": round(publish_cpu / wall * 100, 1),
        "us_per_publication": round(publish_cpu / calls * 1e6) if calls else None,
        "symbols_at_80pct_budgeted": symbols_within(
            80.0,
            (cpu - publish_cpu) / wall * 100 / n,
            calls / wall / n,
            publish_cpu / calls if calls else 0.0,
            config.publish_budget_per_s,
        ),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "unwatched_depth_ms": config.depth_speed_ms(watched=False),
    }


def one_mix(
    source: Path, count: int, window_s: float, redis_url: str, variants: tuple[bool, ...]
) -> list[dict]:
    """Measure ``count`` relabelled copies of ``source`` once per variant (batched or
    per-symbol publication), one after the other on the same exchange."""
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
            results = []
            collector.tune_for_ingest()  # as the worker runs
            for batched in variants:
                redis.Redis.from_url(redis_url).flushdb()
                redis.Redis.from_url(redis_url).config_resetstat()
                measured = event_loop.run(_measure(port, symbols, redis_url, window_s, batched))
                results.append(measured)
            return results
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
        rounds = publication_rounds(server.url, args.quiet, 1000, 12)
        before, quiet = one_mix(SPOT_2021, args.quiet, args.window, server.url, (False, True))
        (busy,) = one_mix(SPOT_2024, args.busy, args.window, server.url, (True,))
    print(
        f"one publication round of {args.quiet} symbols (1000 levels a side), real Redis, "
        "median of 11:"
    )
    print(f"{'store path':<34} {'CPU ms':>8} {'wall ms':>8} {'CPU us/sym':>11}")
    for name in ("per_symbol", "batched"):
        cpu_ms = rounds[f"{name}_round_cpu_ms"]
        print(
            f"{name:<34} {cpu_ms:>8} {rounds[f'{name}_round_wall_ms']:>8} "
            f"{cpu_ms * 1000 / args.quiet:>11.0f}"
        )
    print("one worker at real rates (exchange in its own process, Redis store)")
    print(
        f"{'mix':<34} {'N':>5} {'LIVE':>5} {'core %':>7} {'%/100':>6} {'frames%/100':>11} "
        f"{'pub/s':>6} {'us/pub':>7} {'MB/sym':>7} {'KB/s/sym':>9} {'N@80%':>7} "
        f"{'N@80% budgeted':>15}"
    )
    rows = (
        ("quiet, per-symbol (before)", before),
        ("quiet, batched + budget (now)", quiet),
        ("busy (BTCUSDT 2024), now", busy),
    )
    for name, r in rows:
        print(
            f"{name:<34} {r['symbols']:>5} {r['live']:>5} {r['core_pct']:>7} "
            f"{r['core_pct_per_100']:>6} {r['frame_core_pct_per_100']:>11} "
            f"{r['publications_per_s']:>6} {r['us_per_publication']!s:>7} "
            f"{r['rss_mb_per_symbol']:>7} {r['redis_kb_s_per_symbol']:>9} "
            f"{r['symbols_at_80pct']!s:>7} {r['symbols_at_80pct_budgeted']!s:>15}"
        )
    if quiet["core_pct"]:
        print(
            "quiet mix, CPU per 100 symbols: "
            f"{before['core_pct_per_100'] / quiet['core_pct_per_100']:.2f}x less now"
        )
    print("goal: >= 1500 symbols of the quiet mix per worker at < 80 % of a core")
    print(
        json.dumps(
            {f"publication_{k}": v for k, v in rounds.items()}
            | {f"quiet_before_{k}": v for k, v in before.items()}
            | {f"quiet_{k}": v for k, v in quiet.items()}
            | {f"busy_{k}": v for k, v in busy.items()}
        )
    )


if __name__ == "__main__":
    main()
