"""``AlertRelay``: the alerts room's fired events onto the ``/ws/alerts/`` stream.

The alerts room keeps its events in an ``EventLog`` (a file in the embedded mode, Redis with
``REDIS_URL``), written by the ingest process. The relay reads the events newer than the
last one it handed over, oldest first, and publishes each (its ``to_json()`` fields) to the
``EventHub``; it starts after the newest event already logged, so a restart does not
re-announce old alerts. One relay per web process.

When the log is in this process and tells of its appends (``appended``, a list of
listeners: the file log, appended to by this process's dispatcher), the relay reads on
each append — the event reaches the clients as it is logged — and otherwise only every
``idle_s`` (a safety net). A log written by another process (Redis) is read every
``interval_s``.
"""

from __future__ import annotations

from typing import Any, Protocol

from services.push.events import EventHub
from services.push.poller import Poller


class LoggedEvent(Protocol):
    id: int

    def to_json(self) -> dict[str, Any]: ...


class EventSource(Protocol):
    def since(self, since: int = 0, limit: int = 200) -> list[Any]: ...


class AlertRelay:
    """Reads ``log`` for new events (on each append, or polling) and publishes them to
    ``hub``; ``on_append`` says which."""

    def __init__(
        self, log_: EventSource, hub: EventHub, interval_s: float = 0.25, idle_s: float = 10.0
    ) -> None:
        self.log = log_
        self.hub = hub
        self.last_id: int | None = None
        listeners = getattr(log_, "appended", None)
        self.on_append = isinstance(listeners, list)
        wait = idle_s if self.on_append else interval_s
        self._poller = Poller("tapescope-alert-relay", self.poll_once, wait)
        if self.on_append:
            listeners.append(lambda _event: self._poller.nudge())  # type: ignore[union-attr]

    def poll_once(self) -> int:
        """Publish the events logged since the last poll, oldest first; how many."""
        if self.last_id is None:
            newest = self.log.since(0, limit=1)
            self.last_id = newest[0].id if newest else 0
            return 0
        fresh = sorted(self.log.since(self.last_id), key=lambda e: e.id)
        for event in fresh:
            self.hub.publish(event.to_json())
            self.last_id = event.id
        return len(fresh)

    def start(self) -> None:
        """Poll in a daemon thread (once per process; later calls do nothing)."""
        self._poller.start()

    def stop(self) -> None:
        self._poller.stop()
