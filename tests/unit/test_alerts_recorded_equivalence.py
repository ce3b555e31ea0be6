"""The optimised evaluation fires exactly what a plain evaluation fires, on real data.

The 2021 three-symbol recording is fed frame by frame to a real ``Feed`` carrying two
taps: the ``AlertTap`` as the ingest process runs it (on its own ``AlertThread``, fed the
feed's queued messages, following its mirror of the book level by level, one trade batch
converted once for every rule) and a plain reference that re-reads the
whole band after every diff for the book kinds and scans every delivered trade one by one
for the trade kinds. Hypothesis picks the rules (thresholds taken from the recording's own
levels and trades, so rules do fire). The ``in_band`` cut is also checked on every real
diff of the three recordings, including the USD-M one whose bids come lowest price first
(spot: highest first).
"""

from __future__ import annotations

import math
from functools import cache

import pytest
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

from services.alerts.alert_thread import AlertThread
from services.alerts.book_kinds import in_band
from services.alerts.firing import Firing
from services.alerts.rules import validate
from services.alerts.tap import AlertTap
from services.binance.messages import decode_frame
from services.market.views import TradeView
from services.replay.recording import read_recording
from tests.unit.test_alerts_book_incremental import Collected, MemoryRules

RECORDED = ("BTCUSDT", "DOTUSDT", "ETHUSDT")


@cache
def messages() -> list:
    from bench.bench_alerts import recorded_messages

    return recorded_messages()


@cache
def trade_notionals() -> dict[str, list[float]]:
    """Every recorded trade's notional per symbol, sorted (to pick thresholds from)."""
    out: dict[str, list[float]] = {s: [] for s in RECORDED}
    for kind, item in messages():
        event = item.frame.event if kind == "ws" else None
        if type(event).__name__ == "AggTrade":
            out[event.s].append(event.p * event.q)
    return {s: sorted(v) for s, v in out.items()}


@cache
def snapshot_mids() -> dict[str, float]:
    out: dict[str, float] = {}
    for kind, item in messages():
        if kind == "rest" and item[0] not in out:
            symbol, snapshot = item
            out[symbol] = (snapshot.bids[0][0] + snapshot.asks[0][0]) / 2
    return out


@cache
def level_notionals() -> dict[str, list[float]]:
    """Notional of each level within 25 bps in each symbol's first snapshot, sorted."""
    out: dict[str, list[float]] = {}
    for kind, item in messages():
        if kind == "rest" and item[0] not in out:
            symbol, snapshot = item
            mid = snapshot_mids()[symbol]
            near = [p * q for p, q in (*snapshot.bids, *snapshot.asks) if abs(p / mid - 1) < 25e-4]
            out[symbol] = sorted(near)
    return out


def quantile(values: list[float], q: float) -> float:
    return values[min(int(q * len(values)), len(values) - 1)]


class PlainBook:
    """The reference for the book kinds: the same rules in an ``AlertTap`` seen through the
    plain tap seam (no ``on_levels``), so the whole band is read after every diff."""

    def __init__(self, tap: AlertTap) -> None:
        self.tap = tap
        self.on_book = tap.on_book
        self.on_candle = tap.on_candle
        self.trades: list[tuple[str, TradeView]] = []

    def on_trades(self, symbol: str, trades: TradeView) -> None:
        self.tap.on_trades(symbol, trades)  # the walls count the trades at their price
        self.trades.append((symbol, trades))


def plain_trade_firings(rules, delivered: list[tuple[str, TradeView]]) -> list[tuple]:
    """large_trade, price and flow rules (no cooldown) evaluated trade by trade, the
    definitions written out plainly."""
    out = []
    last: dict[str, float] = {}
    armed: dict[tuple[str, str], bool] = {}
    flows: dict[str, list[tuple[int, float]]] = {}
    for symbol, view in delivered:
        for i in range(len(view)):
            trade_id, time_ms = int(view.trade_id[i]), int(view.time_ms[i])
            price, qty, side = float(view.price[i]), float(view.qty[i]), float(view.side[i])
            notional = price * qty
            for rule in rules:
                p = rule.params
                if rule.symbol != symbol:
                    continue
                if rule.kind == "large_trade":
                    wanted = p["side"] in (None, "buy" if side > 0 else "sell")
                    if notional >= p["min_notional"] and wanted:
                        out.append((rule.id, symbol, time_ms, trade_id))
                elif rule.kind == "price" and symbol in last:
                    level, before = p["level"], last[symbol]
                    for direction, crossed, back in (
                        ("up", before < level <= price, price < level),
                        ("down", before > level >= price, price > level),
                    ):
                        key = (rule.id, direction)
                        if back:
                            armed[key] = True
                        elif (
                            crossed
                            and armed.get(key, True)
                            and p["direction"] in (direction, "any")
                        ):
                            armed[key] = False
                            out.append((rule.id, symbol, time_ms, trade_id))
                elif rule.kind == "flow":
                    kept = flows.setdefault(rule.id, [])
                    if notional >= p["min_trade_notional"]:
                        kept.append((time_ms, side * notional))
                        window = [f for t, f in kept if t > time_ms - p["window_s"] * 1000]
                        change = sum(window)
                        met = (change >= p["threshold"] and p["direction"] in ("up", "any")) or (
                            change <= -p["threshold"] and p["direction"] in ("down", "any")
                        )
                        if not met:
                            armed[(rule.id, "flow")] = True
                        elif armed.get((rule.id, "flow"), True):
                            armed[(rule.id, "flow")] = False
                            out.append((rule.id, symbol, time_ms, trade_id))
            last[symbol] = price
    return out


def close(a: dict, b: dict) -> bool:
    """Same details; floats equal to 1e-9 relative (running sums vs sums afresh)."""
    if a.keys() != b.keys():
        return False
    for name, x in a.items():
        y = b[name]
        if isinstance(x, float) and isinstance(y, float):
            if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-6):
                return False
        elif x != y:
            return False
    return True


def book_rules(symbol: str, walls: list[tuple], imbalances: list[tuple], cooldown_s: float):
    notionals = level_notionals()[symbol]
    rules = []
    for q, bps, event, fraction in walls:
        params = {"min_notional": quantile(notionals, q), "band_bps": bps, "event": event,
                  "pulled_fraction": fraction}  # fmt: skip
        rules.append(("wall", params))
    for threshold, bps, side, hold in imbalances:
        params = {"threshold": threshold, "band_bps": bps, "side": side, "hold_s": hold}
        rules.append(("imbalance", params))
    return [
        validate({"kind": k, "symbol": symbol, "params": p, "cooldown_s": cooldown_s}, {symbol})
        for k, p in rules
    ]


def trade_rules(symbol: str, q: float, side, price_offset: float, flow_q: float):
    notionals = trade_notionals()[symbol]
    mid = snapshot_mids()[symbol]
    made = [
        ("large_trade", {"min_notional": quantile(notionals, q), "side": side}),
        ("price", {"level": mid * (1 + price_offset), "direction": "any"}),
        ("flow", {"threshold": quantile(notionals, flow_q) * 3, "window_s": 5.0,
                  "direction": "any", "min_trade_notional": quantile(notionals, 0.5)}),
    ]  # fmt: skip
    return [validate({"kind": k, "symbol": symbol, "params": p}, {symbol}) for k, p in made]


wall = st.tuples(
    st.sampled_from([0.9, 0.97, 0.995]),
    st.sampled_from([5.0, 10.0, 25.0]),
    st.sampled_from(["appear", "pulled", "any"]),
    st.sampled_from([0.0, 0.5]),
)
imbalance = st.tuples(
    st.sampled_from([0.2, 0.4, 0.6]),
    st.sampled_from([5.0, 10.0, 25.0]),
    st.sampled_from(["bid", "ask", "any"]),
    st.sampled_from([0.0, 1.0, 3.0]),
)


@settings(max_examples=2, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate))
@example(  # an ask wall decided after the price turned into a big bid level (found here)
    [(0.9, 5.0, "appear", 0.0)], [(0.2, 5.0, "bid", 0.0)], 0.0, 0.9, None, -6e-4, 0.9
)
@given(
    st.lists(wall, min_size=1, max_size=2),
    st.lists(imbalance, min_size=1, max_size=2),
    st.sampled_from([0.0, 2.0]),
    st.sampled_from([0.9, 0.99]),
    st.sampled_from([None, "buy", "sell"]),
    st.sampled_from([-6e-4, -2e-4, 1e-4, 5e-4]),
    st.sampled_from([0.9, 0.99]),
)
def test_the_optimised_tap_fires_what_a_plain_evaluation_fires_on_the_recording(
    walls, imbalances, cooldown_s, large_q, side, price_offset, flow_q
):
    from bench.bench_alerts import new_feed

    books = [r for s in RECORDED for r in book_rules(s, walls, imbalances, cooldown_s)]
    trades = [r for s in RECORDED for r in trade_rules(s, large_q, side, price_offset, flow_q)]
    optimised, plain = Collected(), Collected()
    tap = AlertTap(MemoryRules(books + trades), optimised)  # type: ignore[arg-type]
    reference_tap = AlertTap(MemoryRules(books), plain)  # type: ignore[arg-type]
    tap.refresh()
    reference_tap.refresh()
    reference = PlainBook(reference_tap)
    off_feed = AlertThread(tap).start()
    feed = new_feed([off_feed, reference])
    for kind, item in messages():
        if kind == "ws":
            feed._on_frame(item)
        else:
            symbol, snapshot = item
            feed._symbols[symbol].book.on_snapshot(snapshot)
            feed._tap_book(symbol, feed._symbols[symbol])
    assert off_feed.drain()
    assert feed.counters.tap_errors == 0 and off_feed.errors == 0

    def of(firings: list[Firing], kinds: tuple[str, ...]) -> list[Firing]:
        return [f for f in firings if f.rule.kind in kinds]

    got_book = of(optimised.firings, ("wall", "imbalance"))
    want_book = of(plain.firings, ("wall", "imbalance"))
    assert [(f.rule.id, f.symbol, f.time_ms) for f in got_book] == [
        (f.rule.id, f.symbol, f.time_ms) for f in want_book
    ]
    assert all(close(g.details, w.details) for g, w in zip(got_book, want_book, strict=True))

    got_trades = [
        (f.rule.id, f.symbol, f.time_ms, f.details["trade_id"])
        for f in of(optimised.firings, ("large_trade", "price", "flow"))
    ]
    # the tap evaluates rule by rule per batch, the plain scan trade by trade
    assert sorted(got_trades) == sorted(plain_trade_firings(trades, reference.trades))
    assert any(f.rule.kind == "large_trade" for f in optimised.firings)


@pytest.mark.parametrize("name", ["spot_2021", "spot_2024", "usdm_2024"])
def test_in_band_equals_a_plain_filter_on_every_recorded_diff(recordings, name):
    bids_not_descending = 0
    for n, message in enumerate(read_recording(recordings[name])):
        if message.src != "ws" or b"depthUpdate" not in message.raw:
            continue
        diff = decode_frame(message.raw).event
        for levels in (diff.b, diff.a):
            if not levels:
                continue
            prices = sorted(p for p, _ in levels)
            if levels is diff.b:
                bids_not_descending += prices[::-1] != [p for p, _ in levels]
            # a band cutting the diff's own levels, edges included
            low, high = prices[len(prices) // 4], prices[-1 - len(prices) // 4]
            assert in_band(levels, low, high) == {p: q for p, q in levels if low <= p <= high}
        if n > 6000:
            break
    if name == "usdm_2024":
        assert bids_not_descending > 0  # the USD-M bids come lowest price first
