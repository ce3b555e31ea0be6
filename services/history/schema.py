"""Columns of every history dataset, and the fixed-point form of prices and quantities.

Prices and quantities are stored as int64 counts of 10⁻⁸ (``*_e8``): Binance sends at most
8 decimals, so the stored value is exact, sums of quantities are exact (the ``history
stats`` figures equal the exchange's decimal sums), and ``e8 / 1e8`` gives back the very
float that parsing the wire's decimal string gives (both are correctly rounded).

trades (one row per trade, id order): ``trade_id``, ``time_ms``, ``price_e8``, ``qty_e8``,
    ``buyer_maker`` (true: the taker sold).
book-top (one row per change of the best levels or of the book's state): ``time_ms``,
    ``bid_e8``, ``bid_qty_e8``, ``ask_e8``, ``ask_qty_e8`` (0 when a side is empty) and
    ``live`` (false: the book was not LIVE from this time on, and the prices are the last
    known ones, not to be drawn as live).
book-grid (one row per second, side and price bucket that changed): see ``book_grid``.
candles-1m (one row per closed or last-seen 1-minute kline): ``open_ms``, OHLC ``*_e8``,
    ``volume_e8``, ``taker_buy_e8``, ``trades`` (-1 unknown), ``closed``, ``source``
    (``stream`` or ``rest``).
gaps (one row per trade-id range that could not be had): ``first_id``, ``last_id``,
    ``from_ms``, ``to_ms`` (times of the trades around it) and ``reason``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from services.market.views import TradeView

SCALE = 100_000_000
"""Fixed-point units per 1 (10⁻⁸)."""

TRADES: dict[str, pl.DataType] = {
    "trade_id": pl.Int64(),
    "time_ms": pl.Int64(),
    "price_e8": pl.Int64(),
    "qty_e8": pl.Int64(),
    "buyer_maker": pl.Boolean(),
}
BOOK_TOP: dict[str, pl.DataType] = {
    "time_ms": pl.Int64(),
    "bid_e8": pl.Int64(),
    "bid_qty_e8": pl.Int64(),
    "ask_e8": pl.Int64(),
    "ask_qty_e8": pl.Int64(),
    "live": pl.Boolean(),
}
BOOK_GRID: dict[str, pl.DataType] = {
    "time_s": pl.Int64(),
    "side": pl.Int8(),
    "bucket": pl.Int64(),
    "bucket_e8": pl.Int64(),
    "max_qty_e8": pl.Int64(),
}
CANDLES: dict[str, pl.DataType] = {
    "open_ms": pl.Int64(),
    "open_e8": pl.Int64(),
    "high_e8": pl.Int64(),
    "low_e8": pl.Int64(),
    "close_e8": pl.Int64(),
    "volume_e8": pl.Int64(),
    "taker_buy_e8": pl.Int64(),
    "trades": pl.Int64(),
    "closed": pl.Boolean(),
    "source": pl.String(),
}
ALERT_EVENTS: dict[str, pl.DataType] = {
    "id": pl.Int64(),
    "time_ms": pl.Int64(),
    "rule_id": pl.String(),
    "kind": pl.String(),
    "written_ms": pl.Int64(),
    "event": pl.String(),
}
"""One version of an alert event (``services.alerts.archive``): its id, exchange time,
rule and kind, when the version was queued, and the event's JSON."""

GAPS: dict[str, pl.DataType] = {
    "first_id": pl.Int64(),
    "last_id": pl.Int64(),
    "from_ms": pl.Int64(),
    "to_ms": pl.Int64(),
    "reason": pl.String(),
}


def to_e8(values: np.ndarray | list[float] | float) -> np.ndarray:
    """Floats parsed from ≤ 8-decimal strings → exact int64 counts of 10⁻⁸."""
    return np.rint(np.asarray(values, dtype=np.float64) * SCALE).astype(np.int64)


def from_e8(values: np.ndarray) -> np.ndarray:
    """int64 counts of 10⁻⁸ → float64 (the float of the original decimal string)."""
    return np.asarray(values, dtype=np.int64) / SCALE


def decimal_e8(text: str) -> int:
    """An exchange decimal string → exact int count of 10⁻⁸ (no float on the way)."""
    whole, _, fraction = text.strip().partition(".")
    negative = whole.startswith("-")
    digits = (fraction + "00000000")[:8]
    if fraction[8:].strip("0"):
        raise ValueError(f"{text!r} has more than 8 decimals")
    value = abs(int(whole or "0")) * SCALE + int(digits)
    return -value if negative else value


def e8_text(value: int) -> str:
    """An exact count of 10⁻⁸ as a decimal string with 8 places."""
    sign = "-" if value < 0 else ""
    whole, fraction = divmod(abs(int(value)), SCALE)
    return f"{sign}{whole}.{fraction:08d}"


def trade_columns(*views: TradeView) -> dict[str, np.ndarray]:
    """Trade views (in order) as the columns of ``schema.TRADES``."""
    if len(views) == 1:
        (view,) = views
        trade_id, time_ms, price, qty, side = (
            view.trade_id, view.time_ms, view.price, view.qty, view.side
        )  # fmt: skip
    else:
        trade_id, time_ms, price, qty, side = (
            np.concatenate([getattr(v, name) for v in views])
            for name in ("trade_id", "time_ms", "price", "qty", "side")
        )
    return {
        "trade_id": np.asarray(trade_id, dtype=np.int64),
        "time_ms": np.asarray(time_ms, dtype=np.int64),
        "price_e8": to_e8(price),
        "qty_e8": to_e8(qty),
        "buyer_maker": np.asarray(side) < 0,
    }


def trade_row_columns(rows: Sequence[tuple[int, int, float, float, bool]]) -> dict[str, np.ndarray]:
    """Trade rows (id, time ms, price, qty, buyer is maker) as the columns of ``TRADES``."""
    n = len(rows)
    return {
        "trade_id": np.fromiter((r[0] for r in rows), np.int64, n),
        "time_ms": np.fromiter((r[1] for r in rows), np.int64, n),
        "price_e8": to_e8([r[2] for r in rows]),
        "qty_e8": to_e8([r[3] for r in rows]),
        "buyer_maker": np.fromiter((r[4] for r in rows), bool, n),
    }
