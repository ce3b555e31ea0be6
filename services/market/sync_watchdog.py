"""Self-healing for books that stay away from LIVE: the feed's SYNCING watchdog.

A book leaves LIVE on a gap, a disconnect or a take-over and comes back by Binance's
procedure (buffered diffs + a REST snapshot). That needs two things to arrive: a
snapshot and diffs. If either never does (a request lost somewhere, a subscription the
server dropped), nothing else would ever ask again. The watchdog notices a book that has
been away from LIVE for longer than ``bound_s`` and decides what to ask for:

* ``ASK_SNAPSHOT`` — diffs arrived since the last look, so the stream flows and the
  snapshot is what is missing: ask for one again (through the snapshot desk and the REST
  weight budget, like any request);
* ``ASK_SNAPSHOT`` too for a book held but STALE (a quiet market after a reconnect): a
  snapshot at its own update id confirms it without any diff;
* ``RESUBSCRIBE`` — no diff at all for the symbol since the last look: its depth stream
  is subscribed again.

It never touches a book: only ``BookSync`` makes one LIVE, when a snapshot and the diffs
bridge exactly. A book the snapshot desk holds (queued or in flight, e.g. waiting out a
418 ban) is not overdue: its wait starts again. After each action the next wait doubles
(up to ``max_bound_s``), so a symbol that cannot heal costs one request per
``max_bound_s``, never a tight loop.

``expected_snapshot_wait`` estimates how long a snapshot request takes now; the feed uses
twice that (at least its configured floor) as ``bound_s``.
"""

from __future__ import annotations

import enum
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


class WatchAction(enum.Enum):
    """What the feed must do for one overdue book."""

    ASK_SNAPSHOT = "ask_snapshot"
    RESUBSCRIBE = "resubscribe"


@dataclass(frozen=True, slots=True)
class BookWatch:
    """What the watchdog needs to know of one streamed book.

    live: the book is LIVE. diffs: depth diffs received for the symbol so far (any
    counter that grows with each one). busy: the snapshot desk holds the symbol (queued or
    in flight) or its connection is down (the reconnect owns it then). held: the book
    holds levels but is STALE (awaits a confirming snapshot).
    """

    live: bool
    diffs: int
    busy: bool = False
    held: bool = False


@dataclass(slots=True)
class _Away:
    """One book away from LIVE: since when (as the watchdog saw it), since when the
    current wait runs, the diffs count then, how many actions were taken, the last one."""

    since: float
    mark: float
    diffs: int
    rounds: int = 0
    last: WatchAction | None = None


def expected_snapshot_wait(
    recent_took_s: Sequence[float], backlog: int, concurrency: int, paused_for_s: float
) -> float:
    """Seconds a snapshot asked now should take: the budget's remaining pause (a 429/418)
    plus the median time of recent snapshots (1 s when none yet) for each round of
    ``concurrency`` desks the ``backlog`` (symbols queued or in flight) puts ahead."""
    took = statistics.median(recent_took_s) if recent_took_s else 1.0
    rounds = 1 + backlog / max(1, concurrency)
    return max(0.0, paused_for_s) + took * rounds


class SyncWatchdog:
    """Decides which books away from LIVE for too long get a snapshot asked again or their
    stream resubscribed (see the module docstring). ``clock`` is monotonic seconds."""

    def __init__(
        self, max_bound_s: float = 120.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_bound_s = max_bound_s
        self._clock = clock
        self._away: dict[str, _Away] = {}

    def away_s(self, symbol: str) -> float:
        """Seconds ``symbol``'s book has been away from LIVE, as far as the watchdog saw
        (0 when LIVE)."""
        away = self._away.get(symbol)
        return self._clock() - away.since if away is not None else 0.0

    def check(self, books: Mapping[str, BookWatch], bound_s: float) -> dict[str, WatchAction]:
        """The actions due now; call it every second or so with every streamed book."""
        now = self._clock()
        for symbol in [s for s in self._away if s not in books]:
            del self._away[symbol]
        due: dict[str, WatchAction] = {}
        for symbol, book in books.items():
            if book.live:
                self._away.pop(symbol, None)
                continue
            away = self._away.get(symbol)
            if away is None:
                self._away[symbol] = _Away(now, now, book.diffs)
                continue
            if book.busy:
                away.mark = now
                continue
            wait = min(bound_s * 2**away.rounds, max(bound_s, self.max_bound_s))
            if now - away.mark < wait:
                continue
            flowing = book.diffs != away.diffs
            if flowing or (book.held and away.last is not WatchAction.ASK_SNAPSHOT):
                action = WatchAction.ASK_SNAPSHOT
            else:
                action = WatchAction.RESUBSCRIBE
            due[symbol] = action
            away.mark, away.diffs, away.last = now, book.diffs, action
            away.rounds += 1
        return due
