"""Cold start of many symbols: a feed starts against the local exchange replaying a
relabelled real recording (``count`` symbols) and the time until every book is LIVE is
measured, with the REST weight the exchange reported and whether it ever refused a request.

Used by ``bench/bench_cold_start.py`` and ``tests/hardening/test_cold_start.py``.
Run alone: ``.venv/bin/python -m scripts.cold_start --symbols 200``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from scripts.soak import FAST_BACKOFF
from services.binance.endpoints import custom
from services.binance.rate_limit import Priority, SharedWeightWindow, WeightGrant
from services.market.feed import Feed, FeedConfig
from services.replay.exchange import LocalExchange
from services.replay.recording import SPOT_2021
from services.replay.relabel import recorded_symbols, relabel_recording, relabelled_symbols
from services.store import MemoryStore


@dataclass(slots=True)
class ColdStartReport:
    """One cold start.

    all_live_s: seconds from the feed's start until every book was LIVE (None: not within
        the timeout). live_at_end: books LIVE when it ended. max_used_weight: the highest
        ``X-MBX-USED-WEIGHT-1M`` the exchange reported (its rolling 60 s window).
    rate_limited: the exchange answered 429/418 at least once. snapshots: depth snapshots
        fetched. budget: the feed's weight per minute. deepened: books deepened meanwhile.
    live_curve: (seconds since start, books LIVE) about every ``curve_every_s``.
    background_weight / background_weight_before_all_live: weight of the ``BACKGROUND``
        requests (trade warm-ups, the watchlist's seed, deepening) admitted in all, and
        before every book was LIVE (what the books waited behind).
    """

    symbols: int
    budget: int
    all_live_s: float | None = None
    live_at_end: int = 0
    max_used_weight: int = 0
    rate_limited: bool = False
    snapshots: int = 0
    deepened: int = 0
    background_weight: int = 0
    background_weight_before_all_live: int = 0
    used: list[int] = field(default_factory=list)
    live_curve: list[tuple[float, int]] = field(default_factory=list)


ROOT = Path(__file__).resolve().parents[1]


@contextlib.asynccontextmanager
async def _exchange(
    recording: Path, speed: float, own_process: bool
) -> AsyncIterator[tuple[str, str, str]]:
    """``(ws_url, rest_url, market)`` of a local exchange replaying ``recording`` in a loop:
    in this process, or in its own (``python -m app exchange``; then only the feed's work
    is this process's) — spot recordings only for the latter."""
    if not own_process:
        async with LocalExchange(recording, speed=speed, loop=True) as exchange:
            yield exchange.ws_url, exchange.rest_url, exchange.market
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "app", "exchange", "--recording", str(recording)]
    command += ["--port", str(port), "--loop", "--speed", f"{speed:g}"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"the exchange did not listen on {port}")
            await asyncio.sleep(0.2)
        base = f"127.0.0.1:{port}"
        yield f"ws://{base}", f"http://{base}", "spot"
    finally:
        process.kill()
        process.wait(timeout=10)


def relabelled(count: int, directory: Path, source: Path = SPOT_2021) -> tuple[Path, list[str]]:
    """A recording of ``count`` relabelled symbols in ``directory`` and its symbols (one
    written before in ``directory`` is reused: relabelling 1,500 symbols takes minutes)."""
    target = directory / f"cold_start_{count}_{source.name}"
    if target.exists():
        names = relabelled_symbols(recorded_symbols(source), count)
        return target, sorted(names)
    partial = target.with_name(f"partial_{target.name}")
    symbols = relabel_recording(source, partial, count)
    partial.rename(target)
    return target, symbols


async def cold_start(
    recording: Path,
    symbols: list[str],
    timeout_s: float,
    shared_weight: SharedWeightWindow | None = None,
    speed: float = 1.0,
    own_process: bool = False,
    curve_every_s: float = 10.0,
    **options: object,
) -> ColdStartReport:
    """Start a feed on ``symbols`` against a local exchange replaying ``recording`` at
    ``speed`` (in its own process when ``own_process``) and wait until all books are LIVE
    (or ``timeout_s``). ``options`` override ``FeedConfig``. The exchange's REST weight
    window is wall-clock at any speed; a slower replay only thins the streams (so one
    process can carry more symbols)."""
    async with _exchange(recording, speed, own_process) as (ws_url, rest_url, market):
        store = MemoryStore()
        config = FeedConfig(
            endpoints=custom(ws_url, rest_url, market=market),
            symbols=tuple(symbols),
            publish_interval_s=0.1,
            idle_timeout_s=10.0,
            backoff=FAST_BACKOFF,
            **options,  # type: ignore[arg-type]
        )
        feed = Feed(config, store, shared_weight=shared_weight)
        started = time.monotonic()
        task = asyncio.create_task(feed.run())
        report = ColdStartReport(symbols=len(symbols), budget=0)
        try:
            while feed.rest_budget is None:
                await asyncio.sleep(0.01)
            budget = feed.rest_budget
            report.budget = budget.limit
            record_used = budget.record_used

            def recorded(used: int) -> None:
                report.used.append(used)
                record_used(used)

            budget.record_used = recorded  # type: ignore[method-assign]
            acquire = budget.acquire

            async def admitted(
                weight: int, max_pause_s: float | None = None, priority: Priority = Priority.SYNC
            ) -> WeightGrant:
                grant = await acquire(weight, max_pause_s, priority)
                if priority is Priority.BACKGROUND:
                    report.background_weight += weight
                    if report.all_live_s is None:
                        report.background_weight_before_all_live += weight
                return grant

            budget.acquire = admitted  # type: ignore[method-assign]
            while time.monotonic() - started < timeout_s:
                live = sum(
                    1 for s in symbols if (x := store.snapshot(s)) is not None and x.book.is_live
                )
                report.live_at_end = live
                elapsed = time.monotonic() - started
                if not report.live_curve or elapsed - report.live_curve[-1][0] >= curve_every_s:
                    report.live_curve.append((round(elapsed, 1), live))
                if live == len(symbols):
                    report.all_live_s = elapsed
                    report.live_curve.append((round(elapsed, 1), live))
                    break
                await asyncio.sleep(0.05)
            stats = feed.stats()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    report.max_used_weight = max(report.used, default=0)
    report.rate_limited = bool(stats.budget and stats.budget.pause_reason)
    report.snapshots = stats.counters.snapshots_fetched
    report.deepened = stats.counters.books_deepened
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        recording, symbols = relabelled(args.symbols, Path(tmp))
        report = asyncio.run(cold_start(recording, symbols, args.timeout))
    report.used = []
    print(report)


if __name__ == "__main__":
    main()
