"""The feed's history tap: hands trades, book states and candles to the history writer.

Everything here runs on the feed's event-loop thread, so it only keeps references to what
the feed already decoded and appends them to the writer's ``TapLane`` (one deque append
per item; the ``HistoryWriter`` thread takes them when it wakes and does the rest). The
feed asks it for each symbol's lane (``lane_for``: the bound ``deque.append`` of the
symbol's ``SymbolLane``) and puts the hot items there itself — each trade accepted in
sequence as its decoded row, each diff applied to a book that was and stays LIVE as its
decoded ``DepthUpdate`` — so those cost the feed a builtin call and no Python frame of
this tap; the hooks below get the rest, into the same lane:

- ``on_trade_row``: the one trade the feed just accepted, as the raw row it decoded (no
  view is built for this tap); ``on_trades``: released trades as a view (after a REST
  backfill: several at once). The writer thread turns them into columns and, as it knows
  the last id stored, reports a jump (the first trade after a restart, a kill -9, a network
  loss, or a gap the feed abandoned) as a hole to ``on_hole`` — the REST backfill.
- ``on_levels`` + ``on_book``: the levels each applied diff set (the decoded lists, not
  copied), the best bid/ask and the LIVE state; the writer keeps its own copy of the book
  from them (``live_grid``) and the grid's maxima over every LIVE state. The book is copied
  whole only when it was loaded anew (a snapshot, a resync) — when the diffs the tap saw no
  longer account for it — never once a second;
- ``on_candle``: closed 1-minute bars.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from services.binance.messages import KlineBar, Level
from services.history.book_grid import implied_tick
from services.history.live_grid import BookChange, BookCopy
from services.history.schema import to_e8
from services.history.segments import BOOK_TOP, trades_dataset
from services.history.writer import HistoryWriter, Key, LaneEntry, SymbolLane
from services.market.book_sync import BookSync
from services.market.trade_log import TradeRow
from services.market.views import SyncState, TradeView
from services.store import Candle

NewSymbolHandler = Callable[[str, int], None]
"""Called with (symbol, time of its first delivered trade) once per symbol and run."""


@dataclass(slots=True)
class SymbolBook:
    """What the tap remembers of one symbol's book between calls.

    ``bid``/``ask``: the best levels last queued (``()`` before the first call, so that one
    is always queued); ``was_live``: the LIVE state last seen, which is also the one last
    queued (every change of it is queued); ``last_ms``: the last exchange time seen;
    ``key``: where its states go; ``tick``: the grid's tick (0.0 until known).
    ``snapshots``/``applied``: the book's ``snapshots_applied``/``diffs_applied``
    counters as of what the writer's copy holds (``snapshots`` −1: no copy yet, or a diff
    was missed); ``diffs``: the levels of the diffs applied since the last ``on_book``;
    ``lane``: the symbol's lane when the feed puts its LIVE diffs there (``lane_for``) —
    then every diff is seen either there or by ``on_levels`` and only a new snapshot (or a
    diff ``on_levels`` missed) makes the writer's copy stale — else None."""

    key: Key
    tick: float
    was_live: bool = False
    last_ms: int = 0
    bid: tuple[float, float] | tuple[()] | None = ()
    ask: tuple[float, float] | tuple[()] | None = ()
    snapshots: int = -1
    applied: int = -1
    diffs: list[tuple[list[Level], list[Level]]] = field(default_factory=list)
    lane: SymbolLane | None = None


class HistoryRecorder:
    """A ``FeedTap`` recording one feed's market (``spot`` or ``usdm``) into ``writer``.

    ``ticks``: tick size per symbol (for the grid's bucket height; implied from the book's
    levels when missing). The feed calls ``on_levels`` after each applied diff (before its
    ``on_book``); a caller that does not (or misses one) still records a right grid, at the
    price of a copy of the book at every LIVE ``on_book``. ``on_new_symbol``: told of each
    symbol's first delivered trade (the kline backfill). Holes in the ids are found by the
    writer (``on_hole``), which knows what is stored. ``clock_ms``: the market's clock (ms
    since the epoch; default this machine's), read only for a state change before the
    symbol has any exchange time (the first call, a snapshot turning LIVE): a replay passes
    the exchange's replay clock, so every stored time is the recording's own."""

    def __init__(
        self,
        writer: HistoryWriter,
        market: str,
        *,
        ticks: Mapping[str, float] | None = None,
        on_new_symbol: NewSymbolHandler | None = None,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.writer = writer
        self.clock_ms = clock_ms or _wall_ms
        self.market = market
        self.ticks = dict(ticks or {})
        self.on_new_symbol = on_new_symbol
        self._books: dict[str, SymbolBook] = {}
        self._seen: set[str] = set()
        self._trade_keys: dict[str, tuple[str, Key]] = {}
        self._lane = writer.lane
        self._lanes: dict[str, SymbolLane] = {}

    def _symbol_book(self, symbol: str) -> SymbolBook:
        rec = SymbolBook((self.market, symbol, BOOK_TOP), self.ticks.get(symbol, 0.0))
        rec.lane = self._lanes.get(symbol)
        return rec

    def lane_for(self, symbol: str, kind: str) -> Callable[[object], None]:
        """The put of ``symbol``'s lane, for the feed's hot items (see the module
        docstring); from now on this tap's items for the symbol go there too, in order."""
        lane = self._lanes[symbol] = self._lane.symbol_lane(self.market, symbol, kind)
        self._trade_keys[symbol] = (kind, lane.trades)
        rec = self._books.get(symbol)
        if rec is not None:
            rec.lane = lane
        return lane.put

    def _first_trade(self, symbol: str, time_ms: int) -> None:
        self._seen.add(symbol)
        if self.on_new_symbol is not None:
            self.on_new_symbol(symbol, time_ms)

    def on_trade_row(self, symbol: str, kind: str, row: TradeRow) -> None:
        """The trade just accepted: (id, time ms, price, qty, buyer is maker)."""
        known = self._trade_keys.get(symbol)  # (kind, key): one lookup per trade
        if known is None or known[0] != kind:
            if symbol not in self._seen:
                self._first_trade(symbol, row[1])
            known = self._trade_keys[symbol] = (kind, (self.market, symbol, trades_dataset(kind)))
        lane = self._lanes.get(symbol)
        if lane is not None and lane.trades == known[1]:
            lane.put(row)
        else:
            self._lane.trade_row(known[1], row)

    def on_trades(self, symbol: str, trades: TradeView) -> None:
        if len(trades) == 0:
            return
        if symbol not in self._seen:
            self._first_trade(symbol, int(trades.time_ms[0]))
        lane = self._lanes.get(symbol)
        if lane is not None:
            lane.put(LaneEntry("view", lane.trades, trades))
        else:
            self._lane.trade_view(self.market, symbol, trades)

    def on_levels(
        self, symbol: str, book: BookSync, bids_changed: list[Level], asks_changed: list[Level]
    ) -> None:
        rec = self._books.get(symbol)
        if rec is None:
            rec = self._books[symbol] = self._symbol_book(symbol)
        counters = book.counters
        in_step = rec.lane is not None or rec.applied + 1 == counters.diffs_applied
        if in_step and rec.snapshots == counters.snapshots_applied:
            rec.diffs.append((bids_changed, asks_changed))
            rec.applied = counters.diffs_applied
        else:
            rec.snapshots = -1  # out of step: the next LIVE on_book copies the book

    def on_book(self, symbol: str, book: BookSync) -> None:
        # A dict lookup, two O(1) reads of the top and a few comparisons per call; the
        # top's tuple for the writer is built only when something changed.
        rec = self._books.get(symbol)
        if rec is None:
            rec = self._books[symbol] = self._symbol_book(symbol)
        # A state change without an event (a disconnect) takes the symbol's last exchange
        # time, or before the first one the market's clock: the store keeps market time (a
        # replay plays at the recording's own time).
        time_ms = rec.last_ms = book.event_time_ms or rec.last_ms or self.clock_ms()
        live = book.state is SyncState.LIVE
        levels = book.book
        bid, ask = levels.best_bid(), levels.best_ask()
        counters = book.counters
        change: BookChange = None
        if live and (
            rec.snapshots != counters.snapshots_applied
            or (rec.applied != counters.diffs_applied and rec.lane is None)
        ):  # loaded anew since the writer's copy (or never copied): copy it whole
            rec.snapshots, rec.applied = counters.snapshots_applied, counters.diffs_applied
            rec.diffs = []
            change = BookCopy(levels.bids(), levels.asks(), levels.bid_floor, levels.ask_ceiling)
            if rec.tick <= 0.0:
                rec.tick = implied_tick(np.fromiter(change.bids, np.float64))
        elif rec.diffs:
            change, rec.diffs = rec.diffs, []
        elif live is rec.was_live and bid == rec.bid and ask == rec.ask:
            return  # nothing new: the writer keeps the last top and the second's grid
        rec.was_live, rec.bid, rec.ask = live, bid, ask
        top = (
            bid[0] if bid else 0.0,
            bid[1] if bid else 0.0,
            ask[0] if ask else 0.0,
            ask[1] if ask else 0.0,
        )
        lane = rec.lane
        if lane is not None:
            lane.put(LaneEntry("book", rec.key, (time_ms, live, rec.tick, top, change)))
        else:
            self._lane.book(rec.key, time_ms, live, rec.tick, top, change)

    def on_candle(self, symbol: str, candle: Candle) -> None:
        if not candle.closed or candle.interval != "1m":
            return
        self._lane.candles(self.market, symbol, candle_row(candle, "stream"))


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def candle_row(candle: Candle, source: str, trades: int = -1) -> dict[str, np.ndarray]:
    """One ``Candle`` as ``candles-1m`` columns."""
    prices = to_e8([candle.open, candle.high, candle.low, candle.close])
    volumes = to_e8([candle.volume, candle.taker_buy_volume])
    return {
        "open_ms": np.array([candle.open_time_ms], np.int64),
        "open_e8": prices[0:1],
        "high_e8": prices[1:2],
        "low_e8": prices[2:3],
        "close_e8": prices[3:4],
        "volume_e8": volumes[0:1],
        "taker_buy_e8": volumes[1:2],
        "trades": np.array([trades], np.int64),
        "closed": np.array([candle.closed]),
        "source": np.array([source], dtype=object),
    }


def kline_columns(bars: list[KlineBar], source: str) -> dict[str, np.ndarray]:
    """Kline bars as ``candles-1m`` columns."""
    n = len(bars)
    return {
        "open_ms": np.fromiter((b.t for b in bars), np.int64, n),
        "open_e8": to_e8([b.o for b in bars]),
        "high_e8": to_e8([b.h for b in bars]),
        "low_e8": to_e8([b.l for b in bars]),
        "close_e8": to_e8([b.c for b in bars]),
        "volume_e8": to_e8([b.v for b in bars]),
        "taker_buy_e8": to_e8([b.V for b in bars]),
        "trades": np.fromiter((b.n for b in bars), np.int64, n),
        "closed": np.fromiter((b.x for b in bars), bool, n),
        "source": np.array([source] * n, dtype=object),
    }
