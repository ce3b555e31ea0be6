"""Which diff-depth stream feeds one spot book, and a make-before-break change of it.

Binance spot serves a symbol's diffs at two speeds, ``<s>@depth@100ms`` and ``<s>@depth``
(1000 ms). Both carry the same update-id chain: a 1 s diff is the aggregate of the 100 ms
diffs of its second (``U`` of the first, ``u`` of the last, each level's final quantity).
So a book at update id ``L`` may continue from either stream with a diff that has
``U <= L + 1 <= u`` — the very rule that bridges a REST snapshot: levels the diff touched
at ids up to ``L`` already hold their final quantity in the book.

A change of stream (``DepthStreams.begin``) subscribes the new stream while the old one
stays subscribed. Until the change completes the book applies the old stream's diffs and
the new stream's are held (at most ``MAX_HELD``, the newest kept). After every diff the
held ones are checked against the book: those with ``u < L`` are dropped; once the first
left has ``u == L`` (the new stream has reached the book exactly) or ``U <= L + 1`` it
(when not already in the book) and the rest are applied, the new stream becomes the
book's stream and the old one is retired (its late diffs are ignored until its
unsubscription lands).

A 1 s diff is pushed once its second is over, after the 100 ms diffs it aggregates: the
1 s stream trails the 100 ms one, and a book that kept applying 100 ms diffs would always
be ahead of it. So once the new stream shows it is behind the book (a diff with
``u < L``), the book stops applying the old stream and waits, exact and LIVE, for the new
stream's next diff, which continues from at or below ``L`` and so bridges it (at most one
period of the new stream later: the book is then as fresh as a 1 s book anyway).

The two streams' frames may interleave in any order — neither stream's diff is ever
checked against the other's chain, so no interleaving looks like a gap; a real gap in the
stream being applied still resyncs the book (``BookSync``).

A change falls back to a resync on the new stream (``abandon``: the book is dropped and the
held diffs are buffered for a snapshot) when the book loses sync meanwhile, or when held
diffs (or the old stream's diffs a waiting book skipped) waited ``BRIDGE_TIMEOUT_S``
without a bridge.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from services.binance.messages import DepthUpdate
from services.market.book_sync import BookSync

MAX_HELD = 100
"""Newest new-stream diffs held while a change waits to bridge (10 s of a 100 ms stream)."""
BRIDGE_TIMEOUT_S = 5.0
"""A change whose oldest held diff has waited this long without fitting the book falls back
to a resync on the new stream."""


@dataclass(slots=True)
class DepthSwitch:
    """A change of one book's diff stream in progress: the stream subscribed in addition
    (``new``) and its diffs held until one fits the book. ``held_since``: when (the
    caller's clock) the oldest diff held now was received. ``waiting``: the new stream
    was seen behind the book, which no longer applies the old stream; ``skipped_since``:
    when the first old-stream diff it skipped was received."""

    new: str
    held: deque[DepthUpdate] = field(default_factory=lambda: deque(maxlen=MAX_HELD))
    held_since: float | None = None
    waiting: bool = False
    skipped_since: float | None = None

    def hold(self, diff: DepthUpdate, now: float) -> None:
        """Keep one diff of the new stream (the oldest goes when ``MAX_HELD`` are held)."""
        if not self.held:
            self.held_since = now
        self.held.append(diff)

    def clear(self) -> None:
        """Forget the held diffs, and let the book apply the old stream again (a
        connection went down: the next new-stream diffs may not continue the held ones)."""
        self.held.clear()
        self.held_since = None
        self.waiting = False
        self.skipped_since = None

    def skip(self, now: float) -> None:
        """Note an old-stream diff a waiting book did not apply."""
        if self.skipped_since is None:
            self.skipped_since = now

    def bridge(self, last_update_id: int) -> list[DepthUpdate] | None:
        """The held diffs to apply to a book at ``last_update_id`` to complete the change
        now (possibly none: a held diff ends exactly at it), or None while the new stream
        is behind the book (held diffs below it are dropped and the book starts waiting)
        or ahead of it (the first held has ``U > last_update_id + 1``: kept)."""
        held = self.held
        while held and held[0].u < last_update_id:
            held.popleft()
            self.waiting = True
        if not held:
            self.held_since = None
            return None
        if held[0].u == last_update_id:
            held.popleft()
        elif last_update_id + 1 < held[0].U:
            return None
        ready = list(held)
        self.clear()
        return ready

    def overdue(self, now: float, timeout_s: float = BRIDGE_TIMEOUT_S) -> bool:
        """Whether held diffs, or the old-stream diffs a waiting book skipped, have waited
        longer than ``timeout_s`` without a bridge."""
        oldest = min(
            (t for t in (self.held_since, self.skipped_since) if t is not None), default=None
        )
        return oldest is not None and now - oldest > timeout_s


class DepthStreams:
    """The diff stream a spot book applies (``stream``) and the change to another in
    progress (``switch``, None when there is none). ``ignored``: diffs received from a
    stream the book does not apply (a retired one whose unsubscription has not landed).
    ``bridged``: whether the last change completed with a bridge (False: by a resync)."""

    __slots__ = ("bridged", "ignored", "stream", "switch")

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.switch: DepthSwitch | None = None
        self.ignored = 0
        self.bridged = True

    @property
    def wanted(self) -> str:
        """The stream the book applies once the change in progress (if any) completes."""
        return self.switch.new if self.switch is not None else self.stream

    @property
    def subscribed(self) -> tuple[str, ...]:
        """Every depth stream of the book that must be subscribed now."""
        if self.switch is None:
            return (self.stream,)
        return (self.stream, self.switch.new)

    def begin(self, new: str) -> None:
        """Start a change to ``new`` (subscribe it right after; the old stays subscribed)."""
        if new == self.stream:
            raise ValueError(f"the book already applies {new}")
        self.switch = DepthSwitch(new)

    def settle(self) -> None:
        """Drop a change in progress, its new stream becoming the book's (the caller
        resubscribes the depth afresh and resyncs the book)."""
        if self.switch is not None:
            self.stream, self.switch = self.switch.new, None

    def on_diff(
        self,
        stream: str,
        diff: DepthUpdate,
        book: BookSync,
        apply: Callable[[DepthUpdate], None],
        now: float,
    ) -> str | None:
        """Route one diff received on ``stream``: ``apply`` (which hands it to ``book``) the
        diffs the book takes now, in order. Returns the stream retired when the change
        completed (to unsubscribe), else None."""
        switch = self.switch
        if stream == self.stream:
            if switch is not None and switch.waiting:
                switch.skip(now)  # the book waits for the new stream to reach it
                return None
            apply(diff)
            if switch is None:
                return None
            if book.needs_snapshot:
                return self.abandon(book, apply, f"gap on {stream} while changing to {switch.new}")
            return self._complete(switch.bridge(book.last_update_id), apply)
        if switch is None or stream != switch.new:
            self.ignored += 1
            return None
        switch.hold(diff, now)
        if book.needs_snapshot:
            return self.abandon(book, apply, f"{self.stream} lost sync while changing")
        return self._complete(switch.bridge(book.last_update_id), apply)

    def _complete(
        self, ready: list[DepthUpdate] | None, apply: Callable[[DepthUpdate], None]
    ) -> str | None:
        if ready is None:
            return None
        assert self.switch is not None
        retired, self.stream, self.switch = self.stream, self.switch.new, None
        self.bridged = True
        for diff in ready:
            apply(diff)
        return retired

    def abandon(
        self, book: BookSync, apply: Callable[[DepthUpdate], None], reason: str
    ) -> str | None:
        """Complete the change without a bridge: the book restarts from a snapshot on the
        new stream, the held diffs first in its buffer. Returns the retired stream (None
        when no change was in progress)."""
        switch = self.switch
        if switch is None:
            return None
        retired, self.stream, self.switch = self.stream, switch.new, None
        self.bridged = False
        book.restart(reason)
        for diff in switch.held:
            apply(diff)
        return retired
