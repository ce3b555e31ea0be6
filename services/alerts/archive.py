"""Alert events kept in the history store, readable by time or id range after any restart.

The ``alert-events`` dataset sits beside a symbol's trades and book in the history tree
(``services.history.segments``)::

    {root}/{market}/{SYMBOL}/alert-events/{YYYY-MM-DD}/{t0}_{t1}_{lo}_{hi}_{writer}.parquet

``t0``/``t1`` are the first and last event's exchange time (ms) and ``lo``/``hi`` the first
and last event id, so a query by time or by id opens only the files that can hold it. One
row is one *version* of an event: ``id``, ``time_ms``, ``rule_id``, ``kind``, ``written_ms``
(when the version was queued) and ``event`` (the event's JSON, as ``/api/alerts/events``
serves it). An event is written when it fires; an event with a webhook is written again
once its delivery is decided (``sent`` or ``failed``), and a reader keeps the newest
version of each id.

The dataset is registered with the history (``services.history.segments.ALERT_EVENTS``,
its columns in ``services.history.schema``), so the history's maintenance compacts it (the
segments of one hour merged into one, every version kept; a merged segment's name carries
no id range, ``lo = hi = 0``, and a read by id opens it) and its retention deletes it with
the rest of the history, by age and total size, oldest first.

Nothing here runs on the feed's thread: ``EventArchive.put`` only queues (it is called
from the dispatcher's thread), and a thread of the archive's own writes a segment per
symbol every ``flush_interval_s`` while there is something to write (atomically, as every
history segment). A kill -9 loses at most the last interval; the event log (file or Redis)
still holds those events.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from services.alerts.events import TIME_MS_FLOOR, AlertEvent, EventLog
from services.alerts.firing import Firing
from services.alerts.rules import Rule
from services.history import schema
from services.history.segments import (
    ALERT_EVENTS,
    WriterId,
    list_segments,
    symbols_in,
    write_segment,
)

log = logging.getLogger(__name__)

COLUMNS = schema.ALERT_EVENTS
FINAL = ("sent", "failed")
"""Webhook delivery states after which an event does not change any more."""


def _row(event: AlertEvent, written_ms: int) -> dict[str, Any]:
    return {
        "id": event.id,
        "time_ms": event.time_ms,
        "rule_id": event.rule_id,
        "kind": event.kind,
        "written_ms": written_ms,
        "event": orjson.dumps(event.to_json()).decode(),
    }


class EventArchive:
    """Writes alert events into the history under ``root`` (for ``market``, set by
    ``start``) and reads them back across every market and symbol."""

    def __init__(self, root: Path, flush_interval_s: float = 1.0) -> None:
        self.root = root
        self.market = "spot"
        self.flush_interval_s = flush_interval_s
        self.write_errors = 0
        self._queue: queue.SimpleQueue[tuple[str, dict[str, Any]] | None] = queue.SimpleQueue()
        self._writer = WriterId("a")
        self._thread: threading.Thread | None = None

    def start(self, market: str) -> EventArchive:
        """Begin writing, into ``market``'s part of the history."""
        self.market = market
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="alert-archive", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Write what is queued and stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(10.0)
            self._thread = None

    def put(self, event: AlertEvent) -> None:
        """Queue a version of ``event`` (as it is now) to be written."""
        self._queue.put((event.symbol, _row(event, int(time.time() * 1000))))

    def _run(self) -> None:
        pending: dict[str, list[dict[str, Any]]] = {}
        deadline = time.monotonic() + self.flush_interval_s
        while True:
            try:
                item = self._queue.get(timeout=max(deadline - time.monotonic(), 0.0))
            except queue.Empty:
                item = ()  # type: ignore[assignment]
            if item:
                pending.setdefault(item[0], []).append(item[1])
            if item is None or time.monotonic() >= deadline:
                pending = self._flush(pending)
                deadline = time.monotonic() + self.flush_interval_s
            if item is None:
                return

    def _flush(self, pending: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        """Write one segment per symbol; returns the rows not written (kept for the next
        interval after an error, never dropped)."""
        kept: dict[str, list[dict[str, Any]]] = {}
        for symbol, rows in pending.items():
            frame = pl.DataFrame(rows, schema=COLUMNS)
            try:
                write_segment(
                    self.root, self.market, symbol, ALERT_EVENTS, frame,
                    t0=int(frame["time_ms"].min()), t1=int(frame["time_ms"].max()),  # type: ignore[arg-type]
                    lo=int(frame["id"].min()), hi=int(frame["id"].max()),  # type: ignore[arg-type]
                    writer=self._writer.next(),
                )  # fmt: skip
            except OSError:
                self.write_errors += 1
                log.exception("alert events not written to the history (kept for a retry)")
                kept[symbol] = rows
        return kept

    def since(self, since: int = 0, limit: int = 200, below_id: int | None = None) -> list:
        """Events after id ``since`` (or at/after time ``since`` ms when it is at least
        ``TIME_MS_FLOOR``) and below id ``below_id`` (None: any), newest first, at most
        ``limit``; the newest version of each."""
        by_time = since >= TIME_MS_FLOOR
        frames = []
        for market, symbol in symbols_in(self.root):
            listing = list_segments(
                self.root, market, symbol, ALERT_EVENTS, COLUMNS, since if by_time else None
            )
            for segment in listing.segments:
                merged = segment.hi == 0  # compacted: its name holds no id range
                if not merged and (
                    (not by_time and segment.hi <= since)
                    or (below_id is not None and segment.lo >= below_id)
                ):
                    continue
                frames.append(pl.read_parquet(segment.path, columns=list(COLUMNS)))
        if not frames:
            return []
        rows = pl.concat(frames)
        rows = (
            rows.filter(pl.col("time_ms") >= since)
            if by_time
            else rows.filter(pl.col("id") > since)
        )
        if below_id is not None:
            rows = rows.filter(pl.col("id") < below_id)
        newest = (
            rows.sort("written_ms")
            .unique("id", keep="last")
            .sort("id", descending=True)
            .head(limit)
        )
        return [AlertEvent.from_json(orjson.loads(text)) for text in newest["event"]]


class ArchivedEventLog:
    """An ``EventLog`` (file or Redis) whose events are also kept in the history: appends
    and decided deliveries go to ``archive``; ``since`` reaches into the archive for what
    the log no longer holds (it keeps the newest ``MAX_EVENTS``; after a restart with a new
    log, nothing). Ids are the log's: the archive belongs with the same log (the same
    alerts directory or Redis), whose ids never restart."""

    def __init__(self, log: EventLog, archive: EventArchive) -> None:
        self.log = log
        self.archive = archive
        self._undecided: dict[int, AlertEvent] = {}
        self._lock = threading.Lock()

    @property
    def appended(self) -> list | None:
        """The log's append listeners when it has them (the file log): the push relay
        hands each event on as it is logged."""
        return getattr(self.log, "appended", None)

    def append(self, firing: Firing) -> AlertEvent | None:
        event = self.log.append(firing)
        if event is None:
            return None
        self.archive.put(event)
        if event.delivery:
            with self._lock:
                self._undecided[event.id] = event
        return event

    def end_episode(self, rule: Rule, symbol: str, update_id: int) -> None:
        """Passed on to a log that shares imbalance episodes between workers (Redis)."""
        end = getattr(self.log, "end_episode", None)
        if end is not None:
            end(rule, symbol, update_id)

    def open_episodes(self, symbol: str) -> set[str]:
        """The log's open imbalance episodes on ``symbol`` (none for a log of one process)."""
        found = getattr(self.log, "open_episodes", None)
        return found(symbol) if found is not None else set()

    def record_delivery(self, event_id: int, delivery: dict[str, Any]) -> None:
        self.log.record_delivery(event_id, delivery)
        if delivery.get("webhook", {}).get("status") not in FINAL:
            return
        with self._lock:
            event = self._undecided.pop(event_id, None)
        if event is not None:
            event.delivery = delivery
            self.archive.put(event)

    def since(self, since: int = 0, limit: int = 200) -> list[AlertEvent]:
        """The log's answer, completed from the archive only when the log may lack older
        matches (it does not hold every event from id 1, nor every id after ``since``)."""
        newest = self.log.since(since, limit)
        if len(newest) >= limit:
            return newest
        oldest = self.log.oldest_id()
        if oldest == 1 or (oldest is not None and since < TIME_MS_FLOOR and since + 1 >= oldest):
            return newest
        below = min(e.id for e in newest) if newest else oldest
        return newest + self.archive.since(since, limit - len(newest), below)

    def fired_trade_ids(self) -> dict[tuple[str, str], int]:
        return self.log.fired_trade_ids()

    def oldest_id(self) -> int | None:
        return self.log.oldest_id()
