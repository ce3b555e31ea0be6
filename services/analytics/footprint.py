"""Footprint candles: each time bar split into price rows of taker-buy and taker-sell volume,
and candles with delta from klines.

Bars are epoch-aligned intervals (``INTERVALS_MS``: a 1h bar opens on the UTC hour); a trade
at ``time_ms`` falls in the bar opening at ``⌊time_ms / interval⌋ · interval``. Rows are
``row_size`` = k × tick size high and aligned to multiples of the row size: a trade falls
in the row whose lower edge is ``⌊(price + tick/2) / row_size⌋ · row_size`` (half a tick of
slack keeps prices on the tick grid off float rounding at row edges). Buy volume is what
takers bought (``side`` +1, traded at the ask), sell volume what takers sold (``side`` −1,
traded at the bid). Only bars and rows with trades are listed.

Per row ("cell"): buy, sell, delta = buy − sell, volume = buy + sell, trade count.
Per bar: open/high/low/close (first, highest, lowest, last trade price), volume, buy, sell,
delta (= Σ of its rows), trade count, CVD at the bar's close (Σ delta of the window's bars
up to and including it), POC (the row with the most volume; ties go to the row nearest the
middle of the bar's low..high rows, then the lower).

Diagonal imbalance (compares the diagonals of a bid×ask footprint):
- buy imbalance at row r: buy[r] ≥ ratio · sell[r − 1], with buy[r] > 0, buy[r] ≥ the
  minimum volume, and row r − 1 inside the bar's low..high rows (an untraded row there has
  sell 0, which any buy volume beats);
- sell imbalance at row r: sell[r] ≥ ratio · buy[r + 1], mirrored (row r + 1 inside).
A ratio of 3.0 is the 300 % default. Stacked imbalance: a run of at least ``stacked_rows``
consecutive rows of one bar imbalanced the same way.

Naked POC: a bar's POC row stays naked until a later bar of the window trades through it
(that bar's low row ≤ the POC row ≤ its high row); ``naked_until_ms`` is that bar's open
time, −1 while it is still naked at the end of the window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from services.market.views import TradeView

MINUTE_MS = 60_000
INTERVALS_MS: dict[str, int] = {
    "1m": MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
}
DEFAULT_IMBALANCE_RATIO = 3.0
DEFAULT_STACKED_ROWS = 3
BUY = 1
SELL = -1
DENSE_KEY_LIMIT = 4_000_000
NAKED_BLOCK = 512

_EMPTY_F = np.empty(0, dtype=np.float64)
_EMPTY_I = np.empty(0, dtype=np.int64)
_EMPTY_B = np.empty(0, dtype=bool)


@dataclass(frozen=True, slots=True)
class Footprint:
    """Footprint bars of a trade window (see the module docstring for every definition).

    interval_ms / row_size: bar length and row height (price).
    Bars (one entry per bar with trades, oldest first): bar_time_ms (open time), open,
    high, low, close, volume, buy_volume, sell_volume, delta, trades, cvd (at close),
    poc_price (lower edge of the POC row), naked_until_ms.
    Cells (one per traded row, by bar then ascending price): cell_bar (index into the
    bars), cell_price (row lower edge), cell_buy, cell_sell, cell_delta, cell_volume,
    cell_trades, buy_imbalance, sell_imbalance, stacked_buy, stacked_sell (the cell belongs
    to a stacked run).
    Stacked runs (by bar, then ascending price, buy first): run_bar, run_side (+1 buy,
    −1 sell), run_low / run_high (lower edges of the run's lowest and highest rows),
    run_rows (length).
    total_volume: Σ qty of the window (equals Σ bar volume and Σ cell volume).
    """

    interval_ms: int
    row_size: float
    imbalance_ratio: float
    imbalance_min_volume: float
    stacked_rows: int
    bar_time_ms: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    buy_volume: np.ndarray
    sell_volume: np.ndarray
    delta: np.ndarray
    trades: np.ndarray
    cvd: np.ndarray
    poc_price: np.ndarray
    naked_until_ms: np.ndarray
    cell_bar: np.ndarray
    cell_price: np.ndarray
    cell_buy: np.ndarray
    cell_sell: np.ndarray
    cell_delta: np.ndarray
    cell_volume: np.ndarray
    cell_trades: np.ndarray
    buy_imbalance: np.ndarray
    sell_imbalance: np.ndarray
    stacked_buy: np.ndarray
    stacked_sell: np.ndarray
    run_bar: np.ndarray
    run_side: np.ndarray
    run_low: np.ndarray
    run_high: np.ndarray
    run_rows: np.ndarray
    total_volume: float

    @property
    def bars(self) -> int:
        return int(self.bar_time_ms.shape[0])


def interval_ms_of(interval: str) -> int:
    """Milliseconds of a footprint interval name (``1m``, ``5m``, ``15m``, ``1h``)."""
    try:
        return INTERVALS_MS[interval]
    except KeyError:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS_MS)}") from None


def trades_between(view: TradeView, start_ms: int | None, end_ms: int | None) -> TradeView:
    """The trades with ``start_ms ≤ time_ms < end_ms`` (either bound open when None), as
    views of the input's columns."""
    t = view.time_ms
    lo = 0 if start_ms is None else int(np.searchsorted(t, start_ms, "left"))
    hi = len(view) if end_ms is None else int(np.searchsorted(t, end_ms, "left"))
    hi = max(hi, lo)
    return TradeView(
        symbol=view.symbol,
        trade_id=view.trade_id[lo:hi],
        time_ms=t[lo:hi],
        price=view.price[lo:hi],
        qty=view.qty[lo:hi],
        side=view.side[lo:hi],
        kind=view.kind,
    )


def price_rows(price: np.ndarray, tick_size: float, row_size: float) -> np.ndarray:
    """Row index of each price: ⌊(price + tick/2) / row_size⌋ (row lower edge = index ·
    row_size)."""
    return np.floor((price + tick_size / 2.0) / row_size).astype(np.int64)


def footprint(
    view: TradeView,
    *,
    interval_ms: int,
    tick_size: float,
    row_ticks: int = 1,
    start_ms: int | None = None,
    end_ms: int | None = None,
    imbalance_ratio: float = DEFAULT_IMBALANCE_RATIO,
    imbalance_min_volume: float = 0.0,
    stacked_rows: int = DEFAULT_STACKED_ROWS,
) -> Footprint:
    """Footprint bars of ``interval_ms`` over the trades with ``start_ms ≤ time < end_ms``,
    rows of ``row_ticks`` ticks, imbalances at ``imbalance_ratio`` (3.0 = 300 %) with a
    minimum volume, and stacked runs of ``stacked_rows`` rows."""
    if not tick_size > 0:
        raise ValueError("tick_size must be positive")
    if interval_ms <= 0 or row_ticks < 1 or stacked_rows < 1 or not imbalance_ratio > 0:
        raise ValueError("interval_ms, row_ticks, stacked_rows and imbalance_ratio must be > 0")
    row_size = tick_size * int(row_ticks)
    w = trades_between(view, start_ms, end_ms)
    params = (interval_ms, row_size, imbalance_ratio, imbalance_min_volume, stacked_rows)
    if len(w) == 0:
        return _empty(*params)
    qty, side, price = w.qty, w.side, w.price
    bar_abs = w.time_ms // interval_ms
    first = np.flatnonzero(np.concatenate(([True], bar_abs[1:] != bar_abs[:-1])))
    bar_open_abs = bar_abs[first]
    nbars = int(bar_open_abs.shape[0])
    bar_id = np.repeat(np.arange(nbars), np.diff(np.append(first, len(w))))
    rows = price_rows(price, tick_size, row_size)
    rmin, rmax = int(rows.min()), int(rows.max())
    span = rmax - rmin + 3
    key = bar_id * span + (rows - rmin + 1)
    buy_q = np.where(side > 0, qty, 0.0)
    sell_q = qty - buy_q
    ukeys, cell_buy, cell_sell, cell_trades = _cell_sums(key, buy_q, sell_q, nbars * span)
    cell_bar = ukeys // span
    cell_row = ukeys % span + rmin - 1
    last = np.append(first[1:], len(w)) - 1
    high = np.maximum.reduceat(price, first)
    low = np.minimum.reduceat(price, first)
    high_row = np.maximum.reduceat(rows, first)
    low_row = np.minimum.reduceat(rows, first)
    buy = np.bincount(bar_id, weights=buy_q, minlength=nbars)
    sell = np.bincount(bar_id, weights=sell_q, minlength=nbars)
    delta = buy - sell
    cell_volume = cell_buy + cell_sell
    cell_starts = np.searchsorted(cell_bar, np.arange(nbars), "left")
    poc_row = _poc_rows(cell_row, cell_volume, cell_starts, low_row, high_row)
    buy_imb, sell_imb = _imbalances(
        ukeys, cell_bar, cell_row, cell_buy, cell_sell, low_row, high_row,
        imbalance_ratio, imbalance_min_volume,
    )  # fmt: skip
    stacked_buy, runs_buy = _stacked(ukeys, buy_imb, stacked_rows)
    stacked_sell, runs_sell = _stacked(ukeys, sell_imb, stacked_rows)
    runs = [(s, BUY) for s in runs_buy] + [(s, SELL) for s in runs_sell]
    runs.sort(key=lambda run: (run[0][0], -run[1]))
    bar_time = bar_open_abs * interval_ms
    return Footprint(
        interval_ms=interval_ms,
        row_size=row_size,
        imbalance_ratio=imbalance_ratio,
        imbalance_min_volume=imbalance_min_volume,
        stacked_rows=stacked_rows,
        bar_time_ms=bar_time,
        open=price[first].copy(),
        high=high,
        low=low,
        close=price[last].copy(),
        volume=buy + sell,
        buy_volume=buy,
        sell_volume=sell,
        delta=delta,
        trades=np.diff(np.append(first, len(w))).astype(np.int64),
        cvd=np.cumsum(delta),
        poc_price=poc_row * row_size,
        naked_until_ms=_naked_until(poc_row, low_row, high_row, bar_time),
        cell_bar=cell_bar,
        cell_price=cell_row * row_size,
        cell_buy=cell_buy,
        cell_sell=cell_sell,
        cell_delta=cell_buy - cell_sell,
        cell_volume=cell_volume,
        cell_trades=cell_trades,
        buy_imbalance=buy_imb,
        sell_imbalance=sell_imb,
        stacked_buy=stacked_buy,
        stacked_sell=stacked_sell,
        run_bar=np.array([cell_bar[a] for (a, _b), _s in runs], dtype=np.int64),
        run_side=np.array([s for _r, s in runs], dtype=np.int64),
        run_low=np.array([cell_row[a] * row_size for (a, _b), _s in runs], dtype=np.float64),
        run_high=np.array([cell_row[b] * row_size for (_a, b), _s in runs], dtype=np.float64),
        run_rows=np.array([b - a + 1 for (a, b), _s in runs], dtype=np.int64),
        total_volume=float(qty.sum()),
    )


def _cell_sums(
    key: np.ndarray, buy_q: np.ndarray, sell_q: np.ndarray, key_space: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(sorted distinct keys, buy, sell, trade count per key): dense counting over the key
    space when it is small (no sort), else a sort of the keys."""
    if key_space <= DENSE_KEY_LIMIT:
        counts = np.bincount(key, minlength=key_space)
        ukeys = np.flatnonzero(counts)
        buy = np.bincount(key, weights=buy_q, minlength=key_space)[ukeys]
        sell = np.bincount(key, weights=sell_q, minlength=key_space)[ukeys]
        return ukeys, buy, sell, counts[ukeys].astype(np.int64)
    ukeys, inv = np.unique(key, return_inverse=True)
    return (
        ukeys,
        np.bincount(inv, weights=buy_q),
        np.bincount(inv, weights=sell_q),
        np.bincount(inv).astype(np.int64),
    )


def _poc_rows(
    cell_row: np.ndarray,
    cell_volume: np.ndarray,
    cell_starts: np.ndarray,
    low_row: np.ndarray,
    high_row: np.ndarray,
) -> np.ndarray:
    """The POC row of each bar (ties: nearest the middle of low..high rows, then lower)."""
    ends = np.append(cell_starts[1:], cell_row.shape[0])
    poc = np.empty(cell_starts.shape[0], dtype=np.int64)
    for i, (a, b) in enumerate(zip(cell_starts.tolist(), ends.tolist(), strict=True)):
        vols = cell_volume[a:b]
        tied = np.flatnonzero(vols == vols.max())
        if tied.shape[0] == 1:
            poc[i] = cell_row[a + int(tied[0])]
            continue
        middle = int(low_row[i]) + int(high_row[i])
        poc[i] = min(
            (int(cell_row[a + j]) for j in tied.tolist()), key=lambda r: (abs(2 * r - middle), r)
        )
    return poc


def _imbalances(
    ukeys: np.ndarray,
    cell_bar: np.ndarray,
    cell_row: np.ndarray,
    cell_buy: np.ndarray,
    cell_sell: np.ndarray,
    low_row: np.ndarray,
    high_row: np.ndarray,
    ratio: float,
    min_volume: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal buy and sell imbalance flags of every cell (module docstring)."""
    n = ukeys.shape[0]

    def neighbour(values: np.ndarray, offset: int) -> np.ndarray:
        pos = np.searchsorted(ukeys, ukeys + offset)
        found = pos < n
        found[found] = ukeys[pos[found]] == ukeys[found] + offset
        return np.where(found, values[np.minimum(pos, n - 1)], 0.0)

    sell_below = neighbour(cell_sell, -1)
    buy_above = neighbour(cell_buy, +1)
    buy_imb = (
        (cell_buy > 0)
        & (cell_buy >= min_volume)
        & (cell_row - 1 >= low_row[cell_bar])
        & (cell_buy >= ratio * sell_below)
    )
    sell_imb = (
        (cell_sell > 0)
        & (cell_sell >= min_volume)
        & (cell_row + 1 <= high_row[cell_bar])
        & (cell_sell >= ratio * buy_above)
    )
    return buy_imb, sell_imb


def _stacked(
    ukeys: np.ndarray, flags: np.ndarray, stacked_rows: int
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Cells in runs of ≥ ``stacked_rows`` flagged consecutive rows of one bar, and the runs
    as (first cell, last cell) index pairs. Keys of one bar's rows differ by one per row,
    and a bar's key range has a spare key at each end, so consecutive keys are consecutive
    rows of one bar."""
    marked = np.zeros(flags.shape[0], dtype=bool)
    idx = np.flatnonzero(flags)
    if idx.shape[0] == 0:
        return marked, []
    breaks = np.flatnonzero(np.diff(ukeys[idx]) != 1) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [idx.shape[0]]))
    runs = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        if b - a >= stacked_rows:
            marked[idx[a:b]] = True
            runs.append((int(idx[a]), int(idx[b - 1])))
    return marked, runs


def _naked_until(
    poc_row: np.ndarray, low_row: np.ndarray, high_row: np.ndarray, bar_time: np.ndarray
) -> np.ndarray:
    """For each bar, the open time of the first later bar whose low..high rows cover its
    POC row; −1 when none does."""
    n = poc_row.shape[0]
    until = np.full(n, -1, dtype=np.int64)
    later = np.arange(n)
    for start in range(0, n, NAKED_BLOCK):
        rows = np.arange(start, min(start + NAKED_BLOCK, n))
        p = poc_row[rows, None]
        hit = (low_row[None, :] <= p) & (high_row[None, :] >= p) & (later[None, :] > rows[:, None])
        found = hit.any(axis=1)
        until[rows[found]] = bar_time[hit[found].argmax(axis=1)]
    return until


def _empty(
    interval_ms: int, row_size: float, ratio: float, min_volume: float, stacked_rows: int
) -> Footprint:
    f, i, b = _EMPTY_F, _EMPTY_I, _EMPTY_B
    return Footprint(
        interval_ms, row_size, ratio, min_volume, stacked_rows,
        i, f, f, f, f, f, f, f, f, i, f, f, i,
        i, f, f, f, f, f, i, b, b, b, b,
        i, i, f, f, i, 0.0,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class CandlesWithDelta:
    """OHLC bars with volume split by taker side, for ranges where footprint rows would be
    unreadable.

    time_ms: bar open time. open/high/low/close: prices. volume: base volume.
    buy_volume: taker-buy base volume (kline field ``V``). sell_volume: volume − buy_volume.
    delta: buy − sell = 2·V − v (exact per bar). cvd: Σ delta of the bars up to and
    including each one.
    """

    interval_ms: int
    time_ms: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    buy_volume: np.ndarray
    sell_volume: np.ndarray
    delta: np.ndarray
    cvd: np.ndarray


def candles_with_delta(
    *,
    time_ms: np.ndarray,
    open: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    taker_buy_volume: np.ndarray,
    interval_ms: int,
) -> CandlesWithDelta:
    """Candles with delta from klines (open times ascending) that carry taker-buy volume,
    merged into epoch-aligned bars of ``interval_ms`` (a multiple of the klines' own
    interval): open of the first kline, high/low the extremes, close of the last, volumes
    summed."""
    if interval_ms <= 0:
        raise ValueError("interval_ms must be positive")
    t = np.asarray(time_ms, dtype=np.int64)
    if t.shape[0] == 0:
        f = _EMPTY_F
        return CandlesWithDelta(interval_ms, _EMPTY_I, f, f, f, f, f, f, f, f, f)
    bar_abs = t // interval_ms
    opens_abs, first = np.unique(bar_abs, return_index=True)
    last = np.append(first[1:], t.shape[0]) - 1
    vol = np.add.reduceat(np.asarray(volume, dtype=np.float64), first)
    buy = np.add.reduceat(np.asarray(taker_buy_volume, dtype=np.float64), first)
    delta = 2.0 * buy - vol
    return CandlesWithDelta(
        interval_ms=interval_ms,
        time_ms=opens_abs * interval_ms,
        open=np.asarray(open, dtype=np.float64)[first],
        high=np.maximum.reduceat(np.asarray(high, dtype=np.float64), first),
        low=np.minimum.reduceat(np.asarray(low, dtype=np.float64), first),
        close=np.asarray(close, dtype=np.float64)[last],
        volume=vol,
        buy_volume=buy,
        sell_volume=vol - buy,
        delta=delta,
        cvd=np.cumsum(delta),
    )


def auto_row_ticks(price_low: float, price_high: float, tick_size: float, max_rows: int) -> int:
    """The smallest row size in ticks (1, 2, 5 × 10^k) that fits ``price_low..price_high``
    in at most ``max_rows`` rows."""
    span_ticks = max((price_high - price_low) / tick_size, 1.0)
    needed = span_ticks / max(max_rows - 1, 1)
    if needed <= 1:
        return 1
    exponent = 10 ** math.floor(math.log10(needed))
    for step in (1, 2, 5, 10):
        if step * exponent >= needed:
            return int(step * exponent)
    return int(10 * exponent)
