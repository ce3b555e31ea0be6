"""Volume profile: traded volume by price row, with point of control and value area.

Rows are ``bucket`` = k × tick size wide and aligned to multiples of the bucket (row i
covers prices [price[i], price[i] + bucket)). A trade falls in the row holding its price;
half a tick of slack keeps prices on the tick grid off float rounding at row edges.

Point of control (POC): the row with the most volume; ties go to the row nearest the centre
of the profile's price range, then to the lower price.

Value area (VA): CBOT dual-row expansion (*Mind Over Markets*; linnsoft "Method A").
Start at the POC; while the VA holds less than ``value_area`` (70 %) of the volume,
compare the volume of the next two rows above with the next two rows below and add the
pair with more volume (one row when only one is left on that side; on a tie, add both
pairs). The result usually slightly exceeds 70 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from services.analytics.scratch import scratch
from services.analytics.window import resolve_now, select_window
from services.market.views import TradeView

DEFAULT_ROWS = 50
_NAN = float("nan")
_LANES = 8
_LANE_OFFSETS: list[np.ndarray] = [np.empty(0, dtype=np.int32)]


@dataclass(frozen=True, slots=True)
class VolumeProfile:
    """Volume by price row over a trade window.

    price: lower edge of each row, ascending; bucket: row height (k × tick size).
    volume / buy_volume / sell_volume: Σ qty (base) per row, split by taker side.
    delta: buy_volume − sell_volume per row.
    trades: trade count per row when asked for (``count_trades``), else None.
    total_volume: Σ volume (equals the window's volume).
    poc_index / point_of_control: the POC row and its lower edge (−1 / NaN when empty).
    va_low_index / va_high_index: first and last row of the value area.
    val: lower edge of the value area (lowest VA row's lower edge).
    vah: upper edge of the value area (highest VA row's lower edge + bucket).
    value_area_volume_pct: share of total volume inside the VA, in percent (≥ target).
    value_area: the target share (0.70 by default).
    """

    price: np.ndarray
    bucket: float
    volume: np.ndarray
    buy_volume: np.ndarray
    sell_volume: np.ndarray
    delta: np.ndarray
    trades: np.ndarray | None
    total_volume: float
    poc_index: int
    point_of_control: float
    va_low_index: int
    va_high_index: int
    val: float
    vah: float
    value_area_volume_pct: float
    value_area: float


def point_of_control(volume: np.ndarray) -> int:
    """Index of the row with the most volume; ties go to the row nearest the middle of the
    rows, then to the lower one. −1 when there are no rows or no volume."""
    if volume.shape[0] == 0:
        return -1
    top = volume.max()
    if not top > 0:
        return -1
    candidates = np.flatnonzero(volume == top)
    if candidates.shape[0] == 1:
        return int(candidates[0])
    n = volume.shape[0]
    return int(min(candidates.tolist(), key=lambda i: (abs(2 * i - (n - 1)), i)))


def value_area_rows(volume: np.ndarray, poc: int, target: float = 0.70) -> tuple[int, int]:
    """(low, high) row indexes of the value area around ``poc`` by CBOT dual-row
    expansion (see the module docstring)."""
    if poc < 0:
        return -1, -1
    vols = volume.tolist()
    n = len(vols)
    goal = target * sum(vols)
    padded = [0.0, 0.0, *vols, 0.0, 0.0]  # vols[i] is padded[i + 2]
    lo = hi = poc
    acc = vols[poc]
    while acc < goal and (lo > 0 or hi < n - 1):
        above = padded[hi + 3] + padded[hi + 4]
        below = padded[lo + 1] + padded[lo]
        take_above = hi < n - 1 and (above >= below or lo == 0)
        take_below = lo > 0 and (below >= above or hi == n - 1)
        if take_above:
            acc += above
            hi = min(hi + 2, n - 1)
        if take_below:
            acc += below
            lo = max(lo - 2, 0)
    return lo, hi


def _bucket_size(
    tick: float, low: float, high: float, bucket_ticks: int | None, rows: int | None
) -> float:
    """Row height: ``bucket_ticks`` ticks, else the fewest whole ticks that cover the price
    range in ``rows`` rows (50 by default; aligning rows to multiples of the height can add
    one more)."""
    if bucket_ticks is not None:
        return max(int(bucket_ticks), 1) * tick
    n = max(int(rows if rows is not None else DEFAULT_ROWS), 1)
    ticks = math.floor((high - low) / tick / n + 1e-9) + 1
    return ticks * tick


def volume_profile(
    view: TradeView,
    *,
    tick_size: float,
    bucket_ticks: int | None = None,
    rows: int | None = None,
    value_area: float = 0.70,
    window_ms: int | None = None,
    now_ms: int | None = None,
    count_trades: bool = False,
) -> VolumeProfile:
    """Volume per price row over the trades in ``(now_ms − window_ms, now_ms]``, with POC
    and value area; trades per row too with ``count_trades`` (a second pass over the
    window).

    Rows are ``bucket_ticks`` × ``tick_size`` high, aligned to multiples of their height.
    Or, when only ``rows`` is given, exactly ``rows`` rows: the fewest whole ticks per row
    that fit the window's range in ``rows`` aligned rows, with empty rows added evenly
    below and above the traded range (never below price 0) to make up the count.
    ``bucket_ticks`` wins if both are given."""
    if not tick_size > 0:
        raise ValueError("tick_size must be positive")
    now = resolve_now(view, now_ms)
    w = select_window(view, window_ms=window_ms, now_ms=now)
    if len(w) == 0:
        bucket = tick_size * max(int(bucket_ticks or 1), 1)
        return _empty_profile(bucket, value_area, count_trades)
    p, q = w.price, w.qty
    low, high = float(p.min()), float(p.max())
    bucket = _bucket_size(tick_size, low, high, bucket_ticks, rows)
    half_tick = tick_size / 2.0
    base = math.floor((low + half_tick) / bucket) * bucket
    n = math.floor((high - base + half_tick) / bucket) + 1
    if bucket_ticks is None and rows is not None:
        while n > rows:  # aligning the rows added one: one tick taller
            bucket += tick_size
            base = math.floor((low + half_tick) / bucket) * bucket
            n = math.floor((high - base + half_tick) / bucket) + 1
        below = min((rows - n) // 2, math.floor((base + half_tick) / bucket))
        base -= below * bucket
        n = rows
    by_side, trades = _row_sums(p, q, w.side, base - half_tick, 1.0 / bucket, n, high, count_trades)
    n = by_side.shape[0]
    sell, buy = by_side[:, 0], by_side[:, 1]
    volume = buy + sell
    delta = buy - sell
    poc = point_of_control(volume)
    lo, hi = value_area_rows(volume, poc, value_area)
    total = float(volume.sum())
    prices = base + np.arange(n, dtype=np.float64) * bucket
    va_volume = float(volume[lo : hi + 1].sum()) if poc >= 0 else 0.0
    return VolumeProfile(
        price=prices,
        bucket=bucket,
        volume=volume,
        buy_volume=buy,
        sell_volume=sell,
        delta=delta,
        trades=trades,
        total_volume=total,
        poc_index=poc,
        point_of_control=float(prices[poc]) if poc >= 0 else _NAN,
        va_low_index=lo,
        va_high_index=hi,
        val=float(prices[lo]) if poc >= 0 else _NAN,
        vah=float(prices[hi]) + bucket if poc >= 0 else _NAN,
        value_area_volume_pct=100.0 * va_volume / total if total > 0 else _NAN,
        value_area=value_area,
    )


def _lane_offsets(n: int) -> np.ndarray:
    """``_LANES + (i mod _LANES)`` for i < n as int32 (shared, grown on demand)."""
    offsets = _LANE_OFFSETS[0]
    if offsets.shape[0] < n:
        size = max(n, 2 * offsets.shape[0])
        offsets = (_LANES + np.arange(size) % _LANES).astype(np.int32)
        _LANE_OFFSETS[0] = offsets
    return offsets[:n]


def _row_sums(
    price: np.ndarray,
    qty: np.ndarray,
    side: np.ndarray,
    origin: float,
    inv_bucket: float,
    rows: int,
    high: float,
    count_trades: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Σ qty per (row, taker side) as a (rows, 2) array of [sell, buy], and trades per row
    if ``count_trades`` (else None), where row = ⌊(price − origin) · inv_bucket⌋ (at least
    ``rows`` rows; prices are at or above ``origin`` and at most ``high``, sides are ±1).

    One pass builds an integer slot per trade, ``((3·row + side + 1)·_LANES + lane)``: sells
    land in slot 0 of a row, buys in slot 2, and consecutive trades go to different lanes,
    so the ``np.bincount`` calls do not stall on repeated adds to the same bin (trades
    arrive in runs at one price). The lanes are summed afterwards. The slot arithmetic runs
    in int32 after one truncating cast; a profile whose slots would not fit (about 89
    million rows; rounding is monotone, so the largest scaled price is the one of
    ``high``) is refused with a ValueError. The per-trade intermediates live in
    this thread's scratch arrays.
    """
    width = 3 * _LANES
    n = int(price.shape[0])
    bins = max(rows * width, 0)
    if (max(rows, (high - origin) * inv_bucket) + 1.0) * width >= 2**31:
        raise ValueError(f"a profile of {rows:,} rows is too tall: use a larger bucket")
    scaled = np.subtract(price, origin, out=scratch("a", n, np.float64))
    scaled *= inv_bucket
    slot = scratch("a", n, np.int32)
    np.copyto(slot, scaled, casting="unsafe")
    slot *= width
    side_slot = scratch("b", n, np.int32)
    np.copyto(side_slot, side, casting="unsafe")
    side_slot *= _LANES
    slot += side_slot
    slot += _lane_offsets(n)
    idx = scratch("a", n, np.intp)
    np.copyto(idx, slot)
    weights = np.bincount(idx, weights=qty, minlength=bins)
    pad = -weights.shape[0] % width
    if pad:
        weights = np.append(weights, np.zeros(pad))
    by_slot = weights.reshape(-1, 3, _LANES).sum(axis=2)
    if not count_trades:
        return by_slot[:, ::2], None
    counts = np.bincount(idx, minlength=weights.shape[0]).reshape(-1, 3, _LANES).sum(axis=2)
    return by_slot[:, ::2], counts[:, 0] + counts[:, 2]


def _empty_profile(bucket: float, target: float, count_trades: bool) -> VolumeProfile:
    empty = np.empty(0, dtype=np.float64)
    return VolumeProfile(
        price=empty,
        bucket=bucket,
        volume=empty,
        buy_volume=empty,
        sell_volume=empty,
        delta=empty,
        trades=np.empty(0, dtype=np.int64) if count_trades else None,
        total_volume=0.0,
        poc_index=-1,
        point_of_control=_NAN,
        va_low_index=-1,
        va_high_index=-1,
        val=_NAN,
        vah=_NAN,
        value_area_volume_pct=_NAN,
        value_area=target,
    )
