"""Trade statistics, flow, CVD, time and sales and large trades: hand-computed examples,
empty windows, and properties over generated tapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.analytics.flow import DOT_CHUNK, chunk_dots, cvd, direction_of, dot, trade_flow
from services.analytics.large_trades import large_trades
from services.analytics.trades import time_and_sales, trade_stats
from services.analytics.window import select_window
from services.market.views import TradeView
from tests.tapes import TAPE, make_tape

EMPTY = TradeView("TESTUSDT")


def test_trade_stats_whole_view_by_hand():
    s = trade_stats(TAPE)
    assert (s.count, s.buy_count, s.sell_count) == (5, 3, 2)
    assert (s.volume, s.buy_volume, s.sell_volume, s.delta) == (15, 8, 7, 1)
    assert (s.quote_volume, s.buy_quote, s.sell_quote) == (1507, 805, 702)
    assert s.vwap == pytest.approx(1507 / 15)
    assert (s.high, s.low, s.first_price, s.last_price) == (102, 99, 100, 100)
    assert (s.avg_size, s.first_time_ms, s.last_time_ms, s.now_ms) == (3, 1000, 62000, 62000)
    assert s.buy_ratio_volume == pytest.approx(8 / 15)
    assert s.buy_ratio_count == pytest.approx(3 / 5)
    assert s.direction == "neutral"


def test_trade_stats_windows_by_hand():
    minute = trade_stats(TAPE, window_ms=60_000)  # (2000, 62000]
    assert (minute.count, minute.volume, minute.buy_volume, minute.direction) == (3, 12, 7, "buy")
    last2 = trade_stats(TAPE, last_n=2)
    assert (last2.count, last2.volume, last2.buy_volume, last2.direction) == (2, 9, 4, "sell")
    early = trade_stats(TAPE, window_ms=60_000, now_ms=2500)
    assert (early.count, early.volume, early.direction) == (2, 3, "strong_sell")
    both = trade_stats(TAPE, window_ms=60_000, last_n=1)
    assert (both.count, both.volume) == (1, 5)
    assert trade_stats(TAPE, window_ms=1000, now_ms=50_000).count == 0


def test_select_window_is_half_open():
    assert select_window(TAPE, window_ms=2000, now_ms=3000).time_ms.tolist() == [2000, 3000]
    assert select_window(TAPE, window_ms=1000, now_ms=3000).time_ms.tolist() == [3000]
    assert select_window(TAPE, last_n=0).time_ms.tolist() == []


@pytest.mark.parametrize("view", [EMPTY, make_tape([5], [1.0], [0.0], [1.0])])
def test_empty_windows_are_defined(view):
    s = trade_stats(view, window_ms=60_000)
    assert s.count == len(view) and s.buy_volume == 0
    assert math.isnan(s.vwap) and math.isnan(s.buy_ratio_volume)
    assert s.direction == "neutral"
    flow = trade_flow(view, window_ms=60_000)
    assert flow.delta == 0 and math.isnan(flow.buy_ratio) and flow.direction == "neutral"
    assert cvd(view).final == 0.0
    assert large_trades(view, relative_k=3).rows == ()
    assert len(time_and_sales(view)) == len(view)


def test_direction_thresholds():
    labels = [direction_of(r) for r in (0.0, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 1.0)]
    assert labels == [
        "strong_sell", "strong_sell", "sell", "sell", "neutral", "buy", "buy", "strong_buy",
        "strong_buy",
    ]  # fmt: skip
    assert direction_of(math.nan) == "neutral"


def test_trade_flow_by_hand():
    f = trade_flow(TAPE, window_ms=60_000)
    assert (f.count, f.buy_volume, f.sell_volume, f.delta) == (3, 7, 5, 2)
    assert (f.buy_quote, f.sell_quote, f.delta_quote) == (705, 500, 205)
    assert f.buy_ratio == pytest.approx(7 / 12) and f.direction == "buy"
    assert (f.window_ms, f.now_ms) == (60_000, 62_000)


def test_cvd_by_hand():
    base = cvd(TAPE)
    assert base.cvd.tolist() == [1, -1, 2, 6, 1]
    assert (base.anchor_ms, base.final, base.points_total, base.unit) == (1000, 1, 5, "base")
    assert cvd(TAPE, unit="quote").cvd.tolist() == [100, -102, 195, 603, 103]
    anchored = cvd(TAPE, anchor_ms=2500)
    assert (anchored.cvd.tolist(), anchored.anchor_ms) == ([3, 7, 2], 2500)
    thin = cvd(TAPE, max_points=2)
    assert (thin.time_ms.tolist(), thin.cvd.tolist(), thin.final) == ([2000, 62000], [-1, 1], 1)
    assert cvd(TAPE, anchor_ms=99_999).points_total == 0
    with pytest.raises(ValueError, match="unit"):
        cvd(TAPE, unit="lots")  # type: ignore[arg-type]


def test_time_and_sales_newest_first():
    tape = time_and_sales(TAPE, limit=2)
    assert tape.side.tolist() == [-1.0, 1.0]
    assert [(r.trade_id, r.price, r.qty, r.quote_qty, r.side) for r in tape.rows] == [
        (5, 100.0, 5.0, 500.0, "sell"),
        (4, 102.0, 4.0, 408.0, "buy"),
    ]
    assert time_and_sales(TAPE, limit=100).trade_id.tolist() == [5, 4, 3, 2, 1]
    assert time_and_sales(TAPE, limit=0).rows == ()
    assert len(time_and_sales(TAPE, limit=-3)) == 0


def test_large_trades_by_hand():
    result = large_trades(TAPE, tiers_quote=(1000, 300, 400))
    assert result.tiers_quote == (300, 400, 1000)
    assert [(r.trade_id, r.tier, r.threshold, r.side) for r in result.rows] == [
        (5, 1, 400, "sell"),
        (4, 1, 400, "buy"),
    ]
    assert result.count_by_tier == (0, 2, 0)
    relative = large_trades(TAPE, tiers_quote=(1000,), relative_k=1.5)
    assert relative.mean_qty == 3 and relative.relative_threshold_qty == 4.5
    (row,) = relative.rows
    assert (row.trade_id, row.tier, row.relative) == (5, -1, True)
    assert math.isnan(row.threshold)
    assert len(large_trades(TAPE, tiers_quote=(400,), window_ms=1000).rows) == 1


@st.composite
def tapes(draw):
    n = draw(st.integers(0, 300))
    gaps = draw(st.lists(st.integers(0, 5000), min_size=n, max_size=n))
    ticks = draw(st.lists(st.integers(9_000, 11_000), min_size=n, max_size=n))
    qtys = draw(st.lists(st.floats(0.0001, 50.0), min_size=n, max_size=n))
    sides = draw(st.lists(st.sampled_from([1.0, -1.0]), min_size=n, max_size=n))
    return make_tape(np.cumsum(gaps) + 1_000, np.array(ticks) * 0.01, qtys, sides)


@settings(max_examples=150, deadline=None)
@given(tapes(), st.sampled_from([30_000, 60_000, 300_000]))
def test_windows_partition_and_flows_agree(tape, window):
    whole = trade_stats(tape)
    assert whole.buy_volume + whole.sell_volume == pytest.approx(whole.volume)
    assert whole.buy_count + whole.sell_count == whole.count == len(tape)
    assert cvd(tape).final == pytest.approx(whole.delta, abs=1e-9)
    if len(tape) == 0:
        return
    ends = range(int(tape.time_ms[-1]), int(tape.time_ms[0]) - window, -window)
    parts = [trade_stats(tape, window_ms=window, now_ms=end) for end in ends]
    assert sum(p.count for p in parts) == whole.count
    assert sum(p.volume for p in parts) == pytest.approx(whole.volume)
    flow = trade_flow(tape, window_ms=window)
    stats = trade_stats(tape, window_ms=window)
    assert flow.delta == pytest.approx(stats.delta) and flow.direction == stats.direction
    assert whole.low * (1 - 1e-12) <= whole.vwap <= whole.high * (1 + 1e-12)
    series = cvd(tape, max_points=7)
    assert series.cvd.shape[0] <= 7 and series.cvd[-1] == series.final


@pytest.mark.parametrize(
    ("tiers", "k"), [((1_000.0, 5_000.0), None), ((2_000.0,), 4.0), ((), 3.0), ((0.0,), None)]
)
def test_large_trades_equal_a_test_of_every_trade(tiers, k):
    """Screening by size first finds exactly the trades a full price·qty test finds."""
    rng = np.random.default_rng(11)
    n = 20_000
    price = np.round(rng.uniform(90.0, 110.0, n), 2)
    qty = np.round(rng.lognormal(0.0, 1.5, n), 5)
    view = TradeView(
        "TESTUSDT",
        np.arange(n, dtype=np.int64),
        np.arange(n, dtype=np.int64),
        price,
        qty,
        np.where(rng.random(n) < 0.5, 1.0, -1.0),
    )
    result = large_trades(view, tiers_quote=tiers, relative_k=k)
    hit = (price * qty >= min(tiers)) if tiers else np.zeros(n, dtype=bool)
    if k is not None:
        hit |= qty >= k * qty.mean()
    assert result.trade_id.tolist() == np.flatnonzero(hit)[::-1].tolist()
    np.testing.assert_array_equal(result.quote_qty, (price * qty)[hit][::-1])


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([0, 1, 7, DOT_CHUNK - 1, DOT_CHUNK, DOT_CHUNK + 1, 3 * DOT_CHUNK + 5]),
    st.integers(0, 2**32 - 1),
)
def test_chunked_dot_matches_an_exact_sum(n, seed):
    rng = np.random.default_rng(seed)
    a = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    b = rng.lognormal(0.0, 2.0, n)
    exact = math.fsum((a * b).tolist())
    scale = math.fsum(np.abs(b).tolist())
    assert dot(a, b) == pytest.approx(exact, rel=0, abs=1e-12 * (1 + scale))


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([1, 2, 7, 500, 2 * DOT_CHUNK + 3, 5 * DOT_CHUNK]),
    st.integers(1, 600),
    st.integers(0, 2**32 - 1),
)
def test_chunk_dots_sum_each_run_exactly_once(n, chunks, seed):
    chunks = min(chunks, n)
    rng = np.random.default_rng(seed)
    a = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    b = rng.lognormal(0.0, 2.0, n)
    sums, ends = chunk_dots(a, b, chunks)
    sizes = np.diff(ends, prepend=0)
    assert ends[-1] == n and sizes.min() >= n // chunks and sizes.max() - sizes.min() <= 1
    starts = ends - sizes
    exact = [math.fsum((a[i:j] * b[i:j]).tolist()) for i, j in zip(starts, ends, strict=True)]
    np.testing.assert_allclose(sums, exact, rtol=0, atol=1e-12 * (1 + float(b.sum())))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 3000),
    st.integers(1, 40),
    st.sampled_from(["base", "quote"]),
    st.integers(0, 2**32 - 1),
)
def test_downsampled_cvd_is_the_full_series_at_chunk_ends(n, points, unit, seed):
    rng = np.random.default_rng(seed)
    tape = make_tape(
        np.arange(n) * 10,
        np.round(rng.uniform(90.0, 110.0, n), 2),
        np.round(rng.lognormal(0.0, 1.0, n), 5),
        np.where(rng.random(n) < 0.5, 1.0, -1.0),
    )
    full = cvd(tape, max_points=0, unit=unit)
    thin = cvd(tape, max_points=points, unit=unit)
    assert thin.cvd.shape[0] == min(points, n) and thin.time_ms[-1] == tape.time_ms[-1]
    scale = 1 + float(np.abs(full.cvd).max())
    np.testing.assert_allclose(thin.cvd, full.cvd[thin.time_ms // 10], rtol=0, atol=1e-9 * scale)
    assert thin.final == thin.cvd[-1]
