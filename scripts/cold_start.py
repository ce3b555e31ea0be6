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
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from scripts.soak import FAST_BACKOFF
from services.binance.endpoints import custom
from services.binance.rate_limit import SharedWeightWindow
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
    """

    symbols: int
    budget: int
    all_live_s: float | None = None
    live_at_end: int = 0
    max_used_weight: int = 0
    rate_limited: bool = False
    snapshots: int = 0
    deepened: int = 0
    used: list[int] = field(default_factory=list)


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
    **options: object,
) -> ColdStartReport:
    """Start a feed on ``symbols`` against a local exchange replaying ``recording`` at
    ``speed`` and wait until all books are LIVE (or ``timeout_s``). ``options`` override
    ``FeedConfig``. The exchange's REST weight window is wall-clock at any speed; a
    slower replay only thins the streams (so one process can carry more symbols)."""
    async with LocalExchange(recording, speed=speed, loop=True) as exchange:
        store = MemoryStore()
        config = FeedConfig(
            endpoints=custom(exchange.ws_url, exchange.rest_url, market=exchange.market),
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
            while time.monotonic() - started < timeout_s:
                live = sum(
                    1 for s in symbols if (x := store.snapshot(s)) is not None and x.book.is_live
                )
                report.live_at_end = live
                if live == len(symbols):
                    report.all_live_s = time.monotonic() - started
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
