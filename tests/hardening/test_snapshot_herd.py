"""Snapshot herd: 50 symbols lose their connection at once; the snapshot desk serves them
one at a time under the REST weight budget and every book is LIVE again soon after."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest

from scripts.soak import FAST_BACKOFF, SOURCE
from services.binance.endpoints import custom
from services.market.feed import Feed, FeedConfig
from services.replay.exchange import LocalExchange
from services.replay.relabel import relabel_recording
from services.store import MemoryStore

SYMBOLS = 50
BUDGET = 2400
SNAPSHOT_LIMIT = 100  # weight 5: 50 snapshots and 50 backfills fit a test's minute
ALL_LIVE_WITHIN_S = 60.0


def _all_live(store: MemoryStore, symbols: list[str]) -> bool:
    snaps = [store.snapshot(s) for s in symbols]
    return all(snap is not None and snap.book.is_live for snap in snaps)


async def _until_all_live(store: MemoryStore, symbols: list[str], timeout: float) -> float:
    started = time.monotonic()
    while not _all_live(store, symbols):
        if time.monotonic() - started > timeout:
            waiting = [s for s in symbols if not (x := store.snapshot(s)) or not x.book.is_live]
            raise AssertionError(f"not LIVE after {timeout} s: {waiting}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.timeout(240)
async def test_fifty_symbols_reconnecting_stay_within_the_budget(tmp_path: Path) -> None:
    recording = tmp_path / "herd.jsonl.gz"
    symbols = await asyncio.to_thread(relabel_recording, SOURCE, recording, SYMBOLS)
    async with LocalExchange(recording, speed=1.0, loop=True) as exchange:
        store = MemoryStore()
        config = FeedConfig(
            endpoints=custom(exchange.ws_url, exchange.rest_url, market=exchange.market),
            symbols=tuple(symbols),
            publish_interval_s=0.1,
            idle_timeout_s=5.0,
            rest_weight_budget=BUDGET,
            snapshot_limit=SNAPSHOT_LIMIT,
            backoff=FAST_BACKOFF,
        )
        feed = Feed(config, store)
        task = asyncio.create_task(feed.run())
        try:
            first_sync = await _until_all_live(store, symbols, 120.0)
            budget = feed.rest_budget
            assert budget is not None
            reported: list[int] = []
            record_used = budget.record_used

            def recorded(used: int) -> None:
                reported.append(used)
                record_used(used)

            budget.record_used = recorded  # type: ignore[method-assign]
            before = feed.stats().counters.snapshots_fetched
            # A reconnect that misses nothing resumes every book without a snapshot; a diff
            # withheld from each symbol makes sure all fifty need one at once.
            for symbol in symbols:
                exchange.faults.drop_next_diff(symbol)
            exchange.faults.drop_connections()
            await asyncio.sleep(0.5)
            back_live = await _until_all_live(store, symbols, ALL_LIVE_WITHIN_S)
            stats = feed.stats()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    herd = stats.counters.snapshots_fetched - before
    print(
        f"\nherd: {SYMBOLS} symbols, first sync {first_sync:.1f} s, all LIVE again "
        f"{back_live + 0.5:.1f} s after the drop; {herd} snapshots, "
        f"{stats.counters.backfills} backfills, max reported weight {max(reported)} "
        f"of {BUDGET}, waited {stats.budget.waited_s:.1f} s for budget"
    )
    assert max(reported) <= BUDGET
    assert herd >= SYMBOLS // 2, "the drop did not make a herd"
    assert stats.counters.snapshots_failed == 0
