"""TradeLog: ring buffer, dedupe, gaps and backfill, rolling totals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.binance.messages import decode_frame
from services.market.trade_log import INITIAL_ROWS, TradeGap, TradeLog
from services.replay.recording import read_recording


def row(trade_id: int, price: float = 100.0, qty: float = 1.0, sold: bool = False):
    return (trade_id, 1_000 + trade_id, price, qty, sold)


def recompute(log: TradeLog) -> tuple[int, float, float, float, float]:
    view = log.view()
    buy = view.side > 0
    quote = view.price * view.qty
    return (
        len(view),
        float(view.qty[buy].sum()),
        float(view.qty[~buy].sum()),
        float(quote[buy].sum()),
        float(quote[~buy].sum()),
    )


def rolling(log: TradeLog) -> tuple[int, float, float, float, float]:
    t = log.totals()
    return t.count, t.buy_volume, t.sell_volume, t.buy_quote, t.sell_quote


def test_ring_wraps_and_keeps_the_newest_rows_oldest_first():
    log = TradeLog("X", capacity=4)
    log.extend(row(i, price=float(i), sold=i % 2 == 0) for i in range(1, 11))
    view = log.view()
    assert view.trade_id.tolist() == [7, 8, 9, 10]
    assert view.price.tolist() == [7.0, 8.0, 9.0, 10.0]
    assert view.side.tolist() == [1.0, -1.0, 1.0, -1.0]
    assert view.qty.tolist() == [1.0] * 4
    assert view.kind == "trade"
    assert log.view(last_n=2).trade_id.tolist() == [9, 10]
    assert log.view(since_ms=1_009).trade_id.tolist() == [9, 10]
    totals = log.totals()
    assert totals.count == 4
    assert totals.buy_volume == totals.sell_volume == 2.0
    assert totals.vwap == pytest.approx(8.5)
    assert totals.delta == 0.0


def test_duplicates_are_dropped_and_counted():
    log = TradeLog("X")
    log.extend([row(1), row(2), row(2), row(1), row(3)])
    assert len(log) == 3
    assert log.duplicates == 2
    assert log.gaps == []


def test_gap_without_backfill_is_recorded_and_trades_flow():
    log = TradeLog("X")
    assert log.add(*row(1)) is None
    assert log.add(*row(5)) is None
    assert log.gaps == [TradeGap(2, 4)]
    assert len(log) == 2


def test_gap_holds_trades_until_backfilled_in_id_order():
    log = TradeLog("X", backfill_gaps=True)
    log.extend([row(1), row(2)])
    gap = log.add(*row(6, price=106.0))
    assert gap == TradeGap(3, 5) and gap.size == 3
    assert log.add(*row(7)) is None
    assert log.add(*row(7)) is None  # duplicate while pending
    assert (len(log), log.pending, log.duplicates) == (2, 2, 1)
    assert log.backfill([row(4), row(3), row(99)]) == TradeGap(5, 5)  # partial answer
    assert log.view().trade_id.tolist() == [1, 2, 3, 4]
    assert log.backfill([row(5)]) is None
    assert log.view().trade_id.tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert log.pending == 0 and log.open_gap is None and log.gaps == []
    assert log.add(*row(8)) is None and len(log) == 8


def test_abandoned_backfill_records_a_permanent_gap():
    log = TradeLog("X", backfill_gaps=True)
    log.add(*row(1))
    log.add(*row(10))
    log.add(*row(11))
    assert log.abandon_backfill() is None
    assert log.gaps == [TradeGap(2, 9)]
    assert log.view().trade_id.tolist() == [1, 10, 11]


def test_second_gap_among_released_trades_is_returned():
    log = TradeLog("X", backfill_gaps=True)
    log.add(*row(1))
    log.add(*row(3))
    log.add(*row(6))
    assert log.backfill([row(2)]) == TradeGap(4, 5)
    assert log.view().trade_id.tolist() == [1, 2, 3]
    assert log.pending == 1


def test_too_many_pending_trades_abandon_the_backfill():
    log = TradeLog("X", backfill_gaps=True, max_pending=3)
    log.add(*row(1))
    log.extend(row(i) for i in range(5, 10))
    assert log.gaps == [TradeGap(2, 4)]
    assert log.pending == 0 and len(log) == 6


def test_warm_up_puts_rest_history_before_live_trades():
    log = TradeLog("X", capacity=5)
    log.extend([row(10), row(11)])
    log.warm_up([row(i, sold=True) for i in range(4, 11)])
    assert log.view().trade_id.tolist() == [7, 8, 9, 10, 11]
    assert log.last_id == 11
    assert recompute(log) == pytest.approx(rolling(log))
    log.add(*row(12))
    assert log.view(last_n=1).trade_id.tolist() == [12]


def test_warm_up_during_an_open_gap_keeps_each_trade_once():
    """A warm-up landing while live trades wait behind a gap: they join it, once."""
    log = TradeLog("X", capacity=50, backfill_gaps=True)
    log.extend([row(i) for i in range(1, 6)])
    assert log.add(*row(10)) == TradeGap(6, 9)
    log.add(*row(11))
    log.warm_up([row(i) for i in range(1, 12)])
    assert log.backfill([row(i) for i in range(6, 10)]) is None
    log.add(*row(12))
    assert log.view().trade_id.tolist() == list(range(1, 13))
    assert recompute(log) == pytest.approx(rolling(log))


def test_memory_is_32_bytes_per_row_and_grows_with_the_trades_up_to_the_capacity():
    log = TradeLog("X", capacity=100_000)
    assert log.nbytes == 32 * INITIAL_ROWS  # not 3.2 MB for a symbol with no trade yet
    for trade_id in range(3000):
        log.add(*row(trade_id))
    assert log.nbytes == 32 * 4 * INITIAL_ROWS
    small = TradeLog("X", capacity=1500)
    for trade_id in range(4000):
        small.add(*row(trade_id))
    assert small.nbytes == 32 * 1500 and len(small) == 1500
    assert small.view().trade_id.tolist() == list(range(2500, 4000))


def test_real_trades_ingest(recordings, manifest):
    facts = manifest[recordings["usdm_2024"].name]["symbols"]["BTCUSDT"]["trade"]
    log = TradeLog("BTCUSDT", capacity=5_000)
    for message in read_recording(recordings["usdm_2024"]):
        if b'@trade"' in message.raw[:40]:
            event = decode_frame(message.raw).event
            log.add(event.t, event.T, event.p, event.q, event.m)
    assert log.last_id == facts["last_id"]
    assert len(log) == 5_000 and log.gaps == [] and log.duplicates == 0
    view = log.view()
    assert (np.diff(view.trade_id) == 1).all()
    assert view.price[-1] == float(facts["last_price"])
    assert recompute(log) == pytest.approx(rolling(log))


trades = st.lists(
    st.tuples(
        st.integers(0, 3),  # id step: 0 duplicate, 1 next, >1 gap
        st.floats(1.0, 1e5, allow_nan=False),
        st.floats(1e-6, 50.0, allow_nan=False),
        st.booleans(),
    ),
    max_size=300,
)


def _ids_of(sequence) -> list[int]:
    """Ids a log keeps from ``sequence`` (id steps; a step of 0 repeats the last id)."""
    trade_id, ids = 0, []
    for step, *_ in sequence:
        trade_id += step
        ids.append(trade_id)
    return ids


@settings(max_examples=150, deadline=None)
@given(capacity=st.integers(1, 40), initial=st.integers(1, 8), sequence=trades)
def test_rolling_totals_equal_a_numpy_recompute(capacity, initial, sequence):
    log = TradeLog("X", capacity=capacity, initial_rows=initial)  # grows, then wraps
    trade_id = 0
    for step, price, qty, sold in sequence:
        trade_id += step
        log.add(trade_id, trade_id, price, qty, sold)
    totals = log.totals()
    count, buy, sell, buy_quote, sell_quote = recompute(log)
    assert totals.count == count == min(capacity, len(log))
    assert totals.buy_volume == pytest.approx(buy, rel=1e-9, abs=1e-6)
    assert totals.sell_volume == pytest.approx(sell, rel=1e-9, abs=1e-6)
    assert totals.buy_quote == pytest.approx(buy_quote, rel=1e-9, abs=1e-3)
    assert totals.sell_quote == pytest.approx(sell_quote, rel=1e-9, abs=1e-3)
    ids = log.view().trade_id
    assert (np.diff(ids) > 0).all()
    kept = sorted(set(_ids_of(sequence)))[-capacity:]
    assert ids.tolist() == kept


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(1, 12),
    initial=st.integers(1, 4),
    steps=st.lists(st.tuples(st.integers(1, 3), st.integers(0, 5)), min_size=1, max_size=40),
)
def test_released_after_hands_out_each_trade_once_in_id_order(capacity, initial, steps):
    """Reading ``released_after(last handed id)`` after every batch of adds yields each id in
    the ring exactly once, in order — across the columns' growth, ring wrap-around and
    permanent gaps."""
    log = TradeLog("BTCUSDT", capacity=capacity, initial_rows=initial)
    handed: list[int] = []
    last = -1
    next_id = 0
    for jump, batch in steps:
        next_id += jump - 1  # a jump above 1 leaves a permanent gap
        for _ in range(batch):
            log.add(next_id, next_id, 1.0, 1.0, False)
            next_id += 1
        if batch > capacity:
            last = max(last, next_id - 1 - capacity)  # rows evicted before anyone read them
        got = log.released_after(last).trade_id.tolist()
        assert got == sorted(got) and all(i > last for i in got)
        handed.extend(got)
        last = log.newest_id if got else last
    assert len(handed) == len(set(handed))
    assert log.newest_id == (handed[-1] if handed else -1)
