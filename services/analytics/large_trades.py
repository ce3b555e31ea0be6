"""Large trades: prints whose quote notional reaches an absolute tier, or whose size is a
multiple of the window's mean.

With an ``aggTrade`` view one row is one taker order at one price (fills already merged),
which is what "a large trade" means on a tape; with a ``trade`` view it is one fill.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.analytics.window import resolve_now, select_window
from services.market.views import TradeView

DEFAULT_TIERS_QUOTE: tuple[float, ...] = (100_000.0, 250_000.0, 1_000_000.0)


@dataclass(frozen=True, slots=True)
class LargeTrade:
    """One large trade.

    trade_id, time_ms, price, qty (base): the trade. quote_qty: price·qty.
    side: the taker's side, "buy" or "sell".
    tier: index of the highest absolute tier reached (0 = the smallest threshold), −1 when
    the trade is large only by the relative rule. threshold: that tier's quote threshold
    (NaN for tier −1). relative: qty ≥ relative_k × the window's mean qty.
    """

    trade_id: int
    time_ms: int
    price: float
    qty: float
    quote_qty: float
    side: str
    tier: int
    threshold: float
    relative: bool


@dataclass(frozen=True, slots=True)
class LargeTrades:
    """The large trades of a window, newest first.

    rows: the trades. tiers_quote: the absolute thresholds (quote notional, ascending).
    count_by_tier[i]: rows whose highest tier is i. relative_k: the relative multiple
    (None: rule off). mean_qty: mean base qty of the window's trades (NaN when empty).
    relative_threshold_qty: relative_k × mean_qty (NaN when the rule is off or the window
    has no volume, in which case no trade is relatively large).
    window_count: trades examined.
    """

    rows: tuple[LargeTrade, ...]
    tiers_quote: tuple[float, ...]
    count_by_tier: tuple[int, ...]
    relative_k: float | None
    mean_qty: float
    relative_threshold_qty: float
    window_count: int


def large_trades(
    view: TradeView,
    *,
    tiers_quote: Sequence[float] = DEFAULT_TIERS_QUOTE,
    relative_k: float | None = None,
    window_ms: int | None = None,
    now_ms: int | None = None,
) -> LargeTrades:
    """Trades with quote notional ≥ the smallest of ``tiers_quote`` (each tagged with the
    highest tier reached) or, when ``relative_k`` is given, with qty ≥ ``relative_k`` × the
    window's mean qty; newest first."""
    tiers = tuple(sorted(float(t) for t in tiers_quote))
    w = select_window(view, window_ms=window_ms, now_ms=resolve_now(view, now_ms))
    n = len(w)
    mean_qty = float(w.qty.mean()) if n else float("nan")
    use_relative = relative_k is not None and n > 0 and mean_qty > 0
    rel_qty = relative_k * mean_qty if use_relative else float("nan")
    quote = w.price * w.qty
    tier = np.searchsorted(np.asarray(tiers, dtype=np.float64), quote, side="right") - 1
    relative = w.qty >= rel_qty if use_relative else np.zeros(n, dtype=bool)
    hit = np.flatnonzero((tier >= 0) | relative)[::-1]
    counts = np.bincount(tier[tier >= 0], minlength=len(tiers)) if tiers else np.empty(0)
    rows = tuple(
        LargeTrade(
            trade_id=i,
            time_ms=t,
            price=p,
            qty=q,
            quote_qty=p * q,
            side="buy" if s > 0 else "sell",
            tier=k,
            threshold=tiers[k] if k >= 0 else float("nan"),
            relative=r,
        )
        for i, t, p, q, s, k, r in zip(
            w.trade_id[hit].tolist(),
            w.time_ms[hit].tolist(),
            w.price[hit].tolist(),
            w.qty[hit].tolist(),
            w.side[hit].tolist(),
            tier[hit].tolist(),
            relative[hit].tolist(),
            strict=True,
        )
    )
    return LargeTrades(
        rows=rows,
        tiers_quote=tiers,
        count_by_tier=tuple(int(c) for c in counts),
        relative_k=relative_k,
        mean_qty=mean_qty,
        relative_threshold_qty=rel_qty,
        window_count=n,
    )
