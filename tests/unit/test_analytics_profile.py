"""Volume profile: rows, POC tie rule, CBOT dual-row value area, and properties over
generated tapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.analytics.profile import point_of_control, value_area_rows, volume_profile
from services.market.views import TradeView
from tests.tapes import TAPE, make_tape


def test_one_tick_rows_by_hand():
    p = volume_profile(TAPE, tick_size=1.0, bucket_ticks=1, count_trades=True)
    assert p.price.tolist() == [99, 100, 101, 102]
    assert p.volume.tolist() == [3, 6, 2, 4]
    assert p.buy_volume.tolist() == [3, 1, 0, 4]
    assert p.sell_volume.tolist() == [0, 5, 2, 0]
    assert p.delta.tolist() == [3, -4, -2, 4]
    assert p.trades.tolist() == [1, 2, 1, 1]
    unsplit = volume_profile(TAPE, tick_size=1.0, bucket_ticks=1)
    assert unsplit.trades is None and unsplit.volume.tolist() == p.volume.tolist()
    assert (p.poc_index, p.point_of_control, p.total_volume) == (1, 100, 15)
    # goal 10.5: POC 6, then rows above (101+102 = 6) beat the one row below (3) -> 12
    assert (p.va_low_index, p.va_high_index, p.val, p.vah) == (1, 3, 100, 103)
    assert p.value_area_volume_pct == pytest.approx(80.0)


def test_wider_rows_are_aligned_to_the_bucket():
    p = volume_profile(TAPE, tick_size=1.0, bucket_ticks=2)
    assert (p.bucket, p.price.tolist(), p.volume.tolist()) == (2, [98, 100, 102], [3, 8, 4])
    assert p.point_of_control == 100
    cents = make_tape([1, 2, 3], [0.07, 0.1, 0.3], [1, 1, 1], [1, 1, 1])
    tenths = volume_profile(cents, tick_size=0.01, bucket_ticks=10)
    assert tenths.price.tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert tenths.volume.tolist() == [1, 1, 0, 1]


def test_rows_mode_and_windows():
    p = volume_profile(TAPE, tick_size=1.0, rows=2)
    assert p.bucket == 3 and p.price.tolist() == [99, 102] and p.volume.tolist() == [11, 4]
    padded = volume_profile(TAPE, tick_size=1.0, rows=9)
    assert padded.bucket == 1 and padded.price.tolist() == list(range(97, 106))
    assert padded.volume.tolist() == [0, 0, 3, 6, 2, 4, 0, 0, 0]
    floor = volume_profile(make_tape([1, 2], [0.01, 0.02], [1, 1], [1, 1]), tick_size=0.01, rows=5)
    assert floor.price.tolist() == pytest.approx([0.0, 0.01, 0.02, 0.03, 0.04])
    recent = volume_profile(TAPE, tick_size=1.0, bucket_ticks=1, window_ms=60_000)
    assert recent.total_volume == 12
    early = volume_profile(TAPE, tick_size=1.0, bucket_ticks=1, window_ms=60_000, now_ms=2000)
    assert early.price.tolist() == [100, 101]


def test_empty_window_is_defined():
    p = volume_profile(TradeView("X"), tick_size=0.01, rows=50)
    assert p.total_volume == 0 and p.price.shape == (0,) and p.poc_index == -1
    assert math.isnan(p.point_of_control) and math.isnan(p.vah) and math.isnan(p.val)
    assert p.trades is None
    assert volume_profile(TradeView("X"), tick_size=0.01, count_trades=True).trades.shape == (0,)
    gone = volume_profile(TAPE, tick_size=1.0, window_ms=10, now_ms=500)
    assert gone.volume.shape == (0,)
    with pytest.raises(ValueError, match="tick_size"):
        volume_profile(TAPE, tick_size=0.0)
    with pytest.raises(ValueError, match="too tall"):
        volume_profile(TAPE, tick_size=1e-9, bucket_ticks=1)


def test_poc_ties_go_to_the_centre_then_lower():
    assert point_of_control(np.array([5.0, 0, 5, 0, 5])) == 2
    assert point_of_control(np.array([5.0, 5, 0, 0])) == 1
    assert point_of_control(np.array([0.0, 5, 5, 0])) == 1
    assert point_of_control(np.array([0.0, 0])) == -1


def test_value_area_dual_row_expansion():
    # goal 17.5 of 25: POC 10; above 4+4 = 8 beats below 3+2 = 5 -> 18
    assert value_area_rows(np.array([1.0, 2, 3, 10, 4, 4, 1]), 3) == (3, 5)
    # a tie adds both pairs
    assert value_area_rows(np.array([2.0, 2, 10, 2, 2]), 2) == (0, 4)
    # one side exhausted: keep growing the other
    assert value_area_rows(np.array([10.0] + [1.0] * 9), 0) == (0, 4)  # 10, 12, 14 ≥ 13.3
    assert value_area_rows(np.array([7.0]), 0) == (0, 0)


@st.composite
def tapes(draw):
    n = draw(st.integers(1, 300))
    ticks = draw(st.lists(st.integers(10_000, 10_400), min_size=n, max_size=n))
    qtys = draw(st.lists(st.floats(0.0001, 50.0), min_size=n, max_size=n))
    sides = draw(st.lists(st.sampled_from([1.0, -1.0]), min_size=n, max_size=n))
    return make_tape(np.arange(n) * 100, np.array(ticks) * 0.01, qtys, sides)


@settings(max_examples=200, deadline=None)
@given(
    tapes(),
    st.one_of(st.none(), st.integers(1, 40)),
    st.integers(1, 80),
    st.sampled_from([0.682, 0.7]),
)
def test_profile_properties(tape, bucket_ticks, rows, target):
    p = volume_profile(
        tape,
        tick_size=0.01,
        bucket_ticks=bucket_ticks,
        rows=rows,
        value_area=target,
        count_trades=True,
    )
    assert p.total_volume == pytest.approx(float(tape.qty.sum()), rel=1e-12)
    assert int(p.trades.sum()) == len(tape)
    np.testing.assert_allclose(p.buy_volume + p.sell_volume, p.volume, rtol=1e-12, atol=1e-12)
    assert p.volume[p.poc_index] == p.volume.max()
    assert p.va_low_index <= p.poc_index <= p.va_high_index
    assert p.val <= p.point_of_control < p.vah
    assert p.value_area_volume_pct >= 100 * target * (1 - 1e-12)
    assert np.all(np.diff(p.price) > 0)
    prices = tape.price
    assert p.price[0] <= prices.min() + 0.005 and prices.max() - 0.005 < p.price[-1] + p.bucket
    if bucket_ticks is None:
        assert len(p.price) == rows and p.price[0] > -p.bucket / 2


@pytest.mark.parametrize("bucket_ticks", [None, 1, 3, 40])
def test_rows_match_a_plain_loop_over_runs_of_trades(bucket_ticks):
    """The lane-split bincount gives the same per-row sums and counts as one loop."""
    rng = np.random.default_rng(5)
    n = 5003
    prices = np.round(100.0 + np.cumsum(rng.integers(-3, 4, n) * (rng.random(n) < 0.2)) * 0.01, 2)
    qtys = np.round(rng.lognormal(-3, 1.5, n), 5)
    sides = np.where(np.repeat(rng.random(n // 7 + 1) < 0.5, 7)[:n], 1.0, -1.0)
    view = make_tape(np.arange(n), prices, qtys, sides)
    p = volume_profile(view, tick_size=0.01, bucket_ticks=bucket_ticks, rows=25, count_trades=True)
    buy = [0.0] * len(p.price)
    sell = [0.0] * len(p.price)
    count = [0] * len(p.price)
    for price, qty, side in zip(prices.tolist(), qtys.tolist(), sides.tolist(), strict=True):
        row = int((price - p.price[0] + 0.005) / p.bucket)
        (buy if side > 0 else sell)[row] += qty
        count[row] += 1
    np.testing.assert_allclose(p.buy_volume, buy, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(p.sell_volume, sell, rtol=1e-12, atol=1e-12)
    assert p.trades.tolist() == count
