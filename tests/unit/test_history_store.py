"""The history store on real Parquet files: imports equal the manifest, reads feed the same
analytics, compaction never shows a reader a torn dataset, retention deletes oldest first,
foreign and corrupt files are skipped."""

from __future__ import annotations

import itertools
import json
import threading
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.cli import history as history_cli
from services.analytics.trades import trade_stats
from services.binance.messages import decode_frame
from services.history import schema
from services.history.compaction import compact, mergeable_runs
from services.history.reader import HistoryError, HistoryReader, merged_ranges
from services.history.retention import all_segments, apply_retention
from services.history.segments import TRADES_PREFIX, WriterId, list_segments, parse_segment
from services.history.writer import HistoryWriter
from services.replay.recording import SPOT_2021, SPOT_2024, USDM_2024, read_recording
from tests.recorded_trades import recorded_trades

MARKETS = {SPOT_2021.name: "spot", SPOT_2024.name: "spot", USDM_2024.name: "usdm"}


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    """A history with every bundled recording imported through the CLI."""
    root = tmp_path_factory.mktemp("history")
    files = [str(p) for p in (SPOT_2021, SPOT_2024, USDM_2024)]
    assert history_cli.main(["--history-dir", str(root), "import", *files]) == 0
    return root


def _stats(root: Path, symbol: str, market: str, kind: str, capsys) -> dict:
    code = history_cli.main(
        ["--history-dir", str(root), "stats", "--symbol", symbol, "--market", market,
         "--kind", kind]
    )  # fmt: skip
    assert code == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_import_then_stats_equal_manifest(imported, manifest, capsys):
    for file, entry in manifest.items():
        for symbol, facts in entry["symbols"].items():
            kind = "aggTrade" if "aggTrade" in facts else "trade"
            expected = facts[kind]
            stats = _stats(imported, symbol, MARKETS[file], kind, capsys)
            assert stats["trades"] == expected["n"]
            assert stats["first_trade_id"] == expected["first_id"]
            assert stats["last_trade_id"] == expected["last_id"]
            assert Decimal(stats["volume"]) == Decimal(expected["sum_qty"])
            assert stats["buyer_maker_count"] == expected["buyer_is_maker_count"]
            assert stats["first_time_ms"] == expected["T_first"]
            assert stats["last_time_ms"] == expected["T_last"]


def test_import_is_idempotent(imported, capsys):
    before = _stats(imported, "BTCUSDT", "spot", "aggTrade", capsys)
    files_before = sorted(p.name for p in imported.rglob("*.parquet"))
    assert history_cli.main(["--history-dir", str(imported), "import", str(SPOT_2021)]) == 0
    assert "0 trades added, 1910 already stored" in capsys.readouterr().err
    assert sorted(p.name for p in imported.rglob("*.parquet")) == files_before
    assert _stats(imported, "BTCUSDT", "spot", "aggTrade", capsys) == before


def test_range_reads_are_the_recording_and_feed_the_same_analytics(imported):
    reader = HistoryReader(imported)
    recorded = recorded_trades(SPOT_2024)["BTCUSDT"]  # id order, each id once
    view = reader.trades("spot", "BTCUSDT", kind="trade")
    assert view.trade_id.tolist() == [t.trade_id for t in recorded]
    assert view.price.tolist() == [t.price for t in recorded]
    assert view.qty.tolist() == [t.qty for t in recorded]
    assert (view.side < 0).tolist() == [not t.taker_buy for t in recorded]
    # A range [start, end] holds exactly the trades with start <= T <= end.
    start, end = 1723161300000, 1723161599999
    part = reader.trades("spot", "BTCUSDT", start, end, kind="trade")
    times = np.array([t.time_ms for t in recorded])
    assert len(part) == int(((times >= start) & (times <= end)).sum())
    stats = trade_stats(part, now_ms=end)
    assert stats.count == len(part)
    assert stats.volume == pytest.approx(float(part.qty.sum()))


def test_candles_from_trades_and_klines(imported):
    reader = HistoryReader(imported)
    bars = reader.candles("usdm", "BTCUSDT", "1m")
    view = reader.trades("usdm", "BTCUSDT")
    assert int(bars["trades"].sum()) == len(view)
    assert float(bars["volume"].sum()) == pytest.approx(float(view.qty.sum()))
    delta = float(bars["delta"].sum())
    assert delta == pytest.approx(float((view.side * view.qty).sum()))
    five = reader.candles("usdm", "BTCUSDT", "5m")
    assert five["open_ms"].to_list() == sorted({t // 300_000 * 300_000 for t in
                                                bars["open_ms"].to_list()})  # fmt: skip
    assert float(five["high"].max()) == float(bars["high"].max())
    with pytest.raises(HistoryError):
        reader.candles("usdm", "BTCUSDT", "7m")


def test_recorded_book_is_live_only_and_within_the_band(imported):
    reader = HistoryReader(imported)
    top = reader.book_top("spot", "BTCUSDT", 1723161255000, 1723161906000)
    live = top.filter(top["live"])
    assert live.height > 1000
    assert bool((live["bid_e8"] < live["ask_e8"]).all())  # never a crossed live top
    grid = reader.book_grid("spot", "BTCUSDT", 1723161255000, 1723161906000)
    assert grid.height > 0
    mids = (live["bid_e8"] + live["ask_e8"]) / 2 / schema.SCALE
    low, high = float(mids.min()), float(mids.max())
    assert float(grid["price"].min()) >= low * 0.98 - float(grid["bucket_size"].max())
    assert float(grid["price"].max()) <= high * 1.02
    assert bool((grid["max_qty"] > 0).all())


def _write_ids(writer: HistoryWriter, ids: np.ndarray, symbol: str = "TESTUSDT") -> None:
    writer.add_trades(
        "spot",
        symbol,
        "aggTrade",
        {
            "trade_id": ids.astype(np.int64),
            "time_ms": 1_700_000_000_000 + ids.astype(np.int64) * 10,
            "price_e8": schema.to_e8(100.0 + (ids % 7) * 0.01),
            "qty_e8": schema.to_e8(0.001 * (1 + ids % 13)),
            "buyer_maker": ids % 2 == 0,
        },
    )


def test_readers_during_compaction_always_see_one_consistent_dataset(tmp_path):
    writer = HistoryWriter(tmp_path, flush_interval_s=0.01).start()
    total = 0
    for _ in range(40):  # 40 small segments
        _write_ids(writer, np.arange(total, total + 500))
        total += 500
        writer.flush()
    reader = HistoryReader(tmp_path)
    seen: list[tuple[int, int, bool]] = []
    stop = threading.Event()

    errors: list[Exception] = []

    def read() -> None:
        while not stop.is_set():
            try:
                frame = reader.trade_frame("spot", "TESTUSDT")
            except Exception as exc:  # any failure of a reader fails the test
                errors.append(exc)
                return
            ids = frame["trade_id"].to_numpy()
            seen.append((len(ids), int(ids[-1]), bool((np.diff(ids) == 1).all())))

    threads = [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    reports = []
    for _ in range(5):
        _write_ids(writer, np.arange(total, total + 500))
        total += 500
        writer.flush()
        reports.append(compact(tmp_path))
    stop.set()
    for t in threads:
        t.join()
    writer.stop()
    assert not errors and not reader.problems
    assert sum(r.merged for r in reports) >= 40
    assert len(seen) > 5
    # Every read: ids continuous from 0, no duplicate, never fewer than the first 40 segments.
    assert all(ok and n == last + 1 and n >= 20_000 for n, last, ok in seen)
    frame = reader.trade_frame("spot", "TESTUSDT")
    assert frame["trade_id"].to_list() == list(range(total))
    assert len(list(tmp_path.rglob("*.parquet"))) == 1


def test_a_segment_never_spans_a_hole_and_holes_are_reported(tmp_path):
    writer = HistoryWriter(tmp_path, flush_interval_s=10).start()
    holes = []
    writer.on_hole = lambda *hole: holes.append(hole)
    _write_ids(writer, np.r_[np.arange(0, 100), np.arange(150, 200)])
    writer.flush()
    _write_ids(writer, np.arange(90, 260))  # overlaps what is stored: only 200.. is new
    writer.flush()
    writer.stop()
    reader = HistoryReader(tmp_path)
    ids = reader.trade_frame("spot", "TESTUSDT")["trade_id"].to_list()
    assert ids == [*range(0, 100), *range(150, 260)]
    assert [(h[2], h[3]) for h in holes] == [(100, 149)]
    assert writer.stats().duplicates_skipped == 110
    coverage = reader.coverage("spot", "TESTUSDT")
    assert [(r["first_id"], r["last_id"]) for r in coverage.ranges] == [(0, 99), (150, 259)]
    assert [(g["first_id"], g["last_id"]) for g in coverage.gaps] == [(100, 149)]
    # The next run asks again for the hole nobody explained, and not once it is recorded.
    for recorded, expected in ((False, [(100, 149)]), (True, [])):
        again = HistoryWriter(tmp_path, flush_interval_s=10)
        asked: list[tuple] = []
        again.on_hole = lambda *hole, asked=asked: asked.append(hole)
        again.start()
        if recorded:
            again.add_gap("spot", "TESTUSDT", "aggTrade", 100, 149, 0, 0, "gone")
            again.flush()
            again.stop()
            again = HistoryWriter(tmp_path, flush_interval_s=10)
            again.on_hole = lambda *hole, asked=asked: asked.append(hole)
            again.start()
        _write_ids(again, np.arange(260, 270))
        again.flush()
        again.stop()
        assert [(h[2], h[3]) for h in asked] == expected
    compact(tmp_path)
    assert [(r["first_id"], r["last_id"]) for r in reader.coverage("spot", "TESTUSDT").ranges] == [
        (0, 99), (150, 269)]  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 40)), min_size=1, max_size=12))
def test_merged_ranges_cover_exactly_the_union(spans):
    segments = [parse_segment(Path(f"{lo}_{lo + n}_{lo}_{lo + n}_w.parquet")) for lo, n in spans]
    ranges = merged_ranges(segments)  # type: ignore[arg-type]
    union = set().union(*(range(lo, lo + n + 1) for lo, n in spans))
    covered = set().union(*(range(r["first_id"], r["last_id"] + 1) for r in ranges))
    assert covered == union
    assert all(b["first_id"] > a["last_id"] + 1 for a, b in itertools.pairwise(ranges))
    runs = mergeable_runs(segments, trades=True)  # type: ignore[arg-type]
    for run in runs:  # a merge never spans a hole
        ids = set().union(*(range(s.lo, s.hi + 1) for s in run))
        assert ids == set(range(min(ids), max(ids) + 1))


def test_retention_deletes_oldest_first(tmp_path):
    writer = HistoryWriter(tmp_path, flush_interval_s=10).start()
    day = 86_400_000
    base = 1_700_000_000_000
    for d in range(6):  # one segment a day for six days, oldest first
        ids = np.arange(d * 1000, d * 1000 + 1000)
        writer.add_trades("spot", "TESTUSDT", "aggTrade", {
            "trade_id": ids, "time_ms": base + d * day + ids % 1000,
            "price_e8": schema.to_e8(np.full(1000, 100.0)),
            "qty_e8": schema.to_e8(np.full(1000, 1.0)), "buyer_maker": ids % 2 == 0,
        })  # fmt: skip
        writer.flush()
    writer.stop()
    segments = all_segments(tmp_path)
    assert len(segments) == 6
    # Age is measured against the market's time (the newest stored trade, days in the past
    # here, as in a replay at the recording's time), never this machine's clock.
    assert apply_retention(tmp_path, None, max_days=5.5).deleted == []
    assert len(apply_retention(tmp_path, None, max_days=4.99).deleted) == 1
    by_age = apply_retention(tmp_path, base + 6 * day, max_days=4.5)
    assert [parse_segment(p).t0 // day for p in by_age.deleted] == [  # type: ignore[union-attr]
        (base + 1 * day) // day]  # fmt: skip
    sizes = [s.bytes for s in all_segments(tmp_path)]
    by_size = apply_retention(tmp_path, base + 6 * day, max_bytes=sum(sizes[2:]))
    assert len(by_size.deleted) == 2
    remaining = [s.lo for s in all_segments(tmp_path)]
    assert remaining == [4000, 5000]
    assert by_size.bytes_kept == sum(sizes[2:])
    ids = HistoryReader(tmp_path).trade_frame("spot", "TESTUSDT")["trade_id"]
    assert ids.to_list() == list(range(4000, 6000))


def test_retention_counts_aggregates_and_deletes_them_with_their_segment(tmp_path):
    """Six hourly trade segments, the five settled ones aggregated by the compactor: every
    file on disk counts toward the size limit, and a segment deleted by size or by age takes
    its per-minute and per-price aggregates with it (none left as orphans), oldest first;
    what remains reads the same with and without aggregates."""
    writer = HistoryWriter(tmp_path, flush_interval_s=10).start()
    hour = 3_600_000
    base = 1_700_000_000_000 // hour * hour
    for h in range(6):
        ids = np.arange(h * 1000, h * 1000 + 1000)
        writer.add_trades("spot", "TESTUSDT", "aggTrade", {
            "trade_id": ids, "time_ms": base + h * hour + (ids % 1000) * 3_000,
            "price_e8": schema.to_e8(100.0 + (ids % 7) * 0.01),
            "qty_e8": schema.to_e8(0.001 * (1 + ids % 13)), "buyer_maker": ids % 3 == 0,
        })  # fmt: skip
        writer.flush()
    writer.stop()
    assert compact(tmp_path).aggregated == 5
    segments = all_segments(tmp_path)
    datasets = [s.path.parent.parent.name for s in segments]
    assert [datasets.count(d) for d in ("trades-aggTrade", "minutes-aggTrade",
                                        "prices-aggTrade")] == [6, 5, 5]  # fmt: skip
    assert set(datasets[:3]) == {"trades-aggTrade", "minutes-aggTrade", "prices-aggTrade"}
    assert {s.path.name for s in segments[:3]} == {segments[0].path.name}  # one unit

    def on_disk() -> int:
        return sum(f.stat().st_size for f in tmp_path.rglob("*.parquet"))

    assert sum(s.bytes for s in segments) == on_disk()  # every file counted
    sizes = [s.bytes for s in segments]
    # A limit met once the oldest trade segment alone is gone: its aggregates go too.
    by_size = apply_retention(tmp_path, None, max_bytes=on_disk() - sizes[0])
    assert by_size.deleted == [s.path for s in segments[:3]]
    assert by_size.bytes_freed == sum(sizes[:3])
    assert by_size.bytes_kept == on_disk()
    by_age = apply_retention(tmp_path, base + 6 * hour, max_days=4 * hour / 86_400_000)
    assert [p.parent.parent.name for p in by_age.deleted] == datasets[3:6]
    assert {p.name for p in by_age.deleted} == {segments[3].path.name}
    assert by_age.bytes_kept == on_disk()
    names = {d: {p.name for p in (tmp_path / "spot" / "TESTUSDT" / d).rglob("*.parquet")}
             for d in ("trades-aggTrade", "minutes-aggTrade", "prices-aggTrade")}  # fmt: skip
    assert len(names["trades-aggTrade"]) == 4
    assert names["minutes-aggTrade"] == names["prices-aggTrade"] < names["trades-aggTrade"]
    aggregated = HistoryReader(tmp_path).stats("spot", "TESTUSDT")
    raw = HistoryReader(tmp_path, use_aggregates=False).stats("spot", "TESTUSDT")
    assert aggregated == raw
    assert aggregated["trades"] == 4000 and aggregated["first_trade_id"] == 2000


def test_foreign_and_corrupt_files_are_reported_and_skipped(tmp_path):
    writer = HistoryWriter(tmp_path, flush_interval_s=10).start()
    _write_ids(writer, np.arange(0, 100))
    writer.flush()
    writer.stop()
    day_dir = next(tmp_path.rglob("trades-aggTrade")).iterdir().__next__()
    (day_dir / "notes.txt").write_text("hello")
    (day_dir / "1700000000000_1700000000999_100_199_wbad.parquet").write_bytes(b"PAR1 junk")
    (day_dir / ".1700000001000_1700000001999_200_299_wtmp.parquet.tmp").write_bytes(b"half")
    (tmp_path / "spot" / "TESTUSDT" / "trades-aggTrade" / "not-a-date").mkdir()
    reader = HistoryReader(tmp_path)
    frame = reader.trade_frame("spot", "TESTUSDT")
    assert frame["trade_id"].to_list() == list(range(100))
    kinds = sorted((p.path.name, p.kind) for p in reader.problems.values())
    assert kinds == [
        ("1700000000000_1700000000999_100_199_wbad.parquet", "corrupt"),
        ("not-a-date", "foreign"),
        ("notes.txt", "foreign"),
    ]
    listing = list_segments(tmp_path, "spot", "TESTUSDT", TRADES_PREFIX + "aggTrade",
                            schema.TRADES)  # fmt: skip
    assert len(listing.segments) == 1
    HistoryWriter(tmp_path).start().stop()  # a new writer removes a crashed one's temp file
    assert not list(tmp_path.rglob("*.tmp"))


def test_writer_ids_differ_between_writers():
    assert WriterId().next() != WriterId().next()
    assert WriterId("c").next().startswith("c")


def test_fixed_point_is_exact():
    assert schema.decimal_e8("61602.01000000") == 6160201000000
    assert schema.e8_text(schema.decimal_e8("0.00000001")) == "0.00000001"
    values = np.array([61602.01, 0.00063, 2429.366, 43.4951])
    assert schema.from_e8(schema.to_e8(values)).tolist() == values.tolist()


def test_a_failing_disk_is_reported_as_lag_and_nothing_is_lost(tmp_path, monkeypatch):
    from services.history import writer as writer_module

    real = writer_module.write_segment
    failures = {"left": 3}

    def flaky(*args, **kwargs):
        if failures["left"] > 0:
            failures["left"] -= 1
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(writer_module, "write_segment", flaky)
    writer = HistoryWriter(tmp_path, flush_interval_s=0.05).start()
    _write_ids(writer, np.arange(0, 1000))
    deadline = time.monotonic() + 5
    while writer.stats().write_errors < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    stats = writer.stats()
    assert stats.write_errors >= 1 and "No space left" in stats.last_error
    assert stats.lag_s > 0  # rows wait in memory, reported
    _write_ids(writer, np.arange(1000, 2000))
    assert writer.flush(10)
    writer.stop()
    assert writer.stats().lag_s == 0 and writer.stats().write_errors == 3
    ids = HistoryReader(tmp_path).trade_frame("spot", "TESTUSDT")["trade_id"].to_list()
    assert ids == list(range(2000))


def test_book_recording_marks_not_live_and_never_samples_it(tmp_path):
    from services.binance.messages import DepthUpdate, decode_depth_snapshot
    from services.history.recorder import HistoryRecorder
    from services.market.book_sync import BookSync

    writer = HistoryWriter(tmp_path, flush_interval_s=10).start()
    recorder = HistoryRecorder(writer, "spot", ticks={"BTCUSDT": 0.01})
    sync = BookSync("BTCUSDT", "spot")
    applied = 0
    cut_ms = 0
    for message in read_recording(SPOT_2021):
        if message.src == "rest" and b"BTCUSDT" in message.url.encode():
            sync.on_snapshot(decode_depth_snapshot(message.raw))
        elif message.src == "ws" and b"btcusdt@depth" in message.raw[:40]:
            event = decode_frame(message.raw).event
            assert isinstance(event, DepthUpdate)
            sync.on_diff(event)
            applied += 1
        else:
            continue
        if sync.event_time_ms:
            recorder.on_book("BTCUSDT", sync)
        if applied == 400 and not cut_ms:
            cut_ms = sync.event_time_ms
            sync.on_disconnect("test")  # the feed lost the stream
            recorder.on_book("BTCUSDT", sync)
            break
    writer.stop()
    reader = HistoryReader(tmp_path)
    top = reader.book_top("spot", "BTCUSDT")
    assert top["live"].to_list()[-1] is False
    last = top.row(-1, named=True)
    assert last["time_ms"] == cut_ms and last["bid_e8"] > 0  # last known prices, not live
    grid = reader.book_grid("spot", "BTCUSDT")
    assert grid["time_s"].max() <= cut_ms // 1000
    assert grid["time_s"].n_unique() >= (cut_ms - int(top["time_ms"][0])) // 1000 - 1


def test_info_and_export(imported, tmp_path, capsys):
    assert history_cli.main(["--history-dir", str(imported), "info", "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {(r["market"], r["symbol"], r["kind"]) for r in records} == {
        ("spot", "BTCUSDT", "aggTrade"), ("spot", "BTCUSDT", "trade"),
        ("spot", "ETHUSDT", "aggTrade"), ("spot", "DOTUSDT", "aggTrade"),
        ("usdm", "BTCUSDT", "trade"),
    }  # fmt: skip
    assert all(
        r["gaps"] == [] and r["bytes_per_trade"] <= 16 for r in records if r["trades"] > 1000
    )
    out = tmp_path / "eth.csv"
    args = ["--history-dir", str(imported), "export", "--symbol", "ETHUSDT", "--out", str(out)]
    assert history_cli.main([*args, "--start", "2021-04-04T20:04:00Z"]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "trade_id,time_ms,price,qty,taker_side"
    assert all(int(line.split(",")[1]) >= 1617566640000 for line in lines[1:])
    bars = tmp_path / "bars.parquet"
    args = ["--history-dir", str(imported), "export", "--symbol", "BTCUSDT", "--market", "usdm"]
    assert history_cli.main([*args, "--out", str(bars), "--candles", "1m"]) == 0
    assert pl.read_parquet(bars)["trades"].sum() == 21_313
    assert history_cli.main([*args, "--out", str(tmp_path / "x.json")]) == 2
    assert history_cli.main(["--history-dir", str(imported), "stats", "--symbol", "XRPUSDT"]) == 1


@pytest.mark.parametrize(
    ("market", "kind"), [("spot", "aggTrade"), ("spot", "trade"), ("usdm", None)]
)
def test_polars_stats_equal_the_analytics_over_the_same_rows(imported, market, kind):
    """``stats`` and the 1-minute candles are computed in polars (streaming, head/tail for
    the edges); over any range they equal ``trade_stats`` and the minute sums of the same
    rows read as a ``TradeView``."""
    reader = HistoryReader(imported)
    symbol = "BTCUSDT"
    whole = reader.trades(market, symbol, kind=kind)
    t = whole.time_ms
    for start, end in ((None, None), (int(t[len(t) // 5]), int(t[len(t) * 3 // 4]))):
        view = reader.trades(market, symbol, start, end, kind)
        ours = reader.stats(market, symbol, start, end, kind)
        ref = trade_stats(view, now_ms=int(view.time_ms[-1]))
        assert ours["trades"] == ref.count == len(view)
        assert float(ours["volume"]) == pytest.approx(ref.volume, rel=1e-12)
        assert float(ours["buy_volume"]) == pytest.approx(ref.buy_volume, rel=1e-12)
        assert float(ours["sell_volume"]) == pytest.approx(ref.sell_volume, rel=1e-12)
        assert ours["quote_volume"] == pytest.approx(ref.quote_volume, rel=1e-9)
        assert ours["vwap"] == pytest.approx(ref.vwap, rel=1e-9)
        assert float(ours["high"]) == ref.high and float(ours["low"]) == ref.low
        assert ours["first_trade_id"] == int(view.trade_id[0])
        assert ours["last_trade_id"] == int(view.trade_id[-1])
        assert ours["first_time_ms"] == ref.first_time_ms
        assert ours["last_time_ms"] == ref.last_time_ms
        assert ours["buyer_maker_count"] == ref.sell_count
        if kind == "trade":
            continue  # candles are built from the first kind stored (aggTrade)
        minutes = view.time_ms // 60_000 * 60_000
        bars = reader.candles(market, symbol, "1m", start, end).filter(
            pl.col("open_ms").is_between(int(minutes[0]), int(minutes[-1]))
        )
        assert bars["open_ms"].to_list() == sorted(set(minutes.tolist()))
        for row in bars.iter_rows(named=True):
            sel = minutes == row["open_ms"]
            assert row["trades"] == int(sel.sum())
            assert row["open"] == view.price[sel][0] and row["close"] == view.price[sel][-1]
            assert row["high"] == view.price[sel].max() and row["low"] == view.price[sel].min()
            assert row["volume"] == pytest.approx(float(view.qty[sel].sum()), rel=1e-12)
            buy = float(view.qty[sel][view.side[sel] > 0].sum())
            assert row["buy_volume"] == pytest.approx(buy, rel=1e-12, abs=1e-12)
