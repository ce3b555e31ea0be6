"""MarketStore: the only door between the feed (the one writer) and the web side (readers).

The feed publishes, at the refresh rate, one immutable ``SymbolSnapshot`` per symbol, the
``FeedStatus`` and the list of tradable symbols. Web callbacks and the JSON API only read.
Every record carries the wall time it was published, so a reader can tell a stale value
from a live one. ``MemoryStore`` serves one process (the embedded default).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from services.market.book_samples import BookSamples
from services.market.market_board import WatchlistRows
from services.market.views import BookView, SymbolInfo, TradeView


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """The feed as a whole: where data comes from and how healthy the connection is.

    ``source`` is "LIVE" or "REPLAY"; for a replay ``recording_date`` is the recording's
    original UTC date and time (ISO 8601). ``event_lag_ms`` is the median of receive time
    minus the exchange's event time ``E`` over recent messages; ``messages_per_s`` counts
    frames over the last few seconds; ``last_message_age_s`` is the time since the last
    frame at ``published_at``.
    """

    source: str = "LIVE"
    endpoint: str = ""
    recording: str = ""
    recording_date: str = ""
    connection_state: str = "CONNECTING"
    reconnects: int = 0
    messages_per_s: float = 0.0
    event_lag_ms: float | None = None
    last_message_age_s: float | None = None
    malformed_frames: int = 0
    detail: str = ""
    published_at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class Candle:
    """Latest kline bar of a symbol: open time (ms), interval, OHLC, base volume, taker-buy
    base volume, closed flag."""

    open_time_ms: int
    interval: str
    open: float
    high: float
    low: float
    close: float
    volume: float
    taker_buy_volume: float
    closed: bool


@dataclass(frozen=True, slots=True)
class Ticker24h:
    """Rolling 24 h figures of a symbol: last price, open, high, low, base and quote volume
    (from ``24hrTicker``/``24hrMiniTicker``, or derived from trades in a replay)."""

    last: float
    open: float
    high: float
    low: float
    volume: float
    quote_volume: float
    event_time_ms: int


@dataclass(frozen=True, slots=True)
class SymbolSnapshot:
    """Everything the web side shows for one symbol at one moment.

    ``seq`` increases with every publication of this symbol, so readers can cache derived
    results per (symbol, seq). ``published_at`` is the wall time of publication.
    """

    symbol: str
    seq: int
    book: BookView
    trades: TradeView
    info: SymbolInfo
    candles: tuple[Candle, ...] = ()
    ticker: Ticker24h | None = None
    published_at: float = field(default_factory=time.time)


class MarketStore(Protocol):
    """What the feed writes and the web side reads."""

    def publish(self, snapshot: SymbolSnapshot) -> None: ...

    def publish_status(self, status: FeedStatus) -> None: ...

    def publish_symbols(self, infos: list[SymbolInfo]) -> None: ...

    def snapshot(self, symbol: str) -> SymbolSnapshot | None: ...

    def published_symbols(self) -> list[str]: ...

    def status(self) -> FeedStatus | None: ...

    def symbols(self) -> list[SymbolInfo]: ...

    def request_symbol(self, symbol: str) -> None: ...

    def requested_symbols(self) -> dict[str, float]: ...

    def publish_watchlist(self, board: WatchlistRows) -> None: ...

    def watchlist(self) -> WatchlistRows: ...


class MemoryStore:
    """In-process store: the latest snapshot per symbol behind one short lock, and the
    recent book samples per symbol (``book_samples``, for the liquidity heatmap)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.book_samples = BookSamples()
        self._snapshots: dict[str, SymbolSnapshot] = {}
        self._status: FeedStatus | None = None
        self._symbols: list[SymbolInfo] = []
        self._requests: dict[str, float] = {}
        self._watchlist = WatchlistRows()

    def publish(self, snapshot: SymbolSnapshot) -> None:
        with self._lock:
            self._snapshots[snapshot.symbol] = snapshot

    def publish_status(self, status: FeedStatus) -> None:
        with self._lock:
            self._status = status

    def publish_symbols(self, infos: list[SymbolInfo]) -> None:
        with self._lock:
            self._symbols = sorted(infos, key=lambda info: info.symbol)

    def snapshot(self, symbol: str) -> SymbolSnapshot | None:
        with self._lock:
            return self._snapshots.get(symbol)

    def published_symbols(self) -> list[str]:
        """The symbols that have a snapshot, sorted."""
        with self._lock:
            return sorted(self._snapshots)

    def status(self) -> FeedStatus | None:
        with self._lock:
            return self._status

    def symbols(self) -> list[SymbolInfo]:
        with self._lock:
            return list(self._symbols)

    def request_symbol(self, symbol: str) -> None:
        """Ask the feed to stream ``symbol`` (a UI selection it does not stream yet)."""
        with self._lock:
            self._requests[symbol] = time.time()

    def requested_symbols(self) -> dict[str, float]:
        """Symbols asked for, with the wall time of the latest request."""
        with self._lock:
            return dict(self._requests)

    def publish_watchlist(self, board: WatchlistRows) -> None:
        """Replace the market board (every TRADING symbol's row)."""
        with self._lock:
            self._watchlist = board

    def watchlist(self) -> WatchlistRows:
        """The latest market board (empty before the feed publishes one)."""
        with self._lock:
            return self._watchlist


def unavailable(store: MarketStore, symbol: str | None = None) -> str | None:
    """Why ``store`` cannot read ``symbol``'s book now (without a symbol: its symbol list),
    e.g. the Redis node serving it is down or failing over; None when it can. A symbol in
    this state is shown as unavailable, never as unknown or absent. Always None in memory."""
    reason = getattr(store, "unavailable", None)  # the Redis store
    return None if reason is None else reason(symbol)
