"""Book metrics, price impact and liquidity score: hand-computed examples, empty and
one-sided books, and properties over generated books."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.analytics.book import (
    book_summary,
    depth_curve,
    depth_distribution,
    depth_within,
    imbalance,
)
from services.analytics.definitions import DEFINITIONS
from services.analytics.impact import price_impact
from services.analytics.liquidity import (
    combine,
    depth_component,
    impact_component,
    liquidity_score,
    spread_component,
)
from services.market.views import BookView, SyncState


def make_book(bids, asks) -> BookView:
    """A LIVE book from [(price, qty), ...] per side, best first."""
    bp = np.array([p for p, _ in bids], dtype=np.float64)
    bq = np.array([q for _, q in bids], dtype=np.float64)
    ap = np.array([p for p, _ in asks], dtype=np.float64)
    aq = np.array([q for _, q in asks], dtype=np.float64)
    return BookView("TESTUSDT", bp, bq, ap, aq, sync_state=SyncState.LIVE)


BOOK = make_book(
    [(100.0, 2.0), (99.0, 3.0), (98.0, 5.0)], [(101.0, 1.0), (102.0, 4.0), (103.0, 5.0)]
)
EMPTY = make_book([], [])
BIDS_ONLY = make_book([(100.0, 2.0), (99.0, 3.0)], [])
ASKS_ONLY = make_book([], [(101.0, 1.0)])


def test_book_summary_by_hand():
    s = book_summary(BOOK)
    assert (s.best_bid, s.best_bid_qty, s.best_ask, s.best_ask_qty) == (100.0, 2.0, 101.0, 1.0)
    assert s.mid == 100.5
    assert s.spread == 1.0
    assert s.spread_bps == pytest.approx(1 / 100.5 * 1e4)
    assert s.weighted_mid == pytest.approx((100 * 1 + 101 * 2) / 3)
    assert s.imbalance_top == pytest.approx(1 / 3)
    assert (s.total_bid_qty, s.total_ask_qty, s.bid_ask_volume_ratio) == (10.0, 10.0, 1.0)
    assert (s.total_bid_quote, s.total_ask_quote) == (987.0, 1024.0)
    assert (s.bid_levels, s.ask_levels) == (3, 3)


def test_imbalance_within_band_by_hand():
    assert imbalance(BOOK, 100) == pytest.approx(1 / 3)  # 100 (2) vs 101 (1)
    assert imbalance(BOOK, 200) == 0.0  # 5 vs 5
    assert imbalance(BOOK, 300) == 0.0
    assert imbalance(BOOK, 10) == 0.0  # nothing within ±0.1 of mid


def test_depth_within_and_distribution_by_hand():
    b100, b200 = depth_within(BOOK, (100, 200))
    assert (b100.band_bps, b100.bid_base, b100.ask_base) == (100.0, 2.0, 1.0)
    assert (b100.bid_quote, b100.ask_quote) == (200.0, 101.0)
    assert (b200.bid_base, b200.ask_base, b200.bid_quote, b200.ask_quote) == (5, 5, 497, 509)
    dist = depth_distribution(BOOK, bucket_bps=100, max_bps=300)
    assert dist.edges_bps.tolist() == [0.0, 100.0, 200.0]
    assert dist.bid_base.tolist() == [2.0, 3.0, 5.0]
    assert dist.ask_base.tolist() == [1.0, 4.0, 5.0]
    assert dist.ask_quote.tolist() == [101.0, 408.0, 515.0]
    assert depth_distribution(BOOK, bucket_bps=100, max_bps=200).bid_base.tolist() == [2, 3]


def test_depth_curve_by_hand():
    c = depth_curve(BOOK)
    assert c.bid_cum_qty.tolist() == [2, 5, 10]
    assert c.bid_cum_quote.tolist() == [200, 497, 987]
    assert c.ask_cum_qty.tolist() == [1, 5, 10]
    assert c.ask_cum_quote.tolist() == [101, 509, 1024]
    assert depth_curve(BOOK, max_levels=2).ask_prices.tolist() == [101, 102]
    near = depth_curve(BOOK, max_distance_pct=1.0)
    assert (near.bid_prices.tolist(), near.ask_prices.tolist()) == ([100.0], [101.0])


def test_price_impact_by_hand():
    rows = price_impact(BOOK, [3, 10, 11])
    buy3, buy10, buy11, sell3, _, _ = rows
    assert (buy3.side, buy3.avg_price, buy3.worst_price, buy3.levels_used) == (
        "buy",
        305 / 3,
        102,
        2,
    )
    assert buy3.slippage_bps == pytest.approx((305 / 3 / 100.5 - 1) * 1e4)
    assert (buy10.avg_price, buy10.levels_used, buy10.unfillable) == (102.4, 3, False)
    assert buy11.unfillable and (buy11.filled, buy11.avg_price, buy11.levels_used) == (10, 102.4, 3)
    assert (sell3.side, sell3.avg_price, sell3.worst_price) == ("sell", 299 / 3, 99)
    assert sell3.slippage_bps == pytest.approx((1 - 299 / 3 / 100.5) * 1e4)
    q101, q305 = (r for r in price_impact(BOOK, [101, 305], unit="quote") if r.side == "buy")
    assert (q101.filled_base, q101.levels_used, q101.avg_price) == (1.0, 1, 101.0)
    assert q305.filled_base == pytest.approx(3.0)
    assert q305.filled == 305
    zero = price_impact(BOOK, [0])[0]
    assert zero.levels_used == 0 and math.isnan(zero.avg_price) and not zero.unfillable
    with pytest.raises(ValueError, match="unit"):
        price_impact(BOOK, [1], unit="lots")  # type: ignore[arg-type]


@pytest.mark.parametrize("book", [EMPTY, BIDS_ONLY, ASKS_ONLY], ids=["empty", "bids", "asks"])
def test_empty_and_one_sided_books_are_defined(book):
    s = book_summary(book)
    assert math.isnan(s.mid) and math.isnan(s.spread_bps) and math.isnan(s.weighted_mid)
    assert math.isnan(imbalance(book, 25))
    assert all(math.isnan(b.bid_quote) for b in depth_within(book))
    assert depth_distribution(book, 5, 50).bid_base.sum() == 0
    curve = depth_curve(book, max_distance_pct=1.0, max_levels=10)
    assert curve.bid_prices.shape[0] == book.bid_prices.shape[0]
    for row in price_impact(book, [1.0]):
        assert math.isnan(row.slippage_bps)
    assert liquidity_score(book).score == 0.0  # no mid: every component is undefined


def test_one_sided_top_of_book():
    assert book_summary(BIDS_ONLY).imbalance_top == 1.0
    assert book_summary(ASKS_ONLY).imbalance_top == -1.0
    assert math.isnan(book_summary(EMPTY).imbalance_top)
    assert math.isnan(book_summary(BIDS_ONLY).bid_ask_volume_ratio)
    rows = price_impact(BIDS_ONLY, [1.0])
    assert rows[0].unfillable and rows[0].levels_used == 0
    assert rows[1].avg_price == 100.0 and not rows[1].unfillable


def test_liquidity_components_by_hand():
    assert spread_component(0.0) == 100.0
    assert spread_component(1.0) == 50.0
    assert depth_component(1_000_000.0) == 50.0
    assert impact_component(5.0) == 50.0
    assert impact_component(math.nan) == 0.0
    assert combine(100, 100, 100) == 100.0
    assert combine(50, 50, 50) == pytest.approx(50.0)


def test_definitions_cover_the_shown_metrics():
    for key in ("spread_bps", "imbalance", "weighted_mid", "vwap", "cvd", "point_of_control"):
        assert DEFINITIONS[key]


@st.composite
def books(draw, min_levels: int = 0):
    """Books around 100 with random gaps (in ticks of 0.01) and sizes."""
    gaps = st.lists(st.integers(1, 50), min_size=min_levels, max_size=40)
    sizes = st.floats(0.001, 1000.0, allow_nan=False)
    bid_gaps, ask_gaps = draw(gaps), draw(gaps)
    bids = 100.0 - np.cumsum(bid_gaps) * 0.01
    asks = 100.0 + (np.cumsum(ask_gaps) - 1) * 0.01
    bq = draw(st.lists(sizes, min_size=len(bid_gaps), max_size=len(bid_gaps)))
    aq = draw(st.lists(sizes, min_size=len(ask_gaps), max_size=len(ask_gaps)))
    return make_book(list(zip(bids, bq, strict=True)), list(zip(asks, aq, strict=True)))


@settings(max_examples=150, deadline=None)
@given(books(), st.floats(0.0, 500.0))
def test_imbalance_is_bounded(book, band):
    value = imbalance(book, band)
    assert math.isnan(value) or -1.0 <= value <= 1.0
    top = book_summary(book).imbalance_top
    assert math.isnan(top) or -1.0 <= top <= 1.0


@settings(max_examples=150, deadline=None)
@given(books(), st.lists(st.floats(0.0, 20_000.0), min_size=1, max_size=12), st.booleans())
def test_impact_never_decreases_with_size(book, sizes, quote):
    sizes = sorted(sizes)
    rows = price_impact(book, sizes, unit="quote" if quote else "base")
    for side in ("buy", "sell"):
        ordered = [r for r in rows if r.side == side]
        slips = [r.slippage_bps for r in ordered if not math.isnan(r.slippage_bps)]
        assert all(b >= a - 1e-9 * (1 + abs(a)) for a, b in itertools.pairwise(slips))
        levels = [r.levels_used for r in ordered]
        assert levels == sorted(levels)
        for r in ordered:
            assert r.filled <= r.size * (1 + 1e-12) + 1e-12
            assert r.unfillable or r.filled == pytest.approx(r.size)


@settings(max_examples=100, deadline=None)
@given(books(min_levels=1), st.floats(1.01, 100.0))
def test_liquidity_score_bounded_and_rises_with_depth(book, factor):
    score = liquidity_score(book)
    assert 0.0 <= score.score <= 100.0
    deeper = BookView(
        book.symbol,
        book.bid_prices,
        book.bid_qtys * factor,
        book.ask_prices,
        book.ask_qtys * factor,
    )
    assert liquidity_score(deeper).score >= score.score - 1e-9


@settings(max_examples=200, deadline=None)
@given(
    st.tuples(st.floats(0.0, 1e4), st.floats(0.0, 1e4)),
    st.tuples(st.floats(0.0, 1e10), st.floats(0.0, 1e10)),
    st.tuples(st.floats(0.0, 1e4), st.floats(0.0, 1e4)),
)
def test_liquidity_score_monotone_in_each_input(spreads, depths, impacts):
    tight, wide = sorted(spreads)
    thin, deep = sorted(depths)
    low, high = sorted(impacts)
    base = (spread_component(wide), depth_component(thin), impact_component(high))
    assert 0.0 <= combine(*base) <= 100.0
    better = [
        (spread_component(tight), base[1], base[2]),
        (base[0], depth_component(deep), base[2]),
        (base[0], base[1], impact_component(low)),
    ]
    for components in better:
        assert combine(*components) >= combine(*base)


@st.composite
def deep_books(draw):
    """Books of up to 400 levels a side (deeper than the first cumulative prefix)."""
    seed = draw(st.integers(0, 2**32 - 1))
    nb, na = draw(st.integers(0, 400)), draw(st.integers(0, 400))
    rng = np.random.default_rng(seed)
    bids = np.round(100.0 - np.cumsum(rng.integers(1, 5, nb)) * 0.01, 2)
    asks = np.round(100.0 + (np.cumsum(rng.integers(1, 5, na)) - 1) * 0.01, 2)
    bq, aq = rng.exponential(2.0, nb), rng.exponential(2.0, na)
    return make_book(list(zip(bids, bq, strict=True)), list(zip(asks, aq, strict=True)))


@settings(max_examples=150, deadline=None)
@given(
    deep_books(),
    st.lists(st.floats(0.0, 300.0), min_size=1, max_size=6),
    st.lists(st.floats(0.0, 2_000.0), min_size=1, max_size=6),
)
def test_depth_and_impact_match_full_cumulative_sums(book, bands, sizes):
    two_sided = len(book.bid_prices) and len(book.ask_prices)
    mid = (book.bid_prices[0] + book.ask_prices[0]) / 2 if two_sided else math.nan
    for band in depth_within(book, bands):
        if math.isnan(mid):
            assert math.isnan(band.bid_quote)
            continue
        frac = band.band_bps / 1e4
        keep_b = book.bid_prices >= mid * (1 - frac)
        keep_a = book.ask_prices <= mid * (1 + frac)
        assert band.bid_base == pytest.approx(book.bid_qtys[keep_b].sum(), rel=1e-12, abs=1e-12)
        assert band.ask_base == pytest.approx(book.ask_qtys[keep_a].sum(), rel=1e-12, abs=1e-12)
        bid_quote = (book.bid_prices * book.bid_qtys)[keep_b].sum()
        assert band.bid_quote == pytest.approx(bid_quote, rel=1e-12, abs=1e-12)
        ask_quote = (book.ask_prices * book.ask_qtys)[keep_a].sum()
        assert band.ask_quote == pytest.approx(ask_quote, rel=1e-12, abs=1e-12)
    curve = depth_curve(book)
    assert np.array_equal(curve.bid_cum_qty, np.cumsum(book.bid_qtys))
    assert np.array_equal(curve.ask_cum_quote, np.cumsum(book.ask_prices * book.ask_qtys))
    for unit in ("base", "quote"):
        for row in price_impact(book, sizes, unit=unit):
            prices, qtys = (
                (book.ask_prices, book.ask_qtys)
                if row.side == "buy"
                else (book.bid_prices, book.bid_qtys)
            )
            cum = np.cumsum(qtys if unit == "base" else prices * qtys)
            k = int(np.searchsorted(cum, max(row.size, 0.0), side="left"))
            assert row.unfillable == (k >= len(prices))
            if not row.unfillable and row.filled_base > 0:
                assert row.worst_price == prices[k]


@settings(max_examples=150, deadline=None)
@given(books(), st.floats(0.5, 40.0), st.floats(1.0, 200.0))
def test_depth_distribution_equals_a_loop_over_levels(book, bucket_bps, max_bps):
    dist = depth_distribution(book, bucket_bps, max_bps)
    n = dist.bid_base.shape[0]
    expected = {side: [[0.0] * n, [0.0] * n] for side in ("bid", "ask")}
    mid = dist.mid
    if not math.isnan(mid):
        scale = 1e4 / (mid * bucket_bps)
        for side, prices, qtys, sign in (
            ("bid", book.bid_prices, book.bid_qtys, -1.0),
            ("ask", book.ask_prices, book.ask_qtys, 1.0),
        ):
            for price, qty in zip(prices.tolist(), qtys.tolist(), strict=True):
                bucket = max(int((price - mid) * sign * scale), 0)
                if (price - mid) * sign * scale < n:
                    expected[side][0][bucket] += qty
                    expected[side][1][bucket] += price * qty
    for got, want in (
        (dist.bid_base, expected["bid"][0]),
        (dist.bid_quote, expected["bid"][1]),
        (dist.ask_base, expected["ask"][0]),
        (dist.ask_quote, expected["ask"][1]),
    ):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
