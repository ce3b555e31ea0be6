"""``AlertRelay``: the alerts room's fired events onto the ``/ws/alerts/`` stream.

The alerts room keeps its events in an ``EventLog`` (a file in the embedded mode, Redis with
``REDIS_URL``), written by the ingest process. The relay reads the events newer than the
last one it handed over, every ``interval_s``, oldest first, and publishes each (its
``to_json()`` fields) to the ``EventHub``; it starts after the newest event already logged,
so a restart does not re-announce old alerts. One relay per web process.
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
    """Polls ``log`` for new events and publishes them to ``hub``."""

    def __init__(self, log_: EventSource, hub: EventHub, interval_s: float = 0.25) -> None:
        self.log = log_
        self.hub = hub
        self.last_id: int | None = None
        self._poller = Poller("tapescope-alert-relay", self.poll_once, interval_s)

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
