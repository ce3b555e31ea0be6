"""Structured logs: one line per event with its fields, and no storms of repeated faults.

``event_line("reconnect", conn=1, reason="closed by server: code 1001")`` gives
``event=reconnect conn=1 reason="closed by server: code 1001"``: ``key=value`` pairs in the
order given, values quoted (JSON string rules) only when they contain spaces, quotes, ``=``
or nothing at all, floats with at most 4 significant decimals. A line is easy to grep and to
split back into fields (``parse_line``).

``EventLog`` writes such lines to a ``logging.Logger``. Ordinary events (``event``) are
always written. Faults (``fault``) go through a per-kind summariser: the first fault of a
kind in a period of ``period_s`` seconds is written in full; the repeats are only counted
and, once the period is over, written as a single line::

    event=fault_summary fault=gap count=37 period_s=10 summary="37× gap in the last 10 s"

so a reconnect storm or a flood of malformed frames costs a few lines every ``period_s``
however many faults fire. ``flush`` writes the summaries whose period has ended (the feed
calls it from its publisher), ``flush(force=True)`` all of them (at shutdown).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

_PLAIN = re.compile(r"^[^\s\"=]+$")
_PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def format_value(value: object) -> str:
    """A field value as written in a line (quoted only when it has to be)."""
    if isinstance(value, bool) or value is None:
        text = str(value).lower()
    elif isinstance(value, float):
        text = f"{value:.4f}".rstrip("0").rstrip(".") if math.isfinite(value) else str(value)
    else:
        text = str(value)
    return text if _PLAIN.match(text) else json.dumps(text, ensure_ascii=False)


def event_line(event: str, **fields: object) -> str:
    """``event=<event> key=value ...`` in the order given."""
    parts = [f"event={format_value(event)}"]
    parts.extend(f"{key}={format_value(value)}" for key, value in fields.items())
    return " ".join(parts)


def parse_line(line: str) -> dict[str, str]:
    """The fields of a line written by ``event_line`` (values as strings, unquoted)."""
    fields: dict[str, str] = {}
    for key, value in _PAIR.findall(line):
        fields[key] = json.loads(value) if value.startswith('"') else value
    return fields


@dataclass(slots=True)
class _Period:
    """Faults of one kind since ``started`` (monotonic s): how many were not written."""

    started: float
    suppressed: int = 0


class EventLog:
    """Writes events as one line each; summarises repeated faults per kind.

    logger: where lines go. period_s: summary period per fault kind. clock: monotonic
    seconds (injectable for tests).
    """

    def __init__(
        self,
        logger: logging.Logger,
        period_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if period_s <= 0:
            raise ValueError("period_s must be positive")
        self.logger = logger
        self.period_s = period_s
        self._clock = clock
        self._periods: dict[str, _Period] = {}
        self.faults: dict[str, int] = {}

    def event(self, event: str, level: int = logging.INFO, **fields: object) -> None:
        """Write one event line."""
        if self.logger.isEnabledFor(level):
            self.logger.log(level, event_line(event, **fields))

    def fault(
        self, kind: str, level: int = logging.WARNING, *, times: int = 1, **fields: object
    ) -> None:
        """Count ``times`` faults of ``kind``; write the first unless one was written in
        this period (the rest go into the period's summary)."""
        self.faults[kind] = self.faults.get(kind, 0) + times
        now = self._clock()
        self.flush(now)
        period = self._periods.get(kind)
        if period is None:
            self._periods[kind] = _Period(now, suppressed=times - 1)
            self.event(kind, level, **fields)
        else:
            period.suppressed += times

    def flush(self, now: float | None = None, force: bool = False) -> None:
        """Write the summary of every fault kind whose period has ended (all if ``force``)."""
        now = self._clock() if now is None else now
        for kind, period in list(self._periods.items()):
            elapsed = now - period.started
            if not force and elapsed < self.period_s:
                continue
            del self._periods[kind]
            if period.suppressed:
                self.event(
                    "fault_summary",
                    logging.WARNING,
                    fault=kind,
                    count=period.suppressed,
                    period_s=round(elapsed, 1),
                    summary=f"{period.suppressed}× {kind} in the last {elapsed:.0f} s",
                )
