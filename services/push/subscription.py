"""What one connected client is owed: a bounded queue of messages, or the latest value of a
coalesced stream. The hub offers, the client's sender takes; neither ever waits for the
other.

A ``Queue`` whose client falls ``max_queue`` messages behind is cut: it accepts nothing
more and its ``cut_reason`` says why, so the transport closes the connection with that
reason. A ``Latest`` slot holds one value and a version; a slow reader simply skips the
versions it missed (coalescing), so it never grows.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Subscription:
    """Common state of a client's subscription: why it was cut (if it was) and since when
    its sender has been blocked in a send (to abort a client that stopped reading)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.cut_reason: str | None = None
        self.closed = False
        self.sending_since: float | None = None
        self.abort: Callable[[], None] | None = None
        self.sent = 0

    def cut(self, reason: str) -> None:
        """Stop accepting messages; the sender closes the connection with ``reason``."""
        with self.cond:
            if self.cut_reason is None:
                self.cut_reason = reason
            self.cond.notify_all()

    def close(self) -> None:
        """The client is gone: accept nothing more."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def sending(self, started: bool) -> None:
        """Mark the start (True) or end (False) of a blocking send to the client."""
        self.sending_since = time.monotonic() if started else None
        if not started:
            self.sent += 1


class Queue(Subscription, Generic[T]):
    """A bounded FIFO of messages for one client (``max_queue`` items); offering to a full
    queue cuts the client instead of waiting or dropping silently."""

    def __init__(self, max_queue: int, backlog: list[T] | None = None) -> None:
        super().__init__()
        self.max_queue = max_queue
        self._items: deque[T] = deque(backlog or ())
        self._backlog = len(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def prepend(self, backlog: list[T]) -> None:
        """Put ``backlog`` (a resume's replay) before what is queued; it does not count
        against ``max_queue``."""
        with self.cond:
            self._items.extendleft(reversed(backlog))
            self._backlog += len(backlog)
            self.cond.notify()

    def offer(self, item: T) -> bool:
        """Queue ``item``; False (and the client is cut) when the queue is full, False when
        the subscription was already cut or closed."""
        with self.cond:
            if self.cut_reason is not None or self.closed:
                return False
            if len(self._items) - self._backlog >= self.max_queue:
                self.cut_reason = f"slow consumer: {self.max_queue} messages queued and not read"
                self._items.clear()
                self.cond.notify_all()
                return False
            self._items.append(item)
            self.cond.notify()
            return True

    def take(self, timeout: float) -> T | None:
        """The next message, waiting up to ``timeout`` s; None when there is none yet or the
        subscription was cut or closed."""
        with self.cond:
            if not self._items and self.cut_reason is None and not self.closed:
                self.cond.wait(timeout)
            if self.cut_reason is not None or self.closed or not self._items:
                return None
            if self._backlog:
                self._backlog -= 1
            return self._items.popleft()


class Latest(Subscription, Generic[T]):
    """The newest value of a coalesced stream and its version (1, 2, ... per change)."""

    def __init__(self, value: T | None = None) -> None:
        super().__init__()
        self._value = value
        self.version = 0 if value is None else 1

    def offer(self, value: T) -> bool:
        with self.cond:
            if self.cut_reason is not None or self.closed:
                return False
            self._value = value
            self.version += 1
            self.cond.notify()
            return True

    def current(self) -> tuple[int, T | None]:
        """The newest (version, value) right now."""
        with self.cond:
            return self.version, self._value

    def newer_than(self, version: int, timeout: float) -> tuple[int, T | None]:
        """(version, value) once the version exceeds ``version``, waiting up to ``timeout``
        s; the value is None when nothing newer came or the subscription ended."""
        with self.cond:
            if self.version <= version and self.cut_reason is None and not self.closed:
                self.cond.wait(timeout)
            if self.cut_reason is not None or self.closed or self.version <= version:
                return version, None
            return self.version, self._value
