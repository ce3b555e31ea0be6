"""Trades of a range a page view shows: the history store for the part older than the live
trade window, the live window after it, each trade once (so the footprint and the heatmap's
trade dots show the past the moment the page opens after a restart).

The stored part is read up to the live window's first trade rounded UP to the minute (it
overlaps the window; the live trades after the last stored id follow it). The footprint,
redrawn on every new trade over a range of at most a few hours, caches that read: while the
live window slides within a minute a redraw reads nothing from disk. The heatmap reads it
only on a full redraw, over up to 24 h (millions of trades), and does not keep it.
"""

from __future__ import annotations

import functools

from app.callbacks import derived
from app.callbacks.derived import DerivedCache
from services.analytics.flow_filter import FlowFilter, filter_trades
from services.history.reader import HistoryReader
from services.market.views import TradeView
from services.push.messages import concat, slice_after
from services.store import SymbolSnapshot

MINUTE_MS = 60_000
STORED_RANGES_CACHED = 4


def stored_trades(
    reader: HistoryReader, symbol: str, kind: str, start_ms: int, end_ms: int
) -> TradeView | None:
    """The stored trades of ``kind`` in [start, end) (a past range: read once); None when
    the history holds no trades of the symbol, or none of that kind. The market and kind
    are looked up here, so a cached call lists no directories either."""
    market = reader.market_of(symbol)
    if market is None or kind not in reader.trade_kinds(market, symbol):
        return None
    return reader.trades(market, symbol, start_ms, end_ms - 1, kind=kind)


cached_stored_trades = functools.lru_cache(maxsize=STORED_RANGES_CACHED)(stored_trades)


def range_trades(
    snapshot: SymbolSnapshot, reader: HistoryReader | None, start_ms: int, *, cached: bool
) -> TradeView:
    """The trades from ``start_ms`` on: the live window's alone when it reaches back to
    ``start_ms`` (or there is no history of the symbol, or of the live window's trade
    kind); else the stored trades from ``start_ms`` then the live ones after the last
    stored id. ``cached`` keeps the stored read for the next call."""
    live = snapshot.trades
    if reader is None or not len(live) or start_ms >= int(live.time_ms[0]):
        return live
    split = -(-int(live.time_ms[0]) // MINUTE_MS) * MINUTE_MS
    read = cached_stored_trades if cached else stored_trades
    stored = read(reader, snapshot.symbol, live.kind, start_ms, split)
    if stored is None or not len(stored):
        return live
    return concat([stored, slice_after(live, int(stored.trade_id[-1]))])


def filtered_range(
    cache: DerivedCache, snapshot: SymbolSnapshot, trades: TradeView, band: FlowFilter
) -> TradeView:
    """``trades`` (from ``range_trades``) within the flow filter's band: the live window's
    cached filtered view when they are the live window, else filtered here."""
    if trades is snapshot.trades:
        return derived.filtered_trades(cache, snapshot, band.min_notional, band.max_notional)
    return filter_trades(trades, band)
