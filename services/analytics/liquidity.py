"""A 0–100 liquidity score built from spread, depth near mid and market-order impact.

Each input maps to a 0–100 component by a saturating curve, and the score is their
weighted mean:

- spread_score = 100 · S₀ / (S₀ + spread_bps), S₀ = ``spread_ref_bps`` (default 1 bp):
  100 for a zero spread, 50 at S₀.
- depth_score = 100 · D / (D + D₀), D = bid + ask quote notional within ±``band_bps``
  (default 25 bps) of mid, D₀ = ``depth_ref_quote`` (default 1,000,000): 50 at D₀.
- impact_score = 100 · I₀ / (I₀ + impact_bps), impact_bps = mean slippage vs mid of a
  market buy and a market sell spending ``impact_quote`` (default 100,000) in quote,
  I₀ = ``impact_ref_bps`` (default 5 bps); 0 if either order cannot be filled by the
  known book.
- score = 0.3 · spread_score + 0.4 · depth_score + 0.3 · impact_score.

Depth and impact use quote notional so that symbols with the same quote asset (USDT) are
comparable. Each component rises as its input improves, so the score is monotone in each;
a component whose input is undefined (empty or one-sided book) scores 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from services.analytics.book import DepthBand, depth_within
from services.analytics.book import spread_bps as book_spread_bps
from services.analytics.impact import ImpactRow, price_impact
from services.market.views import BookView

WEIGHT_SPREAD = 0.3
WEIGHT_DEPTH = 0.4
WEIGHT_IMPACT = 0.3


@dataclass(frozen=True, slots=True)
class LiquidityScore:
    """score: 0–100, the weighted mean of the components (see the module docstring).

    spread_bps, depth_quote (bid + ask notional within ±band_bps of mid) and impact_bps
    (mean buy/sell slippage for ``impact_quote``): the inputs, NaN when undefined.
    spread_score, depth_score, impact_score: the 0–100 components.
    band_bps, impact_quote: the parameters used.
    """

    score: float
    spread_bps: float
    spread_score: float
    depth_quote: float
    depth_score: float
    impact_bps: float
    impact_score: float
    band_bps: float
    impact_quote: float


def spread_component(spread_bps: float, spread_ref_bps: float = 1.0) -> float:
    """100 · S₀/(S₀ + spread_bps); 0 when the spread is undefined."""
    if math.isnan(spread_bps):
        return 0.0
    return 100.0 * spread_ref_bps / (spread_ref_bps + max(spread_bps, 0.0))


def depth_component(depth_quote: float, depth_ref_quote: float = 1_000_000.0) -> float:
    """100 · D/(D + D₀); 0 when depth is undefined or zero."""
    if math.isnan(depth_quote) or depth_quote <= 0:
        return 0.0
    return 100.0 * depth_quote / (depth_quote + depth_ref_quote)


def impact_component(impact_bps: float, impact_ref_bps: float = 5.0) -> float:
    """100 · I₀/(I₀ + impact_bps); 0 when impact is undefined (unfillable, no mid)."""
    if math.isnan(impact_bps):
        return 0.0
    return 100.0 * impact_ref_bps / (impact_ref_bps + max(impact_bps, 0.0))


def combine(spread_score: float, depth_score: float, impact_score: float) -> float:
    """The weighted mean 0.3·spread + 0.4·depth + 0.3·impact, clipped to [0, 100]."""
    score = WEIGHT_SPREAD * spread_score + WEIGHT_DEPTH * depth_score
    score += WEIGHT_IMPACT * impact_score
    return min(max(score, 0.0), 100.0)


def liquidity_score(
    view: BookView,
    *,
    band_bps: float = 25.0,
    impact_quote: float = 100_000.0,
    spread_ref_bps: float = 1.0,
    depth_ref_quote: float = 1_000_000.0,
    impact_ref_bps: float = 5.0,
) -> LiquidityScore:
    """Score how liquid the book is, from its spread, its quote depth within ±``band_bps``
    and the slippage of ``impact_quote`` market orders (formula in the module docstring)."""
    band = depth_within(view, (band_bps,))[0]
    return score_from(
        book_spread_bps(view),
        band,
        price_impact(view, (impact_quote,), unit="quote"),
        spread_ref_bps=spread_ref_bps,
        depth_ref_quote=depth_ref_quote,
        impact_ref_bps=impact_ref_bps,
    )


def score_from(
    spread_bps: float,
    band: DepthBand,
    impact_rows: Sequence[ImpactRow],
    *,
    spread_ref_bps: float = 1.0,
    depth_ref_quote: float = 1_000_000.0,
    impact_ref_bps: float = 5.0,
) -> LiquidityScore:
    """The score from pieces already computed: the spread, the depth band (its quote depth
    on both sides) and the impact rows of one quote size (their mean slippage, undefined
    when any side is unfillable)."""
    depth_quote = band.bid_quote + band.ask_quote
    if not impact_rows or any(r.unfillable for r in impact_rows):
        impact_bps = math.nan
    else:
        impact_bps = sum(r.slippage_bps for r in impact_rows) / len(impact_rows)
    s = spread_component(spread_bps, spread_ref_bps)
    d = depth_component(depth_quote, depth_ref_quote)
    i = impact_component(impact_bps, impact_ref_bps)
    return LiquidityScore(
        score=combine(s, d, i),
        spread_bps=spread_bps,
        spread_score=s,
        depth_quote=depth_quote,
        depth_score=d,
        impact_bps=impact_bps,
        impact_score=i,
        band_bps=float(band.band_bps),
        impact_quote=float(impact_rows[0].size) if impact_rows else math.nan,
    )
