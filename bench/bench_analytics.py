"""Benchmark: the order-flow analytics over a 100k-trade window and a 5000 × 2 book.

The workload is seeded and built from the bundled real recording (spot BTCUSDT 2024):
its 19,904 trades are tiled to 100,000 (each tile shifted in time and by a whole number of
ticks, sizes jittered), and its REST snapshot's level gaps and sizes are resampled out to
5000 levels a side. The same definitions are also written here in pure Python and in
polars; every implementation is checked against services/analytics before timing.

Times are medians of single calls over interleaved blocks (each block runs every variant
in turn). Prints a table and ends with one JSON line of the figures. The workload is
frozen out of the cyclic GC before timing (the pure-Python variants keep 100k tuples
alive).
"""

from __future__ import annotations

import gc
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.analytics.book import (
    book_summary,
    depth_curve,
    depth_distribution,
    depth_within,
    imbalance,
)
from services.analytics.flow import cvd, trade_flow
from services.analytics.impact import price_impact
from services.analytics.large_trades import large_trades
from services.analytics.liquidity import liquidity_score
from services.analytics.profile import volume_profile
from services.analytics.trades import time_and_sales, trade_stats
from services.binance.messages import Trade, decode_depth_snapshot, decode_frame
from services.market.views import BookView, SyncState, TradeView
from services.replay.recording import SPOT_2024, read_recording

N_TRADES = 100_000
N_LEVELS = 5000
TICK = 0.01
SEED = 20240808
BLOCKS = 7
TIERS = (100_000.0, 250_000.0, 1_000_000.0)
IMPACT_SIZES = (0.1, 1.0, 10.0, 100.0)
BANDS = (10.0, 25.0, 50.0, 100.0)
FLOW_WINDOW_MS = 5 * 60_000


# --- workload ---------------------------------------------------------------------------


def load_recording() -> tuple[TradeView, BookView]:
    times, prices, qtys, sides = [], [], [], []
    snap = None
    for msg in read_recording(SPOT_2024):
        if msg.src == "rest" and snap is None:
            snap = decode_depth_snapshot(msg.raw)
        elif b'"e":"trade"' in msg.raw:
            ev = decode_frame(msg.raw).event
            if isinstance(ev, Trade):
                times.append(ev.T)
                prices.append(ev.p)
                qtys.append(ev.q)
                sides.append(-1.0 if ev.m else 1.0)
    assert snap is not None
    trades = TradeView(
        "BTCUSDT",
        np.arange(len(times), dtype=np.int64),
        np.array(times, dtype=np.int64),
        np.array(prices),
        np.array(qtys),
        np.array(sides),
        kind="trade",
    )
    book = BookView(
        "BTCUSDT",
        np.array([p for p, _ in snap.bids]),
        np.array([q for _, q in snap.bids]),
        np.array([p for p, _ in snap.asks]),
        np.array([q for _, q in snap.asks]),
        sync_state=SyncState.LIVE,
    )
    return trades, book


def tile_trades(real: TradeView, rng: np.random.Generator) -> TradeView:
    reps = math.ceil(N_TRADES / len(real))
    span = int(real.time_ms[-1] - real.time_ms[0]) + 1
    t = np.concatenate([real.time_ms + k * span for k in range(reps)])[:N_TRADES]
    shift = np.repeat(rng.integers(-2000, 2000, reps), len(real))[:N_TRADES] * TICK
    price = np.round(np.tile(real.price, reps)[:N_TRADES] + shift, 2)
    qty = np.round(np.tile(real.qty, reps)[:N_TRADES] * rng.lognormal(0, 0.3, N_TRADES), 5)
    qty = np.maximum(qty, 1e-5)
    side = np.tile(real.side, reps)[:N_TRADES].copy()
    return TradeView(
        "BTCUSDT", np.arange(N_TRADES, dtype=np.int64), t, price, qty, side, kind="trade"
    )


def deep_book(real: BookView, rng: np.random.Generator) -> BookView:
    def extend(prices: np.ndarray, qtys: np.ndarray, direction: float) -> tuple:
        gaps = np.abs(np.diff(prices))
        extra = N_LEVELS - prices.shape[0]
        more_gaps = np.cumsum(rng.choice(gaps, extra))
        more_p = np.round(prices[-1] + direction * more_gaps, 2)
        more_q = rng.choice(qtys, extra) * rng.lognormal(0, 0.2, extra)
        return np.concatenate([prices, more_p]), np.concatenate([qtys, more_q])

    bp, bq = extend(real.bid_prices, real.bid_qtys, -1.0)
    ap, aq = extend(real.ask_prices, real.ask_qtys, 1.0)
    return BookView("BTCUSDT", bp, bq, ap, aq, sync_state=SyncState.LIVE)


# --- the three implementations of the trade metrics ---------------------------------------


def numpy_trades(v: TradeView) -> tuple:
    stats = trade_stats(v)
    flow = trade_flow(v, window_ms=FLOW_WINDOW_MS)
    series = cvd(v, max_points=500)
    profile = volume_profile(v, tick_size=TICK, rows=50)
    large = large_trades(v, tiers_quote=TIERS, relative_k=10.0)
    tape = time_and_sales(v, 50)
    return stats.vwap, flow.delta, series.final, profile.point_of_control, len(large), tape


def python_trades(rows: list[tuple[int, int, float, float, float]]) -> tuple:
    vol = quote = signed = 0.0
    buys = 0
    hi, lo = -math.inf, math.inf
    for _, _, p, q, s in rows:
        vol += q
        quote += p * q
        signed += s * q
        buys += s > 0
        hi = max(hi, p)
        lo = min(lo, p)
    vwap = quote / vol
    now = rows[-1][1]
    delta = sum(s * q for _, t, _, q, s in rows if t > now - FLOW_WINDOW_MS)
    acc, series = 0.0, []
    for _, t, _, q, s in rows:
        acc += s * q
        series.append((t, acc))
    n = len(series)
    series = [series[(k * n) // 500 - 1] for k in range(1, 501)]
    ticks = math.floor((hi - lo) / TICK / 50 + 1e-9) + 1
    bucket = ticks * TICK
    base = math.floor((lo + TICK / 2) / bucket) * bucket
    nrows = math.floor((hi - base + TICK / 2) / bucket) + 1
    volume = [0.0] * nrows
    for _, _, p, q, _ in rows:
        volume[int((p - base + TICK / 2) / bucket)] += q
    top = max(volume)
    poc = min(
        (i for i, x in enumerate(volume) if x == top), key=lambda i: (abs(2 * i - nrows + 1), i)
    )
    mean = vol / n
    large = [r for r in rows if r[2] * r[3] >= TIERS[0] or r[3] >= 10.0 * mean]
    tape = rows[-50:][::-1]
    return vwap, delta, series[-1][1], base + poc * bucket, len(large), tape


def polars_trades(v: TradeView) -> tuple:
    df = pl.DataFrame({"id": v.trade_id, "t": v.time_ms, "p": v.price, "q": v.qty, "s": v.side})
    agg = df.select(
        vol=pl.col("q").sum(),
        quote=(pl.col("p") * pl.col("q")).sum(),
        signed=(pl.col("s") * pl.col("q")).sum(),
        buys=(pl.col("s") > 0).sum(),
        hi=pl.col("p").max(),
        lo=pl.col("p").min(),
        mean=pl.col("q").mean(),
        now=pl.col("t").max(),
    ).row(0, named=True)
    vwap = agg["quote"] / agg["vol"]
    delta = (
        df.filter(pl.col("t") > agg["now"] - FLOW_WINDOW_MS)
        .select((pl.col("s") * pl.col("q")).sum())
        .item()
    )
    series = df.select(pl.col("t"), c=(pl.col("s") * pl.col("q")).cum_sum())
    n = series.height
    picks = series[((np.arange(1, 501) * n) // 500 - 1).tolist()]
    ticks = math.floor((agg["hi"] - agg["lo"]) / TICK / 50 + 1e-9) + 1
    bucket = ticks * TICK
    base = math.floor((agg["lo"] + TICK / 2) / bucket) * bucket
    prof = (
        df.group_by(((pl.col("p") - base + TICK / 2) / bucket).floor().cast(pl.Int64).alias("i"))
        .agg(pl.col("q").sum())
        .sort(["q", "i"], descending=[True, False])
    )
    poc = base + prof["i"][0] * bucket
    large = df.filter(
        (pl.col("p") * pl.col("q") >= TIERS[0]) | (pl.col("q") >= 10.0 * agg["mean"])
    ).height
    tape = df.tail(50).reverse().rows()
    return vwap, delta, picks["c"][-1], poc, large, tape


# --- the three implementations of the book metrics ----------------------------------------


def numpy_book(b: BookView) -> tuple:
    summary = book_summary(b)
    imb = imbalance(b, 25.0)
    bands = depth_within(b, BANDS)
    dist = depth_distribution(b, 5.0, 100.0)
    curve = depth_curve(b)
    impact = price_impact(b, IMPACT_SIZES)
    score = liquidity_score(b)
    return (
        summary.weighted_mid,
        imb,
        bands[-1].bid_quote,
        float(dist.ask_base.sum()),
        float(curve.ask_cum_quote[-1]),
        impact[-1].avg_price,
        score.depth_quote,
    )


def python_book(bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> tuple:
    (pb, qb), (pa, qa) = bids[0], asks[0]
    mid = (pb + pa) / 2
    wmid = (pb * qa + pa * qb) / (qa + qb)
    sum(q for _, q in bids) / sum(q for _, q in asks)

    def within(levels: list, limit: float, below: bool, quote: bool) -> float:
        total = 0.0
        for p, q in levels:
            if (p < limit) if below else (p > limit):
                break
            total += p * q if quote else q
        return total

    b25 = within(bids, mid * (1 - 25e-4), True, False)
    a25 = within(asks, mid * (1 + 25e-4), False, False)
    imb = (b25 - a25) / (b25 + a25)
    bands = [
        (
            within(bids, mid * (1 - x / 1e4), True, True),
            within(asks, mid * (1 + x / 1e4), False, True),
        )
        for x in BANDS
    ]
    dist = [0.0] * 20
    for p, q in asks:
        i = int((p - mid) / mid * 1e4 / 5.0)
        if i >= 20:
            break
        dist[i] += q
    bid_dist = [0.0] * 20
    for p, q in bids:
        i = int((mid - p) / mid * 1e4 / 5.0)
        if i >= 20:
            break
        bid_dist[i] += q
    curves = []
    for side in (bids, asks):
        cum_q = cum_quote = 0.0
        curve = []
        for p, q in side:
            cum_q += q
            cum_quote += p * q
            curve.append((p, cum_q, cum_quote))
        curves.append(curve)
    avg = 0.0
    for side in (asks, bids):
        for size in IMPACT_SIZES:
            left, cost = size, 0.0
            for p, q in side:
                fill = min(q, left)
                cost += p * fill
                left -= fill
                if left <= 0:
                    break
            avg = cost / size
    within(bids, mid * (1 - 25e-4), True, True)
    for side in (asks, bids):
        left, got = 100_000.0, 0.0
        for p, q in side:
            fill = min(p * q, left)
            got += fill / p
            left -= fill
            if left <= 0:
                break
    return wmid, imb, bands[-1][0], sum(dist), curves[1][-1][2], avg, bands[1][0] + bands[1][1]


def polars_book(b: BookView) -> tuple:
    bids = pl.DataFrame({"p": b.bid_prices, "q": b.bid_qtys})
    asks = pl.DataFrame({"p": b.ask_prices, "q": b.ask_qtys})
    pb, qb = bids.row(0)
    pa, qa = asks.row(0)
    mid = (pb + pa) / 2
    wmid = (pb * qa + pa * qb) / (qa + qb)
    bids.select(pl.col("q").sum()).item() / asks.select(pl.col("q").sum()).item()

    def band(df: pl.DataFrame, x: float, below: bool, quote: bool) -> float:
        cond = pl.col("p") >= mid * (1 - x / 1e4) if below else pl.col("p") <= mid * (1 + x / 1e4)
        val = pl.col("p") * pl.col("q") if quote else pl.col("q")
        return df.select(val.filter(cond).sum()).item()

    b25, a25 = band(bids, 25, True, False), band(asks, 25, False, False)
    imb = (b25 - a25) / (b25 + a25)
    bands = [(band(bids, x, True, True), band(asks, x, False, True)) for x in BANDS]
    dist = (
        asks.with_columns(i=((pl.col("p") - mid) / mid * 1e4 / 5.0).floor().cast(pl.Int64))
        .filter(pl.col("i") < 20)
        .group_by("i")
        .agg(pl.col("q").sum())
    )
    bids.with_columns(i=((mid - pl.col("p")) / mid * 1e4 / 5.0).floor().cast(pl.Int64)).filter(
        pl.col("i") < 20
    ).group_by("i").agg(pl.col("q").sum())
    curves = [
        df.with_columns(cq=pl.col("q").cum_sum(), cquote=(pl.col("p") * pl.col("q")).cum_sum())
        for df in (bids, asks)
    ]
    avg = 0.0
    for curve in curves[::-1]:
        cq = curve["cq"]
        idx = cq.search_sorted(pl.Series(IMPACT_SIZES), side="left").to_list()
        for size, k in zip(IMPACT_SIZES, idx, strict=True):
            prev_q = cq[k - 1] if k else 0.0
            prev_quote = curve["cquote"][k - 1] if k else 0.0
            avg = (prev_quote + (size - prev_q) * curve["p"][k]) / size
    for curve in curves:
        curve["cquote"].search_sorted(100_000.0)
    return wmid, imb, bands[-1][0], dist["q"].sum(), curves[1]["cquote"][-1], avg, sum(bands[1])


# --- polars where it may pay: time bars over ≥ 100k rows ---------------------------------


def numpy_second_bars(v: TradeView) -> np.ndarray:
    sec = (v.time_ms - v.time_ms[0]) // 1000
    return np.bincount(sec, weights=v.side * v.qty)


def polars_second_bars(v: TradeView) -> np.ndarray:
    df = pl.DataFrame({"t": v.time_ms, "d": v.side * v.qty})
    return (
        df.group_by(((pl.col("t") - v.time_ms[0]) // 1000).alias("sec"))
        .agg(pl.col("d").sum())
        .sort("sec")["d"]
        .to_numpy()
    )


# --- timing -----------------------------------------------------------------------------


def interleaved(variants: dict[str, tuple[Callable[[], object], int]]) -> dict[str, float]:
    """Median ms per call over every call of BLOCKS interleaved blocks; (fn, calls per
    block). Each call is timed on its own, so a burst of load on this shared machine
    spoils the calls it hits rather than a whole block."""
    samples: dict[str, list[float]] = {name: [] for name in variants}
    clock = time.perf_counter
    for _ in range(BLOCKS):
        for name, (fn, reps) in variants.items():
            times = samples[name]
            for _ in range(reps):
                start = clock()
                fn()
                times.append((clock() - start) * 1e3)
    return {name: statistics.median(v) for name, v in samples.items()}


def check_agree(a: tuple, b: tuple, what: str) -> None:
    for x, y in zip(a[:-1] if isinstance(a[-1], tuple) else a, b, strict=False):
        if isinstance(x, float | int) and not math.isclose(x, y, rel_tol=1e-7, abs_tol=1e-6):
            raise SystemExit(f"{what}: {a} != {b}")


def main() -> None:
    rng = np.random.default_rng(SEED)
    real_trades, real_book = load_recording()
    trades = tile_trades(real_trades, rng)
    book = deep_book(real_book, rng)
    rows = list(
        zip(
            trades.trade_id.tolist(),
            trades.time_ms.tolist(),
            trades.price.tolist(),
            trades.qty.tolist(),
            trades.side.tolist(),
            strict=True,
        )
    )
    bid_rows = list(zip(book.bid_prices.tolist(), book.bid_qtys.tolist(), strict=True))
    ask_rows = list(zip(book.ask_prices.tolist(), book.ask_qtys.tolist(), strict=True))

    # The pure-Python variants need 100k tuples alive; freeze them out of the cyclic GC so
    # its full collections do not land in the numpy timings.
    gc.collect()
    gc.freeze()
    ref = numpy_trades(trades)
    check_agree(ref[:5], python_trades(rows)[:5], "python trades")
    check_agree(ref[:5], polars_trades(trades)[:5], "polars trades")
    ref_book = numpy_book(book)
    check_agree(ref_book, python_book(bid_rows, ask_rows), "python book")
    check_agree(ref_book, polars_book(book), "polars book")
    np.testing.assert_allclose(
        numpy_second_bars(trades)[numpy_second_bars(trades) != 0],
        polars_second_bars(trades)[polars_second_bars(trades) != 0],
    )

    trade_ms = interleaved(
        {
            "numpy": (lambda: numpy_trades(trades), 20),
            "python": (lambda: python_trades(rows), 1),
            "polars": (lambda: polars_trades(trades), 3),
        }
    )
    book_ms = interleaved(
        {
            "numpy": (lambda: numpy_book(book), 50),
            "python": (lambda: python_book(bid_rows, ask_rows), 3),
            "polars": (lambda: polars_book(book), 3),
        }
    )
    parts = interleaved(
        {
            "trade_stats": (lambda: trade_stats(trades), 50),
            "trade_flow_5m": (lambda: trade_flow(trades, window_ms=FLOW_WINDOW_MS), 50),
            "cvd_500": (lambda: cvd(trades), 50),
            "volume_profile_50": (lambda: volume_profile(trades, tick_size=TICK, rows=50), 50),
            "large_trades": (lambda: large_trades(trades, relative_k=10.0), 50),
            "time_and_sales_50": (lambda: time_and_sales(trades, 50), 50),
            "book_summary": (lambda: book_summary(book), 200),
            "depth_within_4": (lambda: depth_within(book, BANDS), 200),
            "depth_curve": (lambda: depth_curve(book), 200),
            "price_impact_4x2": (lambda: price_impact(book, IMPACT_SIZES), 200),
            "liquidity_score": (lambda: liquidity_score(book), 200),
        }
    )
    bars = interleaved(
        {
            "numpy": (lambda: numpy_second_bars(trades), 20),
            "polars": (lambda: polars_second_bars(trades), 20),
        }
    )

    seed_stats_ms = 1.0 * N_TRADES / 1000
    seed_profile_ms = 5.0 * N_TRADES / 1000
    print(
        f"workload: {len(trades):,} trades (tiled from {len(real_trades):,} real), "
        f"book {book.bid_prices.shape[0]} x {book.ask_prices.shape[0]} levels, "
        f"{BLOCKS} interleaved blocks, medians"
    )
    print()
    print(f"{'variant':44} {'ms':>10} {'x numpy':>9}")
    for title, res in (
        ("all trade metrics, 100k trades", trade_ms),
        ("all book metrics, 5000 x 2 book", book_ms),
    ):
        for name, ms in res.items():
            print(f"{title + ' / ' + name:44} {ms:10.3f} {ms / res['numpy']:9.1f}")
    for name in ("numpy", "polars"):
        ms = bars[name]
        print(f"{'1-s delta bars, 100k / ' + name:44} {ms:10.3f} {ms / bars['numpy']:9.1f}")
    print()
    print(f"{'component (numpy)':44} {'ms':>10}")
    for name, ms in parts.items():
        print(f"{name:44} {ms:10.4f}")
    print()
    print(
        f"seed claims at 100k: statistics {seed_stats_ms:.0f} ms, "
        f"volume profile (50 bins) {seed_profile_ms:.0f} ms; measured "
        f"{parts['trade_stats']:.3f} ms and {parts['volume_profile_50']:.3f} ms"
    )
    figures = {
        "trade_metrics_100k_ms": round(trade_ms["numpy"], 4),
        "book_metrics_5000_ms": round(book_ms["numpy"], 4),
        "trade_ratio_vs_python": round(trade_ms["python"] / trade_ms["numpy"], 1),
        "trade_ratio_vs_polars": round(trade_ms["polars"] / trade_ms["numpy"], 1),
        "book_ratio_vs_python": round(book_ms["python"] / book_ms["numpy"], 1),
        "book_ratio_vs_polars": round(book_ms["polars"] / book_ms["numpy"], 1),
        "trade_stats_100k_ms": round(parts["trade_stats"], 4),
        "volume_profile_50_100k_ms": round(parts["volume_profile_50"], 4),
        "seed_statistics_100k_ms": seed_stats_ms,
        "seed_volume_profile_100k_ms": seed_profile_ms,
        "second_bars_100k_numpy_ms": round(bars["numpy"], 4),
        "second_bars_100k_polars_ms": round(bars["polars"], 4),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
