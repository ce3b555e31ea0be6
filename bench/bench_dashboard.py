"""Server cost of one dashboard refresh, measured on the callbacks' own functions.

Workload: a live-sized book (5000 levels per side, BTCUSDT-like, tick 0.01) and a window of
100,000 trades over 15 minutes. Each iteration publishes the same data under a new ``seq``
(so every derived result is recomputed, nothing is served from the cache) and runs every
panel's render function once, as the browser's intervals would: depth, tape, flow and
status (fast, 500 ms) plus profile and liquidity (slow, 2 s).

Two refresh kinds are measured: the first paint (full figures) and the steady state (the
depth and flow graphs sent as ``Patch``). Bytes are the outputs JSON-encoded the way Dash
encodes callback responses (``plotly.io.json.to_json_plotly``). For comparison, the same
figures built as ``go.Figure`` and serialised with ``fig.to_json()``. The last line is JSON.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.io.json import to_json_plotly

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.callbacks.depth import render_depth
from app.callbacks.derived import DerivedCache
from app.callbacks.flow import render_flow
from app.callbacks.liquidity import render_liquidity
from app.callbacks.profile import render_profile
from app.callbacks.status import render_status
from app.callbacks.tape import render_tape
from services.market.views import BookView, SymbolInfo, SyncState, TradeView
from services.store import FeedStatus, MemoryStore, SymbolSnapshot

LEVELS = 5000
TRADES = 100_000
REPEATS = 60
SYMBOL = "BTCUSDT"


def build_snapshot(rng: np.random.Generator) -> SymbolSnapshot:
    """A 5000 × 2 level book and 100k trades (15 minutes) around 60,000."""
    tick = 0.01
    gaps_bid = rng.integers(1, 40, LEVELS)
    gaps_ask = rng.integers(1, 40, LEVELS)
    bid_prices = np.round(60_000.0 - tick * np.cumsum(gaps_bid), 2)
    ask_prices = np.round(60_000.01 + tick * (np.cumsum(gaps_ask) - gaps_ask[0]), 2)
    book = BookView(
        symbol=SYMBOL,
        bid_prices=bid_prices,
        bid_qtys=np.round(rng.exponential(0.5, LEVELS), 5),
        ask_prices=ask_prices,
        ask_qtys=np.round(rng.exponential(0.5, LEVELS), 5),
        last_update_id=1,
        sync_state=SyncState.LIVE,
        event_time_ms=1_700_000_900_000,
    )
    start = 1_700_000_000_000
    time_ms = np.sort(rng.integers(start, start + 900_000, TRADES))
    walk = np.cumsum(rng.normal(0, 0.5, TRADES))
    trades = TradeView(
        symbol=SYMBOL,
        trade_id=np.arange(TRADES, dtype=np.int64),
        time_ms=time_ms,
        price=np.round(60_000.0 + walk, 2),
        qty=np.round(rng.exponential(0.05, TRADES), 5),
        side=np.where(rng.random(TRADES) < 0.5, 1.0, -1.0),
    )
    info = SymbolInfo(SYMBOL, "TRADING", "BTC", "USDT", tick, 1e-5, 2, 5)
    return SymbolSnapshot(SYMBOL, 1, book, trades, info, published_at=time.time())


def refresh(store, cache, previous: dict | None) -> tuple[list, dict]:
    """One refresh of every panel; ``previous`` holds each panel's last render key."""
    previous = previous or {}
    depth, depth_key = render_depth(store, cache, SYMBOL, 0.5, previous.get("depth"))
    tape, tape_key = render_tape(store, cache, SYMBOL, "100k, 250k, 1M", previous.get("tape"))
    flow, flow_key = render_flow(store, cache, SYMBOL, "5m", previous.get("flow"))
    status, message = render_status(store, SYMBOL, f"/{SYMBOL}", time.time())
    profile, profile_key = render_profile(store, cache, SYMBOL, "auto", previous.get("profile"))
    liquidity, liq_key = render_liquidity(store, cache, SYMBOL, previous.get("liquidity"))
    outputs = [depth, tape, flow, status, message, profile, liquidity]
    keys = {
        "depth": depth_key,
        "tape": tape_key,
        "flow": flow_key,
        "profile": profile_key,
        "liquidity": liq_key,
    }
    return outputs, keys


def encoded_bytes(outputs: list) -> int:
    return len(to_json_plotly(outputs).encode())


def measure(store, snapshot, steady: bool) -> tuple[list[float], list[float], int]:
    """Server ms (refresh only, refresh + JSON) per iteration, and the bytes of the last."""
    cache = DerivedCache()
    seq = snapshot.seq
    _, keys = refresh(store, cache, None)
    times, with_json, size = [], [], 0
    for _ in range(REPEATS):
        seq += 1
        store.publish(dataclasses.replace(snapshot, seq=seq, published_at=time.time()))
        start = time.perf_counter()
        outputs, new_keys = refresh(store, cache, keys if steady else None)
        middle = time.perf_counter()
        size = encoded_bytes(outputs)
        end = time.perf_counter()
        keys = new_keys
        times.append((middle - start) * 1e3)
        with_json.append((end - start) * 1e3)
    return times, with_json, size


def go_figure_ms(figures: list[dict]) -> tuple[float, int]:
    """Median ms to build and serialise the same figures as ``go.Figure``, and their bytes."""
    samples, size = [], 0
    for _ in range(10):
        start = time.perf_counter()
        size = sum(len(go.Figure(figure).to_json()) for figure in figures)
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples), size


def main() -> int:
    rng = np.random.default_rng(7)
    snapshot = build_snapshot(rng)
    store = MemoryStore()
    store.publish_symbols([snapshot.info])
    store.publish_status(
        FeedStatus(
            source="LIVE", connection_state="CONNECTED", messages_per_s=40.0, event_lag_ms=50.0
        )
    )
    store.publish(snapshot)
    refresh(store, DerivedCache(), None)  # warm imports and lazy state

    full_ms, full_json_ms, full_bytes = measure(store, snapshot, steady=False)
    steady_ms, steady_json_ms, steady_bytes = measure(store, snapshot, steady=True)
    outputs, _ = refresh(store, DerivedCache(), None)
    figures = [o for o in outputs if isinstance(o, dict) and "data" in o]
    dict_samples = []
    for _ in range(10):
        start = time.perf_counter()
        for figure in figures:
            to_json_plotly(figure)
        dict_samples.append((time.perf_counter() - start) * 1e3)
    dict_json_ms = statistics.median(dict_samples)
    dict_bytes = sum(len(to_json_plotly(f)) for f in figures)
    go_ms, go_bytes = go_figure_ms(figures)

    rows = [
        ("first paint: all panels, server ms (median)", statistics.median(full_ms)),
        ("first paint: + JSON encoding, ms (median)", statistics.median(full_json_ms)),
        ("first paint: bytes sent", full_bytes),
        ("steady (Patch): all panels, server ms (median)", statistics.median(steady_ms)),
        ("steady (Patch): + JSON encoding, ms (median)", statistics.median(steady_json_ms)),
        ("steady (Patch): bytes sent", steady_bytes),
        ("3 figures as dicts: JSON encode ms", dict_json_ms),
        ("3 figures as go.Figure: build + to_json ms", go_ms),
        ("3 figures as dicts: bytes", dict_bytes),
        ("3 figures as go.Figure: bytes", go_bytes),
    ]
    print(f"dashboard refresh: book {LEVELS}x2 levels, {TRADES:,} trades, {REPEATS} refreshes")
    for name, value in rows:
        print(
            f"  {name:<50} {value:>12,.3f}"
            if isinstance(value, float)
            else f"  {name:<50} {value:>12,}"
        )
    result = {
        "refresh_full_ms_median": round(statistics.median(full_ms), 3),
        "refresh_full_with_json_ms_median": round(statistics.median(full_json_ms), 3),
        "refresh_full_bytes": full_bytes,
        "refresh_steady_ms_median": round(statistics.median(steady_ms), 3),
        "refresh_steady_with_json_ms_median": round(statistics.median(steady_json_ms), 3),
        "refresh_steady_bytes": steady_bytes,
        "figures_dict_json_ms": round(dict_json_ms, 3),
        "figures_go_figure_ms": round(go_ms, 3),
        "figures_dict_bytes": dict_bytes,
        "figures_go_figure_bytes": go_bytes,
        "goal_refresh_ms": 5.0,
        "goal_bytes": 60_000,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
