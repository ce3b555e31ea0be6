"""Fault injection for the local exchange: what a real Binance connection can do to a client.

Each method arms a fault; the exchange consults this object as it sends frames and answers
requests. Every fault that actually fires is counted by kind (``counts``), so tests and the
``/tapescope/stats`` route can tell what happened.

Kinds: ``drop_connection`` (TCP closed without a close frame), ``server_shutdown``
(``serverShutdown`` event, then close 1001), ``stall`` (no frames for a while; pings go on),
``gap`` (a diff withheld from every client while the book still applies it),
``duplicate`` / ``reorder`` / ``malformed`` (frames sent twice / swapped with the next one /
replaced by broken JSON), ``rest_error`` (429/418/451/5xx with Binance's body and
``Retry-After``), ``snapshot_delay`` (depth responses held back; the book is read at
request time, so the snapshot is older than the stream).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

REST_ERROR_BODIES: dict[int, dict] = {
    429: {
        "code": -1003,
        "msg": "Too much request weight used; current limit is 6000 request weight per "
        "1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.",
    },
    451: {
        "code": 0,
        "msg": "Service unavailable from a restricted location according to 'b. Eligibility' "
        "in https://www.binance.com/en/terms. Please contact customer service if you "
        "believe you received this message in error.",
    },
}


def rest_error_body(
    status: int, retry_after: int, now_ms: int | None = None, weight_limit: int = 6000
) -> dict:
    """Binance's error body for an HTTP status; ``now_ms`` is the exchange's clock (a 418
    ban lasts until ``now_ms + retry_after``), ``weight_limit`` the market's per-minute
    weight limit named by a 429."""
    if status == 418:
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        until = now + retry_after * 1000
        return {
            "code": -1003,
            "msg": f"Way too much request weight used; IP banned until {until}. Please use "
            "WebSocket Streams for live updates to avoid bans.",
        }
    if status == 429:
        body = REST_ERROR_BODIES[429]
        return body | {"msg": body["msg"].replace("6000", str(weight_limit))}
    if status in REST_ERROR_BODIES:
        return REST_ERROR_BODIES[status]
    return {"code": -1000, "msg": "An unknown error occurred while processing the request."}


@dataclass(slots=True)
class RestError:
    """An armed REST failure: ``remaining`` requests whose path starts with one of
    ``paths`` (all paths when empty) get ``status``."""

    status: int
    remaining: int
    retry_after: int
    paths: tuple[str, ...] = ()


@dataclass(slots=True)
class FrameFaults:
    """Counters of armed per-frame faults."""

    duplicate: int = 0
    reorder: int = 0
    malformed: int = 0
    gaps: set[str] = field(default_factory=set)


class Faults:
    """Fault switchboard of one exchange; the exchange installs the connection actions."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.frames = FrameFaults()
        self.rest_errors: list[RestError] = []
        self.snapshot_delay = 0.0
        self.stall_until = 0.0
        self.stall_started = 0.0
        self.periodic: list[asyncio.Task] = []
        self._drop: Callable[[], int] = lambda: 0
        self._shutdown: Callable[[float], int] = lambda grace: 0
        self._symbols: Callable[[], list[str]] = list

    def install(
        self,
        drop: Callable[[], int],
        shutdown: Callable[[float], int],
        symbols: Callable[[], list[str]],
    ) -> None:
        self._drop, self._shutdown, self._symbols = drop, shutdown, symbols

    def count(self, kind: str, n: int = 1) -> None:
        self.counts[kind] += n

    # connection faults

    def drop_connections(self) -> int:
        """Close every WebSocket connection's TCP stream at once (client sees 1006)."""
        dropped = self._drop()
        self.count("drop_connection", dropped)
        return dropped

    def server_shutdown(self, grace: float = 0.5) -> int:
        """Send ``serverShutdown`` to every connection and close them after ``grace`` s."""
        told = self._shutdown(grace)
        self.count("server_shutdown", told)
        return told

    def stall(self, seconds: float) -> None:
        """Send no frames for ``seconds`` (connections stay open, pings continue); the
        replay resumes where it was."""
        now = time.monotonic()
        if self.stall_until <= now:
            self.stall_started = now
        self.stall_until = max(self.stall_until, now + seconds)
        self.count("stall")

    def disconnect_every(self, seconds: float) -> None:
        """Drop every connection each ``seconds`` (until ``cancel_periodic``)."""
        self._every(seconds, self.drop_connections)

    def gap_every(self, seconds: float) -> None:
        """Withhold one diff of every symbol each ``seconds``."""
        self._every(seconds, lambda: [self.drop_next_diff(s) for s in self._symbols()])

    def stall_every(self, seconds: float, stall_seconds: float) -> None:
        """Stall for ``stall_seconds`` each ``seconds``."""
        self._every(seconds, lambda: self.stall(stall_seconds))

    def _every(self, seconds: float, action: Callable[[], object]) -> None:
        async def repeat() -> None:
            while True:
                await asyncio.sleep(seconds)
                action()

        self.periodic.append(asyncio.get_running_loop().create_task(repeat()))

    def cancel_periodic(self) -> None:
        for task in self.periodic:
            task.cancel()
        self.periodic.clear()

    # frame faults

    def drop_next_diff(self, symbol: str) -> None:
        """Withhold the next diff of ``symbol`` from every client (a gap in ``U``/``pu``)."""
        self.frames.gaps.add(symbol.upper())

    def duplicate_next(self, n: int = 1) -> None:
        """Send each of the next ``n`` data frames twice."""
        self.frames.duplicate += n

    def reorder_next(self, n: int = 1) -> None:
        """Swap each of the next ``n`` data frames with the frame after it."""
        self.frames.reorder += n

    def malformed_next(self, n: int = 1) -> None:
        """Replace the next ``n`` data frames with truncated, invalid JSON."""
        self.frames.malformed += n

    def take_gap(self, symbol: str) -> bool:
        """True (and counted) when this diff of ``symbol`` is to be withheld."""
        if symbol in self.frames.gaps:
            self.frames.gaps.discard(symbol)
            self.count("gap")
            return True
        return False

    # REST faults

    def rest_error(
        self,
        status: int,
        count: int = 1,
        retry_after: int = 10,
        paths: tuple[str, ...] | list[str] = (),
    ) -> None:
        """Answer the next ``count`` REST requests (on ``paths``) with ``status``."""
        self.rest_errors.append(RestError(status, count, retry_after, tuple(paths)))

    def delay_snapshots(self, seconds: float) -> None:
        """Hold every depth response back ``seconds`` (0 turns it off)."""
        self.snapshot_delay = seconds

    def take_rest_error(self, path: str) -> RestError | None:
        """The armed error for this request, if any (counted)."""
        for armed in self.rest_errors:
            if armed.remaining > 0 and (not armed.paths or path.startswith(armed.paths)):
                armed.remaining -= 1
                self.count(f"rest_{armed.status}")
                return armed
        self.rest_errors = [e for e in self.rest_errors if e.remaining > 0]
        return None

    async def wait_stall(self) -> float:
        """Wait out an active stall; returns its whole length (0 when none), by which the
        replay clock is to be shifted so that nothing bursts out afterwards."""
        if self.stall_until <= time.monotonic():
            return 0.0
        while (left := self.stall_until - time.monotonic()) > 0:
            await asyncio.sleep(left)
        return self.stall_until - self.stall_started

    def stats(self) -> dict[str, int]:
        return dict(self.counts)
