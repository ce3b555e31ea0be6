"""Fault soak: the real feed against the local exchange, with faults injected at random.

The bundled 3-symbol spot recording is relabelled into ``--symbols`` independent markets
(``services.replay.relabel``) and replayed in a loop while a seeded random schedule injects,
every fraction of a second to a few seconds: dropped connections, silent stalls (longer than
the client's idle timeout, so the watchdog must notice), ``serverShutdown``, withheld,
duplicated, reordered and malformed frames, 429 and 418 on depth snapshots (a burst of
418s fails a snapshot outright) and delayed snapshots. Then the faults stop, every book
must be LIVE again, the replay plays its pass to the end and the soak checks:

* every published book equals the exchange's own book (top levels exactly, and every level
  the feed holds is on the exchange with the same quantity);
* every trade window is continuous: no aggregate trade id missing or repeated, up to the
  exchange's last id (gaps were backfilled);
* no crossed book was ever published as LIVE (every publication is checked);
* the REST weight the exchange reported never exceeded the feed's budget;
* no background task of the feed ended by raising, no publication round raised;
* the process's traced memory (tracemalloc) in the second half of the run is not above the
  first half's. The exchange keeps its trade history bounded to ``EXCHANGE_TRADES`` per
  symbol during the soak, so what could grow is the feed.

``python -m scripts.soak --duration 600`` prints the summary and exits 1 on any problem;
``tests/hardening/test_soak.py`` runs the short form.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from services.binance.backoff import Backoff
from services.binance.endpoints import custom
from services.market.feed import Feed, FeedConfig, FeedStats
from services.market.views import SyncState
from services.replay import symbol_market
from services.replay.exchange import LocalExchange
from services.replay.faults import Faults
from services.replay.recording import SPOT_2021
from services.replay.relabel import relabel_recording
from services.store import MemoryStore, SymbolSnapshot

SOURCE = SPOT_2021
FAST_BACKOFF = Backoff(initial=0.05, cap=0.5, floor=0.02)
TOP_LEVELS = 200
EXCHANGE_TRADES = 5000
FIRED_AS = {
    "drop_connections": "drop_connection",
    "stall": "stall",
    "server_shutdown": "server_shutdown",
    "drop_next_diff": "gap",
    "duplicate_next": "duplicate",
    "reorder_next": "reorder",
    "malformed_next": "malformed",
    "rest_429": "rest_429",
    "rest_418": "rest_418",
}
"""Each injected kind and the name the exchange counts it under once it hit something."""


@dataclass(frozen=True, slots=True)
class SoakConfig:
    """One soak: how long faults are injected, over how many symbols, how fast the replay
    plays (recording seconds per second) and, once every book is LIVE again after the
    faults, until the pass ends (``ending_speed``; 0: the same), the fault rate and the
    feed's REST budget."""

    duration_s: float = 30.0
    symbols: int = 10
    seed: int = 7
    speed: float = 3.0
    ending_speed: float = 0.0
    fault_gap_s: tuple[float, float] = (0.3, 1.2)
    rest_weight_budget: int = 2400
    idle_timeout_s: float = 2.0
    publish_interval_s: float = 0.1
    settle_timeout_s: float = 120.0
    memory_samples: int = 20


@dataclass(slots=True)
class SoakReport:
    """What the soak injected, what the feed did, and every problem found."""

    symbols: list[str]
    injected: Counter[str] = field(default_factory=Counter)
    fired: dict[str, int] = field(default_factory=dict)
    publications: int = 0
    crossed_live: list[str] = field(default_factory=list)
    resync_times_s: list[float] = field(default_factory=list)
    longest_resync: str = ""
    max_used_weight: int = 0
    weight_budget: int = 0
    memory_mb: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    reconnects: int = 0
    stats: FeedStats | None = None
    elapsed_s: float = 0.0
    startup_s: float = 0.0
    recovery_s: float = 0.0
    ending_s: float = 0.0

    @property
    def memory_halves_mb(self) -> tuple[float, float]:
        """Mean traced memory over the first and the second half of the samples."""
        samples = self.memory_mb
        if len(samples) < 2:
            return (samples[0], samples[0]) if samples else (0.0, 0.0)
        half = len(samples) // 2
        return float(np.mean(samples[:half])), float(np.mean(samples[half:]))

    def summary(self) -> str:
        """A few lines for the terminal."""
        stats = self.stats
        longest = max(self.resync_times_s, default=0.0)
        first, second = self.memory_halves_mb
        lines = [
            f"soak: {len(self.symbols)} symbols, {self.elapsed_s:.0f} s "
            f"({self.startup_s:.0f} s to every symbol LIVE, {self.ending_s:.0f} s from "
            f"recovery to the replay's end), {self.publications} publications checked",
            "faults injected: " + _counts(self.injected),
            "faults fired at the exchange: " + _counts(self.fired),
            f"recoveries: {self.reconnects} reconnects, "
            f"{stats.resyncs if stats else 0} resyncs ({stats.gaps if stats else 0} gaps), "
            f"{len(self.resync_times_s)} returns to LIVE, longest time to resync "
            f"{longest:.2f} s, {stats.counters.backfills if stats else 0} trade backfills",
            f"snapshots: {stats.counters.snapshots_fetched if stats else 0} fetched, "
            f"{stats.counters.snapshots_failed if stats else 0} failed (asked again); "
            f"SYNCING watchdog: {stats.counters.watchdog_snapshots if stats else 0} snapshots "
            f"asked again, {stats.counters.watchdog_resubscribes if stats else 0} resubscribes",
            f"longest resync: {self.longest_resync or 'none'}",
            f"every book LIVE {self.recovery_s:.1f} s after the last fault",
            f"REST weight: max {self.max_used_weight} reported by the exchange, "
            f"budget {self.weight_budget}",
            f"traced memory: first half {first:.1f} MiB, second half {second:.1f} MiB",
        ]
        if stats is not None:
            malformed = sum(c.malformed for c in stats.connections)
            lines.append(
                f"frames: {malformed} malformed (out-of-range values included), "
                f"{stats.counters.unknown_symbol_frames} unknown symbol, "
                f"{stats.counters.frame_errors} errors; "
                f"{stats.trade_duplicates} duplicate trades dropped"
            )
        lines.append("problems: " + ("; ".join(self.problems) if self.problems else "none"))
        return "\n".join(lines)


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{kind} {n}" for kind, n in sorted(counter.items())) or "none"


class _PublicationCheck:
    """Wraps ``store.publish``: no crossed LIVE book, and the time each symbol spends away
    from LIVE once it has been LIVE."""

    def __init__(self, store: MemoryStore, report: SoakReport) -> None:
        self.report = report
        self.left_live: dict[str, float] = {}
        self.ever_live: set[str] = set()
        self.reasons: dict[str, list[str]] = {}
        self._publish = store.publish
        store.publish = self.publish  # type: ignore[method-assign]

    def publish(self, snapshot: SymbolSnapshot) -> None:
        book = snapshot.book
        now = time.monotonic()
        self.report.publications += 1
        if book.sync_state is SyncState.LIVE:
            crossed = book.bid_prices.size and book.ask_prices.size
            if crossed and book.bid_prices[0] >= book.ask_prices[0]:
                self.report.crossed_live.append(f"{snapshot.symbol} seq {snapshot.seq}")
            self.ever_live.add(snapshot.symbol)
            left = self.left_live.pop(snapshot.symbol, None)
            if left is not None:
                took = now - left
                if took > max(self.report.resync_times_s, default=0.0):
                    reasons = " → ".join(self.reasons.pop(snapshot.symbol, []))
                    self.report.longest_resync = f"{snapshot.symbol}: {reasons}"
                self.report.resync_times_s.append(took)
            self.reasons.pop(snapshot.symbol, None)
        elif snapshot.symbol in self.ever_live:
            self.left_live.setdefault(snapshot.symbol, now)
            seen = self.reasons.setdefault(snapshot.symbol, [])
            state = f"{book.sync_state} ({book.resync_reason})"
            if not seen or not seen[-1].endswith(state):
                seen.append(f"+{now - self.left_live[snapshot.symbol]:.1f}s {state}")
        self._publish(snapshot)


def _fault_actions(
    faults: Faults, symbols: list[str], idle_s: float, rng: random.Random
) -> dict[str, Callable[[], object]]:
    """Each fault kind and how to inject one of it now."""
    depth = ["/api/v3/depth"]
    return {
        "drop_connections": faults.drop_connections,
        "stall": lambda: faults.stall(rng.uniform(0.3, idle_s * 1.5)),
        "server_shutdown": lambda: faults.server_shutdown(grace=rng.uniform(0.2, 1.0)),
        "drop_next_diff": lambda: faults.drop_next_diff(rng.choice(symbols)),
        "duplicate_next": lambda: faults.duplicate_next(rng.randint(1, 5)),
        "reorder_next": lambda: faults.reorder_next(rng.randint(1, 3)),
        "malformed_next": lambda: faults.malformed_next(rng.randint(1, 3)),
        "rest_429": lambda: faults.rest_error(429, rng.randint(1, 2), 1, depth),
        "rest_418": lambda: faults.rest_error(418, 1, rng.randint(1, 2), depth),
        # Every try of the next snapshot is banned: it fails, and is asked again later.
        "rest_418_burst": lambda: faults.rest_error(418, 4, 1, depth),
        "delay_snapshots": lambda: faults.delay_snapshots(rng.choice([0.0, 0.2, 0.5])),
    }


async def _until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def _all_live(store: MemoryStore, symbols: list[str]) -> bool:
    snaps = [store.snapshot(s) for s in symbols]
    return all(snap is not None and snap.book.is_live for snap in snaps)


def _book_problem(snapshot: SymbolSnapshot, exchange: LocalExchange) -> str | None:
    """How the published book differs from the exchange's own book (None: equal)."""
    truth = exchange.markets[snapshot.symbol].book
    book = snapshot.book
    if book.last_update_id != truth.last_update_id:
        return f"at u={book.last_update_id}, exchange at u={truth.last_update_id}"
    for side, prices, qtys, levels, best_first in (
        ("bid", book.bid_prices, book.bid_qtys, truth.bids, -1.0),
        ("ask", book.ask_prices, book.ask_qtys, truth.asks, 1.0),
    ):
        exact = {float(p): float(q) for p, q in levels.items()}
        held = dict(zip(prices.tolist(), qtys.tolist(), strict=True))
        wrong = [p for p, q in held.items() if exact.get(p) != q]
        if wrong:
            return f"{len(wrong)} {side} levels not on the exchange, e.g. {wrong[0]}"
        top = sorted(exact, key=lambda p: best_first * p)[: min(TOP_LEVELS, len(held))]
        if prices[: len(top)].tolist() != top:
            return f"top {len(top)} {side} levels differ"
    return None


def _trade_problem(snapshot: SymbolSnapshot, exchange: LocalExchange) -> str | None:
    """How the published trade window breaks continuity (None: every id once, in order)."""
    ids = snapshot.trades.trade_id
    last = exchange.markets[snapshot.symbol].last_agg_id
    if ids.size == 0:
        return "no trades"
    steps = np.diff(ids)
    if steps.size and not (steps == 1).all():
        bad = int(np.flatnonzero(steps != 1)[0])
        return f"id {ids[bad]} followed by {ids[bad + 1]}"
    if int(ids[-1]) != last:
        return f"last id {ids[-1]}, exchange's last {last}"
    return None


async def run_soak(config: SoakConfig, workdir: Path) -> SoakReport:
    """Run one soak; the relabelled recording is written under ``workdir``."""
    recording = workdir / f"soak_{config.symbols}_symbols.jsonl.gz"
    symbols = await asyncio.to_thread(relabel_recording, SOURCE, recording, config.symbols)
    report = SoakReport(symbols=symbols, weight_budget=config.rest_weight_budget)
    rng = random.Random(config.seed)
    started = time.monotonic()
    kept_trades = symbol_market.MAX_TRADES
    symbol_market.MAX_TRADES = EXCHANGE_TRADES
    tracemalloc.start(1)
    try:
        async with LocalExchange(recording, speed=config.speed, loop=True) as exchange:
            store = MemoryStore()
            check = _PublicationCheck(store, report)
            feed_config = FeedConfig(
                endpoints=custom(exchange.ws_url, exchange.rest_url, market=exchange.market),
                symbols=tuple(symbols),
                publish_interval_s=config.publish_interval_s,
                idle_timeout_s=config.idle_timeout_s,
                rest_weight_budget=config.rest_weight_budget,
                backoff=FAST_BACKOFF,
                log_period_s=5.0,
            )
            feed = Feed(feed_config, store)
            task = asyncio.create_task(feed.run())
            try:
                await _soak(config, exchange, feed, store, check, report, rng)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    finally:
        tracemalloc.stop()
        symbol_market.MAX_TRADES = kept_trades
    report.elapsed_s = time.monotonic() - started
    return report


async def _soak(
    config: SoakConfig,
    exchange: LocalExchange,
    feed: Feed,
    store: MemoryStore,
    check: _PublicationCheck,
    report: SoakReport,
    rng: random.Random,
) -> None:
    started = time.monotonic()
    if not await _until(lambda: check.ever_live >= set(report.symbols), 60.0):
        report.problems.append(f"not every symbol LIVE at start: {sorted(check.ever_live)}")
        return
    report.startup_s = time.monotonic() - started
    budget = feed.rest_budget
    assert budget is not None
    record_used = budget.record_used

    def recorded(used: int) -> None:
        report.max_used_weight = max(report.max_used_weight, used)
        record_used(used)

    budget.record_used = recorded  # type: ignore[method-assign]
    sampler = asyncio.create_task(_sample_memory(config, report))
    try:
        await _inject_faults(config, exchange, report, rng)
    finally:
        sampler.cancel()
    exchange.faults.delay_snapshots(0.0)
    exchange.faults.rest_errors.clear()
    started = time.monotonic()
    live = await _until(lambda: _all_live(store, report.symbols), config.settle_timeout_s)
    report.recovery_s = time.monotonic() - started
    if not live:
        report.problems.append(f"not every book LIVE {config.settle_timeout_s} s after the faults")
    await asyncio.sleep(1.0)
    assert exchange.player is not None
    exchange.player.loop = False
    if config.ending_speed:
        exchange.player.clock.set_speed(config.ending_speed)
    await asyncio.wait_for(exchange.finished.wait(), config.settle_timeout_s)
    report.ending_s = time.monotonic() - started - report.recovery_s
    await _check_end(config, exchange, store, report)
    report.fired = exchange.faults.stats()
    status = store.status()
    report.reconnects = status.reconnects if status else 0
    report.stats = feed.stats()
    counters = report.stats.counters
    if counters.task_errors or counters.publish_errors:
        report.problems.append(
            f"feed tasks that raised: {counters.task_errors}, "
            f"publication rounds that raised: {counters.publish_errors}"
        )


async def _inject_faults(
    config: SoakConfig, exchange: LocalExchange, report: SoakReport, rng: random.Random
) -> None:
    """Inject one random fault every ``fault_gap_s`` seconds for ``duration_s``: every kind
    once in a random order first, then kinds drawn at random. On a slow machine (or when
    an armed fault found nothing to hit, e.g. a 429 with no snapshot asked), it goes on
    with the kinds that have not fired yet, for up to another ``duration_s``."""
    actions = _fault_actions(exchange.faults, report.symbols, config.idle_timeout_s, rng)
    kinds = list(actions)
    first_round = rng.sample(kinds, len(kinds))
    end = time.monotonic() + config.duration_s
    while True:
        unfired = [k for k, fired in FIRED_AS.items() if not exchange.faults.counts.get(fired)]
        now = time.monotonic()
        if first_round:
            kind = first_round.pop()
        elif now < end:
            kind = rng.choice(kinds)
        elif unfired and now < end + config.duration_s:
            kind = rng.choice(unfired)
        else:
            break
        actions[kind]()
        report.injected[kind] += 1
        await asyncio.sleep(rng.uniform(*config.fault_gap_s))


async def _sample_memory(config: SoakConfig, report: SoakReport) -> None:
    """Traced memory every ``duration_s / memory_samples`` seconds."""
    every = config.duration_s / max(2, config.memory_samples)
    while True:
        await asyncio.sleep(every)
        report.memory_mb.append(tracemalloc.get_traced_memory()[0] / 2**20)


async def _check_end(
    config: SoakConfig, exchange: LocalExchange, store: MemoryStore, report: SoakReport
) -> None:
    """Books and trade windows against the exchange once the replay has ended."""
    symbols = report.symbols
    final = {s: exchange.markets[s].book.last_update_id for s in symbols}

    def behind() -> list[str]:
        return [
            s
            for s in symbols
            if (snap := store.snapshot(s)) is None or snap.book.last_update_id != final[s]
        ]

    if not await _until(lambda: not behind(), config.settle_timeout_s):
        states = {
            s: f"{x.book.sync_state} ({x.book.resync_reason})"
            for s in behind()
            if (x := store.snapshot(s)) is not None
        }
        report.problems.append(f"books not at the exchange's final update: {states}")
    await asyncio.sleep(1.0)
    for symbol in symbols:
        snapshot = store.snapshot(symbol)
        if snapshot is None:
            continue
        if (problem := _book_problem(snapshot, exchange)) is not None:
            report.problems.append(f"{symbol} book: {problem}")
        if (problem := _trade_problem(snapshot, exchange)) is not None:
            report.problems.append(f"{symbol} trades: {problem}")
    if report.crossed_live:
        report.problems.append(f"crossed books published as LIVE: {report.crossed_live[:5]}")
    if report.max_used_weight > config.rest_weight_budget:
        report.problems.append(
            f"REST weight {report.max_used_weight} above the budget {config.rest_weight_budget}"
        )
    first, second = report.memory_halves_mb
    if second > first * 1.2 + 2.0:
        report.problems.append(f"traced memory grew: {first:.1f} → {second:.1f} MiB")


def main(argv: list[str] | None = None) -> int:
    """Command line: run a soak, print its summary, exit 1 when it found problems."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of faults")
    parser.add_argument("--symbols", type=int, default=10, help="relabelled symbols (≥ 10)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the fault schedule")
    parser.add_argument("--speed", type=float, default=3.0, help="replay speed")
    args = parser.parse_args(argv)
    config = SoakConfig(
        duration_s=args.duration, symbols=args.symbols, seed=args.seed, speed=args.speed
    )
    with tempfile.TemporaryDirectory() as workdir:
        report = asyncio.run(run_soak(config, Path(workdir)))
    print(report.summary())
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
