"""Encoding store records: orjson, msgspec (JSON and MessagePack) and raw numpy bytes.

Workloads: a published book (5000 levels a side), a full 100k-trade window, and the
increment one publication adds (~60 trades at 250 ms). For each codec: bytes, encode and
decode time (decode ends with numpy columns, as the readers need them). Variants are timed
interleaved, median of repeated blocks. Prints a table and ends with one JSON line.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services import store_codec as codec
from services.market.views import BookView, SymbolInfo, SyncState, TradeView
from services.store import SymbolSnapshot

BLOCKS = 9
LEVELS = 5000
WINDOW = 100_000
INCREMENT = 60


def make_book() -> BookView:
    rng = np.random.default_rng(7)
    ticks = np.cumsum(rng.integers(1, 4, LEVELS))
    qty = np.round(rng.lognormal(np.log(0.03), 1.5, (2, LEVELS)), 5)
    return BookView(
        "BTCUSDT",
        np.round(60000.0 - ticks * 0.01, 2),
        qty[0],
        np.round(60000.01 + ticks * 0.01, 2),
        qty[1],
        last_update_id=9_876_543_210,
        sync_state=SyncState.LIVE,
        event_time_ms=1_700_000_000_000,
    )


def make_trades(n: int) -> TradeView:
    rng = np.random.default_rng(n)
    ids = np.arange(1_000_000, 1_000_000 + n, dtype=np.int64)
    return TradeView(
        "BTCUSDT",
        ids,
        1_700_000_000_000 + np.cumsum(rng.integers(0, 60, n)).astype(np.int64),
        np.round(60000 + np.cumsum(rng.integers(-3, 4, n)) * 0.01, 2),
        np.round(rng.lognormal(np.log(0.002), 1.6, n), 5),
        rng.choice([-1.0, 1.0], n),
    )


BOOK_COLS = ("bid_prices", "bid_qtys", "ask_prices", "ask_qtys")
TRADE_COLS = ("trade_id", "time_ms", "price", "qty", "side")


def columns(obj: object, names: tuple[str, ...]) -> dict[str, list[float]]:
    return {name: getattr(obj, name).tolist() for name in names}


def arrays(data: dict[str, list[float]], names: tuple[str, ...]) -> list[np.ndarray]:
    return [np.asarray(data[name]) for name in names]


def variants(kind: str, value: object) -> dict[str, tuple[Callable[[], bytes], Callable]]:
    names = BOOK_COLS if kind == "book" else TRADE_COLS
    mp_enc, mp_dec = msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder()
    js_enc, js_dec = msgspec.json.Encoder(), msgspec.json.Decoder()
    if kind == "book":
        snap = SymbolSnapshot("BTCUSDT", 1, value, TradeView("BTCUSDT"), SymbolInfo("BTCUSDT"))  # type: ignore[arg-type]
        pointer = codec.TradePointer("gen", 1, 0)

        def raw_enc() -> bytes:
            return codec.encode_record(snap, pointer, "writer")

        def raw_dec(data: bytes) -> object:
            return codec.decode_record(data)
    else:

        def raw_enc() -> bytes:
            return codec.encode_trades(value, 0, len(value))  # type: ignore[arg-type]

        raw_dec = codec.decode_trades
    return {
        "orjson lists": (
            lambda: orjson.dumps(columns(value, names)),
            lambda data: arrays(orjson.loads(data), names),
        ),
        "orjson numpy": (
            lambda: orjson.dumps(
                {n: getattr(value, n) for n in names}, option=orjson.OPT_SERIALIZE_NUMPY
            ),
            lambda data: arrays(orjson.loads(data), names),
        ),
        "msgspec json": (
            lambda: js_enc.encode(columns(value, names)),
            lambda data: arrays(js_dec.decode(data), names),
        ),
        "msgspec msgpack": (
            lambda: mp_enc.encode(columns(value, names)),
            lambda data: arrays(mp_dec.decode(data), names),
        ),
        "raw numpy (chosen)": (raw_enc, raw_dec),
    }


def timed(fn: Callable[[], object], loops: int) -> float:
    start = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - start) / loops


def run(kind: str, value: object, loops: int) -> list[dict[str, object]]:
    cases = variants(kind, value)
    encoded = {name: enc() for name, (enc, _) in cases.items()}
    enc_t: dict[str, list[float]] = {name: [] for name in cases}
    dec_t: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(BLOCKS):
        for name, (enc, dec) in cases.items():
            enc_t[name].append(timed(enc, loops))
            dec_t[name].append(timed(lambda d=dec, b=encoded[name]: d(b), loops))
    return [
        {
            "workload": kind,
            "codec": name,
            "bytes": len(encoded[name]),
            "encode_us": statistics.median(enc_t[name]) * 1e6,
            "decode_us": statistics.median(dec_t[name]) * 1e6,
        }
        for name in cases
    ]


def main() -> int:
    rows = []
    rows += run("book", make_book(), 20)
    rows += run("window", make_trades(WINDOW), 1)
    rows += run("increment", make_trades(INCREMENT), 200)
    best: dict[str, float] = {}
    for row in rows:
        total = row["encode_us"] + row["decode_us"]  # type: ignore[operator]
        best[row["workload"]] = min(best.get(row["workload"], total), total)  # type: ignore[index,arg-type]
    print(
        f"{'workload':<10} {'codec':<20} {'bytes':>10} {'enc µs':>10} {'dec µs':>10} {'x best':>7}"
    )
    for row in rows:
        total = row["encode_us"] + row["decode_us"]  # type: ignore[operator]
        ratio = total / best[row["workload"]]  # type: ignore[index]
        print(
            f"{row['workload']:<10} {row['codec']:<20} {row['bytes']:>10,} "
            f"{row['encode_us']:>10.1f} {row['decode_us']:>10.1f} {ratio:>7.2f}"
        )
    by = {(r["workload"], r["codec"]): r for r in rows}
    raw = "raw numpy (chosen)"
    window_bytes = by[("window", raw)]["bytes"]
    increment_bytes = by[("increment", raw)]["bytes"]
    print(
        f"\nper 250 ms publication: full window {window_bytes:,} B vs increment "
        f"{increment_bytes:,} B ({window_bytes / increment_bytes:,.0f}x less with increments)"
    )
    summary = {
        "bench": "store_codec",
        "chosen": "raw numpy columns + msgspec header",
        "book_bytes": by[("book", raw)]["bytes"],
        "book_encode_us": round(by[("book", raw)]["encode_us"], 1),
        "book_decode_us": round(by[("book", raw)]["decode_us"], 1),
        "book_orjson_lists_us": round(
            by[("book", "orjson lists")]["encode_us"] + by[("book", "orjson lists")]["decode_us"],
            1,
        ),
        "window_bytes": window_bytes,
        "window_decode_us": round(by[("window", raw)]["decode_us"], 1),
        "increment_bytes": increment_bytes,
        "increment_encode_us": round(by[("increment", raw)]["encode_us"], 2),
        "increment_decode_us": round(by[("increment", raw)]["decode_us"], 2),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
