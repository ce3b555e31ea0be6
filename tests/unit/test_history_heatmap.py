"""The recorded book (per second and bucket: the largest bucket SUM) read back as the
liquidity heatmap, on real Parquet files: every cell equals the live heatmap over the same
book states, NOT-LIVE and unrecorded seconds are empty."""

from __future__ import annotations

import time

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.analytics.heatmap import liquidity_heatmap
from services.binance.endpoints import preset
from services.history.book_grid import SecondGrid, bucket_sums, live_seconds
from services.history.book_heatmap import RecordedBook, stored_heatmap
from services.history.book_pyramid import BOOK_GRID_1M, extend, extend_all, pyramid_heatmap
from services.history.compaction import compact
from services.history.reader import HistoryReader
from services.history.retention import all_segments, apply_retention
from services.history.schema import SCALE
from services.history.segments import BOOK_GRID, BOOK_TOP, write_segment
from services.history.service import HistoryConfig, HistoryService
from services.market.views import BookSample

TICK = 0.5
BASE_MS = 1_723_161_300_000


def test_bucket_sums_add_the_levels_of_each_bucket():
    prices = np.array([100.0, 100.5, 101.0, 101.5, 103.0])
    buckets, sums = bucket_sums(prices, np.array([1.0, 2.0, 4.0, 8.0, 16.0]), 1.0)
    assert buckets.tolist() == [100, 101, 103]
    assert sums.tolist() == [3.0, 12.0, 16.0]
    grid = SecondGrid(7)
    grid.merge(grid.bids, buckets, sums)
    grid.merge(grid.bids, np.array([100, 101]), np.array([5.0, 1.0]))
    assert grid.bids == {100: 5.0, 101: 12.0, 103: 16.0}  # max over states of the sums


def test_live_seconds_from_state_changes():
    times = np.array([1_500, 4_200, 6_000], np.int64)
    live = np.array([True, False, True])
    # second 0: before any row; 1..3 LIVE; 4 turns not LIVE; 5 not; 6.. LIVE again
    assert live_seconds(times, live, 0, 8).tolist() == [
        False, True, True, True, False, False, True, True,
    ]  # fmt: skip


def _record(root, samples: list[BookSample], height: float) -> None:
    """The samples stored as the writer stores them: grid rows from ``bucket_sums`` and
    ``SecondGrid``, a book-top row per sample (its LIVE state and best prices)."""
    grids: dict[int, SecondGrid] = {}
    top = {k: [] for k in ("time_ms", "bid_e8", "bid_qty_e8", "ask_e8", "ask_qty_e8", "live")}
    for s in samples:
        top["time_ms"].append(s.time_ms)
        top["bid_e8"].append(round(float(np.nan_to_num(s.best_bid)) * SCALE))
        top["ask_e8"].append(round(float(np.nan_to_num(s.best_ask)) * SCALE))
        top["bid_qty_e8"].append(0)
        top["ask_qty_e8"].append(0)
        top["live"].append(s.is_live)
        if not s.is_live:
            continue
        grid = grids.setdefault(s.time_ms // 1000, SecondGrid(s.time_ms // 1000))
        grid.merge(grid.bids, *bucket_sums(s.bid_prices, s.bid_qtys, height))
        grid.merge(grid.asks, *bucket_sums(s.ask_prices, s.ask_qtys, height))
    frames = [pl.DataFrame(g.rows(height)) for g in grids.values()]
    grid_frame = pl.concat(frames).cast(
        {
            "time_s": pl.Int64,
            "side": pl.Int8,
            "bucket": pl.Int64,
            "bucket_e8": pl.Int64,
            "max_qty_e8": pl.Int64,
        }
    )
    half = grid_frame.height // 2  # two segments, as a writer flushing every second makes
    for i, part in enumerate((grid_frame[:half], grid_frame[half:])):
        t = part["time_s"]
        write_segment(root, "spot", "BTCUSDT", BOOK_GRID, part, t0=int(t.min()) * 1000,
                      t1=int(t.max()) * 1000, lo=0, hi=0, writer=f"wtest.{i}")  # fmt: skip
    write_segment(root, "spot", "BTCUSDT", BOOK_TOP, pl.DataFrame(top).cast({"live": pl.Boolean}),
                  t0=top["time_ms"][0], t1=top["time_ms"][-1], lo=0, hi=0,
                  writer="wtest.9")  # fmt: skip


def _samples(draw_levels, seconds: int, dead: set[int], missing: set[int]) -> list[BookSample]:
    out = []
    for i in range(seconds):
        if i in missing:
            continue  # the recorder did not run: no row at all
        t = BASE_MS + i * 1000 + 137
        if i in dead:
            out.append(BookSample(t, False))
            continue
        bids, asks = draw_levels(i)
        out.append(
            BookSample(
                t,
                True,
                np.array([p for p, _ in bids]),
                np.array([q for _, q in bids]),
                np.array([p for p, _ in asks]),
                np.array([q for _, q in asks]),
            )
        )
    return out


def _compare(tmp_path, samples, height_ticks, row_ticks, bucket_ms, unit="base"):
    _record(tmp_path, samples, TICK * height_ticks)
    start, end = BASE_MS, BASE_MS + 60_000
    kwargs = {
        "start_ms": start, "end_ms": end, "time_bucket_ms": bucket_ms, "price_low": 995.0,
        "price_high": 1005.0, "tick_size": TICK, "price_bucket_ticks": row_ticks,
    }  # fmt: skip
    got = stored_heatmap(tmp_path, "spot", "BTCUSDT", unit=unit, **kwargs)
    return got, liquidity_heatmap(samples, unit=unit, **kwargs)


def test_stored_cells_equal_the_live_heatmap_hand_made(tmp_path):
    def levels(i):
        bids = [(999.5, 1.0 + i), (999.0, 2.0), (998.0, 0.25 * i)]
        asks = [(1000.0, 3.0), (1000.5, 0.5 + i), (1003.0, 7.0)]
        return [b for b in bids if b[1] > 0], asks

    samples = _samples(levels, 60, dead={20, 21}, missing={40, 41, 42, 43, 44})
    got, want = _compare(tmp_path, samples, 1, 2, 5000)
    np.testing.assert_array_equal(got.time_ms, want.time_ms)
    np.testing.assert_array_equal(got.price, want.price)
    # the 20–24 s column holds not-LIVE seconds but also LIVE ones; 40–44 s nothing at all
    assert not got.live[8] and np.isnan(got.bids[8]).all() and np.isnan(got.asks[8]).all()
    np.testing.assert_array_equal(got.live, want.live)
    np.testing.assert_allclose(got.bids, want.bids, rtol=1e-9, atol=1e-8)
    np.testing.assert_allclose(got.asks, want.asks, rtol=1e-9, atol=1e-8)
    # a bid row of two ticks sums both levels: 999.0 + 999.5 at second 59 = 2 + 60
    row = int(np.flatnonzero(got.price == 999.0)[0])
    assert got.bids[-1, row] == 62.0
    np.testing.assert_allclose(got.best_bid[got.live], want.best_bid[got.live])


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    seed=st.integers(0, 2**31),
    bucket_ticks=st.sampled_from([1, 2]),
    row_mult=st.integers(1, 4),
    bucket_s=st.sampled_from([1, 3, 10]),
    unit=st.sampled_from(["base", "quote"]),
)
def test_stored_cells_equal_the_live_heatmap_property(
    tmp_path_factory, seed, bucket_ticks, row_mult, bucket_s, unit
):
    rng = np.random.default_rng(seed)

    def levels(i):
        mid = 1000.0 + TICK * int(rng.integers(-4, 5))
        bid_prices = mid - TICK * np.unique(rng.integers(1, 12, 6))
        ask_prices = mid + TICK * np.unique(rng.integers(0, 12, 6))
        bids = [(float(p), float(rng.integers(1, 50)) / 4) for p in bid_prices[::-1]]
        asks = [(float(p), float(rng.integers(1, 50)) / 4) for p in ask_prices]
        return sorted(bids, reverse=True), asks

    dead = set(rng.integers(0, 60, 4).tolist())
    missing = set(rng.integers(0, 60, 4).tolist()) - dead
    samples = _samples(levels, 60, dead, missing)
    root = tmp_path_factory.mktemp("h")
    got, want = _compare(
        root, samples, bucket_ticks, bucket_ticks * row_mult, bucket_s * 1000, unit
    )
    for c in range(got.columns):
        assert got.live[c] == want.live[c]
        if unit == "base":
            np.testing.assert_allclose(got.bids[c], want.bids[c], rtol=1e-9, atol=1e-8)
            np.testing.assert_allclose(got.asks[c], want.asks[c], rtol=1e-9, atol=1e-8)
        else:  # a bucket's notional at its middle price: within half a bucket of each level
            tol = bucket_ticks * TICK / 2 / 990
            np.testing.assert_allclose(got.bids[c], want.bids[c], rtol=tol, atol=1e-6)
            np.testing.assert_allclose(got.asks[c], want.asks[c], rtol=tol, atol=1e-6)


def test_minute_pyramid_equals_the_per_second_cells(tmp_path):
    """Rows of 2^k buckets, whole-minute columns: the pyramid (built in two steps, as it
    grows live) gives the cells of the per-second grid, NOT-LIVE minutes empty."""
    rng = np.random.default_rng(7)

    def levels(i):
        mid = 1000.0 + TICK * int(rng.integers(-6, 7))
        bids = [(mid - TICK * k, float(rng.integers(1, 40)) / 4) for k in range(1, 14)]
        asks = [(mid + TICK * k, float(rng.integers(1, 40)) / 4) for k in range(0, 14)]
        return bids, asks

    samples = _samples(levels, 400, dead=set(range(120, 180)), missing={300, 301})
    _record(tmp_path, samples[:200], TICK)
    assert extend(tmp_path, "spot", "BTCUSDT") > 0  # minutes 0–2 (the 3rd is incomplete)
    _record(tmp_path / "later", samples[200:], TICK)
    for path in (tmp_path / "later").rglob("*.parquet"):
        target = tmp_path / path.relative_to(tmp_path / "later")
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target.with_name(target.name.replace("wtest", "wlater")))
    assert extend(tmp_path, "spot", "BTCUSDT") > 0
    recorded = RecordedBook(HistoryReader(tmp_path))
    start = BASE_MS // 60_000 * 60_000 + 60_000
    for span in (1, 2, 4):
        grid = {"start_ms": start, "end_ms": start + 5 * 60_000, "time_bucket_ms": 60_000,
                "price_low": 996.0, "price_high": 1004.0, "tick_size": TICK}  # fmt: skip
        pyramid = pyramid_heatmap(tmp_path, "spot", "BTCUSDT", span=span, bucket=TICK, **grid)
        exact = stored_heatmap(tmp_path, "spot", "BTCUSDT", price_bucket_ticks=span, **grid)
        routed = recorded.heatmap("BTCUSDT", price_bucket_ticks=span, **grid)
        np.testing.assert_array_equal(pyramid.price, exact.price)
        np.testing.assert_array_equal(pyramid.live, exact.live)
        np.testing.assert_allclose(pyramid.bids, exact.bids, rtol=1e-9, atol=1e-8)
        np.testing.assert_allclose(pyramid.asks, exact.asks, rtol=1e-9, atol=1e-8)
        np.testing.assert_allclose(pyramid.best_ask, exact.best_ask)
        np.testing.assert_array_equal(routed.bids, pyramid.bids)
    # minute 2 (120–179 s) was not LIVE; live minutes hold their maxima
    assert pyramid.live.tolist() == [True, False, True, True, True]
    assert recorded.row_ticks("BTCUSDT", 996.0, 1004.0, TICK, 10) == 2


def test_pyramid_never_outlives_its_grid(tmp_path):
    samples = _samples(lambda i: ([(999.5, 1.0)], [(1000.0, 2.0)]), 200, set(), set())
    _record(tmp_path, samples, TICK)
    extend(tmp_path, "spot", "BTCUSDT")
    pyramid_dir = tmp_path / "spot" / "BTCUSDT" / "book-grid-1m"
    assert len(list(pyramid_dir.rglob("*.parquet"))) == 1
    for path in (tmp_path / "spot" / "BTCUSDT" / "book-grid").rglob("*.parquet"):
        path.unlink()  # what the retention does
    extend(tmp_path, "spot", "BTCUSDT")
    assert list(pyramid_dir.rglob("*.parquet")) == []


def test_pyramid_is_built_by_maintenance_compacted_and_counted_by_retention(tmp_path):
    """The maintenance thread builds the pyramid (no read needed); compaction merges its
    segments of an hour without changing a cell; the retention counts and deletes them."""
    rng = np.random.default_rng(3)

    def levels(i):
        bids = [(999.5 - TICK * k, float(rng.integers(1, 20))) for k in range(8)]
        asks = [(1000.0 + TICK * k, float(rng.integers(1, 20))) for k in range(8)]
        return bids, asks

    samples = _samples(levels, 300, dead=set(), missing=set())
    _record(tmp_path, samples[:130], TICK)
    service = HistoryService(
        HistoryConfig(tmp_path, max_days=None, max_gb=None, compact_every_s=0.05),
        preset("spot"), market="spot",
    ).start()  # fmt: skip
    pyramid_dir = tmp_path / "spot" / "BTCUSDT" / BOOK_GRID_1M
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not list(pyramid_dir.rglob("*.parquet")):
            time.sleep(0.05)
    finally:
        service.stop()
    assert list(pyramid_dir.rglob("*.parquet")), "the maintenance thread built the pyramid"
    _record(tmp_path / "later", samples[130:], TICK)
    for path in (tmp_path / "later").rglob("*.parquet"):
        target = tmp_path / path.relative_to(tmp_path / "later")
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target.with_name(target.name.replace("wtest", "wlater")))
    assert extend_all(tmp_path) > 0
    assert len(list(pyramid_dir.rglob("*.parquet"))) == 2
    start = BASE_MS // 60_000 * 60_000
    grid = {"start_ms": start, "end_ms": start + 5 * 60_000, "time_bucket_ms": 60_000,
            "price_low": 996.0, "price_high": 1004.0, "tick_size": TICK, "span": 2,
            "bucket": TICK}  # fmt: skip
    before = pyramid_heatmap(tmp_path, "spot", "BTCUSDT", **grid)
    compact(tmp_path)
    assert len(list(pyramid_dir.rglob("*.parquet"))) == 1
    after = pyramid_heatmap(tmp_path, "spot", "BTCUSDT", **grid)
    np.testing.assert_array_equal(after.bids, before.bids)
    np.testing.assert_array_equal(after.asks, before.asks)
    assert before.live.sum() >= 3
    assert extend_all(tmp_path) == 0, "nothing rebuilt after compaction"
    pyramid_bytes = sum(p.stat().st_size for p in pyramid_dir.rglob("*.parquet"))
    pyramid = [s for s in all_segments(tmp_path) if BOOK_GRID_1M in s.path.parts]
    # stamped with its last minute's last ms: after every grid second of that minute, so
    # the retention (oldest t1 first) never deletes a stretch's pyramid before its grid
    assert pyramid and all(s.t1 % 60_000 == 59_999 for s in pyramid)
    report = apply_retention(tmp_path, None, None, max_bytes=0)
    assert report.bytes_freed >= pyramid_bytes and not list(pyramid_dir.rglob("*.parquet"))
