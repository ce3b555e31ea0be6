"""What one symbol publication costs the ingest worker, on recorded data and a real Redis.

N symbols (``--symbols``, default 1,000) each replay one of the three symbols of the real
2021 spot recording (relabelled as ``bench_capacity``'s quiet mix is: ``BTC2USDT``, …),
applied to a ``Feed`` frame by frame in recorded time (the recorded 100 ms diffs on the
stream each book follows); every 0.25 s of recorded time the
feed runs one publication round (``Feed.publish``: the due scan, snapshots, records, the
Redis writes, board and status) into a real redis-server, with the worker's defaults
(1,000 publications a second at most).

Books: the recorded 1,000-level snapshots (``full``: a worker's steady state once its
books are deepened) and the same cut to their best 100 levels (``light``: the first sync
of a cold start, which is what most books of ``bench_capacity``'s 20 s window hold).

Figures over ``--rounds`` rounds after a warm-up in which every book turned LIVE, each
variant run ``--repeats`` times interleaved with the other, medians over all its rounds:
us_per_publication (a round's publisher thread CPU per symbol written: due scan,
snapshots, records, Redis writes, board, status — what ``bench_capacity`` reports live),
store_us_per_publication (``RedisStore.publish_many`` alone), publications_per_round and
round_cpu_ms. (The board is published once a wall-clock second, and rounds run faster
than recorded time here, so its share is smaller than in a live worker.)

Variants, same data, same process, one after the other: "before" — a book's arrays
rebuilt from its deepest changed level (``order_book.PATCH_FROM`` out of reach) and one
script call per symbol (``PerSymbolCalls``), as the publisher was before; "now".

Run: ``.venv/bin/python bench/bench_publish.py [--symbols 1000] [--rounds 40]``.
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import redis

from services import collector
from services.binance.endpoints import custom
from services.binance.messages import DepthUpdate, decode_depth_snapshot, decode_frame
from services.binance.ws_client import Received
from services.market import order_book
from services.market.feed import Feed, FeedConfig
from services.market.views import SymbolInfo, SyncState
from services.redis_store import RedisStore
from services.replay.recording import SPOT_2021, read_recording
from services.replay.relabel import relabelled_symbols
from tests.redis_server import RedisServer

ROUND_S = 0.25
LIGHT_LEVELS = 100
WARM_ROUNDS = 40


class PerSymbolCalls(RedisStore):
    """The store writing one script call per symbol, as before a shard's symbols were
    written by one call."""

    def _shard_calls(self, writes):  # type: ignore[no-untyped-def]
        shard_calls = super()._shard_calls
        return [call for w in writes for call in shard_calls([w])]


def recorded(count: int) -> tuple[list[str], list[tuple[float, str, object]]]:
    """The relabelled symbols and the recording's messages in order: (time s, "ws",
    frame) and (time s, "rest", (symbol, snapshot)), of the original symbols."""
    messages: list[tuple[float, str, object]] = []
    for message in read_recording(SPOT_2021):
        at = message.ts_ns / 1e9
        if message.src == "ws":
            messages.append((at, "ws", decode_frame(message.raw)))
        elif "/depth" in message.url:
            symbol, _ = message.rest_target()
            messages.append((at, "rest", (symbol, decode_depth_snapshot(message.raw))))
    names = relabelled_symbols(["BTCUSDT", "DOTUSDT", "ETHUSDT"], count)
    return sorted(names), messages


def copies_of(symbols: list[str]) -> dict[str, list[str]]:
    """Original symbol → the relabelled symbols replaying it."""
    out: dict[str, list[str]] = {}
    names = relabelled_symbols(["BTCUSDT", "DOTUSDT", "ETHUSDT"], len(symbols))
    for new, original in names.items():
        out.setdefault(original, []).append(new)
    return out


def rounds_of(
    feed: Feed,
    messages: list[tuple[float, str, object]],
    copies: dict[str, list[str]],
    levels: int | None = None,
) -> Iterator[None]:
    """Apply the recording to every copy (snapshots cut to ``levels`` a side when given),
    yielding at each round boundary of recorded time."""
    next_round = messages[0][0] + ROUND_S
    for at, kind, item in messages:
        while at >= next_round:
            yield
            next_round += ROUND_S
        if kind == "rest":
            symbol, snapshot = item  # type: ignore[misc]
            if levels is not None:
                cut = (snapshot.bids[:levels], snapshot.asks[:levels])
                snapshot = msgspec.structs.replace(snapshot, bids=cut[0], asks=cut[1])
            for copy in copies.get(symbol, ()):
                feed._symbols[copy].book.on_snapshot(snapshot, levels)
            continue
        frame = item
        event = frame.event  # type: ignore[attr-defined]
        symbol = getattr(event, "s", None)
        if symbol not in copies:
            continue
        for copy in copies[symbol]:
            stream = frame.stream  # type: ignore[attr-defined]
            depth = getattr(feed._symbols[copy], "depth", None)
            if depth is not None and isinstance(event, DepthUpdate):
                stream = depth.stream  # the book's stream (1 s for an unwatched symbol)
            renamed = msgspec.structs.replace(
                frame, stream=stream, event=msgspec.structs.replace(event, s=copy)
            )
            feed._on_frame(Received(renamed, at, 1))  # type: ignore[arg-type]


def measure(
    url: str,
    symbols: list[str],
    messages: list,
    rounds: int,
    levels: int | None,
    before: bool,
) -> dict:
    """Run the rounds on a fresh feed and store (see the module docstring)."""
    redis.Redis.from_url(url).flushdb()
    store = (PerSymbolCalls if before else RedisStore)(url)
    endpoints = custom("ws://127.0.0.1:9", "http://127.0.0.1:9")
    feed = Feed(FeedConfig(endpoints=endpoints, symbols=tuple(symbols)), store)
    feed._infos = {s: SymbolInfo(s) for s in symbols}
    for symbol in symbols:
        feed._add_symbol(symbol, on_demand=False)
    store_cpu = [0.0, 0]  # CPU s in the store's write path, symbols handed to it
    publish_many = store.publish_many

    def timed_many(snapshots: Any) -> None:
        started = time.thread_time()
        publish_many(snapshots)
        store_cpu[0] += time.thread_time() - started
        store_cpu[1] += len(snapshots)

    store.publish_many = timed_many  # type: ignore[method-assign]
    cpu, counts, pub_us, store_us = [], [], [], []
    warm = 0
    patch_from = getattr(order_book, "PATCH_FROM", 0)  # (runs on an older tree too)
    order_book.PATCH_FROM = 10**9 if before else patch_from
    try:
        for _ in rounds_of(feed, messages, copies_of(symbols), levels):
            store_cpu[0], store_cpu[1] = 0.0, 0
            started = time.thread_time()
            feed.publish()
            took = time.thread_time() - started
            written = store_cpu[1]
            if warm < WARM_ROUNDS or any(
                f.book.state is not SyncState.LIVE for f in feed._symbols.values()
            ):
                warm += 1
                continue
            cpu.append(took)
            counts.append(written)
            if written:
                pub_us.append(took / written * 1e6)
                store_us.append(store_cpu[0] / written * 1e6)
            if len(cpu) >= rounds:
                break
    finally:
        order_book.PATCH_FROM = patch_from
        store.close()
    return {"cpu": cpu, "counts": counts, "pub_us": pub_us, "store_us": store_us}


def summary(runs: list[dict]) -> dict:
    """Medians over every round of ``runs`` (see the module docstring)."""
    rounds = {k: [x for run in runs for x in run[k]] for k in runs[0]}
    return {
        "rounds": len(rounds["cpu"]),
        "publications_per_round": round(statistics.median(rounds["counts"])),
        "round_cpu_ms": round(statistics.median(rounds["cpu"]) * 1000, 1),
        "us_per_publication": round(statistics.median(rounds["pub_us"])),
        "store_us_per_publication": round(statistics.median(rounds["store_us"])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    collector.tune_for_ingest()  # as the worker runs
    symbols, messages = recorded(args.symbols)
    runs: dict[str, list[dict]] = {}
    with RedisServer() as server:
        for books, levels in (("full", None), ("light", LIGHT_LEVELS)):
            for _ in range(args.repeats):
                for variant in ("before", "now"):
                    runs.setdefault(f"{books}_{variant}", []).append(
                        measure(
                            server.url, symbols, messages, args.rounds, levels, variant == "before"
                        )
                    )
    results = {name: summary(measured) for name, measured in runs.items()}
    print(
        f"one worker's publication rounds, {args.symbols} relabelled recorded symbols "
        f"(2021 spot), real Redis, medians of {args.repeats} x {args.rounds} rounds"
    )
    print(
        f"{'books':<7} {'variant':<8} {'pub/round':>9} {'round CPU ms':>12} {'us/pub':>7} "
        f"{'store us/pub':>12}"
    )
    for name, r in results.items():
        books, variant = name.split("_")
        print(
            f"{books:<7} {variant:<8} {r['publications_per_round']:>9} {r['round_cpu_ms']:>12} "
            f"{r['us_per_publication']!s:>7} {r['store_us_per_publication']!s:>12}"
        )
    figures = {f"{name}_{k}": v for name, r in results.items() for k, v in r.items()}
    for books in ("full", "light"):
        before, now = results[f"{books}_before"], results[f"{books}_now"]
        if before["us_per_publication"] and now["us_per_publication"]:
            ratio = before["us_per_publication"] / now["us_per_publication"]
            figures[f"{books}_us_per_publication_ratio"] = round(ratio, 2)
            print(f"{books} books: {ratio:.2f}x less CPU per publication now")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
