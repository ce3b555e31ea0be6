"""OrderBook: the sorted price-level structure, checked against a plain dict model."""

from __future__ import annotations

from unittest import mock

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from services.binance.messages import DepthUpdate, decode_depth_snapshot, decode_frame
from services.market import order_book
from services.market.order_book import OrderBook
from services.replay.recording import SPOT_2021, read_recording
from tests.books import deep_snapshot_body, loaded_book_bytes

prices = st.integers(1, 200).map(lambda tick: tick / 100)
quantities = st.sampled_from([0.0, 0.0, 0.001, 0.5, 1.0, 7.25])
sides = st.lists(st.tuples(prices, quantities), max_size=30)


def apply_model(model: dict[float, float], levels) -> None:
    for price, qty in levels:
        if qty == 0.0:
            model.pop(price, None)
        else:
            model[price] = qty


@settings(max_examples=200, deadline=None)
@given(
    snapshot_bids=sides,
    snapshot_asks=sides,
    updates=st.lists(st.tuples(st.booleans(), sides), max_size=20),
)
def test_book_equals_dict_model_and_reads_best_first(snapshot_bids, snapshot_asks, updates):
    book = OrderBook()
    book.load_snapshot(snapshot_bids, snapshot_asks)
    bids = {p: q for p, q in snapshot_bids if q != 0.0}
    asks = {p: q for p, q in snapshot_asks if q != 0.0}
    for is_bid, levels in updates:
        if is_bid:
            book.apply_bids(levels)
            apply_model(bids, levels)
        else:
            book.apply_asks(levels)
            apply_model(asks, levels)
    assert book.bids() == bids and book.asks() == asks
    assert (book.n_bids, book.n_asks) == (len(bids), len(asks))
    want_bids = sorted(bids.items(), reverse=True)
    want_asks = sorted(asks.items())
    assert book.top_bids(5) == want_bids[:5]
    assert book.top_asks(5) == want_asks[:5]
    assert book.best_bid() == (want_bids[0] if want_bids else None)
    assert book.best_ask() == (want_asks[0] if want_asks else None)
    bid_prices, bid_qtys = book.bid_arrays(7)
    ask_prices, ask_qtys = book.ask_arrays()
    assert bid_prices.tolist() == [p for p, _ in want_bids[:7]]
    assert bid_qtys.tolist() == [q for _, q in want_bids[:7]]
    assert ask_prices.tolist() == [p for p, _ in want_asks]
    assert ask_qtys.tolist() == [q for _, q in want_asks]
    crossed = bool(bids and asks) and max(bids) >= min(asks)
    assert book.is_crossed() is crossed


def test_zero_quantity_in_any_formatting_deletes():
    book = OrderBook()
    book.load_snapshot([(100.0, 1.0), (99.0, 1.0), (98.0, 1.0)], [(101.0, 1.0)])
    for zero, price in (("0", "100.00"), ("0.000", "99.0"), ("0.00000000", "98")):
        raw = (
            b'{"stream":"x@depth","data":{"e":"depthUpdate","E":1,"s":"X","U":1,"u":1,'
            b'"b":[["%s","%s"]],"a":[]}}' % (price.encode(), zero.encode())
        )
        book.apply_bids(decode_frame(raw).event.b)
    assert book.n_bids == 0
    book.apply_asks([(55.0, 0.0)])  # deleting an absent level is normal
    assert book.asks() == {101.0: 1.0}


def test_empty_book_reads():
    book = OrderBook()
    assert book.best_bid() is None and book.best_ask() is None
    assert not book.is_crossed()
    assert book.top_bids(0) == [] and book.top_asks(3) == []
    prices, qtys = book.bid_arrays(0)
    assert prices.dtype == np.float64 and len(prices) == len(qtys) == 0


def test_clear_empties_both_sides():
    book = OrderBook()
    book.load_snapshot([(1.0, 1.0)], [(2.0, 1.0)])
    book.clear()
    assert book.n_bids == book.n_asks == 0


def test_5000_by_2_book_fits_in_one_mebibyte():
    """Measured as the feed builds it: decoded from a REST body, the body then dropped."""
    book, size = loaded_book_bytes(deep_snapshot_body(5000))
    assert book.n_bids == book.n_asks == 5000
    assert size <= 1 << 20, size


def test_a_truncated_snapshot_bounds_the_known_range():
    """A 2-level snapshot asked with limit 2 covers bids down to 99 and asks up to 102:
    diffs beyond are not stored (the levels between would be missing), diffs inside are."""
    book = OrderBook()
    book.load_snapshot([(100.0, 1.0), (99.0, 2.0)], [(101.0, 1.0), (102.0, 2.0)], limit=2)
    assert (book.bid_floor, book.ask_ceiling) == (99.0, 102.0)
    book.apply_bids([(95.0, 5.0), (99.5, 3.0), (99.0, 0.0)])
    book.apply_asks([(110.0, 5.0), (101.5, 3.0)])
    assert book.bids() == {100.0: 1.0, 99.5: 3.0}
    assert book.asks() == {101.0: 1.0, 101.5: 3.0, 102.0: 2.0}
    whole = OrderBook()
    whole.load_snapshot([(100.0, 1.0)], [(101.0, 1.0), (102.0, 2.0)], limit=2)
    whole.apply_bids([(95.0, 5.0)])
    whole.apply_asks([(110.0, 5.0)])
    assert whole.bids() == {100.0: 1.0, 95.0: 5.0}  # one bid of two allowed: the whole side
    assert 110.0 not in whole.asks()


_price = st.integers(1, 60).map(lambda i: i * 0.5)
_side_levels = st.lists(st.tuples(_price, st.sampled_from([0.0, 1.0, 2.5, 7.0])), max_size=8)
_step = st.one_of(
    st.tuples(st.just("diff"), _side_levels, _side_levels),
    st.tuples(st.just("snapshot"), _side_levels, _side_levels),
    st.tuples(st.just("clear"), st.just([]), st.just([])),
    st.tuples(st.just("view"), st.sampled_from([None, 0, 1, 3, 10, 40]), st.just([])),
)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(_step, max_size=40))
def test_arrays_rebuilt_from_the_deepest_change_equal_a_fresh_read(steps) -> None:
    """``bid_arrays``/``ask_arrays`` reuse their previous arrays below the deepest level
    changed since: after any diffs, snapshots, clears and views at any depth, they equal
    the arrays of a fresh copy of the book, and mutating a returned array changes nothing."""
    book = OrderBook()
    for kind, first, second in [*steps, ("view", None, [])]:
        if kind == "diff":
            book.apply_bids(first)
            book.apply_asks(second)
        elif kind == "snapshot":
            book.load_snapshot(first, second, limit=4)
        elif kind == "clear":
            book.clear()
        else:
            depth = first
        if kind != "view":
            continue
        fresh = book.copy()
        got = (*book.bid_arrays(depth), *book.ask_arrays(depth))
        want = (*fresh.bid_arrays(depth), *fresh.ask_arrays(depth))
        for a, b in zip(got, want, strict=True):
            assert a.tolist() == b.tolist()
        for array in got:
            array[:] = -1.0


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(_step, max_size=40))
def test_arrays_patched_with_the_changed_levels_equal_a_fresh_read(steps) -> None:
    """With patching taken whenever it can be (``PATCH_FROM`` 0): after any diffs,
    snapshots, clears and views at any depth, the arrays equal a fresh copy's."""
    with mock.patch.object(order_book, "PATCH_FROM", 0):
        test_arrays_rebuilt_from_the_deepest_change_equal_a_fresh_read.hypothesis.inner_test(steps)


def test_a_recorded_book_patched_round_after_round_equals_a_fresh_read() -> None:
    """The recorded 2021 spot books (1,000 levels a side), their diffs applied and both
    sides read every 0.25 s of recorded time as the publisher does: each read equals a
    fresh copy's, and most reads were patched (the diffs touch levels deep in the book)."""
    books = {}
    pending: dict[str, list] = {}
    patched = [0, 0]
    real = order_book._patched

    def counting(*args):  # type: ignore[no-untyped-def]
        result = real(*args)
        patched[result is not None] += 1
        return result

    next_read = None
    with mock.patch.object(order_book, "_patched", counting):
        for message in read_recording(SPOT_2021):
            at = message.ts_ns / 1e9
            next_read = at + 0.25 if next_read is None else next_read
            if message.src == "rest" and "/depth" in message.url:
                symbol, _ = message.rest_target()
                snapshot = decode_depth_snapshot(message.raw)
                book = books[symbol] = OrderBook()
                book.load_snapshot(snapshot.bids, snapshot.asks, limit=1000)
                for diff in pending.pop(symbol, []):
                    if diff.u > snapshot.lastUpdateId:
                        book.apply_bids(diff.b)
                        book.apply_asks(diff.a)
                continue
            event = decode_frame(message.raw).event if message.src == "ws" else None
            if isinstance(event, DepthUpdate):
                if event.s in books:
                    books[event.s].apply_bids(event.b)
                    books[event.s].apply_asks(event.a)
                else:
                    pending.setdefault(event.s, []).append(event)
            if at < next_read:
                continue
            next_read += 0.25
            for book in books.values():
                fresh = book.copy()
                got = (*book.bid_arrays(5000), *book.ask_arrays(5000))
                want = (*fresh.bid_arrays(5000), *fresh.ask_arrays(5000))
                for a, b in zip(got, want, strict=True):
                    assert a.tolist() == b.tolist()
    assert len(books) == 3
    assert patched[1] > 10 * (patched[0] + 1)
