"""Loading recordings for replay: starting books, dropped diffs, derived decimals."""

from __future__ import annotations

import re

import pytest

from services.binance.symbol_rules import decimals
from services.replay.derived import AggTradeBuilder, TradeRecord, kline_rows
from services.replay.player import Offsets, ReplayClock
from services.replay.rest_api import depth_weight, tick_text
from services.replay.session import ReplayEvent, load_session, split_symbol
from services.replay.symbol_market import fill_as_agg_trade


def _event_ms(event: ReplayEvent) -> int | None:
    found = re.search(rb'"E":(\d+)', event.data)
    return int(found.group(1)) if found else None


@pytest.mark.parametrize("name", ["spot_2021", "spot_2024", "usdm_2024"])
def test_each_symbol_starts_at_the_diff_bridging_its_snapshot(name, recordings, manifest):
    session = load_session([recordings[name]])
    entry = manifest[recordings[name].name]
    assert session.market == ("usdm" if name == "usdm_2024" else "spot")
    skew = session.clock_skew_ns[0]
    assert session.start_ns == entry["ts_first_ns"] + skew
    # the recorder's clock ran ~1.27 s behind Binance's in the 2024 files, not in 2021's
    assert (skew > 1_200_000_000) == (name != "spot_2021")
    assert all(e.ts_ns >= _event_ms(e) * 1_000_000 for e in session.events if _event_ms(e))
    for symbol, facts in entry["symbols"].items():
        sync = facts["reconstruction"][0]
        start = session.symbols[symbol]
        assert start.book.last_update_id == sync["lastUpdateId"]
        assert start.first_diff_ids[:2] == (
            sync["first_applied_diff"]["U"],
            sync["first_applied_diff"]["u"],
        )
        kept = [e for e in session.events if e.symbol == symbol and e.kind == "depth"]
        assert len(kept) == sync["diffs_applied"]


def test_decimals_and_assets():
    assert decimals("61837.63000000") == 2
    assert decimals("43.50830000") == 4
    assert decimals("100") == 0
    assert tick_text(2, 8) == "0.01000000"
    assert tick_text(1, 2) == "0.10"
    assert split_symbol("BTCUSDT") == ("BTC", "USDT")
    assert split_symbol("ETHBTC") == ("ETH", "BTC")


def test_depth_weights():
    assert [depth_weight("spot", n) for n in (5, 100, 500, 1000, 5000)] == [5, 5, 25, 50, 250]
    assert [depth_weight("usdm", n) for n in (5, 50, 100, 500, 1000)] == [2, 2, 5, 10, 20]


def test_restamp_shifts_times_and_ids_only():
    data = (
        b'{"e":"aggTrade","E":1000,"s":"BTCUSDT","a":7,"p":"1.0","q":"2","f":10,"l":12,'
        b'"T":999,"m":true,"M":true}'
    )
    event = ReplayEvent(0, "btcusdt@aggTrade", "BTCUSDT", "aggTrade", data)
    offsets = Offsets(5000, {}, {"BTCUSDT": 100}, {"BTCUSDT": 3})
    assert offsets.restamp(event) == (
        b'{"e":"aggTrade","E":6000,"s":"BTCUSDT","a":10,"p":"1.0","q":"2","f":110,"l":112,'
        b'"T":5999,"m":true,"M":true}'
    )
    kline = b'{"e":"kline","E":5,"s":"X","k":{"t":1,"T":2,"f":-1,"L":-1,"n":0}}'
    event = ReplayEvent(0, "x@kline_1m", "X", "kline", kline)
    assert Offsets(10, {}, {"X": 100}).restamp(event) == (
        b'{"e":"kline","E":15,"s":"X","k":{"t":11,"T":12,"f":-1,"L":-1,"n":0}}'
    )


def test_clock_at_speed_and_max():
    clock = ReplayClock(10.0)
    clock.start(0)
    assert 0.9 < clock.delay(10_000_000_000) <= 1.0
    assert ReplayClock(None).delay(10**18) == 0.0


def test_clock_changes_speed_from_where_it_is():
    clock = ReplayClock(1.0)
    clock.start(0)
    reached = clock.recording_ns()
    clock.set_speed(20.0)
    assert clock.recording_ns() >= reached  # never back in recording time
    assert 0.9 < clock.delay(reached + 20_000_000_000) <= 1.0  # 20 s of it in 1 s


def test_agg_trades_group_one_taker_order():
    builder = AggTradeBuilder(8)
    trades = [
        TradeRecord(1, "10.00", "1.00000000", 100, False),
        TradeRecord(2, "10.00", "0.50000000", 100, False),
        TradeRecord(3, "10.01", "1.00000000", 100, False),
        TradeRecord(4, "10.01", "1.00000000", 101, True),
    ]
    closed = [builder.add(t) for t in trades]
    closed.append(builder.flush())
    aggs = [c for c in closed if c is not None]
    assert [(a.a, a.f, a.l, a.q) for a in aggs] == [
        (1, 1, 2, "1.50000000"),
        (2, 3, 3, "1.00000000"),
        (3, 4, 4, "1.00000000"),
    ]


def test_kline_rows_from_trades():
    trades = [
        TradeRecord(1, "10", "1", 60_000, False),
        TradeRecord(2, "12", "1", 60_500, True),
        TradeRecord(3, "11", "2", 120_000, False),
    ]
    rows = kline_rows([fill_as_agg_trade(t) for t in trades], 60_000, 2, 3)
    assert rows[0][:12] == [
        60_000,
        "10.00",
        "12.00",
        "10.00",
        "12.00",
        "2.000",
        119_999,
        "22.00",
        2,
        "1.000",
        "10.00",
        "0",
    ]
    assert rows[1][0] == 120_000 and rows[1][8] == 1
