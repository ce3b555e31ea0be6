"""Time ranges of history queries: ``start``/``end`` given as ISO 8601 (UTC unless an
offset is given; ``Z`` accepted) or as epoch milliseconds, checked before any file is read."""

from __future__ import annotations

from datetime import UTC, datetime

from services.history.reader import HistoryError
from services.history.segments import DAY_MS


def parse_time(text: str, name: str) -> int:
    """Epoch ms of ``text`` (digits: epoch ms; else ISO 8601, naive = UTC)."""
    raw = text.strip()
    if raw.lstrip("-").isdigit():
        return int(raw)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise HistoryError(
            f"{name} must be ISO 8601 (e.g. 2024-08-08T23:55:00Z) or epoch milliseconds, "
            f"not {text!r}",
            400,
            parameter=name,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def checked_range(
    start: str | None, end: str | None, max_span_ms: int | None = None
) -> tuple[int | None, int | None]:
    """(start_ms, end_ms) of the optional texts; 400 when end is before start or the span
    is over ``max_span_ms``."""
    start_ms = parse_time(start, "start") if start else None
    end_ms = parse_time(end, "end") if end else None
    if start_ms is not None and end_ms is not None:
        if end_ms < start_ms:
            raise HistoryError("end is before start", 400, parameter="end")
        if max_span_ms is not None and end_ms - start_ms > max_span_ms:
            raise HistoryError(
                f"the range spans {(end_ms - start_ms) / DAY_MS:.2f} days, more than the "
                f"limit of {max_span_ms / DAY_MS:g} days",
                400,
                parameter="end",
                limit_days=max_span_ms / DAY_MS,
            )
    return start_ms, end_ms
