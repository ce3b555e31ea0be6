"""Delivery: firings become stored events, and events with a webhook are POSTed as JSON.

The feed's thread only puts firings on a queue (``Dispatcher.submit``). The dispatcher's
thread appends them to the event log and hands each webhook event to the worker thread of
its target URL, so a slow or dead endpoint holds up only its own queue: never evaluation,
the event log, nor other endpoints. Each request is tried up to ``attempts`` times with
doubling delays (``backoff_s``, capped at ``backoff_cap_s``) on a connection error, a
timeout or a non-2xx answer; the outcome (``sent``/``failed``, attempts, last HTTP status
or error) is recorded on the event.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from services.alerts.events import AlertEvent, EventLog
from services.alerts.firing import EpisodeEnd, Firing
from services.alerts.rules import Rule
from services.alerts.webhook_policy import WebhookPolicy

log = logging.getLogger(__name__)

WEBHOOK_FIELDS = ("id", "rule_id", "kind", "symbol", "time_ms", "details")
"""What a webhook body holds (the event without its delivery record)."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Webhook attempts per event and the delays between them."""

    attempts: int = 4
    backoff_s: float = 0.25
    backoff_cap_s: float = 5.0
    timeout_s: float = 3.0
    max_queued: int = 1000

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.backoff_s * 2 ** (attempt - 1), self.backoff_cap_s)


def webhook_body(event: AlertEvent) -> bytes:
    data = event.to_json()
    return json.dumps({k: data[k] for k in WEBHOOK_FIELDS}).encode()


class _Target:
    """One webhook URL: its queue, its thread and its kept-alive connection."""

    def __init__(self, url: str, owner: Dispatcher) -> None:
        self.url = url
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname or "", parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._owner = owner
        self._conn: http.client.HTTPConnection | None = None
        self.queue: queue.Queue[AlertEvent | None] = queue.Queue(owner.retry.max_queued)
        self.thread = threading.Thread(target=self._run, name="alerts-webhook", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (event := self.queue.get()) is not None and not self._owner.stopping:
            self._owner.record(event, self._deliver(event))
        if self._conn is not None:
            self._conn.close()

    def _deliver(self, event: AlertEvent) -> dict[str, Any]:
        retry, body = self._owner.retry, webhook_body(event)
        outcome: dict[str, Any] = {"status": "failed", "attempts": 0}
        for attempt in range(1, retry.attempts + 1):
            outcome["attempts"] = attempt
            try:
                self._owner.policy.check(self.url)
                status = self._post(body)
            except ValueError as exc:  # the policy refused the target: no retry
                outcome["error"] = str(exc)
                return outcome
            except (OSError, http.client.HTTPException) as exc:
                self._drop_connection()
                outcome["error"], status = repr(exc), None
            if status is not None:
                outcome["http_status"] = status
                if 200 <= status < 300:
                    outcome.pop("error", None)
                    outcome["status"] = "sent"
                    outcome["sent_at_ms"] = int(time.time() * 1000)
                    return outcome
            if attempt < retry.attempts and self._owner.wait(retry.delay(attempt)):
                break
        return outcome

    def _post(self, body: bytes) -> int:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self._owner.retry.timeout_s)
        headers = {"Content-Type": "application/json", "User-Agent": "tapescope-alerts"}
        self._conn.request("POST", self._path, body=body, headers=headers)
        response = self._conn.getresponse()
        response.read()
        if response.will_close:
            self._drop_connection()
        return response.status

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Dispatcher:
    """Stores firings as events and delivers their webhooks (see the module docstring)."""

    def __init__(
        self, events: EventLog, policy: WebhookPolicy | None = None, retry: Retry | None = None
    ) -> None:
        self.events = events
        self.policy = policy or WebhookPolicy()
        self.retry = retry or Retry()
        self._queue: queue.SimpleQueue[list[Firing | EpisodeEnd] | None] = queue.SimpleQueue()
        self._targets: dict[str, _Target] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Dispatcher:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
            self._thread.start()
        return self

    def end_episode(self, rule: Rule, symbol: str, update_id: int) -> None:
        """Queue the end of ``rule``'s imbalance episode on ``symbol`` (seen at the book's
        ``update_id``), in order with the firings, for a log that shares episodes between
        workers (its ``end_episode``; other logs need nothing)."""
        self._queue.put([EpisodeEnd(rule, symbol, update_id)])

    def submit(self, firings: list[Firing]) -> None:
        """Queue firings (from the feed's thread; never blocks)."""
        self._queue.put(firings)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep between attempts; True when the dispatcher is stopping."""
        return self._stopping.wait(seconds)

    def _run(self) -> None:
        while (firings := self._queue.get()) is not None:
            for firing in firings:
                try:
                    if isinstance(firing, EpisodeEnd):
                        end = getattr(self.events, "end_episode", None)
                        if end is not None:
                            end(firing.rule, firing.symbol, firing.update_id)
                        continue
                    self._store(firing)
                except Exception:
                    log.exception("alert event not stored: %s", firing)

    def _store(self, firing: Firing) -> None:
        event = self.events.append(firing)
        url = firing.rule.webhook
        if event is not None and url:
            target = self._targets.get(url)
            if target is None:
                target = self._targets[url] = _Target(url, self)
            try:
                target.queue.put_nowait(event)
            except queue.Full:
                self.record(event, {"status": "failed", "attempts": 0, "error": "queue full"})

    def record(self, event: AlertEvent, outcome: dict[str, Any]) -> None:
        event.delivery = {"webhook": outcome}
        try:
            self.events.record_delivery(event.id, event.delivery)
        except Exception:
            log.exception("webhook outcome not recorded for event %s", event.id)

    def drain(self, timeout_s: float = 5.0) -> None:
        """Wait until every queued firing is stored (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while not self._queue.empty() and time.monotonic() < deadline:
            time.sleep(0.005)

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stopping.set()
        self._queue.put(None)
        for target in self._targets.values():
            with contextlib.suppress(queue.Full):  # a full queue's thread stops on _stopping
                target.queue.put_nowait(None)
        if self._thread is not None:
            self._thread.join(timeout_s)
        for target in self._targets.values():
            target.thread.join(timeout_s)
