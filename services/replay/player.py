"""Plays a recorded session against the local exchange: clock, speed, re-stamping, looping.

Definitions:

* **speed** — recording seconds played per wall second; ``None`` means *max*: frames are
  played as fast as the slowest subscribed client reads them (bounded per-connection queues
  give back-pressure; nothing is buffered without bound). At max speed playback waits while
  no client is subscribed.
* **replay clock** — the exchange's time: the recorder's receive time of the frame being
  played now (corrected by the recording's clock skew, ``session.clock_skew_ns``: a recorder
  whose clock ran behind the exchange's would put the clock behind the events it plays),
  plus the pass's time offset. At speed ``s`` it advances ``s`` ms per wall ms
  (between frames too); at speed *max* it is the time of the last frame played. It is what
  ``/api/v3/time`` answers and what lag is measured against, so lag means the same thing
  at any speed.
* **time offset** — added to every event time (``E``, ``T``, kline ``t``/``T``). With the
  default time base ``recording`` it is 0 on the first pass: the replay shows when things
  really happened. With ``today`` it is the whole number of days that moves the recording's
  first frame to today (same time of day). Each further pass adds the recording's span
  rounded up to whole days, so times keep increasing and every kline interval up to 1 d
  stays aligned (recorded 1m bars open on minute boundaries in every pass).
* **id offsets** — per symbol, added to update ids (``U``, ``u``, ``pu``, bookTicker ``u``),
  trade ids (``t``, aggTrade ``f``/``l``, kline ``f``/``L``) and aggregate ids (``a``).
  They are 0 on the first pass. On each loop they are chosen so ids stay continuous after
  a **seam diff**: one derived diff (``U = last u + 1``) that turns the end-of-recording book
  back into the start book, so a client that stays synced across the seam stays consistent.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from services.replay.session import RecordedSession, ReplayEvent

TICK_NS = 100_000_000  # derived periodic streams run on a 100 ms recording-time grid
DAY_MS = 86_400_000
TIME_BASES = ("recording", "today")

_INTEGER_FIELD = re.compile(rb'"(\w+)":(-?\d+)(?=[,}])')
_TIME, _UPDATE, _TRADE, _AGG = 0, 1, 2, 3
_FIELDS_BY_KIND: dict[str, dict[bytes, int]] = {
    "depth": {b"E": _TIME, b"T": _TIME, b"U": _UPDATE, b"u": _UPDATE, b"pu": _UPDATE},
    "bookTicker": {b"E": _TIME, b"T": _TIME, b"u": _UPDATE},
    "trade": {b"E": _TIME, b"T": _TIME, b"t": _TRADE},
    "aggTrade": {b"E": _TIME, b"T": _TIME, b"a": _AGG, b"f": _TRADE, b"l": _TRADE},
    "kline": {b"E": _TIME, b"t": _TIME, b"T": _TIME, b"f": _TRADE, b"L": _TRADE},
}
_TIME_ONLY = {b"E": _TIME, b"T": _TIME}


@dataclass(slots=True)
class Offsets:
    """Offsets of one pass: time (ms) for all symbols, ids per symbol."""

    time_ms: int = 0
    update_ids: dict[str, int] = field(default_factory=dict)
    trade_ids: dict[str, int] = field(default_factory=dict)
    agg_ids: dict[str, int] = field(default_factory=dict)

    def restamp(self, event: ReplayEvent) -> bytes:
        """The event's payload with times and ids shifted; other bytes unchanged."""
        fields = _FIELDS_BY_KIND.get(event.kind, _TIME_ONLY)
        shift = (
            self.time_ms,
            self.update_ids.get(event.symbol, 0),
            self.trade_ids.get(event.symbol, 0),
            self.agg_ids.get(event.symbol, 0),
        )

        def replace(match: re.Match[bytes]) -> bytes:
            which = fields.get(match.group(1))
            value = int(match.group(2))
            if which is None or not shift[which] or value < 0:
                return match.group(0)
            return b'"%s":%d' % (match.group(1), value + shift[which])

        return _INTEGER_FIELD.sub(replace, event.data)


def pass_shift_ms(span_ms: int) -> int:
    """Time added per loop pass: the span rounded up to whole days (at least one day)."""
    return max(1, -(-span_ms // DAY_MS)) * DAY_MS


def tick_after(tick_ns: int, recording_ns: int) -> int:
    """The derived-stream tick after ``tick_ns`` when the next frame is at ``recording_ns``:
    one ``TICK_NS`` later, or, before a long quiet stretch, the first tick after that frame's
    grid step (skipping the empty ticks)."""
    tick_ns += TICK_NS
    if recording_ns - tick_ns > 50 * TICK_NS:
        tick_ns = recording_ns - recording_ns % TICK_NS + TICK_NS
    return tick_ns


def first_offset_ms(time_base: str, recording_start_ms: int, now_ms: int) -> int:
    """Time offset of the first pass: 0 for ``recording``; for ``today`` the whole days
    between the recording's first frame and ``now_ms``."""
    if time_base not in TIME_BASES:
        raise ValueError(f"time base must be one of {', '.join(TIME_BASES)}, not {time_base!r}")
    if time_base == "recording":
        return 0
    return max(0, now_ms - recording_start_ms) // DAY_MS * DAY_MS


class ReplayClock:
    """Maps recording time to wall time: a frame recorded at ``ts`` is due at
    ``wall_start + (ts − recording_start) / speed``; with speed ``None`` everything is due."""

    def __init__(self, speed: float | None) -> None:
        self.speed = speed
        self._wall_start = time.monotonic()
        self._recording_start = 0
        self.played_ns = 0  # recording time of the last frame played (speed max)

    def start(self, recording_ns: int) -> None:
        self._wall_start = time.monotonic()
        self._recording_start = recording_ns
        self.played_ns = recording_ns

    def recording_ns(self, monotonic_s: float | None = None) -> int:
        """Recording time at a ``time.monotonic()`` instant (default: now); at speed max,
        the time of the last frame played."""
        if self.speed is None:
            return self.played_ns
        at = time.monotonic() if monotonic_s is None else monotonic_s
        return self._recording_start + int((at - self._wall_start) * self.speed * 1e9)

    def set_speed(self, speed: float) -> None:
        """Play on at ``speed`` from the recording time reached now (no jump, no replay)."""
        now = time.monotonic()
        self._recording_start = self.recording_ns(now)
        self._wall_start = now
        self.speed = speed

    def shift(self, seconds: float) -> None:
        """Delay everything still to come (after a stall)."""
        self._wall_start += seconds

    def delay(self, recording_ns: int) -> float:
        """Seconds until a frame recorded at ``recording_ns`` is due (≤ 0: due now)."""
        if self.speed is None:
            return 0.0
        due = self._wall_start + (recording_ns - self._recording_start) / 1e9 / self.speed
        return due - time.monotonic()


class ReplaySink:
    """What the player drives (the exchange)."""

    async def wait_for_listeners(self) -> None: ...
    async def play(self, event: ReplayEvent, data: bytes) -> None: ...
    async def tick(self, exchange_ms: int) -> None: ...
    async def seam(self, offsets: Offsets) -> None: ...
    def last_ids(self, symbol: str) -> tuple[int, int, int]: ...
    async def stalled(self) -> float: ...


class Player:
    """Runs passes over a session until the end (or forever with ``loop``)."""

    def __init__(
        self,
        session: RecordedSession,
        sink: ReplaySink,
        speed: float | None = 1.0,
        loop: bool = False,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        time_base: str = "recording",
        first_pass: int = 0,
        first_offsets: Offsets | None = None,
    ) -> None:
        self.session = session
        self.sink = sink
        self.clock = ReplayClock(speed)
        self.clock.start(session.start_ns)
        self.loop = loop
        self.now_ms = now_ms
        self.time_base = time_base
        first_offset_ms(time_base, 0, 0)  # rejects an unknown time base now
        self.offsets = Offsets()
        self.first_pass = first_pass  # > 0: resume a whole number of passes later
        self.first_offsets = first_offsets  # that pass's offsets (``services.replay.passes``)
        self.passes = first_pass
        self.position = 0  # events played in the current pass
        self._resume_at: tuple[int, int] | None = None  # (event index, next tick) to go on from
        self.finished = asyncio.Event()

    @property
    def recording_start_ms(self) -> int:
        """Original (recorder) time of the recording's first frame, ms since the epoch."""
        return self.session.start_ns // 1_000_000

    def clock_ms(self, wall_s: float | None = None) -> int:
        """The replay clock (ms since the epoch) at a ``time.time()`` instant (default now);
        see the module docstring."""
        monotonic_s = None if wall_s is None else wall_s - time.time() + time.monotonic()
        return self.clock.recording_ns(monotonic_s) // 1_000_000 + self.offsets.time_ms

    def next_offsets(self) -> Offsets:
        """Offsets for the next pass (see the module docstring)."""
        if self.passes == self.first_pass:
            if self.first_offsets is not None:
                return self.first_offsets
            return Offsets(first_offset_ms(self.time_base, self.recording_start_ms, self.now_ms()))
        span_ms = (self.session.end_ns - self.session.start_ns) // 1_000_000 + 1
        offsets = Offsets(self.offsets.time_ms + pass_shift_ms(span_ms))
        for symbol, start in self.session.symbols.items():
            last_update, last_trade, last_agg = self.sink.last_ids(symbol)
            if start.first_diff_ids is not None:
                first, _, previous = start.first_diff_ids
                seam_final = last_update + 1
                if self.session.market == "usdm" and previous is not None:
                    offsets.update_ids[symbol] = seam_final - previous
                else:
                    offsets.update_ids[symbol] = seam_final + 1 - first
            first_trade, first_agg = self.first_trade_ids(symbol)
            if first_trade is not None and last_trade >= 0:
                offsets.trade_ids[symbol] = last_trade + 1 - first_trade
            if first_agg is not None and last_agg >= 0:
                offsets.agg_ids[symbol] = last_agg + 1 - first_agg
        return offsets

    def first_trade_ids(self, symbol: str) -> tuple[int | None, int | None]:
        """First trade id and first aggregate id of a symbol in the recording."""
        for event in self.session.events:
            if event.symbol != symbol:
                continue
            if event.kind == "trade":
                return _field(event.data, b"t"), None
            if event.kind == "aggTrade":
                return _field(event.data, b"f"), _field(event.data, b"a")
        return None, None

    async def fast_forward(
        self, reached: Callable[[], bool], kinds: frozenset[str] | None = None
    ) -> None:
        """Play the first pass into the sink at once, derived ticks included, until
        ``reached()`` (checked after each frame and tick); ``run`` then streams from that
        point on the replay clock. Used before anyone listens, so nothing is sent: the
        exchange's markets (books, trade logs, derived aggTrade ids) come out exactly as
        playing would have left them. ``kinds``: the event kinds that change the sink's
        state (the others are passed over; ticks still follow every event's time).
        Reached only at the pass's end: ``run`` starts at the next pass."""
        events = self.session.events
        self.offsets = self.next_offsets()
        next_tick = self.session.start_ns + TICK_NS
        index = 0
        done = reached()
        while index < len(events) and not done:
            event = events[index]
            self.position = index
            if next_tick <= event.ts_ns:
                await self.sink.tick((next_tick // 1_000_000) + self.offsets.time_ms)
                next_tick = tick_after(next_tick, event.ts_ns)
                done = reached()
                continue
            self.clock.played_ns = event.ts_ns
            index += 1
            if kinds is None or event.kind in kinds:
                await self.sink.play(event, self.offsets.restamp(event))
                done = reached()
        if index < len(events):
            self._resume_at = (index, next_tick)
            return
        self.position = len(events)
        await self.sink.tick(self.session.end_ns // 1_000_000 + self.offsets.time_ms)
        self.passes += 1

    async def run(self) -> None:
        """Play passes; without ``loop`` return after the first (the market goes quiet)."""
        events = self.session.events
        while True:
            begin, next_tick = 0, self.session.start_ns + TICK_NS
            if self._resume_at is not None:  # inside the first pass (``fast_forward``)
                begin, next_tick = self._resume_at
                self._resume_at = None
                self.clock.start(events[begin - 1].ts_ns if begin else self.session.start_ns)
            else:
                self.offsets = self.next_offsets()
                if self.passes > self.first_pass:
                    await self.sink.seam(self.offsets)
                self.clock.start(self.session.start_ns)
            for index in range(begin, len(events)):
                event = events[index]
                self.position = index
                next_tick = await self._wait(event.ts_ns, next_tick)
                self.clock.played_ns = event.ts_ns
                await self.sink.play(event, self.offsets.restamp(event))
                if index % 64 == 0:  # behind schedule or at max: let connections run
                    await asyncio.sleep(0)
            self.position = len(events)
            await self.sink.tick(self.session.end_ns // 1_000_000 + self.offsets.time_ms)
            self.passes += 1
            if not self.loop:
                break
        self.finished.set()

    async def _wait(self, recording_ns: int, next_tick: int) -> int:
        """Wait until a frame is due, running the derived-stream ticks that fall before it."""
        while True:
            if self.clock.speed is None:
                await self.sink.wait_for_listeners()
            stalled = await self.sink.stalled()
            if stalled:
                self.clock.shift(stalled)
            due = min(recording_ns, next_tick)
            delay = self.clock.delay(due)
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            if next_tick > recording_ns:
                return next_tick
            await self.sink.tick((next_tick // 1_000_000) + self.offsets.time_ms)
            next_tick = tick_after(next_tick, recording_ns)


def _field(data: bytes, name: bytes) -> int | None:
    match = re.search(b'"%s":(-?\\d+)' % name, data)
    return None if match is None else int(match.group(1))
