"""Benchmark of the market-data state layer on real messages (not a test).

Run: ``.venv/bin/python bench/bench_book.py``. In one process, on the bundled spot BTCUSDT
recording (file 1), with medians of repeated blocks and the variants of each table timed
interleaved (round-robin) so that machine noise hits them alike:

(a) decoding a 40-level ``depthUpdate`` frame, numbers included (goal ≤ 10 µs);
(b) raw diff bytes → decoded → synced book → best bid/ask + top-20 read, per message
    (goal ≤ 25 µs): Tapescope (``decode_frame`` + ``BookSync``), a minimal reference
    pipeline (one msgspec pass + dict/bisect, no state machine) and python-binance's own
    ``DepthCache`` class fed as its ``DepthCacheManager`` feeds it (orjson, ``add_bid``/
    ``add_ask``, ``get_bids``/``get_asks``);
(c) trade ingest per trade: ``decode_frame`` + ``TradeLog.add`` with rolling totals over a
    10k-trade ring that is evicting (goal ≤ 1.5 µs);
(d) memory: a 5000 × 2 level book decoded from a REST body (goal ≤ 1 MiB, tracemalloc) and
    the trade window per trade (goal ≤ 32 B).

Prints tables and ends with exactly one line of JSON holding the figures.
"""

from __future__ import annotations

import gc
import json
import random
import statistics
import sys
import time
import tracemalloc
from bisect import bisect_left, insort
from collections.abc import Callable
from pathlib import Path

import msgspec
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from binance.ws.depthcache import DepthCache

from services.binance.messages import (
    DepthUpdate,
    decode_depth_snapshot,
    decode_frame,
)
from services.market.book_sync import BookSync
from services.market.order_book import OrderBook
from services.market.trade_log import TradeLog
from services.replay.recording import SPOT_2024, read_recording
from tests.books import deep_snapshot_body, loaded_book_bytes

SNAPSHOT_LINE = 8
TOP = 20


class _RefDiff(msgspec.Struct, gc=False):
    U: int
    u: int
    b: list[tuple[float, float]]
    a: list[tuple[float, float]]


class _RefFrame(msgspec.Struct, gc=False):
    stream: str
    data: _RefDiff


_REF_DECODER = msgspec.json.Decoder(_RefFrame, strict=False)


class ReferenceBook:
    """The fastest structure measured in perf-anchors: one msgspec pass + dict/bisect."""

    def __init__(self, bids, asks, last_id: int) -> None:
        self.bids = dict(bids)
        self.asks = dict(asks)
        self.bid_keys = sorted(self.bids)
        self.ask_keys = sorted(-p for p in self.asks)
        self.last_id = last_id

    def apply(self, raw: bytes) -> None:
        diff = _REF_DECODER.decode(raw).data
        if diff.u <= self.last_id:
            return
        if self.last_id + 1 < diff.U:
            raise RuntimeError("gap")
        self.last_id = diff.u
        book, keys = self.bids, self.bid_keys
        for p, q in diff.b:
            if q == 0.0:
                if book.pop(p, None) is not None:
                    del keys[bisect_left(keys, p)]
            else:
                if p not in book:
                    insort(keys, p)
                book[p] = q
        book, keys = self.asks, self.ask_keys
        for p, q in diff.a:
            if q == 0.0:
                if book.pop(p, None) is not None:
                    del keys[bisect_left(keys, -p)]
            else:
                if p not in book:
                    insort(keys, -p)
                book[p] = q

    def read(self) -> tuple:
        bids, asks = self.bids, self.asks
        best_bid = self.bid_keys[-1]
        best_ask = -self.ask_keys[-1]
        top_bids = [(p, bids[p]) for p in reversed(self.bid_keys[-TOP:])]
        top_asks = [(-k, asks[-k]) for k in reversed(self.ask_keys[-TOP:])]
        return (best_bid, bids[best_bid]), (best_ask, asks[best_ask]), top_bids, top_asks


def load_messages() -> tuple[list[bytes], bytes, list[bytes], list[bytes]]:
    """Pre-snapshot diffs, the snapshot body, post-snapshot diffs and trade frames."""
    before, after, trades = [], [], []
    snapshot = b""
    for message in read_recording(SPOT_2024):
        if message.src == "rest":
            snapshot = message.raw
        elif b"depthUpdate" in message.raw[:80]:
            (before if message.line < SNAPSHOT_LINE else after).append(message.raw)
        elif b'@trade"' in message.raw[:40]:
            trades.append(message.raw)
    return before, snapshot, after, trades


def median_interleaved(
    variants: dict[str, Callable[[], Callable[[], None]]], repeats: int, per_block: int
) -> dict[str, float]:
    """Median µs per item of each variant; ``variants`` map a name to a setup function
    that returns the timed block (setup is not timed)."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, setup in variants.items():
            block = setup()
            gc.collect()
            start = time.perf_counter()
            block()
            samples[name].append((time.perf_counter() - start) / per_block * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def level_count(diff: DepthUpdate) -> int:
    return len(diff.b) + len(diff.a)


def bench_decode(after: list[bytes]) -> dict[str, float]:
    frames = [r for r in after if level_count(decode_frame(r).event) == 40]
    loops = 200

    def tapescope() -> Callable[[], None]:
        def block() -> None:
            for _ in range(loops):
                for raw in frames:
                    decode_frame(raw)

        return block

    def reference() -> Callable[[], None]:
        def block() -> None:
            for _ in range(loops):
                for raw in frames:
                    _REF_DECODER.decode(raw)

        return block

    def orjson_floats() -> Callable[[], None]:
        def block() -> None:
            for _ in range(loops):
                for raw in frames:
                    data = orjson.loads(raw)["data"]
                    [(float(p), float(q)) for p, q in data["b"]]
                    [(float(p), float(q)) for p, q in data["a"]]

        return block

    result = median_interleaved(
        {
            "decode_frame (Tapescope)": tapescope,
            "msgspec one pass (reference)": reference,
            "orjson + float()": orjson_floats,
        },
        repeats=15,
        per_block=loops * len(frames),
    )
    print(f"\n(a) 40-level depthUpdate decode, numbers included ({len(frames)} real frames)")
    print_table(result, "us/message")
    return result


def tapescope_setup(before, snapshot, messages) -> Callable[[], Callable[[], None]]:
    def setup() -> Callable[[], None]:
        sync = BookSync("BTCUSDT", "spot")
        for raw in before:
            sync.on_diff(decode_frame(raw).event)
        sync.on_snapshot(decode_depth_snapshot(snapshot))
        book = sync.book

        def block() -> None:
            for raw in messages:
                event = decode_frame(raw).event
                if type(event) is DepthUpdate:
                    sync.on_diff(event)
                book.best_bid()
                book.best_ask()
                book.top_bids(TOP)
                book.top_asks(TOP)

        block.book = book  # type: ignore[attr-defined]
        return block

    return setup


def reference_setup(before, snapshot, messages) -> Callable[[], Callable[[], None]]:
    def setup() -> Callable[[], None]:
        body = decode_depth_snapshot(snapshot)
        ref = ReferenceBook(body.bids, body.asks, body.lastUpdateId)
        for raw in before:
            diff = _REF_DECODER.decode(raw).data
            if diff.u > ref.last_id:
                ref.apply(raw)

        def block() -> None:
            for raw in messages:
                ref.apply(raw)
                ref.read()

        return block

    return setup


def python_binance_setup(before, snapshot, messages) -> Callable[[], Callable[[], None]]:
    def setup() -> Callable[[], None]:
        cache = DepthCache("BTCUSDT")
        body = orjson.loads(snapshot)
        for bid in body["bids"]:
            cache.add_bid(bid)
        for ask in body["asks"]:
            cache.add_ask(ask)
        last = body["lastUpdateId"]
        for raw in before:
            msg = orjson.loads(raw)["data"]
            if msg["u"] > last:
                for bid in msg["b"]:
                    cache.add_bid(bid)
                for ask in msg["a"]:
                    cache.add_ask(ask)

        def block() -> None:
            for raw in messages:
                msg = orjson.loads(raw)["data"]
                for bid in msg["b"]:
                    cache.add_bid(bid)
                for ask in msg["a"]:
                    cache.add_ask(ask)
                cache.update_time = msg["E"]
                bids = cache.get_bids()
                asks = cache.get_asks()
                bids[0], asks[0], bids[:TOP], asks[:TOP]

        block.cache = cache  # type: ignore[attr-defined]
        return block

    return setup


def bench_pipeline(before, snapshot, after, label: str, peer_messages: int) -> dict[str, float]:
    fast = median_interleaved(
        {
            "Tapescope: decode_frame + BookSync + top-20": tapescope_setup(before, snapshot, after),
            "reference: msgspec + dict/bisect + top-20": reference_setup(before, snapshot, after),
        },
        repeats=9,
        per_block=len(after),
    )
    head = after[:peer_messages]
    peer = median_interleaved(
        {
            "Tapescope (same messages as python-binance)": tapescope_setup(before, snapshot, head),
            "python-binance DepthCache (orjson + sort on read)": python_binance_setup(
                before, snapshot, head
            ),
        },
        repeats=5,
        per_block=len(head),
    )
    check_same_book(before, snapshot, head)
    print(f"\n(b) {label}: raw bytes -> synced book -> best + top-{TOP}, per message")
    print(f"    all {len(after)} post-snapshot diffs:")
    print_table(fast, "us/message")
    print(f"    first {len(head)} diffs (python-binance is too slow for all):")
    print_table(peer, "us/message")
    return fast | peer


def synthetic_workload(messages: int = 1000) -> tuple[bytes, list[bytes]]:
    """A 5000 x 2 level BTCUSDT-like book and diffs shaped as in perf-anchors: ticks of 0.01,
    level occupancy 0.85/(1+d/300)^0.6 at d ticks from the touch, 20-60 changes per message,
    85 % of them Exp(15 ticks) behind the touch, 15 % anywhere; static mid (never crossed)."""
    rng = random.Random(42)
    sides: list[dict[int, str]] = []
    for _ in range(2):
        levels: dict[int, str] = {}
        tick = 0
        while len(levels) < 5000:
            if rng.random() < 0.85 / (1 + tick / 300) ** 0.6:
                levels[tick] = f"{round(rng.lognormvariate(-3.5, 1.5), 5):.8f}"
            tick += 1
        sides.append(levels)
    span = max(*sides[0], *sides[1])

    def price(side: int, tick: int) -> str:
        return f"{60000.00 - tick * 0.01:.8f}" if side == 0 else f"{60000.01 + tick * 0.01:.8f}"

    body = {
        "lastUpdateId": 1000,
        "bids": [[price(0, t), q] for t, q in sorted(sides[0].items())],
        "asks": [[price(1, t), q] for t, q in sorted(sides[1].items())],
    }
    frames = []
    last = 1000
    for _ in range(messages):
        changes: list[dict[int, str]] = [{}, {}]
        for _ in range(rng.randint(20, 60)):
            side = rng.randrange(2)
            near = rng.random() < 0.85
            tick = int(rng.expovariate(1 / 15)) if near else rng.randrange(span)
            if tick in sides[side] and rng.random() < 0.25:
                qty = "0.00000000"
                del sides[side][tick]
            else:
                qty = f"{round(rng.lognormvariate(-3.5, 1.5), 5) + 0.00001:.8f}"
                sides[side][tick] = qty
            changes[side][tick] = qty
        first, last = last + 1, last + rng.randint(1, 30)
        data = {
            "e": "depthUpdate",
            "E": last,
            "s": "BTCUSDT",
            "U": first,
            "u": last,
            "b": [[price(0, t), q] for t, q in changes[0].items()],
            "a": [[price(1, t), q] for t, q in changes[1].items()],
        }
        frames.append(orjson.dumps({"stream": "btcusdt@depth@100ms", "data": data}))
    return orjson.dumps(body), frames


def check_same_book(before, snapshot, messages) -> None:
    """The three pipelines end with the same top-20 (a benchmark of wrong code is void)."""
    ours = tapescope_setup(before, snapshot, messages)()
    ours()
    theirs = python_binance_setup(before, snapshot, messages)()
    theirs()
    book: OrderBook = ours.book  # type: ignore[attr-defined]
    cache: DepthCache = theirs.cache  # type: ignore[attr-defined]
    assert [list(x) for x in book.top_bids(TOP)] == cache.get_bids()[:TOP]
    assert [list(x) for x in book.top_asks(TOP)] == cache.get_asks()[:TOP]


def bench_trades(trades: list[bytes]) -> dict[str, float]:
    def ingest() -> Callable[[], None]:
        log = TradeLog("BTCUSDT", capacity=10_000)
        add = log.add

        def block() -> None:
            for raw in trades:
                event = decode_frame(raw).event
                add(event.t, event.T, event.p, event.q, event.m)

        return block

    def decode_only() -> Callable[[], None]:
        def block() -> None:
            for raw in trades:
                decode_frame(raw)

        return block

    result = median_interleaved(
        {
            "decode_frame + TradeLog.add (10k ring, evicting)": ingest,
            "decode_frame only (floor)": decode_only,
        },
        repeats=11,
        per_block=len(trades),
    )
    print(f"\n(c) trade ingest ({len(trades)} real trade frames)")
    print_table(result, "us/trade")
    return result


def bench_memory() -> dict[str, float]:
    _, book_bytes = loaded_book_bytes(deep_snapshot_body(5000))
    capacity = 100_000
    tracemalloc.start()
    log = TradeLog("BTCUSDT", capacity=capacity)
    log_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    result = {
        "book_5000x2_mib": book_bytes / 2**20,
        "trade_window_bytes_per_trade": log.nbytes / capacity,
        "trade_window_tracemalloc_bytes_per_trade": log_bytes / capacity,
    }
    print("\n(d) memory")
    book_mib = result["book_5000x2_mib"]
    print(f"    5000x2 book (tracemalloc, decoded from a REST body): {book_mib:.3f} MiB")
    column_bytes = result["trade_window_bytes_per_trade"]
    traced_bytes = result["trade_window_tracemalloc_bytes_per_trade"]
    print(
        f"    trade window, {capacity:,} rows: {column_bytes:.1f} B/trade in columns, "
        f"{traced_bytes:.2f} B/trade traced"
    )
    return result


def print_table(result: dict[str, float], unit: str) -> None:
    best = min(result.values())
    width = max(len(name) for name in result)
    print(f"    {'variant':<{width}}  {unit:>12}  {'x best':>8}")
    for name, value in result.items():
        print(f"    {name:<{width}}  {value:>12.2f}  {value / best:>7.2f}x")


def main() -> None:
    started = time.perf_counter()
    before, snapshot, after, trades = load_messages()
    decode = bench_decode(after)
    pipeline = bench_pipeline(
        before, snapshot, after, "real file 1 (book ~2-3k levels/side)", peer_messages=400
    )
    synthetic_snapshot, synthetic = synthetic_workload()
    deep = bench_pipeline(
        [], synthetic_snapshot, synthetic, "synthetic 5000 x 2 level book", peer_messages=150
    )
    trade = bench_trades(trades)
    memory = bench_memory()
    ours_name = "Tapescope: decode_frame + BookSync + top-20"
    ref_name = "reference: msgspec + dict/bisect + top-20"
    head_name = "Tapescope (same messages as python-binance)"
    peer_name = "python-binance DepthCache (orjson + sort on read)"
    ours, reference = pipeline[ours_name], pipeline[ref_name]
    ours_head, peer = pipeline[head_name], pipeline[peer_name]
    figures = {
        "depth_decode_us": round(decode["decode_frame (Tapescope)"], 2),
        "depth_decode_reference_us": round(decode["msgspec one pass (reference)"], 2),
        "book_pipeline_us_per_msg": round(ours, 2),
        "reference_pipeline_us_per_msg": round(reference, 2),
        "ratio_vs_fastest": round(ours / min(ours, reference), 3),
        "book_pipeline_head_us_per_msg": round(ours_head, 2),
        "python_binance_us_per_msg": round(peer, 1),
        "ratio_vs_python_binance": round(peer / ours_head, 1),
        "book_pipeline_5000x2_us_per_msg": round(deep[ours_name], 2),
        "reference_pipeline_5000x2_us_per_msg": round(deep[ref_name], 2),
        "ratio_vs_fastest_5000x2": round(deep[ours_name] / min(deep[ours_name], deep[ref_name]), 3),
        "python_binance_5000x2_us_per_msg": round(deep[peer_name], 1),
        "ratio_vs_python_binance_5000x2": round(deep[peer_name] / deep[head_name], 1),
        "trade_ingest_us": round(trade["decode_frame + TradeLog.add (10k ring, evicting)"], 3),
        "trade_decode_us": round(trade["decode_frame only (floor)"], 3),
        "book_5000x2_mib": round(memory["book_5000x2_mib"], 3),
        "trade_window_bytes_per_trade": round(memory["trade_window_bytes_per_trade"], 2),
        "trade_window_tracemalloc_bytes_per_trade": round(
            memory["trade_window_tracemalloc_bytes_per_trade"], 3
        ),
        "run_s": round(time.perf_counter() - started, 1),
    }
    print(
        f"\nvs python-binance: {figures['ratio_vs_python_binance']}x faster on file 1, "
        f"{figures['ratio_vs_python_binance_5000x2']}x on the 5000x2 book; vs the fastest "
        f"pipeline: {figures['ratio_vs_fastest']}x / {figures['ratio_vs_fastest_5000x2']}x; "
        f"run {figures['run_s']} s"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
