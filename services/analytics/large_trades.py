"""Large trades: prints whose quote notional reaches an absolute tier, or whose size is a
multiple of the window's mean.

With an ``aggTrade`` view one row is one taker order at one price (fills already merged),
which is what "a large trade" means on a tape; with a ``trade`` view it is one fill.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from services.analytics.trades import TapeRow, tape_records
from services.analytics.window import resolve_now, select_window
from services.market.views import TradeView

DEFAULT_TIERS_QUOTE: tuple[float, ...] = (100_000.0, 250_000.0, 1_000_000.0)


@dataclass(frozen=True, slots=True)
class LargeTrade(TapeRow):
    """One large trade: a tape row (trade_id, time_ms, price, qty, quote_qty = price·qty,
    side "buy" or "sell") and why it is large.

    tier: index of the highest absolute tier reached (0 = the smallest threshold), −1 when
    the trade is large only by the relative rule. threshold: that tier's quote threshold
    (NaN for tier −1). relative: qty ≥ relative_k × the window's mean qty.
    """

    tier: int
    threshold: float
    relative: bool


@dataclass(frozen=True, slots=True)
class LargeTrades:
    """The large trades of a window, newest first, as numpy columns (``rows`` gives them as
    ``LargeTrade`` records).

    trade_id, time_ms, price, qty, quote_qty (price·qty), side (+1 taker buy, −1 taker
    sell), tier, threshold, relative: per large trade, as in ``LargeTrade``.
    tiers_quote: the absolute thresholds (quote notional, ascending).
    count_by_tier[i]: large trades whose highest tier is i. relative_k: the relative
    multiple (None: rule off). mean_qty: mean base qty of the window's trades (NaN when
    empty). relative_threshold_qty: relative_k × mean_qty (NaN when the rule is off or the
    window has no volume, in which case no trade is relatively large).
    window_count: trades examined.
    """

    trade_id: np.ndarray
    time_ms: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    quote_qty: np.ndarray
    side: np.ndarray
    tier: np.ndarray
    threshold: np.ndarray
    relative: np.ndarray
    tiers_quote: tuple[float, ...]
    count_by_tier: tuple[int, ...]
    relative_k: float | None
    mean_qty: float
    relative_threshold_qty: float
    window_count: int

    def __len__(self) -> int:
        return int(self.trade_id.shape[0])

    @property
    def rows(self) -> tuple[LargeTrade, ...]:
        """The large trades as records, newest first."""
        return tape_records(
            LargeTrade,
            self.trade_id,
            self.time_ms,
            self.price,
            self.qty,
            self.quote_qty,
            self.side,
            self.tier,
            self.threshold,
            self.relative,
        )


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
    idx, quote_hit = _hits(w.price, w.qty, tiers[0] if tiers else math.nan, rel_qty)
    tier_arr = np.asarray(tiers, dtype=np.float64)
    tier = np.searchsorted(tier_arr, quote_hit, side="right") - 1
    threshold = np.where(tier >= 0, tier_arr[np.maximum(tier, 0)] if tiers else np.nan, np.nan)
    counts = np.bincount(tier[tier >= 0], minlength=len(tiers))
    qty_hit = w.qty[idx]
    return LargeTrades(
        trade_id=w.trade_id[idx],
        time_ms=w.time_ms[idx],
        price=w.price[idx],
        qty=qty_hit,
        quote_qty=quote_hit,
        side=w.side[idx],
        tier=tier,
        threshold=threshold,
        relative=qty_hit >= rel_qty if use_relative else np.zeros(idx.shape[0], dtype=bool),
        tiers_quote=tiers,
        count_by_tier=tuple(int(c) for c in counts),
        relative_k=relative_k,
        mean_qty=mean_qty,
        relative_threshold_qty=rel_qty,
        window_count=n,
    )


def _hits(
    price: np.ndarray, qty: np.ndarray, min_quote: float, rel_qty: float
) -> tuple[np.ndarray, np.ndarray]:
    """Indexes (newest first) and quote notionals of the trades with price·qty ≥
    ``min_quote`` or qty ≥ ``rel_qty`` (NaN turns either rule off).

    No trade smaller than ``min_quote / max(price)`` can reach ``min_quote``, so only the
    trades at or above that size (or ``rel_qty``) are multiplied out and tested.
    """
    floors = [] if math.isnan(rel_qty) else [rel_qty]
    if not math.isnan(min_quote):
        p_max = float(price.max()) if price.shape[0] else math.nan
        if min_quote > 0 and p_max > 0 and math.isfinite(p_max):
            floors.append(min_quote / p_max * (1.0 - 1e-9))
        else:
            floors.append(-math.inf)
    if not floors:
        empty = np.empty(0, dtype=np.intp)
        return empty, np.empty(0, dtype=np.float64)
    floor = min(floors)
    candidates = np.arange(qty.shape[0]) if floor == -math.inf else np.flatnonzero(qty >= floor)
    q = qty[candidates]
    quote = price[candidates] * q
    hit = quote >= min_quote
    if not math.isnan(rel_qty):
        hit |= q >= rel_qty
    return candidates[hit][::-1], quote[hit][::-1]
