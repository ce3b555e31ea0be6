"""The recorded book's grid kept from the diffs (``live_grid.BookGrid``) equals the grid
made the plain way — every LIVE state's whole book bucketed and reduced by max per second
(``book_grid.bucket_sums`` + ``SecondGrid``) — over real recorded diffs; and the recorder
+ writer, driven as the feed drives them, store that grid in Parquet."""

from __future__ import annotations

import functools
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.binance.messages import (
    DepthSnapshot,
    DepthUpdate,
    decode_depth_snapshot,
    decode_frame,
)
from services.history.book_grid import GridConfig, SecondGrid, bucket_sums
from services.history.live_grid import BookCopy, BookGrid
from services.history.reader import HistoryReader
from services.history.recorder import HistoryRecorder
from services.history.schema import SCALE
from services.history.writer import HistoryWriter
from services.market.book_sync import BookSync
from services.market.views import SyncState
from services.replay.recording import SPOT_2021, read_recording

TICK = 0.01


@functools.cache
def _recorded() -> tuple[DepthSnapshot, list[DepthUpdate]]:
    """The 2021 recording's BTCUSDT snapshot and the diffs after it."""
    snapshot, diffs = None, []
    for message in read_recording(SPOT_2021):
        if message.src == "rest" and b"BTCUSDT" in message.url.encode() and snapshot is None:
            snapshot = decode_depth_snapshot(message.raw)
        elif message.src == "ws" and b"btcusdt@depth" in message.raw[:40]:
            event = decode_frame(message.raw).event
            assert isinstance(event, DepthUpdate)
            diffs.append(event)
    assert snapshot is not None
    return snapshot, [d for d in diffs if d.u > snapshot.lastUpdateId]


def _band_cells(prices, qtys, mid, config, height, is_bid):
    """One state's cells the plain way: every level of the side bucketed, then the band's
    whole buckets kept (from the bucket holding mid − band % for bids, up to the one
    holding mid + band % for asks)."""
    order = np.argsort(prices)
    buckets, sums = bucket_sums(prices[order], qtys[order], height)
    if is_bid:
        keep = buckets >= math.floor(mid * (1 - config.band_pct / 100) / height + 1e-9)
    else:
        keep = buckets <= math.floor(mid * (1 + config.band_pct / 100) / height + 1e-9)
    return buckets[keep], sums[keep]


def _cells(rows: list[dict]) -> dict[tuple[int, int, int], int]:
    """(second, side, bucket) → max qty e8, rows of one second merged by max (as readers
    merge a second written in two parts)."""
    out: dict[tuple[int, int, int], int] = {}
    for r in rows:
        keys = zip(r["time_s"].tolist(), r["side"].tolist(), r["bucket"].tolist(), strict=True)
        for key, value in zip(keys, np.asarray(r["max_qty_e8"]).tolist(), strict=True):
            out[key] = max(out.get(key, 0), int(value))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.integers(0, 1500),
    length=st.integers(20, 160),
    states_per_second=st.sampled_from([1, 3, 10, 40]),
    band_pct=st.sampled_from([0.005, 0.02, 0.1, 2.0]),
    bucket_ticks=st.sampled_from([1, 7, 50, 600]),
    events=st.lists(st.sampled_from(["ok", "ok", "ok", "dead", "one-sided", "copy"]),
                    min_size=160, max_size=160),
)  # fmt: skip
def test_grid_from_the_diffs_equals_the_grid_of_every_state(
    start, length, states_per_second, band_pct, bucket_ticks, events
):
    snapshot, diffs = _recorded()
    sync = BookSync("BTCUSDT", "spot")
    sync.on_snapshot(snapshot)
    for diff in diffs[:start]:
        sync.on_diff(diff)
    config = GridConfig(band_pct=band_pct, bucket_bps=1.0)
    grid = BookGrid()
    grid.set_height(bucket_ticks * TICK)  # fixed up front (the writer fixes it at first)
    height = grid.height
    got: list[dict] = []
    expected: dict[int, SecondGrid] = {}

    def state(index: int, change, event: str) -> None:
        live = event != "dead"
        bid, ask = sync.book.best_bid(), sync.book.best_ask()
        mid = math.nan if event == "one-sided" else (bid[0] + ask[0]) / 2
        second = index // states_per_second
        rows = grid.step(second, live, mid, change, TICK, config)
        if rows is not None:
            got.append(rows)
        if not live or math.isnan(mid):
            return
        cells = expected.setdefault(second, SecondGrid(second))
        bp, bq = sync.book.bid_arrays()
        ap, aq = sync.book.ask_arrays()
        cells.merge(cells.bids, *_band_cells(bp, bq, mid, config, height, True))
        cells.merge(cells.asks, *_band_cells(ap, aq, mid, config, height, False))

    book = sync.book
    state(0, BookCopy(book.bids(), book.asks(), book.bid_floor, book.ask_ceiling), "ok")
    for i, diff in enumerate(diffs[start : start + length], start=1):
        sync.on_diff(diff)
        assert sync.state is SyncState.LIVE
        event = events[i % len(events)]
        if event == "copy":  # the book loaded anew: the tap sends a whole copy
            change = BookCopy(book.bids(), book.asks(), book.bid_floor, book.ask_ceiling)
        else:
            change = [(diff.b, diff.a)]
        state(i, change, event)
    rows = grid.close()
    if rows is not None:
        got.append(rows)
    want = _cells([g.rows(height) for g in expected.values() if g.bids or g.asks])
    assert _cells(got) == want
    assert want  # the band always holds some levels


def test_recorder_and_writer_store_the_grid_of_every_live_state(tmp_path):
    """Recorder + writer driven as the feed drives them (``on_levels`` then ``on_book``
    per applied diff, a disconnect and a resync from a new snapshot in the middle): the
    stored ``book-grid`` equals the plain grid of every LIVE state, cell for cell; the
    whole book is copied only when it was loaded anew."""
    snapshot, diffs = _recorded()
    config = GridConfig()
    writer = HistoryWriter(tmp_path, flush_interval_s=3600, grid=config).start()
    first_ms = diffs[0].E  # the market's clock before the first event
    recorder = HistoryRecorder(writer, "spot", ticks={"BTCUSDT": TICK}, clock_ms=lambda: first_ms)
    copies = 0
    sync = BookSync(
        "BTCUSDT", "spot", on_applied=lambda d: recorder.on_levels("BTCUSDT", sync, d.b, d.a)
    )
    expected: dict[int, SecondGrid] = {}
    height = 0.0

    def tap() -> None:
        nonlocal height
        before = recorder._books.get("BTCUSDT")
        snapshots = before.snapshots if before else -1
        recorder.on_book("BTCUSDT", sync)
        nonlocal copies
        copies += recorder._books["BTCUSDT"].snapshots != snapshots
        if sync.state is not SyncState.LIVE:
            return
        (bid, _), (ask, _) = sync.book.best_bid(), sync.book.best_ask()
        mid = (bid + ask) / 2
        if height == 0.0:
            height = max(1, round(mid * config.bucket_bps / 10_000 / TICK)) * TICK
        second = (sync.event_time_ms or first_ms) // 1000
        cells = expected.setdefault(second, SecondGrid(second))
        bp, bq = sync.book.bid_arrays()
        ap, aq = sync.book.ask_arrays()
        cells.merge(cells.bids, *_band_cells(bp, bq, mid, config, height, True))
        cells.merge(cells.asks, *_band_cells(ap, aq, mid, config, height, False))

    sync.on_snapshot(snapshot)
    tap()
    half = len(diffs) // 2
    for diff in diffs[:half]:
        sync.on_diff(diff)
        tap()
    sync.on_disconnect("test")  # the stream is lost, then comes back after a gap
    tap()
    for diff in diffs[half + 50 : half + 60]:
        sync.on_diff(diff)  # held: the book resyncs from a new snapshot
    resync = DepthSnapshot(
        lastUpdateId=diffs[half + 50].U - 1,
        bids=[list(level) for level in _book_at(snapshot, diffs[: half + 50]).bids().items()],
        asks=[list(level) for level in _book_at(snapshot, diffs[: half + 50]).asks().items()],
    )
    sync.on_snapshot(resync)
    tap()
    for diff in diffs[half + 60 :]:
        sync.on_diff(diff)
        tap()
    writer.stop()
    assert copies == 2  # the first snapshot and the resync, not once a second
    stored = HistoryReader(tmp_path).book_grid("spot", "BTCUSDT")
    got = {
        (t, s, round(p / b)): round(q * SCALE)
        for t, s, p, b, q in stored.select(
            "time_s", "side", "price", "bucket_size", "max_qty"
        ).iter_rows()
    }
    want = _cells([g.rows(height) for g in expected.values()])
    assert got == want
    assert len(got) > 1000


def _book_at(snapshot: DepthSnapshot, diffs: list[DepthUpdate]):
    sync = BookSync("BTCUSDT", "spot")
    sync.on_snapshot(snapshot)
    for diff in diffs:
        sync.on_diff(diff)
    return sync.book


def test_a_bucket_changed_outside_the_band_counts_when_the_band_comes_back():
    """Within one second: bucket 99 is in the band (sum 3), the mid moves up so it is out
    and a diff raises it to 7, the mid comes back with a diff that does not touch it: the
    cell is 7 (its sum in a LIVE state in which it was in band), not 3; bucket 98, raised
    while never in band, has no cell."""
    config = GridConfig(band_pct=1.0)
    grid = BookGrid()
    grid.set_height(1.0)
    copy = BookCopy({99.5: 1.0, 99.9: 2.0}, {100.1: 1.0}, -math.inf, math.inf)
    assert grid.step(5, True, 100.0, copy, 0.1, config) is None  # bid band: buckets ≥ 99
    grid.step(5, True, 102.0, [([(99.5, 5.0)], [])], 0.1, config)  # band: buckets ≥ 100
    grid.step(5, True, 102.0, [([(98.2, 3.0)], [])], 0.1, config)  # 98 never in band
    grid.step(5, True, 100.0, [([], [(100.5, 2.0)])], 0.1, config)  # back: ≥ 99
    rows = grid.step(6, False, 100.0, None, 0.1, config)
    assert rows is not None
    bids = rows["side"] == 1
    cells = dict(zip(rows["bucket"][bids].tolist(), rows["max_qty_e8"][bids].tolist(), strict=True))
    assert cells == {99: 7 * SCALE}
    asks = dict(
        zip(rows["bucket"][~bids].tolist(), rows["max_qty_e8"][~bids].tolist(), strict=True)
    )
    assert asks == {100: 3 * SCALE}
    assert grid.step(6, True, 100.0, None, 0.1, config) is None  # a new second opens
    assert grid.close()["bucket"].tolist() == [99, 100]
