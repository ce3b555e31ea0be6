"""Derived results per (symbol, seq, metric, parameters), computed and shared.

Every panel callback and the JSON API ask this cache instead of calling analytics directly,
so a consumer of a snapshot reuses what an earlier one computed (two that miss at the same
moment both compute; the later result replaces the earlier, equal one). A snapshot's
``seq`` changes with every publication, which makes the key a complete description of the
input; a small LRU bounds memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from components.status_bar import STALE_AFTER_S
from services.analytics import book, flow, impact, large_trades, liquidity, profile, trades
from services.analytics.flow_filter import FlowFilter, filter_trades
from services.market.views import SyncState, TradeView
from services.store import SymbolSnapshot

T = TypeVar("T")

DEPTH_BANDS_BPS: tuple[float, ...] = (10.0, 25.0, 50.0, 100.0)
IMPACT_SIZES_QUOTE: tuple[float, ...] = (10_000.0, 100_000.0, 1_000_000.0, 5_000_000.0)
IMBALANCE_BAND_BPS = 25.0
SCORE_BAND_BPS = 25.0
SCORE_IMPACT_QUOTE = 100_000.0
DEPTH_MAX_LEVELS = 1000
CVD_MAX_POINTS = 300
PROFILE_MAX_ROWS = 300
PROFILE_DEFAULT_ROWS = 60


class DerivedCache:
    """A thread-safe LRU of derived results keyed by (symbol, seq, metric, params)."""

    def __init__(self, maxsize: int = 512) -> None:
        self._maxsize = maxsize
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached value for ``key``, computing (outside the lock) on a miss."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key]
        value = compute()
        with self._lock:
            self.misses += 1
            self._entries[key] = value
            while len(self._entries) > self._maxsize:
                self._entries.popitem(last=False)
        return value


def market_now_ms(snapshot: SymbolSnapshot) -> int:
    """The snapshot's own clock: the latest exchange time it holds (book event or trade).

    Windows end here rather than at the wall clock, so a replay shows its recorded minutes.
    """
    last_trade = int(snapshot.trades.time_ms[-1]) if len(snapshot.trades) else 0
    return max(last_trade, int(snapshot.book.event_time_ms))


def display_sync_state(snapshot: SymbolSnapshot, now: float) -> str:
    """The book's sync state as the dashboard shows it: STALE once the snapshot is older
    than ``STALE_AFTER_S`` (the feed stopped publishing), whatever it said then."""
    if now - snapshot.published_at > STALE_AFTER_S:
        return str(SyncState.STALE)
    return str(snapshot.book.sync_state)


def _key(snapshot: SymbolSnapshot, metric: str, *params: Hashable) -> tuple:
    return (snapshot.symbol, snapshot.seq, metric, *params)


def book_summary(cache: DerivedCache, snapshot: SymbolSnapshot) -> book.BookSummary:
    """Best levels, mid, spread and totals of the snapshot's book."""
    return cache.get(_key(snapshot, "summary"), lambda: book.book_summary(snapshot.book))


def depth_curve(
    cache: DerivedCache, snapshot: SymbolSnapshot, max_distance_pct: float
) -> book.DepthCurve:
    """Cumulative depth per side within ``max_distance_pct`` % of mid (≤ 1000 levels)."""
    return cache.get(
        _key(snapshot, "depth_curve", max_distance_pct),
        lambda: book.depth_curve(
            snapshot.book, max_distance_pct=max_distance_pct, max_levels=DEPTH_MAX_LEVELS
        ),
    )


def depth_within(cache: DerivedCache, snapshot: SymbolSnapshot) -> list[book.DepthBand]:
    """Depth within the dashboard's bands (±10/25/50/100 bps)."""
    return cache.get(
        _key(snapshot, "depth_within"),
        lambda: list(book.depth_within(snapshot.book, DEPTH_BANDS_BPS)),
    )


def imbalance(cache: DerivedCache, snapshot: SymbolSnapshot) -> float:
    """Book imbalance within ±25 bps of mid."""
    return cache.get(
        _key(snapshot, "imbalance"),
        lambda: book.imbalance(snapshot.book, IMBALANCE_BAND_BPS),
    )


def price_impact(cache: DerivedCache, snapshot: SymbolSnapshot) -> list[impact.ImpactRow]:
    """Buy and sell impact for the dashboard's ladder of quote sizes."""
    return cache.get(
        _key(snapshot, "impact"),
        lambda: list(impact.price_impact(snapshot.book, IMPACT_SIZES_QUOTE, unit="quote")),
    )


def liquidity_score(cache: DerivedCache, snapshot: SymbolSnapshot) -> liquidity.LiquidityScore:
    """The 0–100 liquidity score of the book with the analytics' default parameters (±25 bps
    depth, 100k quote impact), combined from the spread, depth and impact already derived
    for the panel instead of walking the book a second time."""
    return cache.get(_key(snapshot, "liquidity"), lambda: _combined_score(cache, snapshot))


def _combined_score(cache: DerivedCache, snapshot: SymbolSnapshot) -> liquidity.LiquidityScore:
    band = next(b for b in depth_within(cache, snapshot) if b.band_bps == SCORE_BAND_BPS)
    rows = [r for r in price_impact(cache, snapshot) if r.size == SCORE_IMPACT_QUOTE]
    return liquidity.score_from(book_summary(cache, snapshot).spread_bps, band, rows)


def time_and_sales(cache: DerivedCache, snapshot: SymbolSnapshot, limit: int) -> trades.Tape:
    """The newest ``limit`` trades, newest first."""
    return cache.get(
        _key(snapshot, "tape", limit), lambda: trades.time_and_sales(snapshot.trades, limit)
    )


def trade_stats(cache: DerivedCache, snapshot: SymbolSnapshot, window_ms: int) -> trades.TradeStats:
    """Trade statistics over the window ending at the snapshot's clock."""
    return cache.get(
        _key(snapshot, "trade_stats", window_ms),
        lambda: trades.trade_stats(
            snapshot.trades, window_ms=window_ms, now_ms=market_now_ms(snapshot)
        ),
    )


def trade_flow(cache: DerivedCache, snapshot: SymbolSnapshot, window_ms: int) -> flow.TradeFlow:
    """Taker buy vs sell volume over the window ending at the snapshot's clock."""
    return cache.get(
        _key(snapshot, "flow", window_ms),
        lambda: flow.trade_flow(
            snapshot.trades, window_ms=window_ms, now_ms=market_now_ms(snapshot)
        ),
    )


def cvd(cache: DerivedCache, snapshot: SymbolSnapshot) -> flow.CvdSeries:
    """CVD in quote units over the whole trade window, downsampled to ≤ 300 points."""
    return cache.get(
        _key(snapshot, "cvd"),
        lambda: flow.cvd(snapshot.trades, max_points=CVD_MAX_POINTS, unit="quote"),
    )


def profile_bucket_ticks(snapshot: SymbolSnapshot, bucket_ticks: int | None) -> int | None:
    """``bucket_ticks`` raised so the window's price range fits in ≤ 300 rows (None = auto)."""
    if bucket_ticks is None or not len(snapshot.trades):
        return bucket_ticks
    price_range = float(snapshot.trades.price.max() - snapshot.trades.price.min())
    needed = int(price_range / snapshot.info.tick_size / PROFILE_MAX_ROWS) + 1
    return max(int(bucket_ticks), needed)


def volume_profile(
    cache: DerivedCache,
    snapshot: SymbolSnapshot,
    bucket_ticks: int | None = None,
    rows: int | None = None,
    count_trades: bool = False,
) -> profile.VolumeProfile:
    """Volume profile of the trade window (``bucket_ticks`` ticks per row, or ``rows`` rows),
    with trades per row if ``count_trades``."""

    def compute() -> profile.VolumeProfile:
        ticks = profile_bucket_ticks(snapshot, bucket_ticks)
        wanted = min(rows or PROFILE_DEFAULT_ROWS, PROFILE_MAX_ROWS) if ticks is None else None
        return profile.volume_profile(
            snapshot.trades,
            tick_size=snapshot.info.tick_size,
            bucket_ticks=ticks,
            rows=wanted,
            count_trades=count_trades,
        )

    return cache.get(_key(snapshot, "profile", bucket_ticks, rows, count_trades), compute)


def large_trades_of(
    cache: DerivedCache, snapshot: SymbolSnapshot, tiers_quote: tuple[float, ...]
) -> large_trades.LargeTrades:
    """Trades of the window reaching the quote-notional tiers, newest first."""
    return cache.get(
        _key(snapshot, "large_trades", tiers_quote),
        lambda: large_trades.large_trades(snapshot.trades, tiers_quote=tiers_quote),
    )


def filtered_trades(
    cache: DerivedCache, snapshot: SymbolSnapshot, low: float | None, high: float | None
) -> TradeView:
    """The snapshot's trades within the flow filter's notional band (all when both bounds
    are open)."""
    band = FlowFilter(low, high)
    if not band.active:
        return snapshot.trades
    return cache.get(
        _key(snapshot, "filtered", low, high), lambda: filter_trades(snapshot.trades, band)
    )
