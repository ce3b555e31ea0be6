"""Price impact of a market order walked through the known book.

A buy walks the asks upward, a sell walks the bids downward; each level fills
``min(level qty, remaining)``. Computed for many sizes at once with cumulative sums and a
binary search (``np.cumsum`` + ``np.searchsorted``), so the cost does not grow with size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from services.analytics.book import mid_price
from services.market.views import BookView

Unit = Literal["base", "quote"]


@dataclass(frozen=True, slots=True)
class ImpactRow:
    """One market order of ``size`` (in ``unit``) on one side.

    side: "buy" (walks the asks) or "sell" (walks the bids).
    avg_price: Σ pᵢ·fillᵢ / Σ fillᵢ, the order's average fill price (NaN if nothing fills).
    worst_price: price of the last level touched (NaN if nothing fills).
    slippage_bps: adverse distance of avg_price from mid, (avg/M − 1)·10⁴ for a buy and
    (1 − avg/M)·10⁴ for a sell; never decreases with size. NaN when the book has no mid or
    nothing fills; a lower bound when ``unfillable``.
    levels_used: levels touched. filled: the amount filled, in ``unit`` (= size unless
    unfillable). filled_base / notional: base quantity and quote amount of the fill.
    unfillable: the known book holds less than ``size`` on that side, so the whole side
    was used and the true impact is worse than shown.
    """

    side: Literal["buy", "sell"]
    size: float
    unit: Unit
    avg_price: float
    worst_price: float
    slippage_bps: float
    levels_used: int
    filled: float
    filled_base: float
    notional: float
    unfillable: bool


def price_impact(
    view: BookView, sizes: Sequence[float], unit: Unit = "base"
) -> tuple[ImpactRow, ...]:
    """Average and worst fill price and slippage vs mid of market buys and sells of each
    size (base quantity, or quote amount to spend/receive); buys first, then sells, each in
    the order of ``sizes``."""
    if unit not in ("base", "quote"):
        raise ValueError(f"unit must be 'base' or 'quote', not {unit!r}")
    mid = mid_price(view)
    x = np.asarray(sizes, dtype=np.float64)
    buys = _walk("buy", view.ask_prices, view.ask_qtys, sizes=x, unit=unit, mid=mid)
    sells = _walk("sell", view.bid_prices, view.bid_qtys, sizes=x, unit=unit, mid=mid)
    return buys + sells


def _walk(
    side: Literal["buy", "sell"],
    prices: np.ndarray,
    qtys: np.ndarray,
    *,
    sizes: np.ndarray,
    unit: Unit,
    mid: float,
) -> tuple[ImpactRow, ...]:
    """Fill each size against one side's levels (best first)."""
    n = int(prices.shape[0])
    cum_base = np.concatenate(([0.0], np.cumsum(qtys)))
    cum_quote = np.concatenate(([0.0], np.cumsum(prices * qtys)))
    cum = cum_base if unit == "base" else cum_quote
    wanted = np.maximum(sizes, 0.0)
    k = np.searchsorted(cum[1:], wanted, side="left")
    unfillable = k >= n
    k_level = np.minimum(k, max(n - 1, 0))
    full = np.minimum(k, n)
    rest = np.where(unfillable, 0.0, wanted - cum[full])
    if n:
        p_last = prices[k_level]
        if unit == "base":
            base = cum_base[full] + rest
            quote = cum_quote[full] + rest * p_last
        else:
            base = cum_base[full] + rest / p_last
            quote = cum_quote[full] + rest
    else:
        p_last = np.full(sizes.shape, np.nan)
        base = np.zeros(sizes.shape)
        quote = np.zeros(sizes.shape)
    rows = []
    sign = 1.0 if side == "buy" else -1.0
    for i, size in enumerate(sizes.tolist()):
        b, qv = float(base[i]), float(quote[i])
        avg = qv / b if b > 0 else math.nan
        slip = sign * (avg / mid - 1.0) * 1e4 if b > 0 else math.nan
        used = 0 if b <= 0 else int(full[i]) + (0 if unfillable[i] or rest[i] <= 0 else 1)
        rows.append(
            ImpactRow(
                side=side,
                size=size,
                unit=unit,
                avg_price=avg,
                worst_price=float(p_last[i]) if b > 0 else math.nan,
                slippage_bps=slip,
                levels_used=used,
                filled=b if unit == "base" else qv,
                filled_base=b,
                notional=qv,
                unfillable=bool(unfillable[i]),
            )
        )
    return tuple(rows)
