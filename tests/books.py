"""A deep synthetic book as the feed would load it, and its measured size."""

from __future__ import annotations

import gc
import json
import random
import tracemalloc

from services.binance.messages import decode_depth_snapshot
from services.market.order_book import OrderBook


def deep_snapshot_body(levels: int = 5000, seed: int = 7) -> bytes:
    """A REST depth snapshot with ``levels`` one-tick levels a side around 60,000 and
    log-normal sizes, as Binance's JSON."""
    rng = random.Random(seed)
    bids = [
        [f"{60000 - i * 0.01:.8f}", f"{rng.lognormvariate(-3.5, 1.5):.8f}"] for i in range(levels)
    ]
    asks = [
        [f"{60000.01 + i * 0.01:.8f}", f"{rng.lognormvariate(-3.5, 1.5):.8f}"]
        for i in range(levels)
    ]
    return json.dumps({"lastUpdateId": 1, "bids": bids, "asks": asks}).encode()


def loaded_book_bytes(body: bytes) -> tuple[OrderBook, int]:
    """The book loaded from a snapshot body, and the bytes it holds once the decoded
    snapshot and the body's parse are gone (tracemalloc). Only blocks allocated under this
    call count: threads other tests left running allocate meanwhile and are not the book."""
    gc.collect()
    tracemalloc.start(8)
    book = OrderBook()
    snapshot = decode_depth_snapshot(body)
    book.load_snapshot(snapshot.bids, snapshot.asks)
    del snapshot
    gc.collect()
    held = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(True, __file__, all_frames=True)]
    )
    tracemalloc.stop()
    return book, sum(trace.size for trace in held.traces)
