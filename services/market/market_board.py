"""The market board: one row per TRADING symbol for the watchlist, from the all-market
mini-ticker stream, plus book figures for the symbols whose book is streamed.

Figures of a row:

- last: last traded price (``c``); high / low: the rolling 24 h extremes;
- change_pct: 24 h change, (last − open) / open · 100, open = price 24 h ago (``o``);
- quote_volume: rolling 24 h traded quote volume (``q``);
- spread_bps / liquidity: the streamed book's spread in bps of mid and its 0–100 liquidity
  score (``services.analytics.liquidity``), only while that book is LIVE (None otherwise
  and for symbols whose book is not streamed); the feed may refresh the score less often
  than the spread (``update_book``'s ``rescore``);
- sync_state: the streamed book's state ('' when not streamed).

``version`` is the board's change counter at the row's last change, so a reader that saw
the board at version V needs only the rows with ``version > V`` (``WatchlistRows.since``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from services.analytics.book import spread_bps
from services.analytics.liquidity import liquidity_score
from services.binance.messages import MiniTicker
from services.market.views import BookView, SymbolInfo


@dataclass(frozen=True, slots=True)
class WatchlistRow:
    """One symbol of the watchlist (figures defined in the module docstring)."""

    symbol: str
    base: str
    quote: str
    last: float | None = None
    change_pct: float | None = None
    quote_volume: float | None = None
    high: float | None = None
    low: float | None = None
    spread_bps: float | None = None
    liquidity: float | None = None
    sync_state: str = ""
    version: int = 0


@dataclass(frozen=True, slots=True)
class WatchlistRows:
    """The board as published: every row and the board's version."""

    rows: tuple[WatchlistRow, ...] = ()
    version: int = 0

    def since(self, version: int) -> list[WatchlistRow]:
        """Rows changed after ``version``."""
        return [row for row in self.rows if row.version > version]


def change_pct(last: float, open_: float) -> float | None:
    """24 h change in percent, None when the open is not positive."""
    return (last - open_) / open_ * 100.0 if open_ > 0 else None


def book_figures(view: BookView, with_score: bool = True) -> tuple[float | None, float | None]:
    """(spread bps, liquidity score) of a LIVE book; (None, None) otherwise. The score is
    None too when not asked for (``with_score`` False)."""
    if not view.is_live or not view.bid_prices.size or not view.ask_prices.size:
        return None, None
    spread = spread_bps(view)
    rounded = None if math.isnan(spread) else round(spread, 3)
    if not with_score:
        return rounded, None
    score = liquidity_score(view).score
    return rounded, None if math.isnan(score) else round(score, 1)


def ticker_from_rest(body: Mapping[str, Any]) -> MiniTicker:
    """A ``GET /api/v3/ticker/24hr`` row as the mini ticker it summarises."""
    return MiniTicker(
        e="24hrMiniTicker",
        E=int(body.get("closeTime") or 0),
        s=str(body["symbol"]),
        c=float(body["lastPrice"]),
        o=float(body["openPrice"]),
        h=float(body["highPrice"]),
        l=float(body["lowPrice"]),
        v=float(body["volume"]),
        q=float(body["quoteVolume"]),
    )


class MarketBoard:
    """Latest figures of every symbol; the feed updates it, ``rows`` publishes it."""

    def __init__(self) -> None:
        self.version = 0
        self._rows: dict[str, WatchlistRow] = {}

    def _put(self, row: WatchlistRow, **changes: object) -> None:
        """The row with ``changes``, at a new board version when any field changed (a
        value counts as unchanged when it is the same object or equal, as in the rows'
        own equality)."""
        for name, value in changes.items():
            held = getattr(row, name)
            if held is not value and held != value:
                break
        else:
            return
        self.version += 1
        self._rows[row.symbol] = replace(row, version=self.version, **changes)  # type: ignore[arg-type]

    def _row(self, symbol: str, infos: Mapping[str, SymbolInfo]) -> WatchlistRow | None:
        row = self._rows.get(symbol)
        if row is None:
            info = infos.get(symbol)
            if info is None:
                return None
            row = self._rows[symbol] = WatchlistRow(symbol, info.base_asset, info.quote_asset)
        return row

    def update_tickers(
        self, tickers: Iterable[MiniTicker], infos: Mapping[str, SymbolInfo]
    ) -> None:
        """Take mini tickers (a ``!miniTicker@arr`` array); symbols not in ``infos`` (not
        TRADING) are ignored."""
        for ticker in tickers:
            row = self._row(ticker.s, infos)
            if row is not None:
                self._put(
                    row,
                    last=ticker.c,
                    change_pct=change_pct(ticker.c, ticker.o),
                    quote_volume=ticker.q,
                    high=ticker.h,
                    low=ticker.l,
                )

    def update_book(
        self,
        symbol: str,
        view: BookView | None,
        infos: Mapping[str, SymbolInfo],
        rescore: bool = True,
    ) -> bool:
        """Book figures of a streamed symbol (``view`` None: no longer streamed). The
        spread and sync state are always taken; the liquidity score (the costly figure:
        depth band and impact walks) only when ``rescore`` or when the row has none yet —
        otherwise a LIVE row keeps the score it has. Whether the score was computed."""
        row = self._row(symbol, infos)
        if row is None:
            return False
        if view is None:
            self._put(row, spread_bps=None, liquidity=None, sync_state="")
            return False
        if rescore or row.liquidity is None:
            spread, score = book_figures(view)
            scored = True
        else:
            spread, _ = book_figures(view, with_score=False)
            score = row.liquidity if spread is not None else None
            scored = False
        self._put(row, spread_bps=spread, liquidity=score, sync_state=str(view.sync_state))
        return scored

    def rows(self, infos: Mapping[str, SymbolInfo]) -> WatchlistRows:
        """Every symbol of ``infos`` (TRADING), with figures where known, sorted."""
        for symbol in infos:
            self._row(symbol, infos)
        rows = tuple(self._rows[s] for s in sorted(self._rows) if s in infos)
        return WatchlistRows(rows, self.version)
