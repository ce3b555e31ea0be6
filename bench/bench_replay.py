"""Replay throughput: recording 1 (650 s of real spot BTCUSDT: depth@100ms, trades,
bookTicker) through the local exchange → WebSocket → client → synced book and trade log,
at speed ``max``, in one process. Reported as multiples of real time; the final book must
equal manifest.json's.

Run: ``.venv/bin/python bench/bench_replay.py [--runs N]``. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time

from services.binance.backoff import Backoff
from services.binance.endpoints import custom
from services.market.feed import Feed, FeedConfig
from services.market.views import SyncState
from services.replay.exchange import LocalExchange
from services.replay.recording import BUNDLED_DIR, SPOT_2024
from services.store import MemoryStore

RECORDING = SPOT_2024


def manifest_final() -> tuple[int, float, list[list[float]], list[list[float]]]:
    data = json.loads((BUNDLED_DIR / "manifest.json").read_text())
    entry = next(f for f in data["files"] if f["file"] == RECORDING.name)
    symbol = entry["symbols"]["BTCUSDT"]
    final = symbol["reconstruction"][-1]
    bids = [[float(p), float(q)] for p, q in final["final_top5_bids"]]
    asks = [[float(p), float(q)] for p, q in final["final_top5_asks"]]
    return symbol["diff_chain"]["last"]["u"], entry["span_s"], bids, asks


async def one_run(last_u: int) -> tuple[float, MemoryStore]:
    store = MemoryStore()
    async with LocalExchange(RECORDING, speed="max") as exchange:
        config = FeedConfig(
            endpoints=custom(exchange.ws_url, exchange.rest_url),
            publish_interval_s=0.25,
            backoff=Backoff(initial=0.05, cap=0.5, floor=0.02),
        )
        started = time.perf_counter()
        task = asyncio.create_task(Feed(config, store).run())
        try:
            while True:
                snap = store.snapshot("BTCUSDT")
                if (
                    snap is not None
                    and snap.book.sync_state is SyncState.LIVE
                    and snap.book.last_update_id >= last_u
                ):
                    break
                await asyncio.sleep(0.02)
            elapsed = time.perf_counter() - started
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return elapsed, store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    last_u, span_s, bids, asks = manifest_final()
    times = []
    exact = True
    for _ in range(args.runs):
        elapsed, store = asyncio.run(one_run(last_u))
        times.append(elapsed)
        book = store.snapshot("BTCUSDT").book
        got_bids = [
            [float(p), float(q)]
            for p, q in zip(book.bid_prices[:5], book.bid_qtys[:5], strict=True)
        ]
        got_asks = [
            [float(p), float(q)]
            for p, q in zip(book.ask_prices[:5], book.ask_qtys[:5], strict=True)
        ]
        exact = exact and got_bids == bids and got_asks == asks and book.last_update_id == last_u
    median = statistics.median(times)
    print(f"recording: {RECORDING.name} ({span_s:.1f} s of real time, 99,574 frames)")
    print(f"{'run':>4} {'seconds':>9} {'x real time':>12}")
    for i, t in enumerate(times, 1):
        print(f"{i:>4} {t:>9.2f} {span_s / t:>12.1f}")
    print(
        f"median {median:.2f} s = {span_s / median:.1f}x real time (goal >= 100x); "
        f"final book equals manifest: {exact}"
    )
    print(
        json.dumps(
            {
                "replay_seconds_median": round(median, 3),
                "replay_x_real_time": round(span_s / median, 1),
                "replay_frames_per_s": round(99_574 / median),
                "final_book_exact": exact,
            }
        )
    )


if __name__ == "__main__":
    main()
