"""Analytics against the bundled real recordings: window totals equal the manifest's exact
decimal sums, and the liquidity score ranks BTCUSDT > ETHUSDT > DOTUSDT (2021 recording)."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from services.analytics.book import book_summary, depth_curve, depth_within, imbalance
from services.analytics.flow import cvd, trade_flow
from services.analytics.impact import price_impact
from services.analytics.large_trades import large_trades
from services.analytics.liquidity import liquidity_score
from services.analytics.profile import volume_profile
from services.analytics.trades import time_and_sales, trade_stats
from services.binance.messages import (
    AggTrade,
    DepthUpdate,
    Trade,
    decode_depth_snapshot,
    decode_frame,
)
from services.market.views import BookView, SyncState, TradeView
from services.replay.recording import read_recording

SPOT_2021_FILE = "spot_BTCUSDT-ETHUSDT-DOTUSDT_20210404T2003Z_cryptofeed.jsonl.gz"
FILES = {
    "spot_2021": SPOT_2021_FILE,
    "spot_2024": "spot_BTCUSDT_20240808T2354Z_hftbacktest.jsonl.gz",
    "usdm_2024": "usdm_BTCUSDT_20240808T2354Z_hftbacktest.jsonl.gz",
}
CASES = [
    ("spot_2021", "BTCUSDT", "aggTrade"),
    ("spot_2021", "ETHUSDT", "aggTrade"),
    ("spot_2021", "DOTUSDT", "aggTrade"),
    ("spot_2024", "BTCUSDT", "trade"),
    ("usdm_2024", "BTCUSDT", "trade"),
]
TICKS = {"BTCUSDT": 0.01, "ETHUSDT": 0.01, "DOTUSDT": 0.0001}
_cache: dict[tuple[Path, str], tuple[BookView, TradeView]] = {}


def load_symbol(path: Path, symbol: str) -> tuple[BookView, TradeView]:
    """The final book (REST snapshot + every later diff) and every trade of one symbol."""
    key = (path, symbol)
    if key in _cache:
        return _cache[key]
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    last_id = -1
    ids, times, prices, qtys, sides = [], [], [], [], []
    kind = "aggTrade"
    for msg in read_recording(path):
        if msg.src == "rest":
            if f"symbol={symbol}" in msg.url:
                snap = decode_depth_snapshot(msg.raw)
                bids = dict(snap.bids)
                asks = dict(snap.asks)
                last_id = snap.lastUpdateId
            continue
        event = decode_frame(msg.raw).event
        if getattr(event, "s", None) != symbol:
            continue
        if isinstance(event, DepthUpdate) and last_id >= 0 and event.u > last_id:
            for side, levels in ((bids, event.b), (asks, event.a)):
                for p, q in levels:
                    if q == 0:
                        side.pop(p, None)
                    else:
                        side[p] = q
            last_id = event.u
        elif isinstance(event, AggTrade | Trade):
            kind = "aggTrade" if isinstance(event, AggTrade) else "trade"
            ids.append(event.a if isinstance(event, AggTrade) else event.t)
            times.append(event.T)
            prices.append(event.p)
            qtys.append(event.q)
            sides.append(-1.0 if event.m else 1.0)
    bid_p = np.array(sorted(bids, reverse=True), dtype=np.float64)
    ask_p = np.array(sorted(asks), dtype=np.float64)
    book = BookView(
        symbol,
        bid_p,
        np.array([bids[p] for p in bid_p.tolist()]),
        ask_p,
        np.array([asks[p] for p in ask_p.tolist()]),
        last_update_id=last_id,
        sync_state=SyncState.LIVE,
    )
    trades = TradeView(
        symbol,
        np.array(ids, dtype=np.int64),
        np.array(times, dtype=np.int64),
        np.array(prices, dtype=np.float64),
        np.array(qtys, dtype=np.float64),
        np.array(sides, dtype=np.float64),
        kind=kind,
    )
    _cache[key] = (book, trades)
    return book, trades


@pytest.fixture(scope="module")
def loaded(recordings):
    def get(name: str, symbol: str) -> tuple[BookView, TradeView]:
        return load_symbol(recordings[name], symbol)

    return get


def _manifest_trades(manifest, name: str, symbol: str, kind: str) -> dict:
    return manifest[FILES[name]]["symbols"][symbol][kind]


@pytest.mark.parametrize(("name", "symbol", "kind"), CASES)
def test_whole_window_totals_match_manifest(loaded, manifest, name, symbol, kind):
    _, trades = loaded(name, symbol)
    expected = _manifest_trades(manifest, name, symbol, kind)
    stats = trade_stats(trades, window_ms=10**12)
    assert trades.kind == kind
    assert stats.count == expected["n"]
    assert stats.volume == pytest.approx(float(Decimal(expected["sum_qty"])), rel=1e-12)
    assert stats.sell_count == expected["buyer_is_maker_count"]
    assert stats.buy_count == expected["n"] - expected["buyer_is_maker_count"]
    assert stats.first_price == float(Decimal(expected["first_price"]))
    assert stats.last_price == float(Decimal(expected["last_price"]))
    assert stats.first_time_ms == expected["T_first"]
    assert stats.last_time_ms == expected["T_last"]
    assert stats.buy_volume + stats.sell_volume == pytest.approx(stats.volume, rel=1e-12)
    assert stats.low <= stats.vwap <= stats.high
    assert cvd(trades).final == pytest.approx(stats.delta, rel=1e-9, abs=1e-9)
    profile = volume_profile(trades, tick_size=TICKS[symbol], rows=50, count_trades=True)
    assert profile.total_volume == pytest.approx(stats.volume, rel=1e-12)
    assert int(profile.trades.sum()) == stats.count
    assert profile.value_area_volume_pct >= 70.0
    assert profile.val <= profile.point_of_control < profile.vah
    tape = time_and_sales(trades, limit=5)
    assert tape.rows[0].trade_id == expected["last_id"]
    assert tape.trade_id.tolist() == sorted(tape.trade_id.tolist(), reverse=True)


@pytest.mark.parametrize(("name", "symbol", "kind"), CASES)
def test_time_windows_partition_the_recording(loaded, name, symbol, kind):
    """1-minute windows that tile the recording add up to the whole-window totals."""
    _, trades = loaded(name, symbol)
    whole = trade_stats(trades)
    ends = range(int(trades.time_ms[-1]), int(trades.time_ms[0]) - 60_000, -60_000)
    parts = [trade_stats(trades, window_ms=60_000, now_ms=end) for end in ends]
    assert sum(p.count for p in parts) == whole.count
    assert sum(p.volume for p in parts) == pytest.approx(whole.volume, rel=1e-12)
    flows = [trade_flow(trades, window_ms=60_000, now_ms=end) for end in ends]
    assert sum(f.delta for f in flows) == pytest.approx(whole.delta, rel=1e-9, abs=1e-9)
    last_100 = trade_stats(trades, last_n=100)
    assert last_100.count == 100
    assert last_100.volume == pytest.approx(float(trades.qty[-100:].sum()), rel=1e-12)


def test_liquidity_ranks_btc_above_eth_above_dot(loaded):
    scores = {s: liquidity_score(loaded("spot_2021", s)[0]).score for s in TICKS}
    assert scores["BTCUSDT"] > scores["ETHUSDT"] > scores["DOTUSDT"]
    assert all(0 <= v <= 100 for v in scores.values())


def test_book_metrics_on_the_final_2021_books(loaded, manifest):
    for symbol in TICKS:
        book, _ = loaded("spot_2021", symbol)
        recon = manifest[SPOT_2021_FILE]["symbols"][symbol]["reconstruction"][-1]
        top_bid, top_ask = recon["final_top5_bids"][0], recon["final_top5_asks"][0]
        summary = book_summary(book)
        assert summary.best_bid == float(top_bid[0])
        assert summary.best_ask == float(top_ask[0])
        assert summary.best_bid_qty == float(top_bid[1])
        assert (summary.bid_levels, summary.ask_levels) == tuple(recon["final_book_levels"])
        assert summary.best_bid < summary.weighted_mid < summary.best_ask
        bands = depth_within(book)
        assert [b.bid_quote for b in bands] == sorted(b.bid_quote for b in bands)
        assert -1.0 <= imbalance(book, 25) <= 1.0
        curve = depth_curve(book, max_distance_pct=1.0)
        assert curve.bid_cum_qty[-1] == pytest.approx(
            sum(
                b
                for p, b in zip(book.bid_prices, book.bid_qtys, strict=True)
                if p >= curve.mid * 0.99
            )
        )
        rows = price_impact(book, [0.1, 1, 10, 1e9])
        buys = [r for r in rows if r.side == "buy"]
        assert [r.slippage_bps for r in buys] == sorted(r.slippage_bps for r in buys)
        assert buys[-1].unfillable and not buys[0].unfillable
        assert math.isclose(buys[-1].filled, summary.total_ask_qty, rel_tol=1e-12)


def test_large_trades_on_the_2021_btc_tape(loaded):
    _, trades = loaded("spot_2021", "BTCUSDT")
    quote = trades.price * trades.qty
    result = large_trades(trades, tiers_quote=(10_000, 50_000), relative_k=10)
    assert len(result.rows) == int(
        np.count_nonzero((quote >= 10_000) | (trades.qty >= 10 * trades.qty.mean()))
    )
    assert sum(result.count_by_tier) == int(np.count_nonzero(quote >= 10_000))
    assert [r.time_ms for r in result.rows] == sorted(
        (r.time_ms for r in result.rows), reverse=True
    )
