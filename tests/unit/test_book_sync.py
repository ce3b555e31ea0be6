"""BookSync: Binance's spot and USD-M local-book algorithms on real and generated diffs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.binance.messages import (
    DepthSnapshot,
    DepthUpdate,
    decode_depth_snapshot,
    decode_frame,
)
from services.market.book_sync import QUEUED_BUFFER, BookSync, SyncAction
from services.market.views import SyncState
from services.replay.recording import read_recording

Event = tuple[int, str, DepthUpdate | DepthSnapshot]


def depth_events(path: Path) -> list[Event]:
    """(line, symbol, diff or snapshot) for every depth message of a recording."""
    events: list[Event] = []
    for message in read_recording(path):
        if message.src == "rest":
            symbol = message.url.split("symbol=")[1].split("&")[0]
            events.append((message.line, symbol, decode_depth_snapshot(message.raw)))
        elif b'"depthUpdate"' in message.raw[:120]:
            diff = decode_frame(message.raw).event
            events.append((message.line, diff.s, diff))
    return events


@pytest.fixture(scope="module")
def spot_events(recordings) -> list[Event]:
    return depth_events(recordings["spot_2024"])


@pytest.fixture(scope="module")
def usdm_events(recordings) -> list[Event]:
    return depth_events(recordings["usdm_2024"])


@pytest.fixture(scope="module")
def multi_events(recordings) -> list[Event]:
    return depth_events(recordings["spot_2021"])


def replay(
    events: list[Event],
    market: str,
    drop: frozenset[int] = frozenset(),
    until: int | None = None,
) -> dict[str, BookSync]:
    """Feed diffs and snapshots in arrival order, as the feed would."""
    syncs: dict[str, BookSync] = {}
    for line, symbol, event in events:
        if until is not None and line > until:
            break
        if line in drop:
            continue
        sync = syncs.setdefault(symbol, BookSync(symbol, market))
        if isinstance(event, DepthSnapshot):
            sync.on_snapshot(event)
        else:
            sync.on_diff(event)
    return syncs


def snapshot_of(sync: BookSync) -> DepthSnapshot:
    """A REST-like snapshot of a correctly synced book (best level first)."""
    return DepthSnapshot(
        lastUpdateId=sync.last_update_id,
        bids=sync.book.top_bids(sync.book.n_bids),
        asks=sync.book.top_asks(sync.book.n_asks),
    )


def top5(sync: BookSync, decimals: tuple[int, int]) -> tuple[list, list]:
    price, qty = decimals

    def fmt(levels):
        return [[f"{p:.{price}f}", f"{q:.{qty}f}"] for p, q in levels]

    return fmt(sync.book.top_bids(5)), fmt(sync.book.top_asks(5))


def manifest_facts(manifest, recordings, name: str, symbol: str) -> dict:
    return manifest[recordings[name].name]["symbols"][symbol]["reconstruction"][0]


def test_bridging_diff_buffered_before_the_snapshot_is_applied(spot_events, usdm_events):
    spot = replay(spot_events, "spot", until=8)["BTCUSDT"]
    assert spot.state is SyncState.LIVE
    assert spot.counters.diffs_applied == 1  # line 6, received before the snapshot line
    assert spot.last_update_id == 50093239224
    usdm = replay(usdm_events, "usdm", until=55)["BTCUSDT"]
    assert usdm.state is SyncState.LIVE
    assert usdm.last_update_id >= 5123107853551


def test_only_one_snapshot_is_requested_while_syncing(spot_events):
    sync = BookSync("BTCUSDT", "spot")
    actions = [sync.on_diff(e) for line, _, e in spot_events if line < 8]
    assert actions[0] is SyncAction.FETCH_SNAPSHOT
    assert set(actions[1:]) == {SyncAction.NONE}
    assert sync.state is SyncState.SYNCING
    assert sync.needs_snapshot
    assert sync.counters.snapshots_requested == 1


def test_snapshot_older_than_first_buffered_diff_is_fetched_again(spot_events):
    snapshot = next(e for line, _, e in spot_events if line == 8)
    reference = replay(spot_events, "spot", until=400)["BTCUSDT"]
    sync = BookSync("BTCUSDT", "spot")
    for line, _, event in spot_events:
        if 100 <= line <= 400 and isinstance(event, DepthUpdate):
            sync.on_diff(event)
    assert sync.on_snapshot(snapshot) is SyncAction.FETCH_SNAPSHOT
    assert sync.counters.snapshots_too_old == 1
    assert sync.counters.snapshots_requested == 2
    assert sync.state is SyncState.SYNCING
    assert sync.on_snapshot(snapshot_of(reference)) is SyncAction.NONE
    assert sync.state is SyncState.LIVE
    assert sync.book.bids() == reference.book.bids()
    assert sync.book.asks() == reference.book.asks()


@pytest.mark.parametrize(
    "case",
    [
        ("spot_2024", "spot", 10866, "gap: U=50093285523 after u=50093285515"),
        ("usdm_2024", "usdm", 12885, "gap: pu=5123112204146 after u=5123112201823"),
    ],
)
def test_derived_gap_resyncs_to_the_correct_book(case, request, recordings, manifest):
    name, market, line, reason = case
    events = request.getfixturevalue("spot_events" if market == "spot" else "usdm_events")
    resnapshot_line = line + 300
    reference = replay(events, market, until=resnapshot_line)["BTCUSDT"]
    sync = BookSync("BTCUSDT", market)
    applied_at_gap = None
    handed = False
    for event_line, _, event in events:
        if event_line == line:
            continue
        if isinstance(event, DepthSnapshot):
            sync.on_snapshot(event)
            continue
        before = sync.counters.diffs_applied
        action = sync.on_diff(event)
        if sync.counters.gaps and applied_at_gap is None:
            applied_at_gap = before
            assert action is SyncAction.FETCH_SNAPSHOT
            assert sync.state is SyncState.RESYNCING
            assert sync.resync_reason == reason
            assert sync.view(5).sync_state is SyncState.RESYNCING
        if applied_at_gap is not None and sync.state is SyncState.RESYNCING:
            assert sync.counters.diffs_applied == applied_at_gap  # nothing applied after a gap
        if event_line >= resnapshot_line and not handed:
            handed = True
            assert sync.on_snapshot(snapshot_of(reference)) is SyncAction.NONE
            assert sync.state is SyncState.LIVE
    facts = manifest_facts(manifest, recordings, name, "BTCUSDT")
    decimals = (8, 8) if market == "spot" else (2, 3)
    assert sync.state is SyncState.LIVE
    assert (sync.counters.gaps, sync.counters.resyncs) == (1, 1)
    assert sync.resync_reason == reason
    assert top5(sync, decimals) == (facts["final_top5_bids"], facts["final_top5_asks"])
    assert [sync.book.n_bids, sync.book.n_asks] == facts["final_book_levels"]


def test_gap_in_one_symbol_leaves_the_others_live(multi_events, recordings, manifest):
    btc_lines = [
        line for line, s, e in multi_events if s == "BTCUSDT" and isinstance(e, DepthUpdate)
    ]
    dropped = next(line for line in btc_lines if line > 1000)
    syncs = replay(multi_events, "spot", drop=frozenset({dropped}))
    assert syncs["BTCUSDT"].state is SyncState.RESYNCING
    assert syncs["BTCUSDT"].counters.gaps == 1
    assert syncs["BTCUSDT"].counters.snapshots_requested == 2
    for symbol in ("ETHUSDT", "DOTUSDT"):
        sync = syncs[symbol]
        facts = manifest_facts(manifest, recordings, "spot_2021", symbol)
        assert sync.state is SyncState.LIVE
        assert sync.counters.resyncs == 0
        assert sync.counters.snapshots_requested == 1
        assert top5(sync, (8, 8)) == (facts["final_top5_bids"], facts["final_top5_asks"])


def test_view_is_best_first_and_bounded(spot_events):
    sync = replay(spot_events, "spot")["BTCUSDT"]
    view = sync.view(20)
    assert view.is_live
    assert len(view.bid_prices) == len(view.ask_qtys) == 20
    assert (view.bid_prices[:-1] > view.bid_prices[1:]).all()
    assert (view.ask_prices[:-1] < view.ask_prices[1:]).all()
    assert view.bid_prices[0] == 61602.01 and view.ask_qtys[0] == 2.66795
    assert view.last_update_id == sync.last_update_id
    full = sync.view()
    assert len(full.bid_prices) == 1971 and len(full.ask_prices) == 2962


# --- generated sequences -------------------------------------------------------------


def diff(first: int, last: int, bids=(), asks=(), pu: int | None = None) -> DepthUpdate:
    return DepthUpdate(
        e="depthUpdate", E=0, s="TEST", U=first, u=last, b=list(bids), a=list(asks), pu=pu
    )


def snap(lid: int, bids=((99.0, 1.0),), asks=((101.0, 1.0),)) -> DepthSnapshot:
    return DepthSnapshot(lastUpdateId=lid, bids=list(bids), asks=list(asks))


def test_states_from_connecting_to_live():
    sync = BookSync("TEST", "spot")
    assert sync.state is SyncState.CONNECTING and not sync.needs_snapshot
    assert sync.on_diff(diff(5, 9)) is SyncAction.FETCH_SNAPSHOT
    assert sync.state is SyncState.SYNCING
    assert sync.on_diff(diff(10, 12, bids=[(98.0, 2.0)])) is SyncAction.NONE
    assert sync.on_snapshot(snap(10)) is SyncAction.NONE
    assert sync.state is SyncState.LIVE
    assert sync.counters.diffs_dropped == 1 and sync.counters.diffs_applied == 1
    assert sync.book.bids() == {99.0: 1.0, 98.0: 2.0}


def test_spot_overlapping_diff_is_applied_and_stale_diff_ignored():
    sync = BookSync("TEST", "spot")
    sync.on_snapshot(snap(10))
    sync.on_diff(diff(8, 12, bids=[(98.0, 1.0)]))
    sync.on_diff(diff(11, 12, bids=[(97.0, 1.0)]))  # u <= local id: ignored
    sync.on_diff(diff(12, 14, bids=[(96.0, 1.0)]))  # overlaps: U <= local + 1 <= u
    assert sync.state is SyncState.LIVE
    assert sync.book.bids() == {99.0: 1.0, 98.0: 1.0, 96.0: 1.0}
    assert sync.counters.diffs_dropped == 1


def test_usdm_bridging_and_pu_chain():
    sync = BookSync("TEST", "usdm")
    sync.on_diff(diff(1, 5, pu=0))
    sync.on_diff(diff(8, 12, bids=[(98.0, 1.0)], pu=5))  # U <= lid <= u for lid 10
    assert sync.on_snapshot(snap(10)) is SyncAction.NONE
    assert sync.counters.diffs_dropped == 1 and sync.last_update_id == 12
    sync.on_diff(diff(20, 25, asks=[(102.0, 1.0)], pu=12))
    assert sync.state is SyncState.LIVE and sync.last_update_id == 25
    assert sync.on_diff(diff(30, 31, pu=26)) is SyncAction.FETCH_SNAPSHOT
    assert sync.state is SyncState.RESYNCING
    assert sync.resync_reason == "gap: pu=26 after u=25"


def test_usdm_first_diff_ending_at_last_update_id_is_applied():
    sync = BookSync("TEST", "usdm")
    sync.on_diff(diff(8, 10, bids=[(98.0, 1.0)], pu=7))
    sync.on_snapshot(snap(10))
    assert sync.counters.diffs_applied == 1 and 98.0 in sync.book.bids()


def test_snapshot_not_bridging_buffer_is_a_gap():
    sync = BookSync("TEST", "spot")
    sync.on_diff(diff(5, 9))
    sync.on_diff(diff(15, 20))  # 10..14 lost while buffering
    assert sync.on_snapshot(snap(10)) is SyncAction.FETCH_SNAPSHOT
    assert sync.state is SyncState.RESYNCING
    assert sync.counters.gaps == 1
    assert sync.buffered == 1
    assert sync.on_snapshot(snap(17)) is SyncAction.NONE
    assert sync.state is SyncState.LIVE and sync.last_update_id == 20


def test_crossing_update_is_never_live():
    sync = BookSync("TEST", "spot")
    sync.on_snapshot(snap(10))
    assert sync.on_diff(diff(11, 11, bids=[(101.5, 1.0)])) is SyncAction.FETCH_SNAPSHOT
    assert sync.state is SyncState.RESYNCING
    assert sync.counters.crossed == 1
    assert sync.resync_reason.startswith("crossed book")
    assert sync.on_diff(diff(12, 13)) is SyncAction.NONE  # buffered, one request only
    assert sync.buffered == 1
    sync.on_snapshot(snap(12))
    assert sync.state is SyncState.LIVE and sync.last_update_id == 13


def test_a_full_buffer_drops_its_oldest_diff_and_a_snapshot_older_than_the_rest_is_refetched():
    sync = BookSync("TEST", "spot", max_buffer=3)
    for i in range(5):
        sync.on_diff(diff(10 * i, 10 * i + 9))
    assert sync.buffered == 3  # the newest three: 20..49
    assert sync.counters.buffer_overflows == 2
    assert sync.counters.resyncs == 0 and sync.counters.snapshots_requested == 1
    assert sync.on_snapshot(snap(5)) is SyncAction.FETCH_SNAPSHOT  # older than first U=20
    assert sync.state is SyncState.SYNCING and sync.counters.snapshots_too_old == 1
    assert sync.on_snapshot(snap(25)) is SyncAction.NONE  # bridged by 20..29
    assert sync.state is SyncState.LIVE and sync.last_update_id == 49


def test_disconnect_then_continuous_diff_resumes_without_snapshot():
    sync = BookSync("TEST", "spot")
    sync.on_snapshot(snap(10))
    sync.on_disconnect()
    assert sync.state is SyncState.STALE and sync.resync_reason == "disconnected"
    assert sync.view().sync_state is SyncState.STALE
    assert sync.on_diff(diff(11, 13)) is SyncAction.NONE
    assert sync.state is SyncState.LIVE
    assert sync.counters.resumes == 1 and sync.counters.snapshots_requested == 0


def test_disconnect_then_missing_updates_resyncs():
    sync = BookSync("TEST", "spot")
    sync.on_snapshot(snap(10))
    sync.on_disconnect("no message for 30 s")
    assert sync.on_diff(diff(40, 45)) is SyncAction.FETCH_SNAPSHOT
    assert sync.state is SyncState.RESYNCING
    assert sync.counters.gaps == 1


def test_failed_snapshot_is_asked_for_again_on_the_next_diff():
    sync = BookSync("TEST", "spot")
    assert sync.on_diff(diff(1, 2)) is SyncAction.FETCH_SNAPSHOT
    sync.snapshot_failed()
    assert sync.on_diff(diff(3, 4)) is SyncAction.FETCH_SNAPSHOT
    assert sync.counters.snapshots_requested == 2


def test_snapshot_while_live_is_ignored():
    sync = BookSync("TEST", "spot")
    sync.on_snapshot(snap(10))
    assert sync.on_snapshot(snap(5, bids=[(1.0, 1.0)])) is SyncAction.NONE
    assert sync.counters.snapshots_ignored == 1
    assert sync.book.bids() == {99.0: 1.0}


def test_unknown_market_is_rejected():
    with pytest.raises(ValueError, match="market"):
        BookSync("TEST", "coinm")


bid_ticks = st.integers(1, 40)
ask_ticks = st.integers(60, 100)
qtys = st.sampled_from([0.0, 0.0, 0.5, 1.0, 2.25, 3.0])
levels = st.lists(st.tuples(bid_ticks, qtys), max_size=8)
diffs = st.lists(
    st.tuples(
        st.lists(st.tuples(bid_ticks, qtys), max_size=6, unique_by=lambda x: x[0]),
        st.lists(st.tuples(ask_ticks, qtys), max_size=6, unique_by=lambda x: x[0]),
        st.integers(1, 4),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(
    market=st.sampled_from(["spot", "usdm"]),
    snapshot_bids=st.dictionaries(bid_ticks, st.floats(0.1, 5.0), max_size=10),
    snapshot_asks=st.dictionaries(ask_ticks, st.floats(0.1, 5.0), max_size=10),
    sequence=diffs,
    pre_snapshot=st.integers(0, 5),
)
def test_valid_diff_sequences_match_a_dict_model(
    market, snapshot_bids, snapshot_asks, sequence, pre_snapshot
):
    """Any continuous diff stream, buffered or not before the snapshot, leaves the book
    equal to a plain dict model, and the book is never crossed while LIVE."""
    sync = BookSync("TEST", market)
    model_bids = {float(p): q for p, q in snapshot_bids.items()}
    model_asks = {float(p): q for p, q in snapshot_asks.items()}
    lid = 1000
    chain: list[DepthUpdate] = []
    prev_u = lid
    for bids, asks, width in sequence:
        first = prev_u + 1 if market == "spot" else prev_u  # USD-M: U need not be pu + 1
        last = prev_u + width
        chain.append(
            diff(
                first,
                last,
                bids=[(float(p), q) for p, q in bids],
                asks=[(float(p), q) for p, q in asks],
                pu=prev_u if market == "usdm" else None,
            )
        )
        prev_u = last
    early = [diff(lid - 10, lid - 2, pu=lid - 11 if market == "usdm" else None)]
    early += chain[:pre_snapshot]
    for event in early:
        sync.on_diff(event)
    sync.on_snapshot(DepthSnapshot(lid, list(model_bids.items()), list(model_asks.items())))
    assert sync.state is SyncState.LIVE
    for event in chain[pre_snapshot:]:
        sync.on_diff(event)
        assert sync.state is SyncState.LIVE
        assert not sync.book.is_crossed()
    for event in chain:
        for side, model in ((event.b, model_bids), (event.a, model_asks)):
            for price, qty in side:
                if qty == 0.0:
                    model.pop(price, None)
                else:
                    model[price] = qty
    assert sync.book.bids() == model_bids
    assert sync.book.asks() == model_asks
    assert sync.counters.diffs_applied == len(chain)
    assert sync.last_update_id == (chain[-1].u if chain else lid)


def test_quiet_market_book_is_confirmed_by_a_snapshot_after_reconnect():
    sync = BookSync("TEST", "spot")
    sync.on_diff(diff(9, 10))
    sync.on_snapshot(snap(10))
    sync.on_diff(diff(11, 12, bids=[(98.0, 2.0)]))
    sync.on_disconnect("idle watchdog")
    assert sync.state is SyncState.STALE and sync.awaits_confirmation
    assert sync.on_snapshot(snap(9)) is SyncAction.NONE  # older than the book: no proof
    assert sync.state is SyncState.STALE
    assert sync.on_snapshot(snap(12, bids=[(99.0, 1.0), (98.0, 2.0)])) is SyncAction.NONE
    assert sync.state is SyncState.LIVE and sync.counters.confirmations == 1
    assert sync.book.bids() == {99.0: 1.0, 98.0: 2.0}


def test_stale_book_behind_a_newer_snapshot_resyncs():
    sync = BookSync("TEST", "spot")
    sync.on_snapshot(snap(10))
    sync.on_diff(diff(11, 12, bids=[(98.0, 2.0)]))
    sync.on_disconnect("connection lost")
    assert sync.on_snapshot(snap(20, bids=[(97.0, 3.0)])) is SyncAction.FETCH_SNAPSHOT
    assert sync.state is SyncState.RESYNCING and "13..20 missed" in sync.resync_reason
    sync.on_diff(diff(19, 21, bids=[(96.0, 1.0)]))
    assert sync.on_snapshot(snap(20, bids=[(97.0, 3.0)])) is SyncAction.NONE
    assert sync.state is SyncState.LIVE and sync.book.bids() == {97.0: 3.0, 96.0: 1.0}


def test_snapshot_is_due_only_with_diffs_to_bridge():
    sync = BookSync("TEST", "spot")
    assert sync.on_diff(diff(5, 9)) is SyncAction.FETCH_SNAPSHOT
    assert sync.snapshot_due()
    sync.on_disconnect()
    assert not sync.snapshot_due()  # nothing held to bridge: the request lapses
    assert sync.on_diff(diff(20, 25)) is SyncAction.FETCH_SNAPSHOT
    sync.on_snapshot(snap(22))
    assert not sync.snapshot_due() and sync.state is SyncState.LIVE


def test_spot_snapshot_racing_the_first_frame_at_u_minus_1_is_used():
    """The feed asks for a snapshot on the first diff; one taken just before that diff has
    ``lastUpdateId == U - 1``, which the diff bridges (``U <= lid + 1 <= u``): it is used,
    not refused as "older than the first U" and fetched again."""
    sync = BookSync("TEST", "spot")
    assert sync.on_diff(diff(11, 12, bids=[(98.0, 1.0)])) is SyncAction.FETCH_SNAPSHOT
    assert sync.on_snapshot(snap(10)) is SyncAction.NONE
    assert sync.state is SyncState.LIVE and sync.last_update_id == 12
    assert sync.counters.snapshots_too_old == 0 and sync.counters.snapshots_requested == 1
    assert sync.book.bids() == {99.0: 1.0, 98.0: 1.0}


def test_snapshot_two_below_the_first_spot_diff_or_one_below_usdm_is_too_old():
    spot = BookSync("TEST", "spot")
    spot.on_diff(diff(11, 12))
    assert spot.on_snapshot(snap(9)) is SyncAction.FETCH_SNAPSHOT
    usdm = BookSync("TEST", "usdm")
    usdm.on_diff(diff(11, 12, pu=10))
    assert usdm.on_snapshot(snap(10)) is SyncAction.FETCH_SNAPSHOT  # needs U <= lid
    assert spot.counters.snapshots_too_old == usdm.counters.snapshots_too_old == 1


@pytest.mark.parametrize("market", ["spot", "usdm"])
def test_snapshot_before_the_first_diff_is_kept_and_bridged(market):
    sync = BookSync("TEST", market)
    assert sync.on_snapshot(snap(10)) is SyncAction.NONE  # asked right after subscribing
    sync.on_diff(diff(5, 9, bids=[(90.0, 1.0)], pu=4))  # before the snapshot: dropped
    sync.on_diff(diff(10, 12, bids=[(98.0, 1.0)], pu=9))  # bridges 10 on both markets
    sync.on_diff(diff(13, 14, asks=[(102.0, 1.0)], pu=12))
    assert sync.state is SyncState.LIVE and sync.last_update_id == 14
    assert sync.counters.diffs_dropped == 1 and sync.counters.resyncs == 0
    assert sync.book.bids() == {99.0: 1.0, 98.0: 1.0}


def test_a_queued_book_keeps_only_its_newest_diffs_and_the_snapshot_still_bridges():
    """While its snapshot waits in the feed's queue a book holds ``QUEUED_BUFFER`` diffs;
    once asked for, every diff again (up to ``max_buffer``)."""
    sync = BookSync("TEST", "spot", max_buffer=1000)
    sync.limit_buffer(QUEUED_BUFFER)
    for i in range(200):
        sync.on_diff(diff(10 * i, 10 * i + 9))
    assert sync.buffered == QUEUED_BUFFER and sync.counters.buffer_overflows == 150
    sync.limit_buffer()  # the desk asks for it now
    for i in range(200, 300):
        sync.on_diff(diff(10 * i, 10 * i + 9))
    assert sync.buffered == QUEUED_BUFFER + 100
    assert sync.on_snapshot(snap(1495)) is SyncAction.FETCH_SNAPSHOT  # older than kept
    assert sync.on_snapshot(snap(2004)) is SyncAction.NONE  # taken once it was asked
    assert sync.state is SyncState.LIVE and sync.last_update_id == 2999
    sync.limit_buffer(10)
    assert sync.counters.buffer_overflows == 150  # nothing held once LIVE
