"""Spot against perpetual: the CVD of a spot symbol and of its USD-M perpetual twin over the
same period, to tell whose aggression moves the price (spot buyers, or leveraged perps).

Both series start at zero at one common anchor: the later of the two markets' first
trades (or the anchor asked for, if later), so neither line counts a period the other has
no trades for. Each line is ``services.analytics.flow.cvd`` of its market's trades from that
anchor: Σ side·qty (base) or Σ side·price·qty (quote) up to and including each trade.
Quote units make the two comparable (contract quantities of USD-M linear perpetuals are in
the base asset too, so base works as well).

gap: perp CVD − spot CVD at the end (final values), the number a "perp-led" reading uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from services.analytics.flow import CvdSeries, cvd
from services.market.views import TradeView


@dataclass(frozen=True, slots=True)
class SpotPerpCvd:
    """Two CVD series from a common anchor (module docstring for the definitions)."""

    spot: CvdSeries
    perp: CvdSeries
    anchor_ms: int

    @property
    def gap(self) -> float:
        return self.perp.final - self.spot.final


def common_anchor(spot: TradeView, perp: TradeView, anchor_ms: int | None = None) -> int | None:
    """The later of the two first trades (and ``anchor_ms``); None when a market has none."""
    if len(spot.time_ms) == 0 or len(perp.time_ms) == 0:
        return None
    first = max(int(spot.time_ms[0]), int(perp.time_ms[0]))
    return first if anchor_ms is None else max(first, int(anchor_ms))


def spot_perp_cvd(
    spot: TradeView,
    perp: TradeView,
    *,
    anchor_ms: int | None = None,
    max_points: int = 500,
    unit: Literal["base", "quote"] = "quote",
) -> SpotPerpCvd | None:
    """Spot and perpetual CVD from their common anchor (None until both markets have a
    trade). Each series is downsampled to ``max_points`` keeping its exact final value."""
    anchor = common_anchor(spot, perp, anchor_ms)
    if anchor is None:
        return None
    return SpotPerpCvd(
        cvd(spot, anchor_ms=anchor, max_points=max_points, unit=unit),
        cvd(perp, anchor_ms=anchor, max_points=max_points, unit=unit),
        anchor,
    )
