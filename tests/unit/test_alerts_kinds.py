"""Alert kinds on recorded trades and hand-made books: each fires exactly when its
condition is met, once, and re-arms only after the condition cleared."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.alerts.book_kinds import CONFIRM_MS, Imbalance, Walls, band, mid_price
from services.alerts.firing import Cooldown, Firing, Trades
from services.alerts.rules import validate
from services.alerts.trade_kinds import FlowChange, LargeTrades, PriceCrossings, PriceMove
from services.market.order_book import OrderBook
from services.market.views import SyncState
from tests.recorded_trades import recorded_trades, trade_view
from tests.tapes import make_tape

SYMBOLS = {"BTCUSDT", "ETHUSDT", "DOTUSDT", "TESTUSDT"}


def rule(kind: str, symbol: str = "BTCUSDT", **fields):
    params = fields.pop("params", {})
    return validate({"kind": kind, "symbol": symbol, "params": params, **fields}, SYMBOLS)


@pytest.fixture(scope="module")
def trades(recordings):
    return recorded_trades(recordings["spot_2021"])


def _chunks(view, sizes):
    """The view cut into consecutive pieces of ``sizes`` (cycled), as the feed hands over."""
    start, turn = 0, 0
    while start < len(view):
        end = start + sizes[turn % len(sizes)]
        turn += 1
        yield type(view)(
            view.symbol,
            view.trade_id[start:end],
            view.time_ms[start:end],
            view.price[start:end],
            view.qty[start:end],
            view.side[start:end],
        )
        start = end


def _run(evaluator, symbol, view, sizes=(1,)):
    out: list[Firing] = []
    cooldown = Cooldown()
    for chunk in _chunks(view, sizes):
        evaluator.on_trades(symbol, Trades.of(chunk), cooldown, out)
    return out


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 300), min_size=1, max_size=40))
def test_large_trades_fire_exactly_on_the_recorded_trades_over_the_threshold(trades, sizes):
    view = trade_view("BTCUSDT", trades["BTCUSDT"])
    rules = [
        rule("large_trade", params={"min_notional": 10_000}),
        rule("large_trade", params={"min_notional": 20_000, "side": "sell"}),
    ]
    fired = _run(LargeTrades(rules, {}), "BTCUSDT", view, sizes)
    for r in rules:
        got = [f.details["trade_id"] for f in fired if f.rule is r]
        want = [
            t.trade_id
            for t in trades["BTCUSDT"]
            if t.notional >= r.params["min_notional"]
            and (r.params["side"] is None or (r.params["side"] == "buy") == t.taker_buy)
        ]
        assert got == want and want
    first = next(f for f in fired if f.rule is rules[0])
    trade = next(t for t in trades["BTCUSDT"] if t.trade_id == first.details["trade_id"])
    assert first.details == {
        "trade_id": trade.trade_id,
        "price": trade.price,
        "qty": trade.qty,
        "notional": trade.notional,
        "side": "buy" if trade.taker_buy else "sell",
    }
    assert first.time_ms == trade.time_ms


def test_a_trade_already_fired_on_never_fires_again():
    r = rule("large_trade", params={"min_notional": 1})
    fired = {(r.id, "TESTUSDT"): 3}
    tape = make_tape([1, 2, 3, 4, 5], [10] * 5, [1] * 5, [1] * 5)
    got = _run(LargeTrades([r], fired), "TESTUSDT", tape)
    assert [f.details["trade_id"] for f in got] == [4, 5] and fired[(r.id, "TESTUSDT")] == 5


def _plain_crossings(prices, level, direction, rearm):
    armed = {"up": True, "down": True}
    out = []
    for i in range(1, len(prices)):
        p, prev = prices[i], prices[i - 1]
        if p < level - rearm:
            armed["up"] = True
        if p > level + rearm:
            armed["down"] = True
        way = "up" if prev < level <= p else "down" if prev > level >= p else None
        if way and armed[way] and direction in (way, "any"):
            armed[way] = False
            out.append((i, way))
    return out


@pytest.mark.parametrize("direction", ["up", "down", "any"])
@pytest.mark.parametrize("rearm_bps", [0.0, 0.5])
def test_a_price_rule_fires_once_per_crossing_and_rearms(trades, direction, rearm_bps):
    recorded = trades["BTCUSDT"]
    prices = [t.price for t in recorded]
    level = float(np.median(prices))
    r = rule("price", params={"level": level, "direction": direction, "rearm_bps": rearm_bps})
    fired = _run(
        PriceCrossings([r], {}), "BTCUSDT", trade_view("BTCUSDT", recorded), (7, 1, 50) * 99
    )
    want = _plain_crossings(prices, level, direction, level * rearm_bps / 10_000)
    assert [(f.details["trade_id"], f.details["direction"]) for f in fired] == [
        (recorded[i].trade_id, way) for i, way in want
    ]
    assert len(want) >= 2
    for f in fired:
        assert f.details["level"] == level and set(f.details) == {
            "price",
            "level",
            "direction",
            "trade_id",
        }
    if direction == "up":  # between two up-crossings price was back below the level
        ids = [f.details["trade_id"] for f in fired]
        for a, b in pairwise(ids):
            between = [t.price for t in recorded if a < t.trade_id < b]
            assert min(between) < level - level * rearm_bps / 10_000


def test_cooldown_is_counted_in_exchange_time():
    r = rule("price", params={"level": 100, "direction": "up"}, cooldown_s=10)
    tape = make_tape(
        [0, 1000, 2000, 3000, 20_000, 21_000], [99, 101, 99, 101, 99, 101], [1] * 6, [1] * 6
    )
    got = _run(PriceCrossings([r], {}), "TESTUSDT", tape)
    assert [f.time_ms for f in got] == [1000, 21_000]


def test_flow_fires_when_the_windowed_cvd_change_reaches_the_threshold_and_rearms():
    r = rule(
        "flow", "TESTUSDT", params={"window_s": 10, "threshold": 250, "min_trade_notional": 50}
    )
    tape = make_tape(
        [0, 1000, 2000, 3000, 15_000, 16_000, 17_000, 18_000],
        [10] * 8,
        [10, 10, 1, 10, 10, 10, 10, 10],
        [1, 1, 1, 1, -1, -1, -1, 1],
    )
    got = _run(FlowChange(r), "TESTUSDT", tape)
    # +100 +100 (the 10-notional trade is filtered) +100 → +300 at t=3000; then the old flow
    # leaves the window and selling reaches −300 at t=17000.
    assert [(f.time_ms, f.details["cvd_change"]) for f in got] == [(3000, 300.0), (17_000, -300.0)]


def test_move_compares_with_the_price_a_window_earlier_on_every_symbol():
    r = rule("move", "*", params={"pct": 1.0, "window_s": 60})
    mover = PriceMove(r)
    a = make_tape(
        [0, 30_000, 60_000, 61_000, 200_000], [100, 100.5, 101.2, 101.5, 101.0], [1] * 5, [1] * 5
    )
    got = _run(mover, "AAAUSDT", a) + _run(
        mover, "BBBUSDT", make_tape([0, 60_000], [100, 100.5], [1, 1], [1, 1])
    )
    assert [(f.symbol, f.time_ms) for f in got] == [("AAAUSDT", 60_000)]
    assert got[0].details["reference_price"] == 100 and got[0].details[
        "change_pct"
    ] == pytest.approx(1.2)


@dataclass
class FakeSync:
    """The parts of a BookSync the book kinds read."""

    book: OrderBook
    state: SyncState = SyncState.LIVE
    event_time_ms: int = 0


def _book(bids, asks) -> OrderBook:
    book = OrderBook()
    book.load_snapshot(bids, asks)
    return book


def _wall_run(evaluator, steps):
    """steps: (time_ms, bids, asks, trades at (price, qty) before this book)."""
    out: list[Firing] = []
    cooldown = Cooldown()
    for time_ms, bids, asks, traded in steps:
        if traded:
            prices, qtys = zip(*traded, strict=True)
            tape = make_tape([time_ms] * len(prices), prices, qtys, [1] * len(prices))
            evaluator.on_trades(Trades.of(tape))
        sync = FakeSync(_book(bids, asks), event_time_ms=time_ms)
        mid = mid_price(sync.book)
        evaluator.on_book("TESTUSDT", sync, band(sync.book, mid, evaluator.bps), cooldown, out)
    return out


BIDS = [(99.9, 1.0), (99.8, 2.0), (99.5, 1.0)]
ASKS = [(100.1, 1.0), (100.2, 2.0), (100.5, 1.0)]


def test_a_wall_appearing_then_pulled_is_detected():
    r = rule("wall", "TESTUSDT", params={"min_notional": 5000, "band_bps": 100})
    steps = [
        (0, BIDS, ASKS, []),
        (100, BIDS, [*ASKS, (100.4, 80.0)], []),  # an 8 k ask wall appears
        (200, BIDS, [*ASKS, (100.4, 80.0)], []),
        (300, BIDS, ASKS, []),  # gone with no trade at 100.4
        (300 + CONFIRM_MS, BIDS, ASKS, []),
    ]
    got = _wall_run(Walls(r), steps)
    assert [
        (f.time_ms, f.details["event"], f.details["side"], f.details["price"]) for f in got
    ] == [
        (100, "appear", "ask", 100.4),
        (300 + CONFIRM_MS, "pulled", "ask", 100.4),
    ]
    assert got[1].details["pulled_qty"] == 80.0 and got[1].details["traded_qty"] == 0.0


def test_a_wall_traded_through_is_not_pulled_even_when_trades_come_after_the_book():
    r = rule("wall", "TESTUSDT", params={"min_notional": 5000, "band_bps": 100, "event": "pulled"})
    steps = [
        (0, BIDS, [*ASKS, (100.4, 80.0)], []),
        (100, BIDS, [*ASKS, (100.4, 30.0)], [(100.4, 50.0)]),  # eaten by trades there
        (200, BIDS, ASKS, []),  # the rest leaves the book; its trades arrive later
        (400, BIDS, ASKS, [(100.4, 30.0)]),
        (200 + CONFIRM_MS, BIDS, ASKS, []),
    ]
    assert _wall_run(Walls(r), steps) == []


def test_walls_present_when_the_book_turns_live_are_not_reported_as_appearing():
    r = rule("wall", "TESTUSDT", params={"min_notional": 5000, "event": "appear"})
    assert _wall_run(Walls(r), [(0, BIDS, [*ASKS, (100.4, 80.0)], [])]) == []


def test_imbalance_must_hold_for_hold_s_and_rearms():
    r = rule("imbalance", "TESTUSDT", params={"threshold": 0.5, "hold_s": 1, "band_bps": 100})
    heavy = [(99.9, 30.0), *BIDS[1:]]
    steps = [
        (0, heavy, ASKS, []),
        (500, heavy, ASKS, []),
        (1000, heavy, ASKS, []),
        (1500, heavy, ASKS, []),
    ]
    steps += [(2000, BIDS, ASKS, []), (2100, heavy, ASKS, []), (3200, heavy, ASKS, [])]
    got = _wall_run(Imbalance(r), steps)
    assert [f.time_ms for f in got] == [1000, 3200]
    assert got[0].details["imbalance"] > 0.5 and got[0].details["held_s"] == 1.0
