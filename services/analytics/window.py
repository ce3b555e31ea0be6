"""Trade windows: which rows of a ``TradeView`` a metric looks at.

A window ends at ``now_ms`` (default: the time of the last trade in the view, so analytics
never read a clock) and reaches back either ``window_ms`` milliseconds, the last ``last_n``
trades, or both (the last ``last_n`` trades inside the time window).
"""

from __future__ import annotations

import numpy as np

from services.market.views import TradeView

MINUTE_MS = 60_000
WINDOWS_MS: dict[str, int] = {
    "1m": MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
}


def resolve_now(view: TradeView, now_ms: int | None) -> int:
    """``now_ms`` if given, else the last trade's time (0 for an empty view)."""
    if now_ms is not None:
        return int(now_ms)
    return int(view.time_ms[-1]) if len(view) else 0


def select_window(
    view: TradeView,
    *,
    window_ms: int | None = None,
    last_n: int | None = None,
    now_ms: int | None = None,
) -> TradeView:
    """The trades with ``now_ms - window_ms < time_ms <= now_ms``, then at most the last
    ``last_n`` of them; columns are numpy views of the input, not copies.

    Without ``window_ms`` the window reaches back to the oldest trade; without ``last_n`` it
    keeps every trade in the time range.
    """
    n = len(view)
    if n == 0 or (window_ms is None and last_n is None and now_ms is None):
        return view
    now = resolve_now(view, now_ms)
    stop = int(np.searchsorted(view.time_ms, now, side="right"))
    start = 0
    if window_ms is not None:
        start = int(np.searchsorted(view.time_ms, now - int(window_ms), side="right"))
    if last_n is not None:
        start = max(start, stop - max(int(last_n), 0))
    start = min(start, stop)
    if start == 0 and stop == n:
        return view
    return TradeView(
        symbol=view.symbol,
        trade_id=view.trade_id[start:stop],
        time_ms=view.time_ms[start:stop],
        price=view.price[start:stop],
        qty=view.qty[start:stop],
        side=view.side[start:stop],
        kind=view.kind,
    )
