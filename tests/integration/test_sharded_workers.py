"""Three real ``python -m app worker`` processes share 120 relabelled real symbols through
a real 6-node Redis Cluster, replayed by the local exchange: every book the store holds
equals the exchange's at the same update id; ``kill -9`` of one worker → its symbols LIVE
on the others within 15 s with no gap or duplicate in any trade window; ``SIGSTOP`` past
the lease then ``SIGCONT`` → its late writes are refused by the cluster and it rejoins;
a Redis master killed → failover, every book LIVE again."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from app.api import health
from app.cli.worker import LEASE_MS
from services.redis_push import key as push_key
from services.redis_store import RedisStore
from services.replay.exchange import LocalExchange
from services.replay.recording import SPOT_2021
from services.replay.relabel import relabel_recording
from tests.integration.test_cluster_shards import client, cluster  # noqa: F401 - fixtures
from tests.redis_cluster import RedisCluster

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = 120
RECENT = 100
"""Update ids per symbol whose exchange book ``_recent_books`` keeps (10 s of 100 ms diffs)."""
TOP = 10  # levels compared a side (a light sync knows 100; deeper ones come later)
HANDOVER_S = 15.0


class Worker:
    """One ``python -m app worker`` process on the cluster, its output in files."""

    def __init__(self, exchange: LocalExchange, url: str, out: Path) -> None:
        self.out, self.err = out.with_suffix(".out"), out.with_suffix(".err")
        env = {**os.environ, "TAPESCOPE_HISTORY": "0"}  # the store is under test here
        env.pop("REDIS_URL", None)
        with self.out.open("wb") as stdout, self.err.open("wb") as stderr:
            urls = ["--ws-url", exchange.ws_url, "--rest-url", exchange.rest_url]
            urls += ["--redis-url", url]
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app", "worker", "--source", "live", *urls],
                cwd=ROOT,
                env=env,
                stdout=stdout,
                stderr=stderr,
            )
        self._id = ""

    @property
    def writer_id(self) -> str:
        if not self._id:
            found = re.search(r"worker (\S+)$", self.out.read_text(), re.M)
            self._id = found.group(1) if found else ""
        return self._id

    def refused_writes(self) -> int:
        return len(re.findall(r"write refused \(FENCED\)", self.err.read_text()))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _until(
    predicate: Callable[[], bool],
    timeout_s: float,
    what: str,
    describe: Callable[[], object] = lambda: "",
) -> float:
    """Seconds until ``predicate()`` held (checked every 0.25 s, measured from the start of
    the check that succeeded)."""
    started = time.monotonic()
    while True:
        checked_at = time.monotonic()
        if predicate():
            return checked_at - started
        if checked_at - started > timeout_s:
            raise AssertionError(f"{what} not within {timeout_s} s: {describe()}")
        time.sleep(0.25)


@dataclass
class Market:
    """Symbols relabelled from the 2021 recording, replayed at real speed by a local
    exchange on loopback; a reader of the store; the workers started on it."""

    exchange: LocalExchange
    reader: RedisStore
    workers: list[Worker]
    symbols: list[str]


@contextmanager
def replayed_market(url: str, workdir: Path, count: int, start_s: float) -> Iterator[Market]:
    """A ``Market`` of ``count`` symbols on the store at ``url`` (the exchange given
    ``start_s`` to load its relabelled recording); its workers, exchange and reader are
    stopped on exit."""
    recording = workdir / "market.jsonl.gz"
    symbols = relabel_recording(SPOT_2021, recording, count)
    reader = RedisStore(url, poll_s=0)
    exchange = LocalExchange(recording, speed=1.0, loop=True)
    exchange.start_in_thread(timeout=start_s)
    market = Market(exchange, reader, [], symbols)
    try:
        yield market
    finally:
        for worker in market.workers:
            worker.stop()
        exchange.stop()
        reader.close()


def _live_on(reader: RedisStore, symbols: list[str], workers: int) -> bool:
    """Every book LIVE, and shared by exactly ``workers`` owners."""
    owners = _live_owners(reader, symbols)
    return len(owners) == len(symbols) and len(set(owners.values())) == workers


def _live_owners(reader: RedisStore, symbols: list[str]) -> dict[str, str]:
    """Owner of every symbol whose book is LIVE."""
    owners = {}
    for symbol in symbols:
        snap = reader.snapshot(symbol)
        owner = reader.owner(symbol)
        if snap is not None and snap.book.is_live and owner is not None:
            owners[symbol] = owner[0]
    return owners


def _books(reader: RedisStore, symbols: list[str]) -> Counter[tuple[str, str, str]]:
    """How many books are in each (state, reason, owner)."""
    seen: Counter[tuple[str, str, str]] = Counter()
    for symbol in symbols:
        snap = reader.snapshot(symbol)
        owner = reader.owner(symbol)
        state = "none" if snap is None else str(snap.book.sync_state)
        reason = "" if snap is None else snap.book.resync_reason[:40]
        seen[(state, reason, owner[0] if owner else "")] += 1
    return seen


def _all_live_without(reader: RedisStore, symbols: list[str], gone: set[str]) -> bool:
    owners = _live_owners(reader, symbols)
    return len(owners) == len(symbols) and not gone & set(owners.values())


def _all_written_since(reader: RedisStore, symbols: list[str], since: float) -> bool:
    """Every book LIVE and published after ``since`` (wall s): its owner writes it again
    (a record from before an event stays LIVE until its heartbeat is 5 s old)."""
    snaps = [reader.snapshot(s) for s in symbols]
    return all(s is not None and s.book.is_live and s.published_at > since for s in snaps)


def _levels(prices: np.ndarray, qtys: np.ndarray) -> list[tuple[float, float]]:
    return list(zip(prices[:TOP].tolist(), qtys[:TOP].tolist(), strict=True))


def _exchange_levels(rows: list[list[str]]) -> list[tuple[float, float]]:
    return [(float(p), float(q)) for p, q in rows]


def _exchange_books(
    exchange: LocalExchange, symbols: list[str]
) -> dict[str, tuple[int, list[list[str]], list[list[str]]]]:
    """Each symbol's book at the exchange (update id, top bids, top asks), read on the
    exchange's own event loop, so no diff is applied in the middle of a read."""

    async def read() -> dict[str, tuple[int, list[list[str]], list[list[str]]]]:
        books = {}
        for symbol in symbols:
            book = exchange.markets[symbol].book
            books[symbol] = (book.last_update_id, book.top_bids(TOP), book.top_asks(TOP))
        return books

    loop = exchange._thread_loop
    assert loop is not None
    return asyncio.run_coroutine_threadsafe(read(), loop).result(timeout=10)


@contextmanager
def _recent_books(
    exchange: LocalExchange, symbols: list[str]
) -> Iterator[dict[str, dict[int, tuple[list[list[str]], list[list[str]]]]]]:
    """The exchange's top ``TOP`` levels a side after each diff it applies in the block, by
    symbol and update id (the last ``RECENT`` of each), recorded on its own loop. A worker
    streams the books nobody watches at 1 s, so its book trails the exchange's by up to a
    second: it is compared with the exchange's book at its own update id."""
    recent: dict[str, dict[int, tuple[list[list[str]], list[list[str]]]]] = {s: {} for s in symbols}

    def record(symbol: str) -> None:
        market = exchange.markets[symbol]
        apply, ids, books = market.apply_depth, deque[int](), recent[symbol]

        def apply_depth(data: bytes) -> dict:
            body = apply(data)
            book = market.book
            books[book.last_update_id] = (book.top_bids(TOP), book.top_asks(TOP))
            ids.append(book.last_update_id)
            if len(ids) > RECENT:
                books.pop(ids.popleft(), None)
            return body

        market.apply_depth = apply_depth  # type: ignore[method-assign]

    async def install() -> None:
        for symbol in symbols:
            record(symbol)

    async def remove() -> None:
        for symbol in symbols:
            del exchange.markets[symbol].apply_depth

    loop = exchange._thread_loop
    assert loop is not None
    asyncio.run_coroutine_threadsafe(install(), loop).result(timeout=10)
    try:
        yield recent
    finally:
        asyncio.run_coroutine_threadsafe(remove(), loop).result(timeout=10)


def _books_equal_exchange(
    reader: RedisStore, exchange: LocalExchange, symbols: list[str], timeout_s: float
) -> None:
    """Every stored book equals the exchange's (top ``TOP`` levels a side) at the same
    update id: the exchange's current book, or one it had in the last ``RECENT`` diffs."""
    with _recent_books(exchange, symbols) as recent:
        _books_equal_recent(reader, exchange, symbols, timeout_s, recent)


def _books_equal_recent(
    reader: RedisStore,
    exchange: LocalExchange,
    symbols: list[str],
    timeout_s: float,
    recent: dict[str, dict[int, tuple[list[list[str]], list[list[str]]]]],
) -> None:
    pending = set(symbols)
    started = time.monotonic()
    while pending:
        market = _exchange_books(exchange, sorted(pending))
        for symbol in sorted(pending):
            snap = reader.snapshot(symbol)
            if snap is None or not snap.book.is_live:
                continue
            update_id, bids, asks = market[symbol]
            if snap.book.last_update_id != update_id:
                seen = recent[symbol].get(snap.book.last_update_id)
                if seen is None:
                    continue
                bids, asks = seen
            book = snap.book
            assert _levels(book.bid_prices, book.bid_qtys) == _exchange_levels(bids), symbol
            assert _levels(book.ask_prices, book.ask_qtys) == _exchange_levels(asks), symbol
            pending.discard(symbol)
        if time.monotonic() - started > timeout_s:
            seen = []
            for symbol in sorted(pending)[:5]:
                snap, owner = reader.snapshot(symbol), reader.owner(symbol)
                book = snap.book if snap is not None else None
                seen.append(
                    (
                        symbol,
                        str(book.sync_state) if book else "none",
                        book.last_update_id if book else None,
                        market[symbol][0],
                        owner[0] if owner else "",
                    )
                )
            raise AssertionError(
                f"{len(pending)} books never compared; (symbol, state, stored u, exchange u, "
                f"owner): {seen}"
            )
        time.sleep(0.02)


def _trade_ids(reader: RedisStore, symbol: str) -> np.ndarray:
    snap = reader.snapshot(symbol)
    assert snap is not None
    return snap.trades.trade_id


def _window_problems(reader: RedisStore, symbols: list[str], since: dict[str, int]) -> list:
    """Trade windows with a gap or a duplicate, or that do not reach back to the last trade
    stored before the event (a trade lost between)."""
    problems: list = []
    for symbol in symbols:
        ids = _trade_ids(reader, symbol)
        if not ids.size:  # a quiet symbol that has not traded in the replay yet
            if symbol in since:
                problems.append((symbol, "empty"))
            continue
        steps = np.diff(ids)
        if not (steps == 1).all():
            problems.append((symbol, "gap or duplicate", ids[np.flatnonzero(steps != 1)][:3]))
        if symbol in since and not ids[0] <= since[symbol] <= ids[-1]:
            problems.append((symbol, since[symbol], int(ids[0]), int(ids[-1])))
    return problems


def _assert_continuous(reader: RedisStore, symbols: list[str], since: dict[str, int]) -> None:
    """Every trade window is continuous and reaches back to ``since`` once the new owners'
    REST backfill (from the last stored trade id) has landed (a few seconds at most)."""
    _until(
        lambda: not _window_problems(reader, symbols, since),
        10,
        "continuous trade windows",
        lambda: _window_problems(reader, symbols, since)[:5],
    )


def _board_states(reader: RedisStore, symbols: list[str]) -> Counter[str]:
    """How many of ``symbols`` the merged watchlist shows in each sync state."""
    wanted = set(symbols)
    return Counter(r.sync_state for r in reader.watchlist().rows if r.symbol in wanted)


def _traded(reader: RedisStore, symbols: list[str]) -> list[str]:
    return [s for s in symbols if _trade_ids(reader, s).size]


@pytest.fixture
def market(cluster: RedisCluster, client, tmp_path: Path) -> Iterator[Market]:  # noqa: F811
    """120 relabelled symbols, every book LIVE and shared by three real workers (checked:
    owners in ``/healthz``, books equal to the exchange's, trade windows continuous, every
    book's columns on the merged watchlist, the push streams written)."""
    with replayed_market(cluster.url, tmp_path, SYMBOLS, start_s=120) as market:  # loads slowly
        exchange, reader, workers, symbols = (
            market.exchange,
            market.reader,
            market.workers,
            market.symbols,
        )
        workers.extend(Worker(exchange, cluster.url, tmp_path / f"w{i}") for i in range(3))
        took = _until(
            lambda: _live_on(reader, symbols, 3), 90, "every book LIVE, shared by three workers"
        )
        print(f"\n{len(symbols)} symbols LIVE on 3 workers {took:.1f} s after start")
        books = health(reader)["books"]
        ids = {w.writer_id for w in workers}
        assert {s: books[s]["owner"] in ids for s in symbols} == dict.fromkeys(symbols, True)
        assert all(books[s]["owner_since"].endswith("Z") for s in symbols)
        _books_equal_exchange(reader, exchange, symbols, 30)
        _assert_continuous(reader, symbols, {})
        _until(
            lambda: _board_states(reader, symbols) == {"LIVE": len(symbols)},
            10,
            "every symbol's book columns on the watchlist, each from its owner",
            lambda: _board_states(reader, symbols),
        )
        _until(
            lambda: all(client.xlen(push_key(s, "trades")) for s in _traded(reader, symbols)),
            10,
            "every traded symbol's push stream written",
        )
        assert not any("push writer: Redis unavailable" in w.err.read_text() for w in workers)
        yield market


@pytest.mark.timeout(180)
def test_three_workers_share_the_market_and_take_over_a_killed_one(market: Market) -> None:
    exchange, reader, workers, symbols = (
        market.exchange,
        market.reader,
        market.workers,
        market.symbols,
    )
    # kill -9: the victim's shards move, its books LIVE again on the others.
    victim = workers[0]
    owners = _live_owners(reader, symbols)
    orphaned = [s for s, w in owners.items() if w == victim.writer_id]
    last_stored = {s: int(ids[-1]) for s in orphaned if (ids := _trade_ids(reader, s)).size}
    victim.process.kill()
    took = _until(
        lambda: _all_live_without(reader, symbols, {victim.writer_id}),
        HANDOVER_S,
        "the killed worker's books LIVE on the others",
        lambda: _books(reader, symbols),
    )
    print(f"{len(orphaned)} symbols of a kill -9'd worker LIVE again in {took:.1f} s")
    _books_equal_exchange(reader, exchange, orphaned, 20)
    _assert_continuous(reader, symbols, last_stored)


@pytest.mark.slow  # ~70 s, 120 symbols; the default suite's short form: test_worker_lifecycle.py
@pytest.mark.timeout(240)
def test_a_paused_worker_is_fenced_and_rejoins_and_a_master_fails_over(
    market: Market,
    cluster: RedisCluster,  # noqa: F811 - the module's fixture
) -> None:
    exchange, reader, workers, symbols = (
        market.exchange,
        market.reader,
        market.workers,
        market.symbols,
    )
    victim, paused, third = workers
    victim.process.kill()  # two workers: the paused one's shards all go to the third
    _until(
        lambda: _all_live_without(reader, symbols, {victim.writer_id}),
        HANDOVER_S,
        "the killed worker's books LIVE on the others",
        lambda: _books(reader, symbols),
    )
    # SIGSTOP past the lease, then SIGCONT: late writes refused, it rejoins.
    paused.process.send_signal(signal.SIGSTOP)
    took = _until(
        lambda: _all_live_without(reader, symbols, {victim.writer_id, paused.writer_id}),
        LEASE_MS / 1000 + HANDOVER_S,
        "the paused worker's books LIVE on the third",
        lambda: _books(reader, symbols),
    )
    print(f"paused worker's symbols LIVE on the third in {took:.1f} s")
    paused.process.send_signal(signal.SIGCONT)
    _until(
        lambda: paused.writer_id in _live_owners(reader, symbols).values(),
        30,
        "the resumed worker owning LIVE books again",
        lambda: _books(reader, symbols),
    )
    refused = paused.refused_writes()
    print(f"late writes refused by the cluster: {refused}")
    assert refused > 0
    _until(
        lambda: _all_live_without(reader, symbols, {victim.writer_id}),
        HANDOVER_S,
        "every book LIVE after the rejoin",
        lambda: _books(reader, symbols),
    )
    _books_equal_exchange(reader, exchange, symbols, 30)
    _assert_continuous(reader, symbols, {})

    # A Redis master killed: its replica is promoted, every book LIVE again.
    stored = {s: int(ids[-1]) for s in symbols if (ids := _trade_ids(reader, s)).size}
    cluster.kill_master(0)
    killed_at = time.time()
    took = _until(
        lambda: (
            _all_live_without(reader, symbols, {victim.writer_id})
            and _all_written_since(reader, symbols, killed_at)
        ),
        30,
        "every book LIVE after a master failover",
        lambda: _books(reader, symbols),
    )
    print(f"every book LIVE {took:.1f} s after a master was killed")
    _books_equal_exchange(reader, exchange, symbols, 30)
    _assert_continuous(reader, symbols, stored)
    assert paused.process.poll() is None and third.process.poll() is None
