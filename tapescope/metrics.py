"""The numbers the Python API returns, computed from a ``SymbolSnapshot`` with the same
functions and parameters as the JSON API (``app.api``), as JSON-ready dicts — so an
in-process session and a running Tapescope give the same figures for the same snapshot.

Every dict carries ``symbol``, ``seq`` (the snapshot's publication number), ``sync_state``,
``published_at`` (UTC, ISO 8601 to the millisecond, as the JSON API) and ``market_time_ms``
(the snapshot's own clock).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from app.api import (
    last_trades_fields,
    multiple_fields,
    order_book_fields,
    snapshot_body,
    volume_profile_fields,
)
from app.callbacks import derived
from app.callbacks.derived import DerivedCache
from services.analytics.window import WINDOWS_MS
from services.store import SymbolSnapshot


def window_ms(window: str) -> int:
    """The length of a named time window ("1m", "5m", "15m", "1h")."""
    if window not in WINDOWS_MS:
        raise ValueError(f"window must be one of {', '.join(WINDOWS_MS)}, not {window!r}")
    return WINDOWS_MS[window]


def order_book(cache: DerivedCache, snapshot: SymbolSnapshot, levels: int) -> dict[str, Any]:
    """The top ``levels`` per side ([price, qty], best first) and the book summary."""
    return snapshot_body(snapshot, **order_book_fields(cache, snapshot, levels))


def trade_stats(cache: DerivedCache, snapshot: SymbolSnapshot, window: str) -> dict[str, Any]:
    """``TradeStats`` over the time ``window`` ending at the snapshot's clock."""
    stats = derived.trade_stats(cache, snapshot, window_ms(window))
    return snapshot_body(snapshot, window=window, stats=asdict(stats))


def trade_flow(cache: DerivedCache, snapshot: SymbolSnapshot, window: int | str) -> dict[str, Any]:
    """Buy vs sell aggression over the last ``window`` trades (an int, the seed's meaning:
    ``TradeStats`` of those trades) or a named time window (``TradeFlow``)."""
    if isinstance(window, int):
        if window < 1:
            raise ValueError("window must be at least 1 trade")
        return snapshot_body(snapshot, **last_trades_fields(snapshot, window))
    flow = derived.trade_flow(cache, snapshot, window_ms(window))
    return snapshot_body(snapshot, window=window, flow=asdict(flow))


def large_trades(snapshot: SymbolSnapshot, threshold: float) -> dict[str, Any]:
    """Trades of the window with qty ≥ ``threshold`` × the window's mean trade size."""
    if not threshold > 0:
        raise ValueError("threshold must be positive (a multiple of the mean trade size)")
    return snapshot_body(snapshot, **multiple_fields(snapshot.trades, threshold))


def volume_profile(cache: DerivedCache, snapshot: SymbolSnapshot, bins: int) -> dict[str, Any]:
    """Volume profile of the trade window in ``bins`` rows (POC, value area, per-row
    volumes and trade counts)."""
    return snapshot_body(snapshot, **volume_profile_fields(cache, snapshot, bins))
