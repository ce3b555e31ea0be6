"""Status bar: where the data comes from and how fresh and trustworthy it is.

Each item is a badge whose level is ``ok`` (green), ``warn`` (amber) or ``bad`` (red). A
replay is always amber and names the recording's original date, so it cannot be mistaken
for the live market; a snapshot older than ``STALE_AFTER_S`` is shown as stale, never live.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from dash import html

from components.stamp import stamp

STALE_AFTER_S = 3.0
LAG_WARN_MS = 1_000.0
LAG_BAD_MS = 5_000.0
UNAVAILABLE = "UNAVAILABLE"
"""The book's state when the store cannot read it now (e.g. a Redis failover)."""
_ITEM = html.Span([], className="status-item")


@dataclass(frozen=True, slots=True)
class StatusItem:
    """One badge: a label, its value and a level (ok / warn / bad)."""

    label: str
    value: str
    level: str


def _recorded(date: str) -> str:
    return date.replace("T", " ").removesuffix("Z")[:19] + " UTC" if date else "unknown date"


def status_items(
    *,
    source: str | None,
    recording_date: str = "",
    connection_state: str = "",
    reconnects: int = 0,
    messages_per_s: float = 0.0,
    event_lag_ms: float | None = None,
    sync_state: str | None = None,
    update_age_s: float | None = None,
    owner: tuple[str, float] | None = None,
) -> list[StatusItem]:
    """The badges for a feed status and a symbol's latest snapshot (``None`` = not yet,
    ``UNAVAILABLE`` = the store cannot read it now);
    ``owner``: the ingest worker holding the symbol's shard and since when (wall s), when
    workers share the market over a Redis Cluster."""
    if source is None:
        return [StatusItem("feed", "not started", "bad")]
    items = []
    if source == "REPLAY":
        items.append(StatusItem("source", f"REPLAY · recorded {_recorded(recording_date)}", "warn"))
    else:
        items.append(StatusItem("source", source, "ok"))
    items.append(
        StatusItem(
            "connection",
            connection_state or "unknown",
            "ok" if connection_state == "CONNECTED" else "bad",
        )
    )
    stale = update_age_s is None or update_age_s > STALE_AFTER_S
    if sync_state == UNAVAILABLE:
        items.append(StatusItem("book", "unavailable (store)", "bad"))
    elif sync_state is None:
        items.append(StatusItem("book", "waiting for data", "warn"))
    elif stale:
        items.append(StatusItem("book", "STALE", "bad"))
    else:
        items.append(StatusItem("book", sync_state, "ok" if sync_state == "LIVE" else "warn"))
    if owner is not None:
        since = time.strftime("%H:%M:%S", time.gmtime(owner[1]))
        items.append(StatusItem("worker", f"{owner[0]} since {since} UTC", "ok"))
    if event_lag_ms is None:
        items.append(StatusItem("lag", "–", "warn"))
    else:
        level = (
            "ok" if event_lag_ms < LAG_WARN_MS else "warn" if event_lag_ms < LAG_BAD_MS else "bad"
        )
        items.append(StatusItem("lag", f"{event_lag_ms:,.0f} ms", level))
    items.append(
        StatusItem("msg/s", f"{messages_per_s:,.0f}", "ok" if messages_per_s > 0 else "warn")
    )
    items.append(StatusItem("reconnects", str(reconnects), "ok" if reconnects == 0 else "warn"))
    if update_age_s is None:
        items.append(StatusItem("updated", "never", "bad"))
    else:
        items.append(StatusItem("updated", f"{update_age_s:.1f} s ago", "bad" if stale else "ok"))
    return items


@functools.lru_cache(maxsize=64)
def _label(label: str) -> html.Span:
    """A badge's label span; the same on every refresh, so built once."""
    return html.Span(label, className="status-label")


def create_status_bar(items: list[StatusItem]) -> list[html.Span]:
    """The badges as spans (``status-ok`` / ``status-warn`` / ``status-bad``)."""
    return [
        stamp(
            _ITEM,
            children=[_label(item.label), item.value],
            className=f"status-item status-{item.level}",
        )
        for item in items
    ]
