"""The alert events hub: where the alerts room publishes what fired, and what the
``/ws/alerts/`` stream fans out. The seam is one method, ``publish(event)``; an event is a
JSON-ready mapping (its schema belongs to the alerts room; the stream adds
``type: "alert"``).

Each client has a bounded queue like the trades stream; one that falls ``max_queue`` events
behind is cut with a reason. ``recent`` events (the last ``keep``) are sent first to a new
client, so a page that reconnects shows what fired while it was away.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping

from services.push.messages import alert_message
from services.push.subscription import Queue


class EventHub:
    """Fan-out of alert events to every ``/ws/alerts/`` client."""

    def __init__(self, max_queue: int = 256, keep: int = 50) -> None:
        self.max_queue = max_queue
        self._lock = threading.Lock()
        self._subs: set[Queue[bytes]] = set()
        self._recent: deque[bytes] = deque(maxlen=keep)
        self.published = 0
        self.cut = 0

    def publish(self, event: Mapping[str, object]) -> None:
        """Send ``event`` to every client (never waits for any)."""
        message = alert_message(dict(event))
        with self._lock:
            self._recent.append(message)
            self.published += 1
            subs = list(self._subs)
        for sub in subs:
            if not sub.offer(message) and sub.cut_reason is not None:
                with self._lock:
                    if sub in self._subs:
                        self._subs.discard(sub)
                        self.cut += 1

    def subscribe(self, recent: bool = True) -> Queue[bytes]:
        """A client's queue, starting with the recent events when ``recent``."""
        with self._lock:
            sub: Queue[bytes] = Queue(self.max_queue, list(self._recent) if recent else None)
            self._subs.add(sub)
            return sub

    def unsubscribe(self, sub: Queue[bytes]) -> None:
        sub.close()
        with self._lock:
            self._subs.discard(sub)

    def disconnect_all(self, reason: str) -> int:
        """Cut every client with ``reason``; how many."""
        with self._lock:
            subs, self._subs = list(self._subs), set()
        for sub in subs:
            sub.cut(reason)
        return len(subs)

    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)
