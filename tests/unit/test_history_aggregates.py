"""The compactor's per-minute and per-price aggregates: stats, volume profiles and candles
read from them equal the same queries reduced from the raw trade rows — exactly (counts,
volumes, prices, ids, times; quote volume to float rounding) — over whole, inner,
hour-aligned and one-minute ranges, and an aggregate whose segment is gone is never used.
Real Parquet files written by the writer and compacted."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from services.history import aggregates
from services.history.compaction import compact
from services.history.reader import HistoryReader
from services.history.schema import to_e8
from services.history.writer import HistoryWriter
from services.replay.recording import SPOT_2021
from tests.recorded_trades import recorded_trades

SYMBOL = "BTCUSDT"
TILES = 10  # the recording (91 s) every 20 minutes: 4 hours of trades
SHIFT_MS = 20 * 60_000


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    """The 2021 BTCUSDT aggTrades tiled over hours (ids continuous, each tile a little
    higher), written in small segments and compacted: (root, first time, last time)."""
    root = tmp_path_factory.mktemp("aggregates")
    trades = recorded_trades(SPOT_2021)[SYMBOL]
    ids = np.array([t.trade_id for t in trades], np.int64)
    times = np.array([t.time_ms for t in trades], np.int64)
    prices = to_e8(np.array([t.price for t in trades]))
    qtys = to_e8(np.array([t.qty for t in trades]))
    maker = np.array([not t.taker_buy for t in trades])
    writer = HistoryWriter(root, flush_interval_s=3600.0, max_rows=400).start()
    for tile in range(TILES):
        writer.add_trades("spot", SYMBOL, "aggTrade", {
            "trade_id": ids - ids[0] + 1 + tile * len(ids),
            "time_ms": times + tile * SHIFT_MS,
            "price_e8": prices + tile * 7_000_000,
            "qty_e8": qtys,
            "buyer_maker": maker,
        })  # fmt: skip
        writer.flush()
    writer.stop()
    report = compact(root)
    assert report.merged and report.aggregated
    return root, int(times[0]), int(times[-1] + (TILES - 1) * SHIFT_MS)


def _ranges(first: int, last: int) -> list[tuple[int | None, int | None]]:
    hour = first // 3_600_000 * 3_600_000
    return [
        (None, None),  # everything
        (first + 45_000, last - 2 * SHIFT_MS + 30_000),  # cuts segments and minutes
        (hour + 3_600_000, hour + 3 * 3_600_000 - 1),  # whole hours
        (first + SHIFT_MS + 60_000, first + SHIFT_MS + 119_999),  # one minute
    ]


def test_aggregates_answer_exactly_what_the_trades_answer(store) -> None:
    root, first, last = store
    fast, plain = HistoryReader(root), HistoryReader(root, use_aggregates=False)
    used = 0
    for start, end in _ranges(first, last):
        segments = fast._listing("spot", SYMBOL, "trades-aggTrade", {}, start, end).segments
        used += len(
            fast._aggregated("spot", SYMBOL, aggregates.minutes_dataset("aggTrade"),
                             aggregates.MINUTE_COLUMNS, segments, start, end)
        )  # fmt: skip
        got, want = fast.stats("spot", SYMBOL, start, end), plain.stats("spot", SYMBOL, start, end)
        assert got["trades"] == want["trades"] > 0
        for name in ("quote_volume", "vwap"):
            assert math.isclose(got.pop(name), want.pop(name), rel_tol=1e-12)  # type: ignore[arg-type]
        assert got == want
        candles = fast.candles("spot", SYMBOL, "1m", start, end)
        assert candles.equals(plain.candles("spot", SYMBOL, "1m", start, end))
        assert int(candles["trades"].sum()) == got["trades"]
        hourly = fast.candles("spot", SYMBOL, "1h", start, end)
        assert hourly.equals(plain.candles("spot", SYMBOL, "1h", start, end))
        levels = fast.price_levels("spot", SYMBOL, start, end)
        reference = plain.price_levels("spot", SYMBOL, start, end)
        assert levels.trades == reference.trades == got["trades"]
        for a, b in ((levels.volume, reference.volume), (levels.counts, reference.counts)):
            assert np.array_equal(a.price, b.price) and np.array_equal(a.side, b.side)
            assert np.array_equal(a.qty, b.qty)
    assert used > 0  # the long ranges did read aggregates


def test_stale_aggregates_are_never_read_and_are_removed(store, tmp_path: Path) -> None:
    root, _, _ = store
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    dataset = copy / "spot" / SYMBOL / aggregates.minutes_dataset("aggTrade")
    minutes = sorted(dataset.rglob("*.parquet"))
    assert minutes
    # An aggregate whose segment is gone (merged or deleted: no segment has its name) is
    # never read; a forged one with wrong numbers would show in the answer if it were.
    forged = pl.read_parquet(minutes[0]).with_columns(pl.col("trades") + 1_000)
    orphan = minutes[0].with_name("1_2_3_4_wforged.1.parquet")
    forged.write_parquet(orphan)
    got = HistoryReader(copy).stats("spot", SYMBOL)
    want = HistoryReader(copy, use_aggregates=False).stats("spot", SYMBOL)
    assert (got["trades"], got["volume"]) == (want["trades"], want["volume"])
    compact(copy)
    assert not orphan.exists()


def test_a_cut_segment_reads_only_its_edge_minutes(store) -> None:
    """A range that starts and ends inside segments takes those segments' minutes wholly
    inside it from their aggregates: only the two edge minutes are reduced from rows."""
    root, first, last = store
    reader = HistoryReader(root)
    start, end = first + SHIFT_MS + 15_500, last - SHIFT_MS - 20_250
    segments = reader._listing("spot", SYMBOL, "trades-aggTrade", {}, start, end).segments
    dataset = aggregates.minutes_dataset("aggTrade")
    columns = aggregates.MINUTE_COLUMNS
    stored = reader._aggregated("spot", SYMBOL, dataset, columns, segments, start, end, True)
    cut = [s for s in segments if s.path.name in stored and not (start <= s.t0 and s.t1 <= end)]
    assert cut, "the range cuts an aggregated segment"
    agg, *edges = reader._cut_minutes(cut, stored, start, end)
    assert agg.collect().height > 0
    edge_minutes = [e.collect() for e in edges]
    assert len(edge_minutes) == 2 and all(m.height <= 1 for m in edge_minutes)
    got = reader.stats("spot", SYMBOL, start, end)
    want = HistoryReader(root, use_aggregates=False).stats("spot", SYMBOL, start, end)
    for name in ("quote_volume", "vwap"):
        assert math.isclose(got.pop(name), want.pop(name), rel_tol=1e-12)  # type: ignore[arg-type]
    assert got == want and got["trades"] > 0
