"""Each ingest worker's health for ``/healthz`` (several workers share one Redis store)."""

from __future__ import annotations

from typing import Any

from services.store import FeedStatus


def worker_health(
    statuses: dict[str, FeedStatus], now: float, max_age_s: float
) -> dict[str, dict[str, Any]]:
    """Per ingest worker: connection state, message rate, event lag and the age of its
    status (``publishing``: at most ``max_age_s`` old)."""
    return {
        writer: {
            "connection_state": status.connection_state,
            "messages_per_s": status.messages_per_s,
            "event_lag_ms": status.event_lag_ms,
            "age_s": round(now - status.published_at, 3),
            "publishing": now - status.published_at <= max_age_s,
        }
        for writer, status in statuses.items()
    }
