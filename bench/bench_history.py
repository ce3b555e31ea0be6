"""Benchmark: the history store — write-path CPU, bytes on disk, and range queries against
DuckDB and plain pyarrow reading the same Parquet files.

Write path: the bundled spot BTCUSDT 2024 recording (650.6 s, 19,904 trades, 6,495 diffs)
is replayed through a real ``Feed`` (``Feed._on_frame`` per frame: dispatch, ``BookSync``,
trade log, taps) on an event loop, one turn per push (the frames of one event time), in
one process — bare (twice per round: the second bare run is the noise floor the
"unchanged within noise" is judged against), with the ``HistoryRecorder`` tap as the app
wires it (the feed puts each trade accepted in sequence and each diff applied to a LIVE
book straight into the recorder's lane, ``lane_for``; hooks for the rest) and the writer
flushing once per second of market time and compacting once per minute — 650× as often
as live, each flush blocking the replay between two turns ("writer on"), and with the tap
alone (its lanes emptied each market second, nothing written: "tap only"). "median, turns
≥ 10": the median over the messages of the turns ten or more after the first of their
market second (the same messages in every run), away from the flush's aftermath. Then the
first ``LIVE_S`` seconds paced: each turn at its event time, ``LIVE_SPEED``× the
recording's pace, the writer on its own interval (1 s / ``LIVE_SPEED``: the same work per
market second as live) overlapping the feed as in the app, so the feed's turns are as
cold as live ones (off / on / off again / tap only, ``LIVE_ROUNDS`` rounds). Every round
plays its modes in a rotated order (round r starts at mode r mod 4), so no mode always
follows another or always runs first: with a fixed order (off, on, off again) the runs
in second place came out several µs slower whatever ran there. "paired": the median over
the rounds of (mode − off in the same round), which cancels load changes between rounds;
"off again − off" is the noise the other differences are judged against. "waits" = wall
− the feed thread's CPU per message: time the feed thread was ready but not running —
waiting for the GIL (which the writer thread holds while it runs Python) or descheduled;
the writer's GIL hand-offs show there, and nowhere else.
CPU % of one core at real rate = (process CPU with the recorder − without) / 650.6 s.
(The feed keeps a log of aggTrades, so the recording's trades are stored as
``trades-aggTrade`` here.) Bytes per trade and the recorded book's bytes per day
(extrapolated from 650.6 s) are measured on the compacted result.

Queries: the recording's trades tiled to 3,000,000 stored trades (ids continuous, each tile
shifted by the recording's span, ~27 h), written by the writer and compacted to hourly
segments, each given its per-minute and per-price aggregates by the compactor ("ours
cold" reads those; "ours raw" the same queries reduced from every trade row, like the
peers). Stats (count, volume, buy volume, quote volume, high, low, first/last id), a
50-row volume profile (as the API computes it: per-price sums in polars, then the
analytics' ``volume_profile``; checked equal to it over the trades) and 1-minute candles
over all of them; "cold" = a fresh reader (no
app-level cache; the OS page cache is warm), "cached" = the flask-caching lookup the API
does for a past range. Peers: DuckDB SQL and pyarrow (dataset + compute) over the same
files, checked against ours. Medians of 5. Prints a table and one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from flask import Flask

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.history_api import make_cache, ranged_profile
from services.analytics.profile import volume_profile
from services.binance.endpoints import custom
from services.binance.messages import decode_depth_snapshot, decode_frame
from services.binance.ws_client import Received
from services.history import schema, segments
from services.history.compaction import compact
from services.history.reader import HistoryReader
from services.history.recorder import HistoryRecorder
from services.history.retention import all_segments
from services.history.writer import HistoryWriter
from services.market.feed import Feed, FeedConfig
from services.market.views import SymbolInfo
from services.replay.recording import SPOT_2024, read_recording
from services.store import MemoryStore

SPAN_S = 650.6
LIVE_S = 40.0
LIVE_SPEED = 5.0
LIVE_ROUNDS = 6
MODES = ("off", "on", "off again", "tap")
SETTLED_TURNS = 10
"""Turns after the first of a market second (the bench's writer flushes there): the
messages of later turns are "settled" (the feed thread's caches warm again)."""
N_STORED = 3_000_000
REPEAT = 5
TICK = 0.01


def _messages() -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for message in read_recording(SPOT_2024):
        if message.src == "rest":
            out.append(("snapshot", decode_depth_snapshot(message.raw)))
        elif b"@bookTicker" not in message.raw[:40]:
            out.append(("ws", decode_frame(message.raw)))
    return out


def _turns(messages: list[tuple[str, object]]) -> list[list[tuple[str, object]]]:
    """The messages grouped as the feed's event loop meets them: the frames of one push
    (same event time ``E``) in one turn; a REST snapshot is a turn of its own."""
    turns: list[list[tuple[str, object]]] = []
    last = None
    for kind, item in messages:
        when = getattr(getattr(item, "event", None), "E", None)
        if not turns or when is None or when != last:
            turns.append([])
        turns[-1].append((kind, item))
        last = when
    return turns


def _feed(taps: tuple) -> Feed:
    """A real ``Feed`` of BTCUSDT, not connected: the bench hands it the frames."""
    feed = Feed(
        FeedConfig(endpoints=custom("ws://127.0.0.1:9", "http://127.0.0.1:9")),
        MemoryStore(),
        taps=taps,
    )
    feed._infos = {"BTCUSDT": SymbolInfo("BTCUSDT")}
    feed._add_symbol("BTCUSDT", on_demand=False)
    return feed


def _replay(
    turns: list[list[tuple[str, object]]], root: Path | None, flushing: bool = True
) -> dict[str, float]:
    """Replay through a real ``Feed`` (its frame dispatch, ``BookSync``, trade log and
    taps: ``Feed._on_frame`` per frame, a snapshot handed to the book and the taps as the
    snapshot desk does) on an event loop, one turn per push; with ``root``, with the
    ``HistoryRecorder`` tap (and the writer thread behind it) — the feed puts each trade
    accepted in sequence and each diff applied to a LIVE book in the recorder's lane and
    calls its hooks for the rest. Per turn, the wall time and the feed thread's own CPU
    time (``time.thread_time``, the writer thread excluded) from its first message to the
    end of the loop turn, shared equally by the turn's messages; the bench's stand-in for
    the writer's 1 s flushes and compaction is outside the timed part, but its work
    between turns (650× as often as live: once per market second) leaves the feed
    thread's next turns with cold caches and more garbage to collect. ``flushing`` False:
    the tap alone — what it leaves in the writer's lanes is taken away (not written) once
    per market second, so the feed thread pays the tap's own cost and nothing else."""
    return asyncio.run(_replay_turns(turns, root, flushing))


def _play_turn(feed: Feed, symbol: object, turn: list[tuple[str, object]], taps: bool) -> None:
    """One loop turn's messages through the real feed: a snapshot as the snapshot desk
    hands it to BTCUSDT's ``symbol`` (and to the taps, as the feed does), a frame through
    ``Feed._on_frame``."""
    for kind, item in turn:
        if kind == "snapshot":
            symbol.book.on_snapshot(item)  # type: ignore[attr-defined]
            if taps:
                feed._tap_book("BTCUSDT", symbol)
        else:
            feed._on_frame(Received(item, 0.0, 1))  # type: ignore[arg-type]


async def _replay_turns(
    turns: list[list[tuple[str, object]]], root: Path | None, flushing: bool
) -> dict:
    writer = HistoryWriter(root, flush_interval_s=3600.0).start() if root else None
    recorder = HistoryRecorder(writer, "spot", ticks={"BTCUSDT": TICK}) if writer else None
    feed = _feed((recorder,) if recorder else ())
    symbol = feed._symbols["BTCUSDT"]
    wall: list[float] = []
    cpu: list[float] = []
    settled: list[bool] = []  # the turn is SETTLED_TURNS or more after a second began
    next_flush = next_compact = 0
    second, since = -1, 0
    cpu0 = time.process_time()
    for turn in turns:
        now_s = _event_ms(turn) // 1000
        second, since = (second, since + 1) if now_s <= second else (now_s, 0)
        t0, c0 = time.perf_counter(), time.thread_time()
        _play_turn(feed, symbol, turn, recorder is not None)
        await asyncio.sleep(0)  # the end of the turn
        n = len(turn)
        wall.extend([(time.perf_counter() - t0) / n] * n)
        cpu.extend([(time.thread_time() - c0) / n] * n)
        settled.extend([since >= SETTLED_TURNS] * n)
        if writer is None or root is None:
            continue
        if not flushing:
            if now_s >= next_flush:  # taken away each market second, written never
                _drop_lanes(writer)
                next_flush = now_s + 1
            continue
        if now_s >= next_flush:  # the writer's 1 s flush, in market time
            writer.flush()
            next_flush = now_s + 1
        if now_s >= next_compact:
            compact(root)
            next_compact = now_s + 60
    assert feed.counters.frame_errors == 0 and feed.counters.tap_errors == 0
    if writer is not None and root is not None:
        writer.stop()
        compact(root)
    walls, cpus = np.array(wall), np.array(cpu)
    return {
        "cpu_s": time.process_time() - cpu0,
        "msg_us_mean": 1e6 * float(walls.mean()),
        "msg_us_median": 1e6 * float(np.median(walls)),
        "msg_us_p99": 1e6 * float(np.percentile(walls, 99)),
        "msg_cpu_us_mean": 1e6 * float(cpus.mean()),
        "msg_us_median_settled": 1e6 * float(np.median(walls[np.array(settled)])),
    }


def _replay_live(
    turns: list[list[tuple[str, object]]], root: Path | None, flushing: bool = True
) -> dict[str, float]:
    """The first ``LIVE_S`` seconds of the recording paced (each turn at its event time,
    as the exchange pushed it, ``LIVE_SPEED``× as fast) through a real ``Feed``; with
    ``root``, the recorder tap and the writer thread on its own interval (1 s of market
    time) as in the app — its work
    (taking the lanes, the grid, the Parquet writes) overlaps the feed's turns as it does
    live, GIL and caches included. ``flushing`` False: the tap alone, its lanes emptied
    by a thread on the same interval (nothing converted or written). Same per-message
    figures as ``_replay``, and the waits (wall − thread CPU)."""
    return asyncio.run(_replay_live_turns(turns, root, flushing))


def _drop_lanes(writer: HistoryWriter) -> None:
    """Drop what the tap left in the writer's lanes (the shared one and each symbol's)."""
    writer.lane.entries.clear()
    for lane in writer.lane.symbol_lanes():
        lane.entries.clear()


def _empty_lanes(writer: HistoryWriter, stop: threading.Event) -> None:
    """Take what the tap left in the writer's lanes every writer interval and drop it."""
    while not stop.wait(1.0 / LIVE_SPEED):
        _drop_lanes(writer)


async def _replay_live_turns(
    turns: list[list[tuple[str, object]]], root: Path | None, flushing: bool
) -> dict:
    writer = HistoryWriter(root, flush_interval_s=1.0 / LIVE_SPEED) if root else None
    recorder = HistoryRecorder(writer, "spot", ticks={"BTCUSDT": TICK}) if writer else None
    stop_emptying = threading.Event()
    if writer is not None and flushing:
        writer.start()
    elif writer is not None:
        threading.Thread(target=_empty_lanes, args=(writer, stop_emptying), daemon=True).start()
    feed = _feed((recorder,) if recorder else ())
    symbol = feed._symbols["BTCUSDT"]
    first_ms = next(_event_ms(turn) for turn in turns if _event_ms(turn))
    wall: list[float] = []
    cpu: list[float] = []
    start = time.perf_counter()
    for turn in turns:
        at_s = (_event_ms(turn) - first_ms) / 1000 if _event_ms(turn) else 0.0
        if at_s >= LIVE_S:
            break
        await asyncio.sleep(max(0.0, start + at_s / LIVE_SPEED - time.perf_counter()))
        t0, c0 = time.perf_counter(), time.thread_time()
        _play_turn(feed, symbol, turn, recorder is not None)
        await asyncio.sleep(0)
        n = len(turn)
        wall.extend([(time.perf_counter() - t0) / n] * n)
        cpu.extend([(time.thread_time() - c0) / n] * n)
    flushes = writer.stats().segments_written if writer else 0
    stop_emptying.set()
    if writer is not None:
        writer.stop()
    walls, cpus = np.array(wall), np.array(cpu)
    return {
        "msg_wait_us_mean": 1e6 * float((walls - cpus).mean()),
        "msg_wait_us_p99": 1e6 * float(np.percentile(walls - cpus, 99)),
        "messages": float(walls.shape[0]),
        "segments_written": float(flushes),
        "msg_us_mean": 1e6 * float(walls.mean()),
        "msg_us_median": 1e6 * float(np.median(walls)),
        "msg_us_p99": 1e6 * float(np.percentile(walls, 99)),
        "msg_cpu_us_mean": 1e6 * float(cpus.mean()),
    }


def _rotated(round_: int) -> tuple[str, ...]:
    """The modes in round ``round_``'s order: starting at mode ``round_`` mod 4."""
    first = round_ % len(MODES)
    return MODES[first:] + MODES[:first]


def _event_ms(turn: list[tuple[str, object]]) -> int:
    return getattr(getattr(turn[-1][1], "event", None), "E", 0) or 0


def _bytes(root: Path, dataset: str) -> int:
    return sum(p.stat().st_size for p in root.rglob(f"*/{dataset}/*/*.parquet"))


def _build_stored(root: Path, source: Path) -> None:
    """Tile the recorded trades to N_STORED stored trades through the writer, compacted."""
    base = HistoryReader(source).trade_frame("spot", "BTCUSDT", kind="aggTrade")
    n = base.height
    ids0 = base["trade_id"].to_numpy() - int(base["trade_id"][0])
    times0 = base["time_ms"].to_numpy()
    span = int(times0[-1] - times0[0]) + 1
    writer = HistoryWriter(root, flush_interval_s=3600.0, max_rows=400_000).start()
    written = 0
    tile = 0
    while written < N_STORED:
        take = min(n, N_STORED - written)
        writer.add_trades("spot", "BTCUSDT", "trade", {
            "trade_id": ids0[:take] + tile * n + 1,
            "time_ms": times0[:take] + tile * span,
            "price_e8": base["price_e8"].to_numpy()[:take] + (tile % 50) * 1_000_000,
            "qty_e8": base["qty_e8"].to_numpy()[:take],
            "buyer_maker": base["buyer_maker"].to_numpy()[:take],
        })  # fmt: skip
        written += take
        tile += 1
        if tile % 20 == 0:
            writer.flush()
    writer.stop()
    compact(root)


def _median_ms(
    fn: Callable[[], object], prepare: Callable[[], None] | None = None
) -> tuple[float, float]:
    """Median wall and median process CPU time (all threads) of ``fn``, in ms."""
    times, cpu = [], []
    for _ in range(REPEAT):
        if prepare is not None:
            prepare()
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return statistics.median(times), statistics.median(cpu)


def _cold() -> None:
    segments._VALID.clear()


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-history-"))
    try:
        run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp: Path) -> None:
    messages = _turns(_messages())
    _replay(messages, None)  # warm-up
    recorded_root = tmp / "recorded"
    runs: dict[str, list[dict]] = {name: [] for name in MODES}
    for round_ in range(3):  # interleaved and rotated, so load changes hit all alike
        for name in _rotated(round_):
            if name == "on":
                root = recorded_root if round_ == 0 else tmp / f"recorded-{round_}"
                runs["on"].append(_replay(messages, root))
            elif name == "tap":
                runs["tap"].append(_replay(messages, tmp / f"tap-{round_}", flushing=False))
            else:
                runs[name].append(_replay(messages, None))
    bare, taped, again, tap = (
        {k: statistics.median(r[k] for r in runs[name]) for k in runs[name][0]} for name in MODES
    )
    _replay_live(messages, tmp / "live-warm-up")  # the writer's threads and imports, once
    live_runs: dict[str, list[dict]] = {name: [] for name in MODES}
    for round_ in range(LIVE_ROUNDS):
        for name in _rotated(round_):
            root = tmp / f"live-{name.replace(' ', '-')}-{round_}"
            live_runs[name].append(
                _replay_live(messages, root if name in ("on", "tap") else None, name == "on")
            )
    live = {
        name: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        for name, rs in live_runs.items()
    }
    paired = {
        name: {
            k: statistics.median(a[k] - b[k] for a, b in zip(rs, live_runs["off"], strict=True))
            for k in rs[0]
        }
        for name, rs in live_runs.items()
    }
    cpu_pct = 100.0 * (taped["cpu_s"] - bare["cpu_s"]) / SPAN_S
    trades_bytes = _bytes(recorded_root, "trades-aggTrade")
    book_bytes = _bytes(recorded_root, "book-grid") + _bytes(recorded_root, "book-top")
    book_per_day_mb = book_bytes / SPAN_S * 86_400 / 1e6
    per_trade = trades_bytes / 19_904

    stored = tmp / "stored"
    _build_stored(stored, recorded_root)
    files = [str(s.path) for s in all_segments(stored) if "trades-trade" in s.path.parts]
    stored_bytes = sum(Path(f).stat().st_size for f in files)
    reader = HistoryReader(stored)
    market, symbol = "spot", "BTCUSDT"

    def ours_stats(aggregated: bool = True) -> dict:
        return HistoryReader(stored, use_aggregates=aggregated).stats(market, symbol)

    def ours_profile(aggregated: bool = True) -> dict:
        levels = HistoryReader(stored, use_aggregates=aggregated).price_levels(market, symbol)
        return ranged_profile(levels, TICK, 50)["profile"]

    def ours_candles(aggregated: bool = True) -> pl.DataFrame:
        return HistoryReader(stored, use_aggregates=aggregated).candles(market, symbol, "1m")

    scan = "read_parquet([" + ",".join(f"'{f}'" for f in files) + "])"
    con = duckdb.connect()

    def duck_stats() -> tuple:
        return con.execute(
            f"select count(*), sum(qty_e8), sum(qty_e8) filter (where not buyer_maker), "
            f"sum(price_e8::double * qty_e8), max(price_e8), min(price_e8), min(trade_id), "
            f"max(trade_id) from {scan}"
        ).fetchone()

    bucket = None

    def duck_profile() -> list:
        return con.execute(
            f"select floor(price_e8 / {bucket}) b, sum(qty_e8), "
            f"sum(qty_e8) filter (where not buyer_maker), count(*) from {scan} group by b "
            "order by b"
        ).fetchall()

    def duck_candles() -> list:
        return con.execute(
            f"select time_ms // 60000 m, arg_min(price_e8, trade_id), max(price_e8), "
            f"min(price_e8), arg_max(price_e8, trade_id), sum(qty_e8), "
            f"sum(qty_e8) filter (where not buyer_maker), count(*) from {scan} group by m "
            "order by m"
        ).fetchall()

    def arrow_table() -> pa.Table:
        return ds.dataset(files, format="parquet").to_table()

    def arrow_stats() -> tuple:
        t = arrow_table()
        qty = t["qty_e8"]
        buy = pc.sum(pc.filter(qty, pc.invert(t["buyer_maker"])))
        quote = pc.sum(
            pc.multiply(pc.cast(t["price_e8"], pa.float64()), pc.cast(qty, pa.float64()))
        )
        mm = pc.min_max(t["price_e8"])
        ids = pc.min_max(t["trade_id"])
        return (t.num_rows, pc.sum(qty).as_py(), buy.as_py(), quote.as_py(), mm["max"].as_py(),
                mm["min"].as_py(), ids["min"].as_py(), ids["max"].as_py())  # fmt: skip

    def arrow_profile() -> pa.Table:
        t = arrow_table()
        b = pc.floor(pc.divide(pc.cast(t["price_e8"], pa.float64()), float(bucket)))
        buy = pc.if_else(t["buyer_maker"], 0, t["qty_e8"])
        g = pa.table({"b": b, "q": t["qty_e8"], "buy": buy})
        return g.group_by("b").aggregate([("q", "sum"), ("buy", "sum"), ("q", "count")])

    def arrow_candles() -> pa.Table:
        t = arrow_table()
        m = pc.divide(t["time_ms"], 60_000)
        buy = pc.if_else(t["buyer_maker"], 0, t["qty_e8"])
        g = pa.table({"m": m, "p": t["price_e8"], "q": t["qty_e8"], "buy": buy})
        return g.group_by("m", use_threads=False).aggregate(
            [
                ("p", "first"),
                ("p", "max"),
                ("p", "min"),
                ("p", "last"),
                ("q", "sum"),
                ("buy", "sum"),
                ("q", "count"),
            ]
        )

    # Agreement checks before timing.
    stats = ours_stats()
    profile = ours_profile()
    reference = volume_profile(reader.trades(market, symbol), tick_size=TICK, rows=50,
                               count_trades=True)  # fmt: skip
    assert profile["trades"].tolist() == reference.trades.tolist()  # type: ignore[union-attr]
    assert np.allclose(profile["volume"], reference.volume, rtol=1e-9)
    bucket = round(profile["bucket"] * schema.SCALE)
    candles = ours_candles()
    duck = duck_stats()
    arrow = arrow_stats()
    assert stats["trades"] == duck[0] == arrow[0] == N_STORED
    assert schema.decimal_e8(stats["volume"]) == duck[1] == arrow[1]
    assert stats["last_trade_id"] == duck[7] == arrow[7]
    assert len(duck_profile()) == arrow_profile().num_rows
    assert candles.height == len(duck_candles()) == arrow_candles().num_rows
    assert int(candles["trades"].sum()) == N_STORED

    app = Flask("bench")
    cache = make_cache("")
    cache.init_app(app)
    results = {"stats": stats, "profile": {"rows": len(profile["volume"])},
               "candles": {"rows": candles.height}}  # fmt: skip
    for name, value in results.items():
        cache.set(name, value)

    rows = []
    figures: dict[str, float] = {}
    for name, ours, duck_fn, arrow_fn in (
        ("stats", ours_stats, duck_stats, arrow_stats),
        ("profile_50", ours_profile, duck_profile, arrow_profile),
        ("candles_1m", ours_candles, duck_candles, arrow_candles),
    ):
        cold, cold_cpu = _median_ms(ours, _cold)
        raw, raw_cpu = _median_ms(lambda fn=ours: fn(False), _cold)
        duck_ms, duck_cpu = _median_ms(duck_fn)
        arrow_ms, arrow_cpu = _median_ms(arrow_fn)
        key = name.split("_")[0]
        cached, _ = _median_ms(lambda k=key: cache.get(k))
        rows.append((name, cold, cached, duck_ms, arrow_ms, raw, cold_cpu, duck_cpu, arrow_cpu,
                     raw_cpu))  # fmt: skip
        figures[f"{name}_cold_ms"] = round(cold, 2)
        figures[f"{name}_cold_cpu_ms"] = round(cold_cpu, 2)
        figures[f"{name}_cached_ms"] = round(cached, 4)
        figures[f"{name}_cold_raw_ms"] = round(raw, 2)
        figures[f"{name}_cold_raw_cpu_ms"] = round(raw_cpu, 2)
        figures[f"{name}_duckdb_ms"] = round(duck_ms, 2)
        figures[f"{name}_duckdb_cpu_ms"] = round(duck_cpu, 2)
        figures[f"{name}_pyarrow_ms"] = round(arrow_ms, 2)
        figures[f"{name}_pyarrow_cpu_ms"] = round(arrow_cpu, 2)

    # A range that starts and ends inside hourly segments (off the minute): the cut
    # segments' inner minutes come from their aggregates, only the edge minutes' rows
    # are read (before: every row of a cut segment).
    cut_range = (int(stats["first_time_ms"]) + 1_830_500, int(stats["last_time_ms"]) - 1_815_250)
    cut_answer = HistoryReader(stored).stats(market, symbol, *cut_range)
    assert cut_answer["trades"] == HistoryReader(stored, use_aggregates=False).stats(
        market, symbol, *cut_range)["trades"]  # fmt: skip
    cut_ms, cut_cpu = _median_ms(lambda: HistoryReader(stored).stats(market, symbol, *cut_range),
                                 _cold)  # fmt: skip
    cut_raw_ms, cut_raw_cpu = _median_ms(
        lambda: HistoryReader(stored, use_aggregates=False).stats(market, symbol, *cut_range),
        _cold,
    )
    last_hour = int(candles["open_ms"][-1]) - 3_600_000
    restart_ms, _ = _median_ms(
        lambda: (reader.trades(market, symbol, last_hour), reader.candles(market, symbol, "1m",
                                                                          last_hour)),
        _cold,
    )  # fmt: skip

    print(f"write path (spot BTCUSDT 2024 at its real rate, {SPAN_S} s):")
    print(f"  replay without recorder  {bare['cpu_s']:8.2f} s CPU")
    print(f"  replay with recorder     {taped['cpu_s']:8.2f} s CPU")
    print(f"  recorder + writer        {cpu_pct:8.2f} % of one core (target ≤ 2 %)")
    print("  feed thread per message     writer off    writer on   off again  tap only"
          "    on − off  again − off  tap − off")  # fmt: skip
    for key, label in (
        ("msg_us_mean", "wall mean"),
        ("msg_us_median", "wall median"),
        ("msg_us_median_settled", f"median, turns ≥{SETTLED_TURNS}"),
        ("msg_us_p99", "wall p99"),
        ("msg_cpu_us_mean", "thread CPU mean"),
    ):
        off, on, off2, only = bare[key], taped[key], again[key], tap[key]
        print(f"    {label:<22}{off:>10.2f} µs{on:>10.2f} µs{off2:>10.2f} µs{only:>8.2f} µs"
              f"{on - off:>+10.2f} µs{off2 - off:>+10.2f} µs{only - off:>+10.2f} µs")  # fmt: skip
    print(f"  paced ({LIVE_SPEED:.0f}× the recording's pace), first {LIVE_S:.0f} s "
          f"({live['on']['messages']:.0f} messages, writer every market second: "
          f"{live['on']['segments_written']:.0f} segments written), "
          f"medians of {LIVE_ROUNDS} rotated rounds; differences paired per round:")  # fmt: skip
    print("  feed thread per message     writer off    writer on   off again  tap only"
          "    on − off  again − off  tap − off")  # fmt: skip
    for key, label in (
        ("msg_us_mean", "wall mean"),
        ("msg_us_median", "wall median"),
        ("msg_us_p99", "wall p99"),
        ("msg_cpu_us_mean", "thread CPU mean"),
        ("msg_wait_us_mean", "waits mean"),
        ("msg_wait_us_p99", "waits p99"),
    ):
        off, on, off2, only = (live[name][key] for name in MODES)
        d_on, d_again, d_tap = (paired[name][key] for name in MODES[1:])
        print(f"    {label:<22}{off:>10.2f} µs{on:>10.2f} µs{off2:>10.2f} µs{only:>8.2f} µs"
              f"{d_on:>+10.2f} µs{d_again:>+10.2f} µs{d_tap:>+10.2f} µs")  # fmt: skip
    print(f"  trades on disk           {per_trade:8.2f} bytes/trade (target ≤ 16)")
    print(f"  recorded book            {book_per_day_mb:8.1f} MB/day extrapolated (≤ 150)")
    print(f"stored: {N_STORED:,} trades, {len(files)} segments, "
          f"{stored_bytes / N_STORED:.2f} bytes/trade")  # fmt: skip
    print("ours cold = aggregates of the compacted segments; ours raw = every trade row")
    print(f"{'query':<12}{'ours cold':>12}{'ours cached':>13}{'duckdb':>10}{'pyarrow':>10}"
          f"{'ours raw':>11}{'duck/ours':>11}{'arrow/ours':>11}{'duck/raw':>10}")  # fmt: skip
    for name, cold, cached, duck_ms, arrow_ms, raw, *_ in rows:
        print(f"{name:<12}{cold:>10.1f}ms{cached:>11.4f}ms{duck_ms:>8.1f}ms{arrow_ms:>8.1f}ms"
              f"{raw:>9.1f}ms{duck_ms / cold:>11.2f}{arrow_ms / cold:>11.2f}"
              f"{duck_ms / raw:>10.2f}")  # fmt: skip
    print("process CPU time (all threads), medians:")
    for name, *_, cold_cpu, duck_cpu, arrow_cpu, raw_cpu in rows:
        print(f"{name:<12}{cold_cpu:>10.1f}ms{'':>13}{duck_cpu:>8.1f}ms{arrow_cpu:>8.1f}ms"
              f"{raw_cpu:>9.1f}ms{duck_cpu / cold_cpu:>11.2f}{arrow_cpu / cold_cpu:>11.2f}"
              f"{duck_cpu / raw_cpu:>10.2f}")  # fmt: skip
    print(f"stats over a range cutting segments ({cut_answer['trades']:,} trades): "
          f"{cut_ms:.1f} ms (CPU {cut_cpu:.1f}); every row read: {cut_raw_ms:.1f} ms "
          f"(CPU {cut_raw_cpu:.1f})")  # fmt: skip
    print(f"last hour's trades + 1m candles read (restart proxy): {restart_ms:.1f} ms")
    print(json.dumps({
        "write_cpu_pct_one_core": round(cpu_pct, 3),
        "feed_msg_us_mean_writer_off": round(bare["msg_us_mean"], 2),
        "feed_msg_us_mean_writer_on": round(taped["msg_us_mean"], 2),
        "feed_msg_us_median_writer_off": round(bare["msg_us_median"], 2),
        "feed_msg_us_median_writer_on": round(taped["msg_us_median"], 2),
        "feed_msg_cpu_us_mean_writer_off": round(bare["msg_cpu_us_mean"], 2),
        "feed_msg_cpu_us_mean_writer_on": round(taped["msg_cpu_us_mean"], 2),
        "feed_msg_us_p99_writer_off": round(bare["msg_us_p99"], 2),
        "feed_msg_us_p99_writer_on": round(taped["msg_us_p99"], 2),
        "feed_msg_us_median_writer_off_again": round(again["msg_us_median"], 2),
        **{
            f"feed_msg_us_median_settled_{name}": round(run_["msg_us_median_settled"], 2)
            for name, run_ in (("writer_off", bare), ("writer_on", taped),
                               ("writer_off_again", again), ("tap_only", tap))
        },
        "feed_msg_us_median_tap_only": round(tap["msg_us_median"], 2),
        "feed_msg_us_mean_tap_only": round(tap["msg_us_mean"], 2),
        "feed_msg_us_p99_tap_only": round(tap["msg_us_p99"], 2),
        "feed_msg_cpu_us_mean_tap_only": round(tap["msg_cpu_us_mean"], 2),
        "feed_msg_us_mean_writer_off_again": round(again["msg_us_mean"], 2),
        "feed_msg_us_p99_writer_off_again": round(again["msg_us_p99"], 2),
        **{
            f"feed_live_msg_{k.removeprefix('msg_')}_{label}": round(live[name][k], 2)
            for name, label in zip(MODES, ("writer_off", "writer_on", "writer_off_again",
                                           "tap_only"), strict=True)
            for k in ("msg_us_median", "msg_us_mean", "msg_us_p99", "msg_cpu_us_mean",
                      "msg_wait_us_mean")
        },
        **{
            f"feed_live_msg_{k.removeprefix('msg_')}_paired_{label}_minus_off": round(
                paired[name][k], 2
            )
            for name, label in (("on", "writer_on"), ("off again", "off_again"),
                                ("tap", "tap_only"))
            for k in ("msg_us_median", "msg_us_mean", "msg_cpu_us_mean", "msg_wait_us_mean")
        },
        "trade_bytes_per_trade": round(per_trade, 2),
        "stored_bytes_per_trade_3m": round(stored_bytes / N_STORED, 2),
        "book_mb_per_day": round(book_per_day_mb, 1),
        **figures,
        "stats_cut_range_cold_ms": round(cut_ms, 2),
        "stats_cut_range_cold_cpu_ms": round(cut_cpu, 2),
        "stats_cut_range_raw_ms": round(cut_raw_ms, 2),
        "last_hour_read_ms": round(restart_ms, 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
