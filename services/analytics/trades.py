"""Trade-window statistics and the time-and-sales tape.

Volumes are base quantities, ``quote`` figures are Σ price·qty in the quote asset. A row
is one ``aggTrade`` (one taker order at one price) or one ``trade`` (one fill), as the
view's ``kind`` says.

Volume, delta and their quote values come from ``flow.side_sums``, the same sums the
trade-flow meter uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from services.analytics.flow import Direction, direction_of, side_sums
from services.analytics.window import resolve_now, select_window
from services.market.views import TradeView

_NAN = float("nan")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class TradeStats:
    """Statistics of the trades in one window (NaN where a window without trades leaves a
    figure undefined; counts and volumes are then 0).

    count / buy_count / sell_count: trades, taker buys, taker sells.
    volume / buy_volume / sell_volume: Σ qty (base), split by taker side.
    quote_volume / buy_quote / sell_quote: Σ price·qty (quote), split by taker side.
    delta: buy_volume − sell_volume.
    vwap: quote_volume / volume, the volume-weighted average price.
    buy_ratio_volume: buy_volume / volume. buy_ratio_count: buy_count / count.
    high / low: highest and lowest trade price. first_price / last_price: oldest and newest.
    avg_size: volume / count (base). avg_quote: quote_volume / count.
    first_time_ms / last_time_ms: times of the oldest and newest trade (0 when empty).
    now_ms: the window's end. window_ms / last_n: how it was cut (None: not by that).
    direction: ``flow.direction_of(buy_ratio_volume)``.
    """

    count: int
    buy_count: int
    sell_count: int
    volume: float
    buy_volume: float
    sell_volume: float
    quote_volume: float
    buy_quote: float
    sell_quote: float
    delta: float
    vwap: float
    buy_ratio_volume: float
    buy_ratio_count: float
    high: float
    low: float
    first_price: float
    last_price: float
    avg_size: float
    avg_quote: float
    first_time_ms: int
    last_time_ms: int
    now_ms: int
    window_ms: int | None
    last_n: int | None
    direction: Direction


def trade_stats(
    view: TradeView,
    *,
    window_ms: int | None = None,
    last_n: int | None = None,
    now_ms: int | None = None,
) -> TradeStats:
    """Counts, volumes, VWAP, buy ratios and price range of the trades in
    ``(now_ms − window_ms, now_ms]`` (at most the last ``last_n`` of them); ``now_ms``
    defaults to the last trade's time."""
    now = resolve_now(view, now_ms)
    w = select_window(view, window_ms=window_ms, last_n=last_n, now_ms=now)
    n = len(w)
    if n == 0:
        return TradeStats(
            0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, _NAN, _NAN, _NAN, _NAN, _NAN, _NAN,
            _NAN, _NAN, _NAN, 0, 0, now, window_ms, last_n, "neutral",
        )  # fmt: skip
    p = w.price
    volume, signed, quote_volume, signed_quote = side_sums(w)
    buy_count = round((n + float(w.side.sum())) / 2.0)
    buy_volume = (volume + signed) / 2.0
    ratio = buy_volume / volume if volume > 0 else _NAN
    return TradeStats(
        count=n,
        buy_count=buy_count,
        sell_count=n - buy_count,
        volume=volume,
        buy_volume=buy_volume,
        sell_volume=(volume - signed) / 2.0,
        quote_volume=quote_volume,
        buy_quote=(quote_volume + signed_quote) / 2.0,
        sell_quote=(quote_volume - signed_quote) / 2.0,
        delta=signed,
        vwap=quote_volume / volume if volume > 0 else _NAN,
        buy_ratio_volume=ratio,
        buy_ratio_count=buy_count / n,
        high=float(p.max()),
        low=float(p.min()),
        first_price=float(p[0]),
        last_price=float(p[-1]),
        avg_size=volume / n,
        avg_quote=quote_volume / n,
        first_time_ms=int(w.time_ms[0]),
        last_time_ms=int(w.time_ms[-1]),
        now_ms=now,
        window_ms=window_ms,
        last_n=last_n,
        direction=direction_of(ratio),
    )


@dataclass(frozen=True, slots=True)
class TapeRow:
    """One time-and-sales row: trade (or aggTrade) id, time, price, base qty, quote notional
    (price·qty) and the taker's side, "buy" or "sell"."""

    trade_id: int
    time_ms: int
    price: float
    qty: float
    quote_qty: float
    side: str


@dataclass(frozen=True, slots=True)
class Tape:
    """The newest trades of a view, newest first, as numpy columns (``rows`` gives them as
    ``TapeRow`` records).

    trade_id, time_ms, price, qty (base): the trades. quote_qty: price·qty.
    side: +1 taker buy, −1 taker sell.
    """

    trade_id: np.ndarray
    time_ms: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    quote_qty: np.ndarray
    side: np.ndarray

    def __len__(self) -> int:
        return int(self.trade_id.shape[0])

    @property
    def rows(self) -> tuple[TapeRow, ...]:
        """The trades as records, newest first."""
        return tape_records(
            TapeRow, self.trade_id, self.time_ms, self.price, self.qty, self.quote_qty, self.side
        )


def tape_records(record: Callable[..., R], *columns: np.ndarray) -> tuple[R, ...]:
    """One ``record(trade_id, time_ms, price, qty, quote_qty, side, *rest)`` per row of the
    columns given in that order, with the side column (±1) named "buy" or "sell"."""
    lists = [c.tolist() for c in columns]
    lists[5] = ["buy" if s > 0 else "sell" for s in lists[5]]
    return tuple(map(record, *lists))


def time_and_sales(view: TradeView, limit: int = 50) -> Tape:
    """The newest ``limit`` trades, newest first; the columns are reversed views of the
    input's (``quote_qty`` is computed)."""
    start = len(view) - min(max(int(limit), 0), len(view))
    price, qty = view.price[start:][::-1], view.qty[start:][::-1]
    return Tape(
        trade_id=view.trade_id[start:][::-1],
        time_ms=view.time_ms[start:][::-1],
        price=price,
        qty=qty,
        quote_qty=price * qty,
        side=view.side[start:][::-1],
    )
