"""Walls and imbalance followed level by level (the tap's ``on_levels``) give the same
firings as the plain loop that reads the whole band after every diff, and the imbalance's
running band sums equal plain sums over the book, over random diff sequences (with trades,
re-centres, an emptied side and books that leave LIVE).

Prices sit on a 1/16 grid and quantities on a 1/4 grid, so every notional and every sum is
exact in floating point and the two paths can be compared with ``==``."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from services.alerts.book_kinds import (
    RECENTRE_FRACTION,
    Imbalance,
    Walls,
    band,
    bounds,
    mid_price,
    recentred,
)
from services.alerts.firing import Cooldown, Firing, Trades
from services.alerts.rules import Rule, validate
from services.alerts.tap import AlertTap
from services.market.order_book import OrderBook
from services.market.views import SyncState
from tests.tapes import make_tape

SYMBOL = "TESTUSDT"
N_LEVELS = 32


def bid_price(i: int) -> float:
    return 100.0 - (i + 1) / 16


def ask_price(i: int) -> float:
    return 100.0 + (i + 1) / 16


@dataclass
class FollowedSync:
    """The parts of a BookSync the tap reads."""

    book: OrderBook = field(default_factory=OrderBook)
    state: SyncState = SyncState.LIVE
    event_time_ms: int = 0
    last_update_id: int = 0


class MemoryRules:
    def __init__(self, rules: list[Rule]) -> None:
        self._rules = rules

    def all(self) -> list[Rule]:
        return list(self._rules)

    def version(self) -> int:
        return 1


class Collected:
    """Stands in for the dispatcher: keeps what the tap submits."""

    def __init__(self) -> None:
        self.firings: list[Firing] = []
        self.ended: list[tuple[str, str, int]] = []

    def submit(self, firings: list[Firing]) -> None:
        self.firings.extend(firings)

    def end_episode(self, rule: Rule, symbol: str, update_id: int) -> None:
        self.ended.append((rule.id, symbol, update_id))


def key(firing: Firing) -> tuple:
    return firing.time_ms, firing.rule.id, sorted(firing.details.items())


qty = st.sampled_from([0.0, 0.0, 0.0, 0.25, 1.0, 2.5, 4.0, 8.0, 12.0, 20.0])
levels = st.lists(st.tuples(st.integers(0, N_LEVELS - 1), qty), max_size=5)
step = st.tuples(
    st.integers(0, 700),  # ms since the previous step
    levels,  # bids set
    levels,  # asks set
    st.lists(st.tuples(st.booleans(), st.integers(0, 8), st.sampled_from([1.0, 4.0])), max_size=2),
    st.integers(0, 14).map(lambda n: n == 0),  # the book leaves LIVE for this step
)
wall_params = st.fixed_dictionaries(
    {
        "min_notional": st.sampled_from([400.0, 800.0, 1200.0]),
        "band_bps": st.sampled_from([50.0, 100.0, 200.0]),
        "event": st.sampled_from(["appear", "pulled", "any"]),
        "pulled_fraction": st.sampled_from([0.0, 0.5]),
    }
)
imbalance_params = st.fixed_dictionaries(
    {
        "threshold": st.sampled_from([0.2, 0.5, 0.9]),
        "band_bps": st.sampled_from([50.0, 100.0, 200.0]),
        "side": st.sampled_from(["bid", "ask", "any"]),
        "hold_s": st.sampled_from([0.0, 0.5, 1.0]),
    }
)


def make_rules(walls: list[dict], imbalances: list[dict], cooldown_s: float) -> list[Rule]:
    made = [("wall", p) for p in walls] + [("imbalance", p) for p in imbalances]
    return [
        validate({"kind": kind, "symbol": SYMBOL, "params": p, "cooldown_s": cooldown_s}, {SYMBOL})
        for kind, p in made
    ]


def plain_sums(book: OrderBook, centre: float, bps: float) -> tuple[float, float]:
    low, high = bounds(centre, bps)
    bids = sum(p * q for p, q in book.bids().items() if p >= low)
    asks = sum(p * q for p, q in book.asks().items() if p <= high)
    return bids, asks


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, N_LEVELS - 1), qty), max_size=12),
    st.lists(st.tuples(st.integers(0, N_LEVELS - 1), qty), max_size=12),
    st.lists(wall_params, min_size=1, max_size=2),
    st.lists(imbalance_params, min_size=1, max_size=2),
    st.sampled_from([0.0, 0.0, 1.0]),
    st.lists(step, min_size=1, max_size=30),
)
def test_following_levels_equals_reading_the_whole_band_after_every_diff(
    snap_bids, snap_asks, walls, imbalances, cooldown_s, steps
):
    rules = make_rules(walls, imbalances, cooldown_s)
    delivered = Collected()
    tap = AlertTap(MemoryRules(rules), delivered)  # type: ignore[arg-type]
    tap.refresh()
    followed = {r.id: tap.index.singles[r.id] for r in rules}

    reference = [Walls(r) if r.kind == "wall" else Imbalance(r) for r in rules]
    widest = max(r.params["band_bps"] for r in rules)
    bucket = min(r.params["band_bps"] for r in rules) * RECENTRE_FRACTION
    expected: list[Firing] = []
    cooldown = Cooldown()
    centre: float | None = None

    sync = FollowedSync()
    sync.book.load_snapshot(
        [(bid_price(i), q) for i, q in snap_bids], [(ask_price(i), q) for i, q in snap_asks]
    )
    for dt, bids_set, asks_set, trades, leaves in steps:
        sync.event_time_ms += dt
        if trades:
            view = make_tape(
                [sync.event_time_ms] * len(trades),
                [bid_price(i) if on_bid else ask_price(i) for on_bid, i, _ in trades],
                [q for _, _, q in trades],
                [-1 if on_bid else 1 for on_bid, _, _ in trades],
            )
            tap.on_trades(SYMBOL, view)
            for evaluator in reference:
                if isinstance(evaluator, Walls):
                    evaluator.on_trades(Trades.of(view))
        if leaves:
            sync.state = SyncState.STALE
            tap.on_book(SYMBOL, sync)
            for evaluator in reference:
                evaluator.reset()
            centre = None
            continue
        bids = [(bid_price(i), q) for i, q in bids_set]
        asks = [(ask_price(i), q) for i, q in asks_set]
        sync.book.apply_bids(bids)
        sync.book.apply_asks(asks)
        sync.state = SyncState.LIVE
        sync.last_update_id += 1
        tap.on_levels(SYMBOL, sync, bids, asks)  # type: ignore[arg-type]
        tap.on_book(SYMBOL, sync)  # type: ignore[arg-type]

        mid = mid_price(sync.book)
        if mid is None:
            for evaluator in reference:
                evaluator.reset()
            centre = None
            continue
        centre = recentred(centre, mid, bucket)
        whole = band(sync.book, centre, widest)
        decided = len(expected)
        for evaluator in reference:
            evaluator.on_book(SYMBOL, sync, whole, cooldown, expected)  # type: ignore[arg-type]
        for firing in expected[decided:]:  # the tap's firings carry the diff's update id
            firing.details["update_id"] = sync.last_update_id
        for r in rules:
            if r.kind == "imbalance":
                got = followed[r.id]
                assert (got.bids, got.asks) == plain_sums(sync.book, centre, r.params["band_bps"])
        assert sorted(map(key, delivered.firings)) == sorted(map(key, expected))


class LevelsSeen:
    """A tap that follows levels: checks each call sees the diff already applied."""

    def __init__(self) -> None:
        self.calls = 0
        self.wrong = 0

    def on_levels(self, symbol, book, bids_changed, asks_changed) -> None:
        self.calls += 1
        bids, asks = book.book.bids(), book.book.asks()
        for held, changed in ((bids, dict(bids_changed)), (asks, dict(asks_changed))):
            self.wrong += sum(held.get(p, 0.0) != q for p, q in changed.items())

    def on_trades(self, symbol, trades) -> None:
        return

    def on_book(self, symbol, book) -> None:
        return

    def on_candle(self, symbol, candle) -> None:
        return


class BooksSeen:
    """A tap of the plain seam (no ``on_levels``), as the history recorder is."""

    def __init__(self) -> None:
        self.books = 0

    def on_trades(self, symbol, trades) -> None:
        return

    def on_book(self, symbol, book) -> None:
        self.books += 1

    def on_candle(self, symbol, candle) -> None:
        return


def test_the_feed_hands_applied_levels_only_to_taps_that_follow_levels():
    from bench.bench_alerts import new_feed, recorded_messages

    follower, plain = LevelsSeen(), BooksSeen()
    feed = new_feed([follower, plain])
    for kind, item in recorded_messages():
        if kind == "ws":
            feed._on_frame(item)  # type: ignore[arg-type]
        else:
            symbol, snapshot = item  # type: ignore[misc]
            feed._symbols[symbol].book.on_snapshot(snapshot)
    applied = sum(f.book.counters.diffs_applied for f in feed._symbols.values())
    assert feed.counters.tap_errors == 0
    assert 0 < follower.calls <= applied and follower.wrong == 0
    assert plain.books >= follower.calls
