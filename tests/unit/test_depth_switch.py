"""DepthStreams: a spot book moved between its 100 ms and 1 s diff streams make-before-break,
on generated chains (any interleaving, either way, any point) and on a real recording."""

from __future__ import annotations

import itertools

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from app.config import from_env, parse
from services.binance.endpoints import custom
from services.binance.messages import DepthSnapshot, DepthUpdate, decode_frame
from services.market.book_sync import BookSync, SyncAction
from services.market.depth_switch import BRIDGE_TIMEOUT_S, MAX_HELD, DepthStreams
from services.market.feed import FeedConfig
from services.market.views import SyncState
from services.replay.depth_speeds import DepthBatch
from tests.unit.test_book_sync import depth_events

FAST, SLOW = "btcusdt@depth@100ms", "btcusdt@depth"
START_ID = 100
START_BIDS = {"5": "1", "4": "2"}
START_ASKS = {"11": "1", "12": "2"}


def decoded(stream: str, body: dict | bytes) -> DepthUpdate:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return decode_frame(b'{"stream":"%s","data":%s}' % (stream.encode(), data)).event


def fast_chain(draws: list[tuple[int, list, list]]) -> list[dict]:
    """100 ms diffs as Binance writes them, ids continuing from ``START_ID``."""
    chain, last = [], START_ID
    for width, bids, asks in draws:
        first, last = last + 1, last + width
        chain.append({"e": "depthUpdate", "E": first, "s": "BTCUSDT", "U": first, "u": last,
                      "b": bids, "a": asks})  # fmt: skip
    return chain


def aggregate(chain: list[dict], cuts: list[int]) -> list[dict]:
    """The 1 s stream of ``chain``: consecutive runs merged by the local exchange's
    ``DepthBatch`` (first U, last u, each level's final quantity)."""
    batches, start = [], 0
    for size in [*cuts, len(chain)]:
        run = chain[start : start + max(1, size)]
        if not run:
            break
        batch = DepthBatch()
        for diff in run:
            batch.add(diff)
        batches.append(orjson.loads(batch.payload("BTCUSDT", run[-1]["E"])))
        start += len(run)
    return batches


def reference_books(chain: list[dict]) -> dict[int, tuple[dict, dict]]:
    """The book after each 100 ms diff, by its ``u`` (from the start book)."""
    bids, asks = dict(START_BIDS), dict(START_ASKS)
    books = {START_ID: (dict(bids), dict(asks))}
    for diff in chain:
        for side, levels in ((bids, diff["b"]), (asks, diff["a"])):
            for price, qty in levels:
                if float(qty) == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        books[diff["u"]] = (dict(bids), dict(asks))
    return books


def levels(side: dict) -> list[tuple[float, float]]:
    return sorted((float(p), float(q)) for p, q in side.items())


def book_levels(sync: BookSync) -> tuple[list, list]:
    return sorted(sync.book.top_bids(100)), sorted(sync.book.top_asks(100))


def live_book() -> BookSync:
    sync = BookSync("BTCUSDT", "spot")
    snapshot = DepthSnapshot(
        lastUpdateId=START_ID,
        bids=[(float(p), float(q)) for p, q in START_BIDS.items()],
        asks=[(float(p), float(q)) for p, q in START_ASKS.items()],
    )
    assert sync.on_snapshot(snapshot) is SyncAction.NONE
    return sync


class Driver:
    """The feed's routing of one symbol's diffs, without the feed: frames go to
    ``DepthStreams.on_diff``; retired streams and snapshot requests are recorded."""

    def __init__(self, sync: BookSync, stream: str) -> None:
        self.sync = sync
        self.depth = DepthStreams(stream)
        self.retired: list[str] = []
        self.fetches = 0

    def apply(self, diff: DepthUpdate) -> None:
        if self.sync.on_diff(diff) is SyncAction.FETCH_SNAPSHOT:
            self.fetches += 1

    def send(self, stream: str, diff: DepthUpdate, now: float = 0.0) -> None:
        retired = self.depth.on_diff(stream, diff, self.sync, self.apply, now)
        if retired is not None:
            self.retired.append(retired)


level_change = st.tuples(st.integers(1, 10), st.sampled_from(["0", "0.5", "1", "3"]))
diff_draw = st.tuples(
    st.integers(1, 4),
    st.lists(level_change.map(lambda c: [str(c[0]), c[1]]), max_size=4),
    st.lists(level_change.map(lambda c: [str(c[0] + 10), c[1]]), max_size=4),
)


@settings(max_examples=300, deadline=None)
@given(
    draws=st.lists(diff_draw, min_size=1, max_size=30),
    cuts=st.lists(st.integers(1, 12), max_size=20),
    to_slow=st.booleans(),
    subscribed_at=st.floats(0, 0.9),
    order=st.lists(st.booleans(), min_size=40, max_size=100),
    begin_at=st.floats(0, 0.9),
)
def test_any_interleaving_either_way_keeps_the_book_exact(
    draws, cuts, to_slow, subscribed_at, order, begin_at
):
    """For any interleaving of a 100 ms chain and its 1 s aggregation, a change either way
    begun at any point keeps the book equal to the 100 ms chain's at the same update id
    after every frame, never resyncs, and ends at the chain's last id."""
    chain = fast_chain(draws)
    slow = aggregate(chain, cuts)
    fast_frames = [(FAST, decoded(FAST, d)) for d in chain]
    slow_frames = [(SLOW, decoded(SLOW, d)) for d in slow]
    old, new = (fast_frames, slow_frames) if to_slow else (slow_frames, fast_frames)
    new = new[int(subscribed_at * len(new)) :]  # the new stream starts where it is subscribed
    merged, i, j = [], 0, 0
    for pick_old in [*order, *[True] * len(old), *[False] * len(new)]:
        if pick_old and i < len(old):
            merged.append(old[i])
            i += 1
        elif not pick_old and j < len(new):
            merged.append(new[j])
            j += 1
    begin_at = int(begin_at * len(merged))
    old_name, new_name = (FAST, SLOW) if to_slow else (SLOW, FAST)
    before = [f for f in merged[:begin_at] if f[0] == old_name]  # the new one not subscribed yet
    books = reference_books(chain)
    driver = Driver(live_book(), old_name)
    for k, (stream, diff) in enumerate([*before, *merged[begin_at:]]):
        if k == len(before):
            driver.depth.begin(new_name)
        driver.send(stream, diff)
        sync = driver.sync
        assert sync.state is SyncState.LIVE
        bids, asks = books[sync.last_update_id]
        assert book_levels(sync) == (levels(bids), levels(asks))
    assert driver.sync.counters.resyncs == driver.sync.counters.gaps == 0
    assert driver.fetches == 0
    assert driver.sync.last_update_id == chain[-1]["u"]
    begun = begin_at < len(merged)
    event("bridged" if begun and driver.depth.switch is None else "pending or not begun")
    if begun and driver.depth.switch is None:
        assert driver.depth.stream == new_name and driver.retired == [old_name]


def frames(stream: str, chain: list[dict]) -> list[DepthUpdate]:
    return [decoded(stream, d) for d in chain]


def test_a_held_diff_ahead_of_the_book_waits_for_the_old_stream():
    chain = fast_chain([(2, [["5", "3"]], []), (1, [], [["11", "0"]]), (3, [["3", "1"]], [])])
    fast, (slow,) = frames(FAST, chain), frames(SLOW, aggregate(chain, [3]))
    driver = Driver(live_book(), SLOW)
    driver.depth.begin(FAST)
    driver.send(FAST, fast[1])  # U=103 on a book at 100: ahead, held
    driver.send(FAST, fast[2])
    assert driver.depth.switch is not None and driver.sync.last_update_id == START_ID
    driver.send(SLOW, slow)  # 101..106: the book reaches the last held diff exactly
    assert driver.depth.switch is None and driver.depth.stream == FAST
    assert driver.retired == [SLOW] and driver.sync.last_update_id == 106
    nxt = {**chain[0], "U": 107, "u": 107, "b": [["2", "1"]]}
    driver.send(SLOW, decoded(SLOW, nxt))  # a late old frame: ignored
    assert driver.depth.ignored == 1 and driver.sync.last_update_id == 106
    driver.send(FAST, decoded(FAST, nxt))
    assert driver.sync.last_update_id == 107 and driver.sync.state is SyncState.LIVE


def test_a_trailing_new_stream_makes_the_book_wait_for_it():
    """100 ms → 1 s: the 1 s diff comes after the 100 ms diffs it aggregates; the book stops
    applying 100 ms diffs and the next 1 s diff bridges it."""
    chain = fast_chain([(1, [["4", str(i)]], []) for i in range(1, 9)])
    fast, slow = frames(FAST, chain), frames(SLOW, aggregate(chain, [4, 4]))
    driver = Driver(live_book(), FAST)
    driver.depth.begin(SLOW)
    for diff in fast[:5]:
        driver.send(FAST, diff)
    driver.send(SLOW, slow[0], now=1.0)  # 101..104 behind a book at 105: it waits
    switch = driver.depth.switch
    assert switch is not None and switch.waiting and driver.sync.last_update_id == 105
    driver.send(FAST, fast[5], now=1.1)  # not applied
    assert driver.sync.last_update_id == 105 and switch.overdue(1.2 + BRIDGE_TIMEOUT_S)
    driver.send(SLOW, slow[1], now=2.0)  # 105..108 bridges it
    assert driver.depth.switch is None and driver.depth.stream == SLOW
    assert driver.sync.last_update_id == 108 and driver.sync.state is SyncState.LIVE
    assert driver.sync.book.top_bids(5) == [(5.0, 1.0), (4.0, 8.0)]
    assert driver.sync.counters.resyncs == 0


def test_a_real_gap_in_the_applied_stream_still_resyncs():
    chain = fast_chain([(1, [["5", "2"]], [])] * 6)
    fast = frames(FAST, chain)
    driver = Driver(live_book(), FAST)
    driver.send(FAST, fast[0])
    driver.send(FAST, fast[2])  # 102 lost
    assert driver.sync.counters.gaps == 1 and driver.sync.state is SyncState.RESYNCING
    assert driver.fetches == 1


def test_a_gap_after_the_change_resyncs_on_the_new_stream():
    chain = fast_chain([(1, [["5", "2"]], [])] * 8)
    fast, slow = frames(FAST, chain), frames(SLOW, aggregate(chain, [2, 2, 2, 2]))
    driver = Driver(live_book(), FAST)
    driver.depth.begin(SLOW)
    driver.send(FAST, fast[0])
    driver.send(SLOW, slow[0])  # 101..102 bridges a book at 101
    assert driver.depth.stream == SLOW and driver.sync.last_update_id == 102
    driver.send(SLOW, slow[2])  # 105..106 after 102: 103..104 lost
    assert driver.sync.counters.gaps == 1 and driver.sync.needs_snapshot


def test_a_gap_in_the_old_stream_during_a_change_resyncs_on_the_new_one():
    chain = fast_chain([(1, [["4", "1"]], [])] * 8)
    fast, slow = frames(FAST, chain), frames(SLOW, aggregate(chain, [4, 4]))
    driver = Driver(live_book(), SLOW)
    driver.depth.begin(FAST)
    for diff in fast[5:7]:
        driver.send(FAST, diff)  # ahead of the book: held
    driver.send(SLOW, slow[1])  # 105..108 after 100: a gap in the applied stream
    assert driver.depth.switch is None and driver.depth.stream == FAST
    assert not driver.depth.bridged and driver.retired == [SLOW]
    sync = driver.sync
    assert sync.needs_snapshot and sync.buffered == 2 and sync.counters.resyncs == 1
    snapshot = DepthSnapshot(lastUpdateId=105, bids=[(5.0, 1.0), (4.0, 1.0)], asks=[(11.0, 1.0)])
    assert sync.on_snapshot(snapshot) is SyncAction.NONE
    assert sync.state is SyncState.LIVE and sync.last_update_id == 107


def test_a_change_that_does_not_bridge_in_time_is_overdue_and_abandoned():
    chain = fast_chain([(1, [["4", "1"]], [])] * 5)
    fast = frames(FAST, chain)
    driver = Driver(live_book(), SLOW)
    driver.depth.begin(FAST)
    driver.send(FAST, fast[3], now=10.0)  # U=104 on a book at 100, the old stream silent
    switch = driver.depth.switch
    assert switch is not None and not switch.overdue(10.0 + BRIDGE_TIMEOUT_S)
    assert switch.overdue(10.1 + BRIDGE_TIMEOUT_S)
    assert driver.depth.abandon(driver.sync, driver.apply, "did not bridge") == SLOW
    assert driver.sync.needs_snapshot and driver.sync.buffered == 1 and driver.fetches == 1
    assert driver.sync.counters.resyncs == 1


def test_held_diffs_are_bounded_and_cleared_on_disconnect():
    chain = fast_chain([(1, [], [["12", "1"]])] * (MAX_HELD + 20))
    driver = Driver(live_book(), SLOW)
    driver.depth.begin(FAST)
    for diff in frames(FAST, chain)[5:]:
        driver.send(FAST, diff)
    switch = driver.depth.switch
    assert switch is not None and len(switch.held) == MAX_HELD
    switch.clear()
    assert not switch.held and not switch.overdue(1e9)
    with pytest.raises(ValueError, match="already applies"):
        DepthStreams(FAST).begin(FAST)


def test_real_recording_switched_both_ways_stays_exact(recordings):
    """BTCUSDT's recorded 100 ms diffs and their 1 s aggregation (by event second): the
    book changes to 1 s and back at several points and always equals the book the 100 ms
    chain alone builds at the same update id."""
    events = depth_events(recordings["spot_2024"])
    snapshot = next(e for _, s, e in events if s == "BTCUSDT" and isinstance(e, DepthSnapshot))
    diffs = [e for _, s, e in events if s == "BTCUSDT" and isinstance(e, DepthUpdate)]
    diffs = [d for d in diffs if d.u > snapshot.lastUpdateId][:1500]
    reference = BookSync("BTCUSDT", "spot")
    reference.on_snapshot(snapshot)
    books = {}
    for diff in diffs:
        reference.on_diff(diff)
        books[reference.last_update_id] = book_levels(reference)
    sequence: list[tuple[str, DepthUpdate]] = []
    for second, group in itertools.groupby(diffs, key=lambda d: d.E // 1000):
        run = list(group)
        batch = DepthBatch()
        for diff in run:
            batch.add({"U": diff.U, "u": diff.u, "b": [[repr(p), repr(q)] for p, q in diff.b],
                       "a": [[repr(p), repr(q)] for p, q in diff.a]})  # fmt: skip
        slow = decoded(SLOW, batch.payload("BTCUSDT", second * 1000))
        # the 1 s diff lands just before its second's last 100 ms diff
        sequence += [(FAST, d) for d in run[:-1]] + [(SLOW, slow), (FAST, run[-1])]
    driver = Driver(BookSync("BTCUSDT", "spot"), FAST)
    driver.sync.on_snapshot(snapshot)
    for index, (stream, diff) in enumerate(sequence):
        if index % 300 == 50 and driver.depth.switch is None:
            driver.depth.begin(SLOW if driver.depth.stream == FAST else FAST)
        driver.send(stream, diff)
        assert driver.sync.state is SyncState.LIVE
        assert book_levels(driver.sync) == books[driver.sync.last_update_id]
    assert driver.sync.counters.resyncs == 0 and driver.retired.count(FAST) >= 2
    assert driver.retired.count(SLOW) >= 2


def test_unwatched_depth_speed_defaults_and_settings():
    spot = custom("ws://127.0.0.1:9", "http://127.0.0.1:9", market="spot")
    usdm = custom("ws://127.0.0.1:9", "http://127.0.0.1:9", market="usdm")
    many = tuple(f"S{i}USDT" for i in range(51))
    assert FeedConfig(spot).depth_speed_ms(watched=False) == 100  # the default 10
    assert FeedConfig(spot, symbols=("all",)).depth_speed_ms(watched=False) == 1000
    assert FeedConfig(spot, follow=True).depth_speed_ms(watched=False) == 1000
    assert FeedConfig(spot, symbols=many).depth_speed_ms(watched=False) == 1000
    assert FeedConfig(spot, symbols=many).depth_speed_ms(watched=True) == 100
    assert FeedConfig(spot, unwatched_depth_ms=1000).depth_speed_ms(watched=False) == 1000
    assert FeedConfig(spot, symbols=many, unwatched_depth_ms=100).depth_speed_ms(False) == 100
    assert FeedConfig(usdm, symbols=("ALL",)).depth_speed_ms(watched=False) == 100
    with pytest.raises(ValueError, match="unwatched_depth_ms"):
        FeedConfig(spot, unwatched_depth_ms=250)
    assert parse(["--unwatched-depth-ms", "1000"]).unwatched_depth_ms == 1000
    assert from_env({"TAPESCOPE_UNWATCHED_DEPTH_MS": "100"}).unwatched_depth_ms == 100
    with pytest.raises(ValueError, match="unwatched_depth_ms"):
        from_env({"TAPESCOPE_UNWATCHED_DEPTH_MS": "500"})


def test_settle_makes_the_new_stream_the_books_for_a_resubscription():
    depth = DepthStreams(SLOW)
    assert depth.subscribed == (SLOW,) and depth.wanted == SLOW
    depth.begin(FAST)
    assert depth.subscribed == (SLOW, FAST) and depth.wanted == FAST
    depth.settle()
    assert depth.stream == FAST and depth.switch is None and depth.subscribed == (FAST,)
    assert depth.abandon(live_book(), lambda diff: None, "no change") is None
