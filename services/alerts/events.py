"""Alert events (each firing of a rule) and where they are kept.

An event, as the webhook body and ``/api/alerts/events`` carry it::

    {"id": 17, "rule_id": "a1b2c3", "kind": "large_trade", "symbol": "BTCUSDT",
     "time_ms": 1617566623456, "details": {...}, "note": "", "sound": false,
     "delivery": {"webhook": {"status": "sent", "attempts": 2, "http_status": 200}}}

``id`` increases with every event of one log (so ``since=<id>`` pages forward); ``time_ms``
is the exchange time of the message that triggered it. ``delivery`` is filled in as the
webhook is tried (status ``pending``, ``sent`` or ``failed``); it is absent without a
webhook.

``EventLog`` is the seam to the history store: ``FileEventLog`` (the embedded default, an
append-only JSON-lines file) and ``RedisEventLog`` (several processes,
``services.alerts.redis_backend``) implement it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from services.alerts.firing import Firing

MAX_EVENTS = 10_000
"""Events kept (the oldest are dropped beyond this)."""


@dataclass(slots=True)
class AlertEvent:
    """One firing of a rule (see the module docstring)."""

    id: int
    rule_id: str
    kind: str
    symbol: str
    time_ms: int
    details: dict[str, Any]
    note: str = ""
    sound: bool = False
    delivery: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlertEvent:
        return cls(**data)

    @classmethod
    def of(cls, event_id: int, firing: Firing) -> AlertEvent:
        rule = firing.rule
        return cls(
            id=event_id,
            rule_id=rule.id,
            kind=rule.kind,
            symbol=firing.symbol,
            time_ms=firing.time_ms,
            details=firing.details,
            note=rule.note,
            sound=rule.sound,
            delivery={"webhook": {"status": "pending", "attempts": 0}} if rule.webhook else {},
        )


TIME_MS_FLOOR = 10**11
"""``since`` values at or above this are times in ms (2001 onwards), below it event ids."""


class EventLog(Protocol):
    """Where events are kept (ids assigned on append, newest kept up to ``MAX_EVENTS``)."""

    def append(self, firing: Firing) -> AlertEvent: ...

    def record_delivery(self, event_id: int, delivery: dict[str, Any]) -> None: ...

    def since(self, since: int = 0, limit: int = 200) -> list[AlertEvent]:
        """Events after event id ``since`` (or at/after time ``since`` in ms when it is at
        least ``TIME_MS_FLOOR``), newest first, at most ``limit``."""
        ...

    def fired_trade_ids(self) -> dict[tuple[str, str], int]:
        """Per (rule id, symbol): the newest trade id an event was fired on."""
        ...


def select(events: list[AlertEvent], since: int, limit: int) -> list[AlertEvent]:
    """``EventLog.since`` over events in id order."""
    if since >= TIME_MS_FLOOR:
        chosen = [e for e in events if e.time_ms >= since]
    else:
        chosen = [e for e in events if e.id > since]
    return chosen[::-1][:limit]


def newest_trade_ids(events: list[AlertEvent]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for event in events:
        trade_id = event.details.get("trade_id")
        if isinstance(trade_id, int):
            key = (event.rule_id, event.symbol)
            out[key] = max(out.get(key, -1), trade_id)
    return out


class FileEventLog:
    """Events in an append-only JSON-lines file (``events.jsonl`` in ``directory``): one
    ``{"event": …}`` line per event and one ``{"delivery": …}`` line per outcome, read
    back (the last ``MAX_EVENTS``) when opened. Written from the dispatcher thread."""

    def __init__(self, directory: Path, max_events: int = MAX_EVENTS) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "events.jsonl"
        self._max = max_events
        self._lock = threading.Lock()
        self._events: dict[int, AlertEvent] = {}
        self._next_id = 1
        self.appended: list[Callable[[AlertEvent], None]] = []  # told of each new event
        self._load()
        self._file = self.path.open("a", encoding="utf-8")

    def _load(self) -> None:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash
                if "event" in record:
                    event = AlertEvent.from_json(record["event"])
                    self._events[event.id] = event
                    self._next_id = max(self._next_id, event.id + 1)
                elif "delivery" in record:
                    event = self._events.get(record["delivery"]["id"])
                    if event is not None:
                        event.delivery = record["delivery"]["outcome"]
        self._trim()

    def _trim(self) -> None:
        while len(self._events) > self._max:
            del self._events[next(iter(self._events))]

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()

    def append(self, firing: Firing) -> AlertEvent:
        with self._lock:
            event = AlertEvent.of(self._next_id, firing)
            self._next_id += 1
            self._events[event.id] = event
            self._trim()
            self._write({"event": event.to_json()})
            for listener in self.appended:
                listener(event)
            return event

    def record_delivery(self, event_id: int, delivery: dict[str, Any]) -> None:
        with self._lock:
            event = self._events.get(event_id)
            if event is not None:
                event.delivery = delivery
            self._write({"delivery": {"id": event_id, "outcome": delivery}})

    def since(self, since: int = 0, limit: int = 200) -> list[AlertEvent]:
        with self._lock:
            return select(list(self._events.values()), since, limit)

    def fired_trade_ids(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return newest_trade_ids(list(self._events.values()))

    def close(self) -> None:
        with self._lock:
            self._file.close()
