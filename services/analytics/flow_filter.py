"""Flow filter: keep only the trades whose size is in a band of quote notional.

One filter serves the tape, the CVD line, the footprint and the heatmap's trade dots, so a
"trades of 100k and more" view means the same trades everywhere. A trade's notional is
price × qty in the quote asset; it passes when ``min_notional ≤ notional ≤ max_notional``
(a bound that is None is open).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.market.views import TradeView


@dataclass(frozen=True, slots=True)
class FlowFilter:
    """A band of trade notional (quote asset); None bounds are open."""

    min_notional: float | None = None
    max_notional: float | None = None

    def __post_init__(self) -> None:
        for name in ("min_notional", "max_notional"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number ≥ 0")
        lo, hi = self.min_notional, self.max_notional
        if lo is not None and hi is not None and hi < lo:
            raise ValueError("max_notional must not be below min_notional")

    @property
    def active(self) -> bool:
        """Whether the filter drops anything at all."""
        return bool(self.min_notional) or self.max_notional is not None

    def label(self) -> str:
        """A short description for panel headers, e.g. ``≥ 100k``, ``10k–1M``; "" when off."""
        lo = _short(self.min_notional) if self.min_notional else None
        hi = _short(self.max_notional) if self.max_notional is not None else None
        if lo and hi:
            return f"{lo}–{hi}"
        if lo:
            return f"≥ {lo}"
        if hi:
            return f"≤ {hi}"
        return ""


def _short(value: float) -> str:
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:g}{suffix}"
    return f"{value:g}"


def filter_trades(view: TradeView, flow_filter: FlowFilter) -> TradeView:
    """The trades of ``view`` inside the filter's notional band (the view itself when the
    filter is off), oldest first."""
    if not flow_filter.active or len(view) == 0:
        return view
    notional = view.price * view.qty
    keep = np.ones(len(view), dtype=bool)
    if flow_filter.min_notional:
        keep &= notional >= flow_filter.min_notional
    if flow_filter.max_notional is not None:
        keep &= notional <= flow_filter.max_notional
    return TradeView(
        symbol=view.symbol,
        trade_id=view.trade_id[keep],
        time_ms=view.time_ms[keep],
        price=view.price[keep],
        qty=view.qty[keep],
        side=view.side[keep],
        kind=view.kind,
    )
