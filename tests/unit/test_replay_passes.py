"""Replay time as pure functions: the first pass's offset, the whole-day shift of each loop
pass, kline open times, and merged diff-depth batches."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.replay.depth_speeds import DepthBatch, depth_names, derived_speeds, diff_depth_speed
from services.replay.derived import INTERVAL_MS, kline_open_time
from services.replay.exchange_book import ExchangeBook
from services.replay.player import DAY_MS, first_offset_ms, pass_shift_ms

START = 1_617_566_591_326  # 2021-04-04T20:03:11.326Z


def test_first_pass_keeps_the_recording_time_or_moves_whole_days_to_today():
    assert first_offset_ms("recording", START, START + 5 * DAY_MS + 123) == 0
    today = first_offset_ms("today", START, START + 5 * DAY_MS + 123)
    assert today == 5 * DAY_MS
    with pytest.raises(ValueError, match="time base"):
        first_offset_ms("now", START, START)


@given(st.integers(min_value=1, max_value=10 * DAY_MS))
def test_each_pass_moves_whole_days_and_past_the_previous_pass(span_ms):
    shift = pass_shift_ms(span_ms)
    assert shift % DAY_MS == 0 and shift >= span_ms and shift - span_ms < DAY_MS


@given(
    st.integers(min_value=0, max_value=4_000_000_000_000),
    st.sampled_from(sorted(INTERVAL_MS)),
    st.integers(min_value=0, max_value=400),
)
def test_kline_open_times_are_aligned_in_every_pass(time_ms, interval, passes):
    interval_ms = INTERVAL_MS[interval]
    for t in (time_ms, time_ms + passes * pass_shift_ms(91_000)):
        open_time = kline_open_time(t, interval_ms)
        assert open_time <= t < open_time + interval_ms
        if interval == "1w":  # Binance's weeks open on Monday 00:00 UTC
            assert datetime.fromtimestamp(open_time / 1000, UTC).strftime("%a %H:%M") == "Mon 00:00"
        elif interval_ms <= DAY_MS:
            assert open_time % interval_ms == 0
    shifted = kline_open_time(time_ms + passes * DAY_MS, interval_ms)
    if interval_ms <= DAY_MS:  # a whole-day shift moves every bar by exactly that shift
        assert shifted == kline_open_time(time_ms, interval_ms) + passes * DAY_MS


def test_depth_speed_names_per_market():
    assert diff_depth_speed("btcusdt@depth", "spot") == ("btcusdt", 1000)
    assert diff_depth_speed("btcusdt@depth", "usdm") == ("btcusdt", 250)
    assert diff_depth_speed("btcusdt@depth@250ms", "spot") is None
    assert diff_depth_speed("btcusdt@depth5@100ms", "spot") is None
    assert derived_speeds(100, "spot") == [1000]
    assert derived_speeds(0, "usdm") == [100, 250, 500]
    assert depth_names("btcusdt", 250, "usdm") == ["btcusdt@depth", "btcusdt@depth@250ms"]


levels = st.lists(
    st.tuples(
        st.sampled_from(["1.0", "1.5", "2.0", "2.5", "3.0"]), st.sampled_from(["0", "1", "2"])
    ),
    max_size=4,
)


@given(st.lists(st.tuples(levels, levels), min_size=1, max_size=12), st.booleans())
def test_a_merged_batch_takes_the_book_where_its_diffs_take_it(diffs, usdm):
    """Applying the merged diff equals applying each diff in turn; ids span the batch."""
    one_by_one, merged = ExchangeBook(99, [("1.0", "5")], [("3.0", "5")]), DepthBatch()
    merged_book = one_by_one.copy()
    for index, (bids, asks) in enumerate(diffs):
        diff = {"U": 100 + index, "u": 100 + index, "b": bids, "a": asks}
        if usdm:
            diff |= {"pu": 99 + index, "T": 1000 + index}
        one_by_one.apply(bids, asks, diff["u"])
        merged.add(diff)
    body = orjson.loads(merged.payload("BTCUSDT", 2000))
    merged_book.apply(body["b"], body["a"], body["u"])
    assert (merged_book.bids, merged_book.asks) == (one_by_one.bids, one_by_one.asks)
    assert (body["U"], body["u"], body["E"]) == (100, 99 + len(diffs), 2000)
    assert body.get("pu") == (99 if usdm else None)
