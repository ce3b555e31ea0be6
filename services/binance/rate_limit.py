"""Rate limits Binance enforces, kept on our side so that we never hit them.

``SlidingWindowLimiter``: at most ``max_events`` in any ``window_s`` seconds. Used for
connection attempts (300 per 5 minutes per IP) and for control messages on one WebSocket
connection (Binance closes a connection that receives more than 5 messages per second,
pings, pongs and SUBSCRIBEs included).

``WeightBudget``: REST request weight per window (Binance counts weight per IP per minute
and reports it in ``X-MBX-USED-WEIGHT-1M``). Callers wait for room instead of failing; a
pause (after a 429 or a 418 ban, with ``Retry-After``) holds back every caller that shares
the budget.

``SharedWeightWindow``: the per-minute weight counter that processes on one host (one egress
IP) share, e.g. ``services.redis_weight.RedisWeightWindow``; a budget given one admits a
request only once the shared counter has room for it too.

``Priority``: requests of the same budget go out in priority order, then first come first
served: a book waiting for its snapshot (``SYNC``) is never queued behind trade warm-ups,
deepening or the watchlist's seed (``BACKGROUND``).

``default_weight_budget(market)``: what a feed may use when nobody says otherwise: 80 % of
Binance's limit per IP (6000 spot, 2400 USD-M), leaving room for other tools on the IP and
for the server's window not being aligned with ours.
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

BINANCE_WEIGHT_LIMIT = {"spot": 6000, "usdm": 2400}
"""Binance's REQUEST_WEIGHT limit per IP per minute (``exchangeInfo.rateLimits``)."""
SAFETY_MARGIN = 0.8
SHARED_TIMEOUT_S = 3.0
"""Longest wait for the host's shared weight counter; a slower answer counts as unreachable
(every caller waits in the budget's lock, so one hung call would stop all REST requests)."""


def default_weight_budget(market: str) -> int:
    """The feed's default REST weight per minute: ``SAFETY_MARGIN`` of Binance's limit."""
    return int(BINANCE_WEIGHT_LIMIT.get(market, 6000) * SAFETY_MARGIN)


class Priority(enum.IntEnum):
    """Order of admission among requests waiting in one ``WeightBudget`` (lower first).

    SYNC: a book waits for it (a depth snapshot to sync or confirm a book) or trades are
    held back by it (a trade-gap backfill). BACKGROUND: nothing waits for it (trade
    warm-ups, deepening a LIVE book, the watchlist's 24 h seed); it also leaves
    ``BACKGROUND_RESERVE`` of the burst to SYNC requests, and one waiting for room steps
    back when a SYNC request arrives.
    """

    SYNC = 0
    BACKGROUND = 1


SERVER_HEADROOM = 0.02
"""Share of its limit a ``WeightBudget`` leaves unused over any window: the server's count
of this process's own weight then stays below the limit. At exactly the limit the reported
weight held every request until the window ended — a 25 s stall in the middle of a cold
start of 1,500 symbols against a server counting a rolling minute."""
BACKGROUND_RESERVE = 0.5
"""Share of a budget's burst that ``BACKGROUND`` requests leave untouched, so the
snapshots asked right after a (re)connect go out at once rather than at the refill rate."""


class _PriorityTurn:
    """One holder at a time, handed over to the waiter of the lowest ``Priority`` (first
    come first served within one, by arrival number). A cancelled waiter leaves the queue;
    one cancelled just as it was handed the turn passes it on. ``preempted`` is set when a
    waiter of a lower value than the holder's arrives (a BACKGROUND holder waiting for room
    then steps back, see ``WeightBudget.acquire``)."""

    def __init__(self) -> None:
        self._held = False
        self._holder = Priority.SYNC
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()
        self.preempted = asyncio.Event()

    async def take(self, priority: Priority, arrival: int | None = None) -> int:
        """Wait for the turn; returns the caller's arrival number (pass it back to keep
        the caller's place when it takes the turn again)."""
        if arrival is None:
            arrival = next(self._arrivals)
        if not self._held and not self._waiters:
            self._grant(priority)
            return arrival
        if self._held and priority < self._holder:
            self.preempted.set()
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (int(priority), arrival, future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.give()
            raise
        return arrival

    def give(self) -> None:
        while self._waiters:
            priority, _, future = heapq.heappop(self._waiters)
            if not future.done():
                self._grant(Priority(priority))
                future.set_result(None)
                return
        self._held = False

    def _grant(self, priority: Priority) -> None:
        self._held = True
        self._holder = priority
        self.preempted.clear()

    async def preempted_within(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True as soon as a more urgent waiter arrives."""
        try:
            async with asyncio.timeout(seconds):  # unlike wait_for, never swallows a cancel
                await self.preempted.wait()
        except TimeoutError:
            return False
        return True


class SharedWeightWindow(Protocol):
    """A weight counter shared by every process on one IP, per window of wall-clock time."""

    async def take(self, weight: int, limit: int, window_s: float) -> float:
        """Count ``weight`` in the current window if it stays within ``limit`` and return 0;
        otherwise count nothing and return the seconds until the window ends."""
        ...


class SlidingWindowLimiter:
    """Admits at most ``max_events`` in any ``window_s`` seconds, first come first served."""

    def __init__(
        self,
        max_events: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_events < 1 or window_s <= 0:
            raise ValueError("max_events must be ≥ 1 and window_s > 0")
        self.max_events = max_events
        self.window_s = window_s
        self._clock = clock
        self._times: deque[float] = deque()
        self._lock = asyncio.Lock()

    def _expire(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window_s:
            self._times.popleft()

    def wait_time(self) -> float:
        """Seconds until one more event would be admitted (0 when there is room now)."""
        now = self._clock()
        self._expire(now)
        if len(self._times) < self.max_events:
            return 0.0
        return self._times[0] + self.window_s - now

    async def acquire(self) -> None:
        """Wait until the event fits in the window, then record it."""
        async with self._lock:
            while (wait := self.wait_time()) > 0:
                await asyncio.sleep(wait)
            self._times.append(self._clock())

    @property
    def in_window(self) -> int:
        """Events recorded in the current window."""
        self._expire(self._clock())
        return len(self._times)


class PausedTooLong(RuntimeError):
    """The budget is paused (rate limited or IP banned) for longer than the caller waits."""

    def __init__(self, remaining_s: float, reason: str) -> None:
        super().__init__(f"requests paused for {remaining_s:.1f} s more: {reason}")
        self.remaining_s = remaining_s
        self.reason = reason


@dataclass(slots=True)
class WeightGrant:
    """Weight a ``WeightBudget`` admitted, counted in its window log until ``counted_at``
    plus the window: the grant's time, moved to the answer's time by ``answered``."""

    weight: int
    counted_at: float


@dataclass(frozen=True, slots=True)
class BudgetStats:
    """Where a weight budget stands.

    used_weight: weight the server reported for the current window (``None`` before the
        first response of this window).
    available: local tokens available now.
    paused_for_s: seconds until requests may go out again (0 when not paused).
    pause_reason: why the last pause was set ('' if never).
    granted_weight: total weight admitted since start.
    waited_s: total time callers spent waiting for room.
    """

    limit: int
    window_s: float
    used_weight: int | None
    available: float
    paused_for_s: float
    pause_reason: str
    granted_weight: int
    waited_s: float


class WeightBudget:
    """REST weight admission: at most ``limit`` weight in any ``window_s`` seconds.

    Locally two bounds hold together. A log of the weight granted over the last
    ``window_s`` seconds admits at most ``limit - headroom`` in any such window (headroom:
    ``SERVER_HEADROOM`` of the limit), so a steady load runs at that full rate. A request
    stays in the log from its grant until a window after its answer (``answered``): the
    server counts it when it arrives, somewhere in between, so the server's own window of
    this process's weight never holds more than the log does. A token
    bucket holding at most ``burst`` weight, refilled at ``(limit - headroom) / window_s``
    per second, shapes herds: many symbols' snapshots after a reconnect get ``burst`` at
    once and are then staggered at the refill rate. On top of that, the weight
    the server reports (``record_used``) is respected until its window ends (windows are
    aligned to multiples of ``window_s`` of wall-clock time, like Binance's minutes), so
    weight used by other processes on the same IP counts too. ``pause`` holds every caller
    back until a deadline (429 / 418 ``Retry-After``). Waiting callers are admitted in
    ``Priority`` order (then in arrival order). ``shared``, when given, is the
    host's window counter (several processes on one IP): a request goes out only when it
    has room there too; a shared counter that cannot be reached is skipped (the local
    bucket and the server's reported weight still hold).
    """

    def __init__(
        self,
        limit: int = 1200,
        window_s: float = 60.0,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        shared: SharedWeightWindow | None = None,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be ≥ 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self.burst = min(limit, burst if burst is not None else max(1, limit // 4))
        self.window_limit = max(limit - int(limit * SERVER_HEADROOM), 1)
        self._refill_per_s = self.window_limit / window_s
        self._clock = clock
        self._wall = wall_clock
        self._tokens = float(self.burst)
        self._refilled_at = clock()
        self._log: deque[WeightGrant] = deque()
        self._logged = 0
        self._server_used: int | None = None
        self._server_window = -1
        self._paused_until = 0.0
        self._pause_reason = ""
        self._granted = 0
        self._waited = 0.0
        self._turn = _PriorityTurn()
        self.shared = shared
        self.shared_waits = 0
        self.shared_failures = 0

    def _window_index(self) -> int:
        return int(self._wall() // self.window_s)

    def _refill(self, now: float) -> None:
        self._tokens = min(
            float(self.burst), self._tokens + (now - self._refilled_at) * self._refill_per_s
        )
        self._refilled_at = now

    def _expire_log(self, now: float) -> None:
        """Drop the grants counted for a whole window, oldest grant first (one answered
        late keeps the ones granted after it: they are counted longer, never shorter)."""
        while self._log and self._log[0].counted_at <= now - self.window_s:
            self._logged -= self._log.popleft().weight

    def _log_wait(self, weight: int, now: float) -> float:
        """Seconds until the log leaves room for ``weight`` within ``window_limit`` (a
        weight larger than that waits for an empty log)."""
        self._expire_log(now)
        excess = self._logged + min(weight, self.window_limit) - self.window_limit
        if excess <= 0:
            return 0.0
        freed_at = now
        for grant in self._log:
            freed_at = max(freed_at, grant.counted_at + self.window_s)
            excess -= grant.weight
            if excess <= 0:
                break
        return freed_at - now

    def _take(self, weight: int) -> WeightGrant:
        """Count ``weight`` as granted now: out of the bucket and into the window's log."""
        grant = WeightGrant(weight, self._clock())
        self._tokens -= min(float(weight), float(self.burst))
        self._log.append(grant)
        self._logged += weight
        self._granted += weight
        return grant

    def answered(self, grant: WeightGrant) -> None:
        """The request ``grant`` admitted has its answer (or gave up): it stays counted
        for a window from now."""
        grant.counted_at = max(grant.counted_at, self._clock())

    def _server_used_now(self) -> int | None:
        return self._server_used if self._server_window == self._window_index() else None

    def _wait_time(self, weight: int, reserve: int = 0) -> float:
        """Seconds until ``weight`` fits with ``reserve`` tokens left over (0: now)."""
        now = self._clock()
        if self._paused_until > now:
            return self._paused_until - now
        self._refill(now)
        need = min(float(weight + reserve), float(self.burst))
        waits = [0.0]
        if self._tokens < need:
            waits.append((need - self._tokens) / self._refill_per_s)
        waits.append(self._log_wait(weight + reserve, now))
        used = self._server_used_now()
        if used is not None and used + weight > self.limit:
            wall = self._wall()
            waits.append((self._window_index() + 1) * self.window_s - wall + 0.01)
        return max(waits)

    def paused_for(self) -> float:
        """Seconds until the current pause ends (0 when not paused)."""
        return max(0.0, self._paused_until - self._clock())

    async def acquire(
        self, weight: int, max_pause_s: float | None = None, priority: Priority = Priority.SYNC
    ) -> WeightGrant:
        """Wait until ``weight`` fits, then take it; waiting callers of a lower
        ``priority`` value go first. Pass the grant to ``answered`` once the request has
        its answer.

        Raises ``PausedTooLong`` when the budget is paused for more than ``max_pause_s``
        (e.g. a long IP ban) instead of waiting that long.
        """
        started = self._clock()
        turn = self._turn
        reserve = int(self.burst * BACKGROUND_RESERVE) if priority is Priority.BACKGROUND else 0
        arrival = await turn.take(priority)
        holding = True
        try:
            while True:
                paused = self.paused_for()
                if max_pause_s is not None and paused > max_pause_s:
                    raise PausedTooLong(paused, self._pause_reason)
                wait = self._wait_time(weight, reserve)
                if wait <= 0:
                    wait = await self._shared_wait(weight)
                if wait <= 0:
                    break
                if priority is Priority.SYNC:
                    await asyncio.sleep(wait)
                elif await turn.preempted_within(wait):  # a sync request came: it goes first
                    holding = False
                    turn.give()
                    await turn.take(priority, arrival)
                    holding = True
            grant = self._take(weight)
        finally:
            if holding:
                turn.give()
        self._waited += self._clock() - started
        return grant

    async def _shared_wait(self, weight: int) -> float:
        """0 once the host's shared counter took ``weight``, else how long to wait."""
        if self.shared is None:
            return 0.0
        try:
            wait = await asyncio.wait_for(
                self.shared.take(weight, self.limit, self.window_s), SHARED_TIMEOUT_S
            )
        except Exception:  # unreachable or too slow: skipped, the local bucket still holds
            self.shared_failures += 1
            return 0.0
        if wait > 0:
            self.shared_waits += 1
        return wait

    def record_used(self, used_weight: int) -> None:
        """Weight the server reports as used in its current window."""
        window = self._window_index()
        if window != self._server_window:
            self._server_window = window
            self._server_used = used_weight
        else:
            self._server_used = max(self._server_used or 0, used_weight)

    def pause(self, seconds: float, reason: str) -> None:
        """Hold every request back for ``seconds`` (extends, never shortens, a pause)."""
        until = self._clock() + max(0.0, seconds)
        if until > self._paused_until:
            self._paused_until = until
            self._pause_reason = reason

    def stats(self) -> BudgetStats:
        """Current standing of the budget."""
        self._refill(self._clock())
        return BudgetStats(
            limit=self.limit,
            window_s=self.window_s,
            used_weight=self._server_used_now(),
            available=self._tokens,
            paused_for_s=self.paused_for(),
            pause_reason=self._pause_reason,
            granted_weight=self._granted,
            waited_s=self._waited,
        )
