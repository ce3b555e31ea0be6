"""Trade tape: the latest trades, newest first, one fixed-width text row each.

A row reads ``time (UTC, ms)  price  quantity  notional  side``; its class says the aggressor side
(``buy``/``sell``) and the large-trade tier (``tier-1`` … by quote notional). One text row
per trade keeps the payload small (about 150 bytes a row) at a 500 ms refresh.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Sequence

import numpy as np
from dash import html

from components.stamp import stamp

DEFAULT_TIERS_QUOTE: tuple[float, ...] = (100_000.0, 250_000.0, 1_000_000.0)
TAPE_ROWS = 50
_ROW = html.Div("", className="tape-row")


def trade_tier(notional: float, tiers_quote: Sequence[float]) -> int:
    """0 for an ordinary trade, else how many tier thresholds (quote notional) it reaches."""
    return bisect.bisect_right(sorted(tiers_quote), notional)


def format_time_ms(time_ms: int) -> str:
    """``HH:MM:SS.mmm`` in UTC."""
    seconds, millis = divmod(int(time_ms), 1000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours % 24:02d}:{minute:02d}:{second:02d}.{millis:03d}"


def parse_tiers(text: str | None) -> tuple[float, ...]:
    """Tier thresholds from user text such as ``100k, 250k, 1M``; the defaults if none parse."""
    multipliers = {"k": 1e3, "m": 1e6, "b": 1e9}
    tiers: list[float] = []
    for part in (text or "").replace(";", ",").split(","):
        token = part.strip().lower().replace("_", "")
        if not token:
            continue
        scale = multipliers.get(token[-1], 1.0)
        number = token[:-1] if token[-1] in multipliers else token
        try:
            value = float(number) * scale
        except ValueError:
            continue
        if value > 0:
            tiers.append(value)
    return tuple(sorted(set(tiers))) or DEFAULT_TIERS_QUOTE


def _row_text(
    time_ms: int, price: float, qty: float, notional: float, side: str, pd: int, qd: int
) -> str:
    return (
        f"{format_time_ms(time_ms)} {price:>14,.{pd}f} {qty:>13,.{qd}f} {notional:>13,.0f}  {side}"
    )


@functools.lru_cache(maxsize=64)
def _header(quote_asset: str) -> html.Div:
    """The column titles; the same on every refresh, so built once per quote asset."""
    return html.Div(
        f"{'time UTC':<12} {'price':>14} {'qty':>13} {('notional ' + quote_asset).strip():>13}"
        "  side",
        className="tape-header",
    )


def create_trade_tape(
    *,
    time_ms: Sequence[int] | np.ndarray,
    price: Sequence[float] | np.ndarray,
    qty: Sequence[float] | np.ndarray,
    side: Sequence[float] | np.ndarray,
    tiers_quote: Sequence[float] = DEFAULT_TIERS_QUOTE,
    price_decimals: int = 2,
    qty_decimals: int = 5,
    quote_asset: str = "",
) -> html.Div:
    """The tape for trades given newest first (columns of equal length)."""
    rows = [_header(quote_asset)]
    for t, p, q, s in zip(time_ms, price, qty, side, strict=True):
        notional = float(p) * float(q)
        tier = trade_tier(notional, tiers_quote)
        side_class = "buy" if s > 0 else "sell"
        rows.append(
            stamp(
                _ROW,
                children=_row_text(
                    int(t), float(p), float(q), notional, side_class, price_decimals, qty_decimals
                ),
                className=f"tape-row {side_class} tier-{tier}",
            )
        )
    if len(rows) == 1:
        rows.append(html.Div("no trades yet", className="tape-empty"))
    return html.Div(rows, className="tape")
