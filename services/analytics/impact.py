"""Price impact of a market order walked through the known book.

A buy walks the asks upward, a sell walks the bids downward; each level fills
``min(level qty, remaining)``. Computed for many sizes at once with cumulative sums and a
binary search (``np.cumsum`` + ``np.searchsorted``). The cumulative sums cover only the
levels the largest order can reach (a prefix of 64 levels, grown fourfold until it holds
enough), so small orders on a deep book do not pay for the whole side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from services.analytics.book import cumulative_depth, mid_price
from services.market.views import BookView

Unit = Literal["base", "quote"]

_FIRST_LEVELS = 64


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
    in_base = unit == "base"
    wanted = np.maximum(sizes, 0.0)
    cum_base, cum_quote = _cumulative(
        prices, qtys, float(wanted.max()) if wanted.shape[0] else 0.0, in_base
    )
    levels = np.searchsorted(cum_base if in_base else cum_quote, wanted, side="left")
    rows = []
    sign = 1.0 if side == "buy" else -1.0
    for size, want, k in zip(sizes.tolist(), wanted.tolist(), levels.tolist(), strict=True):
        unfillable = k >= n
        if not n:
            b = qv = 0.0
            p_last, full, rest = math.nan, 0, 0.0
        elif unfillable:
            full, rest = n, 0.0
            p_last = float(prices[n - 1])
            b, qv = float(cum_base[n - 1]) + rest, float(cum_quote[n - 1]) + rest
        else:
            full = k
            prev_base = float(cum_base[k - 1]) if k else 0.0
            prev_quote = float(cum_quote[k - 1]) if k else 0.0
            p_last = float(prices[k])
            if in_base:
                rest = want - prev_base
                b, qv = prev_base + rest, prev_quote + rest * p_last
            else:
                rest = want - prev_quote
                b, qv = prev_base + rest / p_last, prev_quote + rest
        if b <= 0:
            avg = math.nan
        elif full == 0:
            avg = p_last  # within the first level: exact even for vanishing sizes
        else:
            avg = qv / b
        slip = sign * (avg / mid - 1.0) * 1e4 if b > 0 else math.nan
        used = 0 if b <= 0 else full + (0 if unfillable or rest <= 0 else 1)
        rows.append(
            ImpactRow(
                side=side,
                size=size,
                unit=unit,
                avg_price=avg,
                worst_price=p_last if b > 0 else math.nan,
                slippage_bps=slip,
                levels_used=used,
                filled=b if in_base else qv,
                filled_base=b,
                notional=qv,
                unfillable=unfillable,
            )
        )
    return tuple(rows)


def _cumulative(
    prices: np.ndarray, qtys: np.ndarray, want: float, in_base: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``np.cumsum(qtys)[:m]`` and ``np.cumsum(prices * qtys)[:m]`` for the shortest
    prefix m of 64, 256, 1024, … levels (or the whole side) whose cumulative base (or
    quote) reaches ``want``; a binary search for any amount up to ``want`` then lands on
    the same level as over the whole side, and the sums are the same numbers."""
    n = int(prices.shape[0])
    m = min(_FIRST_LEVELS, n)
    while True:
        cum_base, cum_quote = cumulative_depth(prices[:m], qtys[:m])
        if m == n or (cum_base if in_base else cum_quote)[-1] >= want:
            return cum_base, cum_quote
        m = min(4 * m, n)
