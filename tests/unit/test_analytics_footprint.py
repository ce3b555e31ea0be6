"""Footprint candles against a plain-loop reference: rows, bar totals, POC, diagonal and
stacked imbalances, naked POCs; candles with delta from klines; the flow filter."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.analytics.flow_filter import FlowFilter, filter_trades
from services.analytics.footprint import (
    auto_row_ticks,
    candles_with_delta,
    footprint,
    interval_ms_of,
)
from services.market.views import TradeView
from tests.tapes import make_tape


def reference(view: TradeView, interval_ms, tick, row_ticks, ratio, min_vol, stacked):
    """Everything the footprint computes, in plain Python loops over the trades."""
    size = tick * row_ticks
    bars: dict[int, dict] = {}
    order: list[int] = []
    for t, p, q, s in zip(view.time_ms, view.price, view.qty, view.side, strict=True):
        b = int(t) // interval_ms
        r = math.floor((float(p) + tick / 2) / size)
        if b not in bars:
            bars[b] = {"cells": defaultdict(lambda: [0.0, 0.0, 0]), "prices": [], "rows": []}
            order.append(b)
        cell = bars[b]["cells"][r]
        cell[0 if s > 0 else 1] += float(q)
        cell[2] += 1
        bars[b]["prices"].append(float(p))
        bars[b]["rows"].append(r)
    out = []
    cvd = 0.0
    for b in order:
        bar = bars[b]
        cells = bar["cells"]
        lo, hi = min(bar["rows"]), max(bar["rows"])
        buy = sum(c[0] for c in cells.values())
        sell = sum(c[1] for c in cells.values())
        cvd += buy - sell
        top = max(c[0] + c[1] for c in cells.values())
        tied = [r for r, c in cells.items() if c[0] + c[1] == top]
        poc = min(tied, key=lambda r: (abs(2 * r - (lo + hi)), r))
        flags = {}
        for r in sorted(cells):
            bu, se = cells[r][0], cells[r][1]
            below = cells[r - 1][1] if r - 1 in cells else 0.0
            above = cells[r + 1][0] if r + 1 in cells else 0.0
            buy_imb = bu > 0 and bu >= min_vol and r - 1 >= lo and bu >= ratio * below
            sell_imb = se > 0 and se >= min_vol and r + 1 <= hi and se >= ratio * above
            flags[r] = [buy_imb, sell_imb, False, False]
        runs = []
        for k, side in ((0, 1), (1, -1)):
            run: list[int] = []
            for r in [*sorted(cells), None]:
                if r is not None and flags[r][k] and (not run or run[-1] == r - 1):
                    run.append(r)
                    continue
                if len(run) >= stacked:
                    runs.append((side, run[0], run[-1]))
                    for x in run:
                        flags[x][k + 2] = True
                run = [r] if r is not None and flags[r][k] else []
        out.append(
            {
                "time": b * interval_ms,
                "ohlc": (
                    bar["prices"][0],
                    max(bar["prices"]),
                    min(bar["prices"]),
                    bar["prices"][-1],
                ),
                "buy": buy,
                "sell": sell,
                "trades": sum(c[2] for c in cells.values()),
                "cvd": cvd,
                "poc": poc,
                "lo": lo,
                "hi": hi,
                "cells": {r: tuple(cells[r]) for r in sorted(cells)},
                "flags": flags,
                "runs": runs,
            }
        )
    for i, bar in enumerate(out):
        bar["naked_until"] = next(
            (later["time"] for later in out[i + 1 :] if later["lo"] <= bar["poc"] <= later["hi"]),
            -1,
        )
    return out


def assert_matches_reference(view, interval_ms=60_000, tick=0.01, row_ticks=1, ratio=3.0,
                             min_vol=0.0, stacked=3):  # fmt: skip
    f = footprint(
        view,
        interval_ms=interval_ms,
        tick_size=tick,
        row_ticks=row_ticks,
        imbalance_ratio=ratio,
        imbalance_min_volume=min_vol,
        stacked_rows=stacked,
    )
    ref = reference(view, interval_ms, tick, row_ticks, ratio, min_vol, stacked)
    size = tick * row_ticks
    assert f.bars == len(ref)
    runs = []
    for i, bar in enumerate(ref):
        assert f.bar_time_ms[i] == bar["time"]
        assert (f.open[i], f.high[i], f.low[i], f.close[i]) == bar["ohlc"]
        assert f.buy_volume[i] == pytest.approx(bar["buy"])
        assert f.sell_volume[i] == pytest.approx(bar["sell"])
        assert f.delta[i] == pytest.approx(bar["buy"] - bar["sell"])
        assert f.trades[i] == bar["trades"]
        assert f.cvd[i] == pytest.approx(bar["cvd"])
        assert f.poc_price[i] == pytest.approx(bar["poc"] * size)
        assert f.naked_until_ms[i] == bar["naked_until"]
        idx = np.flatnonzero(f.cell_bar == i)
        rows = [round(p / size) for p in f.cell_price[idx]]
        assert rows == list(bar["cells"])
        for j, r in zip(idx, rows, strict=True):
            buy, sell, count = bar["cells"][r]
            assert (f.cell_buy[j], f.cell_sell[j]) == pytest.approx((buy, sell))
            assert f.cell_delta[j] == pytest.approx(buy - sell)
            assert f.cell_trades[j] == count
            flags = [f.buy_imbalance[j], f.sell_imbalance[j], f.stacked_buy[j], f.stacked_sell[j]]
            assert flags == bar["flags"][r], (i, r)
        runs += [
            (i, side, lo * size, hi * size)
            for side, lo, hi in sorted(bar["runs"], key=lambda x: (x[1], -x[0]))
        ]
    got = list(
        zip(
            f.run_bar.tolist(),
            f.run_side.tolist(),
            f.run_low.tolist(),
            f.run_high.tolist(),
            strict=True,
        )
    )
    assert len(got) == len(runs)
    for g, r in zip(got, runs, strict=True):
        assert g[:2] == r[:2] and g[2:] == pytest.approx(r[2:])
    return f


# Bar 0 (minute 0), prices in ticks of 1: rows 100..105.
#   100: sell 1      101: buy 4 (vs sell@100 = 1 -> 400 %: buy imbalance)
#   102: buy 9, sell 1 (buy 9 vs sell@101 = 0 -> imbalance)   103: buy 3 (vs sell@102 1 -> 300 %)
#   104: sell 10 (vs buy@105 = 2 -> 500 %: sell imbalance)   105: buy 2
# Bar 1 (minute 1): trades only at 110..111, so bar 0's POC (102, volume 10) stays naked
# until bar 2 trades down through it.
HAND = make_tape(
    [0, 1, 2, 3, 4, 5, 6, 60_000, 60_001, 120_000, 120_001],
    [100, 101, 102, 102, 103, 104, 105, 110, 111, 103, 99],
    [1, 4, 9, 1, 3, 10, 2, 1, 1, 1, 1],
    [-1, 1, 1, -1, 1, -1, 1, 1, -1, 1, -1],
)


def test_hand_made_bars_rows_poc_imbalances_and_runs():
    f = assert_matches_reference(HAND, tick=1.0)
    assert f.bar_time_ms.tolist() == [0, 60_000, 120_000]
    first = f.cell_bar == 0
    assert f.cell_price[first].tolist() == [100, 101, 102, 103, 104, 105]
    assert f.cell_buy[first].tolist() == [0, 4, 9, 3, 0, 2]
    assert f.cell_sell[first].tolist() == [1, 0, 1, 0, 10, 0]
    assert f.buy_imbalance[first].tolist() == [False, True, True, True, False, False]
    assert f.sell_imbalance[first].tolist() == [False, False, False, False, True, False]
    assert f.stacked_buy[first].tolist() == [False, True, True, True, False, False]
    assert (f.run_bar.tolist(), f.run_side.tolist()) == ([0], [1])
    assert (f.run_low.tolist(), f.run_high.tolist(), f.run_rows.tolist()) == ([101], [103], [3])
    assert f.poc_price.tolist()[0] == 102
    assert f.volume.tolist() == [30, 2, 2] and f.delta.tolist()[0] == 6
    assert f.cvd.tolist() == [6, 6, 6]
    assert f.naked_until_ms.tolist() == [120_000, -1, -1]
    assert f.total_volume == 34
    # at 500 %, 103 (300 %) is no longer imbalanced and the run breaks
    f5 = assert_matches_reference(HAND, tick=1.0, ratio=5.0)
    assert f5.buy_imbalance[first].tolist() == [False, False, True, False, False, False]
    assert f5.run_bar.shape[0] == 0
    # a minimum volume of 5 keeps only the 9 and the 10
    fm = assert_matches_reference(HAND, tick=1.0, min_vol=5.0)
    assert fm.buy_imbalance[first].tolist() == [False, False, True, False, False, False]
    assert fm.sell_imbalance[first].tolist() == [False, False, False, False, True, False]


def test_wider_rows_merge_ticks_and_window_bounds():
    f = assert_matches_reference(HAND, tick=1.0, row_ticks=2)
    assert f.cell_price[f.cell_bar == 0].tolist() == [100, 102, 104]
    part = footprint(HAND, interval_ms=60_000, tick_size=1.0, start_ms=60_000, end_ms=120_000)
    assert part.bar_time_ms.tolist() == [60_000] and part.total_volume == 2
    empty = footprint(HAND, interval_ms=60_000, tick_size=1.0, start_ms=10**9)
    assert empty.bars == 0 and empty.cell_price.shape == (0,) and empty.total_volume == 0


def test_poc_tie_goes_to_middle_then_lower():
    tape = make_tape([0, 1, 2, 3], [100, 101, 102, 103], [2, 2, 1, 2], [1, 1, -1, -1])
    f = assert_matches_reference(tape, tick=1.0)
    # rows 100..103, middle 101.5: tied rows 100, 101, 103 -> 101 (distance 1) beats 103 (3)
    assert f.poc_price.tolist() == [101]


def test_one_hour_bars_align_to_the_utc_hour():
    hour = 3_600_000
    tape = make_tape([hour - 1, hour, 2 * hour + 5], [1.0, 1.0, 1.0], [1, 1, 1], [1, 1, 1])
    f = footprint(tape, interval_ms=interval_ms_of("1h"), tick_size=0.1)
    assert f.bar_time_ms.tolist() == [0, hour, 2 * hour]
    with pytest.raises(ValueError, match="interval must be one of"):
        interval_ms_of("2m")


def test_recorded_tape_matches_reference(recorded_btc_trades):
    view = recorded_btc_trades
    assert len(view) > 10_000
    assert_matches_reference(view, tick=0.01, row_ticks=50, ratio=3.0, min_vol=0.05)
    assert_matches_reference(view, interval_ms=300_000, tick=0.01, row_ticks=200, ratio=2.0)


tapes = st.integers(min_value=1, max_value=120).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 400_000), min_size=n, max_size=n).map(sorted),
        st.lists(st.integers(9_990, 10_010), min_size=n, max_size=n),
        st.lists(st.integers(1, 5_000), min_size=n, max_size=n),
        st.lists(st.sampled_from([-1, 1]), min_size=n, max_size=n),
    )
)


@settings(max_examples=60, deadline=None)
@given(tapes, st.sampled_from([1, 2, 5]), st.sampled_from(list(range(1, 5))))
def test_rows_sum_to_bars_and_bars_to_window(tape, row_ticks, stacked):
    times, ticks, qtys, sides = tape
    view = make_tape(times, [t / 100 for t in ticks], [q / 1000 for q in qtys], sides)
    f = assert_matches_reference(view, tick=0.01, row_ticks=row_ticks, ratio=2.0, stacked=stacked)
    for i in range(f.bars):
        cells = f.cell_bar == i
        assert f.cell_volume[cells].sum() == pytest.approx(f.volume[i])
        assert f.cell_delta[cells].sum() == pytest.approx(f.delta[i])
        assert f.cell_trades[cells].sum() == f.trades[i]
    assert f.volume.sum() == pytest.approx(float(view.qty.sum()))
    assert f.trades.sum() == len(view)
    assert f.cvd[-1] == pytest.approx(float((view.qty * view.side).sum()))


def test_candles_with_delta_from_klines():
    minute = 60_000
    t = np.arange(6) * minute
    c = candles_with_delta(
        time_ms=t,
        open=np.array([1, 2, 3, 4, 5, 6.0]),
        high=np.array([2, 3, 9, 5, 6, 7.0]),
        low=np.array([0.5, 1, 2, 3, 1, 5.0]),
        close=np.array([2, 3, 4, 5, 6, 7.0]),
        volume=np.array([10, 10, 10, 10, 10, 10.0]),
        taker_buy_volume=np.array([7, 5, 2, 10, 0, 6.0]),
        interval_ms=5 * minute,
    )
    assert c.time_ms.tolist() == [0, 5 * minute]
    assert (c.open.tolist(), c.close.tolist()) == ([1, 6], [6, 7])
    assert (c.high.tolist(), c.low.tolist()) == ([9, 7], [0.5, 5])
    assert c.buy_volume.tolist() == [24, 6] and c.sell_volume.tolist() == [26, 4]
    assert c.delta.tolist() == [-2, 2] and c.cvd.tolist() == [-2, 0]
    one = candles_with_delta(
        time_ms=t, open=t * 1.0, high=t * 1.0, low=t * 1.0, close=t * 1.0,
        volume=np.full(6, 3.0), taker_buy_volume=np.full(6, 2.0), interval_ms=minute,
    )  # fmt: skip
    assert one.delta.tolist() == [1.0] * 6  # 2·V − v per kline


def test_flow_filter_band_and_label():
    tape = make_tape([1, 2, 3, 4], [100, 100, 100, 100], [1, 10, 100, 1000], [1, -1, 1, -1])
    kept = filter_trades(tape, FlowFilter(min_notional=1_000, max_notional=10_000))
    assert kept.qty.tolist() == [10, 100] and kept.trade_id.tolist() == [2, 3]
    assert filter_trades(tape, FlowFilter()) is tape
    assert FlowFilter(min_notional=100_000).label() == "≥ 100k"
    assert FlowFilter(10_000, 1_000_000).label() == "10k–1M"
    assert FlowFilter(max_notional=5e3).label() == "≤ 5k" and FlowFilter().label() == ""
    with pytest.raises(ValueError, match="max_notional"):
        FlowFilter(10, 5)


def test_auto_row_ticks():
    assert auto_row_ticks(100.0, 100.5, 0.01, 100) == 1
    assert auto_row_ticks(60_000.0, 61_000.0, 0.01, 60) == 2_000
    assert auto_row_ticks(60_000.0, 60_100.0, 0.01, 60) == 200


@pytest.fixture(scope="module")
def recorded_btc_trades(recordings) -> TradeView:
    """Every trade of the 2024 spot BTCUSDT recording (≈ 20k)."""
    from tests.unit.test_analytics_recordings import load_symbol

    return load_symbol(recordings["spot_2024"], "BTCUSDT")[1]
