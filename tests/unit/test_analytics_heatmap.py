"""Liquidity heatmap against a plain-loop reference (maximum per cell, empty where the book
was not LIVE), incremental columns, trade dots, and the live book-sample ring."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.analytics.heatmap import append_columns, liquidity_heatmap, trade_dots
from services.market.book_samples import BookSampleRing, BookSamples, band_levels, merge_max
from services.market.views import BookSample, BookView, SyncState
from tests.tapes import make_tape


def sample(t, bids=(), asks=(), live=True) -> BookSample:
    bids = sorted(bids, reverse=True)
    asks = sorted(asks)
    return BookSample(
        t,
        live,
        np.array([p for p, _ in bids], dtype=np.float64),
        np.array([q for _, q in bids], dtype=np.float64),
        np.array([p for p, _ in asks], dtype=np.float64),
        np.array([q for _, q in asks], dtype=np.float64),
    )


def reference(samples, start, end, tb, low, high, tick, k, unit):
    """Cell by cell: the max over the column's LIVE samples of Σ size in the row."""
    size = tick * k
    r0 = math.floor((low + tick / 2) / size)
    r1 = math.floor((high + tick / 2) / size)
    c0 = start // tb
    ncols = (end - 1) // tb - c0 + 1
    out = {}
    for side in ("bid", "ask"):
        grid = [[math.nan] * (r1 - r0 + 1) for _ in range(ncols)]
        for s in samples:
            if not (start <= s.time_ms < end) or not s.is_live:
                continue
            c = s.time_ms // tb - c0
            sums = [0.0] * (r1 - r0 + 1)
            for p, q in zip(getattr(s, f"{side}_prices"), getattr(s, f"{side}_qtys"), strict=True):
                r = math.floor((p + tick / 2) / size) - r0
                if 0 <= r <= r1 - r0:
                    sums[r] += q * (p if unit == "quote" else 1.0)
            grid[c] = [
                s_ if math.isnan(g) else max(g, s_) for g, s_ in zip(grid[c], sums, strict=True)
            ]
        out[side] = np.array(grid)
    return out


def check(samples, start, end, tb, low, high, tick=1.0, k=1, unit="base"):
    h = liquidity_heatmap(
        samples, start_ms=start, end_ms=end, time_bucket_ms=tb, price_low=low,
        price_high=high, tick_size=tick, price_bucket_ticks=k, unit=unit,
    )  # fmt: skip
    ref = reference(samples, start, end, tb, low, high, tick, k, unit)
    np.testing.assert_allclose(h.bids, ref["bid"], equal_nan=True)
    np.testing.assert_allclose(h.asks, ref["ask"], equal_nan=True)
    assert h.live.tolist() == [not np.isnan(row).all() for row in ref["bid"]]
    return h


SAMPLES = [
    sample(1000, bids=[(99, 2), (98, 5)], asks=[(101, 1), (103, 4)]),
    sample(1400, bids=[(99, 6), (97, 1)], asks=[(101, 3)]),
    sample(2000, live=False),
    sample(3200, bids=[(100, 1)], asks=[(102, 7)]),
    sample(3900, bids=[(100, 3), (96, 9)], asks=[(101, 2), (102, 1)]),
]


def test_hand_made_cells_are_maxima_and_not_live_is_empty():
    h = check(SAMPLES, 1000, 5000, 1000, 96, 103)
    assert h.time_ms.tolist() == [1000, 2000, 3000, 4000]
    assert h.price.tolist() == [96, 97, 98, 99, 100, 101, 102, 103]
    # column 1000: bids 99 -> max(2, 6), 98 -> 5 (absent later: 0 there), 97 -> 1
    assert h.bids[0].tolist() == [0, 1, 5, 6, 0, 0, 0, 0]
    assert h.asks[0].tolist() == [0, 0, 0, 0, 0, 3, 0, 4]
    assert np.isnan(h.bids[1]).all() and np.isnan(h.asks[3]).all()  # not LIVE, no sample
    assert h.live.tolist() == [True, False, True, False]
    assert h.bids[2].tolist() == [9, 0, 0, 0, 3, 0, 0, 0]
    assert h.asks[2].tolist() == [0, 0, 0, 0, 0, 2, 7, 0]
    assert h.best_bid.tolist()[0] == 99 and h.best_ask.tolist()[2] == 101
    assert np.isnan(h.best_bid[1]) and h.samples.tolist() == [2, 0, 2, 0]


def test_merged_rows_and_quote_unit():
    h = check(SAMPLES, 1000, 5000, 2000, 96, 103, k=2, unit="quote")
    assert h.price.tolist() == [96, 98, 100, 102]
    # rows of 2 ticks, quote notional: column 0 holds 1000..2999, sample 1400: 99·6 + 0
    assert h.bids[0][1] == max(98 * 5 + 99 * 2, 99 * 6)
    check(SAMPLES, 1500, 3950, 700, 95.5, 102.2, tick=0.5, k=3)


def test_appending_columns_equals_full_computation():
    full = liquidity_heatmap(
        SAMPLES, start_ms=1000, end_ms=5000, time_bucket_ms=1000, price_low=96,
        price_high=103, tick_size=1.0,
    )  # fmt: skip
    head = liquidity_heatmap(
        SAMPLES[:2], start_ms=1000, end_ms=2000, time_bucket_ms=1000, price_low=96,
        price_high=103, tick_size=1.0,
    )  # fmt: skip
    tail = liquidity_heatmap(
        SAMPLES, start_ms=2000, end_ms=5000, time_bucket_ms=1000, price_low=96,
        price_high=103, tick_size=1.0,
    )  # fmt: skip
    joined = append_columns(head, tail)
    for name in ("time_ms", "bids", "asks", "live", "best_bid", "best_ask", "samples"):
        np.testing.assert_array_equal(getattr(joined, name), getattr(full, name))
    with pytest.raises(ValueError, match="same rows"):
        append_columns(head, liquidity_heatmap(
            SAMPLES, start_ms=2000, end_ms=5000, time_bucket_ms=1000, price_low=90,
            price_high=103, tick_size=1.0,
        ))  # fmt: skip


levels = st.lists(
    st.tuples(st.integers(80, 120), st.integers(1, 50)), max_size=12, unique_by=lambda x: x[0]
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 9_999), levels, levels, st.booleans()), max_size=25),
    st.sampled_from([250, 1000, 3000]),
    st.sampled_from([1, 2, 5]),
)
def test_any_samples_match_reference(raw, tb, k):
    samples = [
        sample(t, bids=[(p, q / 10) for p, q in b], asks=[(p, q / 10) for p, q in a], live=live)
        for t, b, a, live in sorted(raw, key=lambda x: x[0])
    ]
    check(samples, 0, 10_000, tb, 85, 115, k=k)
    check(samples, 1_234, 8_765, tb, 85, 115, k=k, unit="quote")


def test_trade_dots_merge_per_bucket_row_and_side():
    tape = make_tape([100, 200, 900, 1100], [10.0, 10.0, 10.0, 11.0], [1, 3, 2, 5], [1, 1, -1, 1])
    d = trade_dots(tape, time_bucket_ms=1000, tick_size=1.0)
    got = sorted(
        zip(d.time_ms.tolist(), d.side.tolist(), d.qty.tolist(), d.count.tolist(), strict=True)
    )
    assert got == [(0, -1.0, 2.0, 1), (0, 1.0, 4.0, 2), (1000, 1.0, 5.0, 1)]
    assert d.notional.sum() == pytest.approx(10 + 30 + 20 + 55)


def book(bids, asks, state=SyncState.LIVE) -> BookView:
    return BookView(
        "TESTUSDT",
        np.array([p for p, _ in bids], dtype=np.float64),
        np.array([q for _, q in bids], dtype=np.float64),
        np.array([p for p, _ in asks], dtype=np.float64),
        np.array([q for _, q in asks], dtype=np.float64),
        sync_state=state,
    )


def test_band_keeps_levels_within_percent_of_mid():
    view = book([(100, 1), (99, 1), (97.9, 1)], [(102, 1), (103, 1), (104.1, 1)])
    bp, _bq, ap, _aq = band_levels(view, 2.0)  # mid 101: 98.98..103.02
    assert bp.tolist() == [100, 99] and ap.tolist() == [102, 103]


def test_merge_max_keeps_each_price_at_its_largest():
    p, q = merge_max(np.array([3.0, 2.0]), np.array([1.0, 5.0]), np.array([4.0, 3.0]),
                     np.array([2.0, 4.0]), descending=True)  # fmt: skip
    assert (p.tolist(), q.tolist()) == ([4, 3, 2], [2, 4, 5])


def test_a_live_book_with_an_empty_side_is_sampled_without_levels():
    """Two views in one second of a LIVE book with no ask (nothing in the band): the
    merge of two empty level lists is empty (it raised IndexError, which stopped the
    feed's publisher for good)."""
    empty = np.empty(0)
    assert [a.size for a in merge_max(empty, empty, empty, empty, descending=True)] == [0, 0]
    ring = BookSampleRing(band_pct=5.0)
    ring.record(book([(100, 1)], []), 10_100)
    ring.record(book([(100, 2)], []), 10_600)
    ring.record(book([(100, 1)], [(101, 1)]), 11_000)  # closes second 10
    [sample] = ring.samples()
    assert sample.is_live and sample.time_ms == 10_000


def test_ring_samples_one_second_maxima_and_marks_not_live():
    ring = BookSampleRing(band_pct=5.0)
    ring.record(book([(100, 1), (99, 4)], [(101, 2)]), 10_100)
    ring.record(book([(100, 3)], [(101, 1), (102, 6)]), 10_600)
    ring.record(book([(100, 1)], [(101, 1)]), 11_000)  # closes second 10
    ring.record(book([(100, 1)], [(101, 1)], SyncState.RESYNCING), 11_500)
    ring.record(book([(100, 2)], [(101, 1)]), 11_900)  # second 11 stays not live
    ring.record(book([(100, 2)], [(101, 1)]), 13_000)  # closes 11; second 12 had no view
    first, second = ring.samples()
    assert (first.time_ms, first.is_live) == (10_000, True)
    assert first.bid_prices.tolist() == [100, 99] and first.bid_qtys.tolist() == [3, 4]
    assert first.ask_prices.tolist() == [101, 102] and first.ask_qtys.tolist() == [2, 6]
    assert (second.time_ms, second.is_live, second.bid_prices.shape[0]) == (11_000, False, 0)
    assert ring.samples(11_000, 12_000) == [second]
    h = liquidity_heatmap(
        ring.samples(), start_ms=10_000, end_ms=13_000, time_bucket_ms=1000,
        price_low=99, price_high=102, tick_size=1.0,
    )  # fmt: skip
    assert h.live.tolist() == [True, False, False]


def test_ring_is_bounded_oldest_first():
    ring = BookSampleRing(max_samples=3)
    for second in range(6):
        ring.record(book([(100, second + 1)], [(101, 1)]), second * 1000)
    assert [s.time_ms for s in ring.samples()] == [2000, 3000, 4000] and ring.dropped == 2
    small = BookSampleRing(max_bytes=40)  # one level per side: 24 bytes a sample
    for second in range(4):
        small.record(book([(100, 1)], [(101, 1)]), second * 1000)
    assert len(small) == 1 and small.nbytes == 24
    registry = BookSamples(max_samples=2)
    registry.record("A", book([(1, 1)], [(2, 1)]), 0)
    registry.record("A", book([(1, 1)], [(2, 1)]), 1000)
    assert len(registry.samples("A")) == 1 and registry.samples("B") == []


def test_rings_share_the_total_bound_so_many_symbols_stay_bounded():
    """Each ring keeps its share of ``max_total_bytes`` once that is below its own bound:
    the rings' bytes together never pass the total, however many symbols are sampled."""
    registry = BookSamples(max_total_bytes=240, max_bytes=1000)  # 24 bytes a sample
    for second in range(20):
        registry.record("A", book([(100, 1)], [(101, 1)]), second * 1000)
    assert registry.ring("A").nbytes == 240 - 240 % 24  # alone: the whole total
    symbols = [f"S{i}" for i in range(4)]
    for second in range(20, 40):
        for symbol in ["A", *symbols]:
            registry.record(symbol, book([(100, 1)], [(101, 1)]), second * 1000)
    held = [registry.ring(s).nbytes for s in ["A", *symbols]]
    assert sum(held) <= 240 and all(n == 48 for n in held)  # 240 // 5 = 48: two samples
    assert [s.time_ms for s in registry.samples("A")] == [37000, 38000]  # newest kept
