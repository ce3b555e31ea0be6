"""``AlertThread``: the ``AlertTap`` run on a thread of its own, off the feed's thread.

The feed's thread only decides whether a message concerns a rule (one dictionary lookup
for a symbol without rules, nothing else) and, when it does, puts what the message carried
on a queue — a ``deque`` the alert thread polls every ``POLL_S`` (1 ms; ``IDLE_POLL_S``,
10 ms, once nothing came for ``IDLE_AFTER_S``, so an idle process spends ~0.2 % of a core
on it instead of ~1.7 %), so appending costs no lock and no wake-up call: a trade released
alone as its row (``on_trade_row``: the feed builds no ``TradeView`` for it), a released batch
(``on_trades``, an immutable ``TradeView``), a diff's already-decoded levels with the
book's update id and event time after it (``on_levels``), or a sync-state change
(``on_book``). The alert thread takes them in the feed's order and hands them to the
``AlertTap`` exactly as the feed would have, so every event is still decided per message,
with that message's time and update id.

The book kinds read the book (the mid after each diff; the whole band when the book turns
LIVE or the band re-centres), and the feed's book has moved on by the time the alert thread
runs. So the alert thread keeps its own *mirror* of each ruled symbol's book: the feed's
thread copies the book (``OrderBook.copy``, O(levels), no sort) when it turns LIVE, after a
snapshot or resume, and after the rules changed; from then on every applied diff's levels
are applied to the mirror in order, so the mirror equals the feed's book at each step the
tap sees. A book that leaves LIVE drops its mirror.

``processed``: queue items handled. ``errors``: items whose evaluation raised (logged; the
thread goes on). ``backlog()``: items waiting. ``drain()`` waits until every item put so
far is handled (tests, benchmarks).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from services.alerts.firing import Trades
from services.alerts.tap import AlertTap
from services.binance.messages import Level
from services.market.book_sync import BookSync
from services.market.order_book import OrderBook
from services.market.trade_log import TradeRow
from services.market.views import SyncState, TradeView
from services.store import Candle

log = logging.getLogger(__name__)

_TRADE, _TRADES, _LEVELS, _BOOK, _MARK = range(5)
_LIVE = SyncState.LIVE
POLL_S = 0.001
IDLE_POLL_S = 0.01
IDLE_AFTER_S = 1.0


@dataclass(slots=True)
class MirrorBook:
    """The alert thread's copy of one symbol's ``BookSync``, as the tap reads it."""

    state: SyncState
    last_update_id: int
    event_time_ms: int
    book: OrderBook


class AlertThread:
    """A ``FeedTap`` (with ``on_levels`` and ``on_trade_row``) queuing the feed's messages for
    ``tap``, evaluated on the thread ``start()`` begins (see the module docstring)."""

    def __init__(self, tap: AlertTap) -> None:
        self.tap = tap
        self.dispatcher = tap.dispatcher
        self.processed = 0
        self.errors = 0
        self._queue: deque = deque()
        self._put = self._queue.append
        self._stopping = False
        # feed's thread: the rule index the mirrors were started under, the update id
        # each mirror will be at once the queue is handled, and the diffs whose levels
        # message also stands for that diff's on_book
        self._seen = None
        self._mirrored: dict[str, int] = {}
        self._implied: dict[str, int] = {}
        # alert thread
        self._mirrors: dict[str, MirrorBook] = {}
        self._thread: threading.Thread | None = None

    def start(self) -> AlertThread:
        """Begin the alert thread (the tap is started by its owner: ``AlertTap.start``)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="alert-eval", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Handle what is queued, then stop the thread and the tap."""
        if self._thread is not None:
            self._stopping = True
            self._thread.join(5.0)
            self._thread = None
        self.tap.stop()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every item queued before this call is handled; False on timeout."""
        done = threading.Event()
        self._put((_MARK, done))
        return done.wait(timeout)

    def backlog(self) -> int:
        return len(self._queue)

    # -- FeedTap, on the feed's thread ------------------------------------------------------

    def on_trade_row(self, symbol: str, kind: str, row: TradeRow) -> None:
        index = self.tap.index
        if symbol in index.trade_symbols or index.any_trades:
            self._put((_TRADE, symbol, row))

    def on_trades(self, symbol: str, trades: TradeView) -> None:
        index = self.tap.index
        if symbol in index.trade_symbols or index.any_trades:
            self._put((_TRADES, symbol, trades))

    def on_levels(
        self, symbol: str, book: BookSync, bids_changed: list[Level], asks_changed: list[Level]
    ) -> None:
        index = self.tap.index
        if symbol not in index.books:
            return
        if index is not self._seen:
            self._forget_mirrors(index)
        if symbol not in self._mirrored:
            return
        if book.state is not _LIVE:
            del self._mirrored[symbol]
            return
        uid = book.last_update_id
        self._put((_LEVELS, symbol, bids_changed, asks_changed, uid, book.event_time_ms))
        self._mirrored[symbol] = self._implied[symbol] = uid

    def on_book(self, symbol: str, book: BookSync) -> None:
        uid = book.last_update_id
        if self._implied.pop(symbol, None) == uid:
            return  # this diff's levels message calls on_book after on_levels
        index = self.tap.index
        if symbol not in index.books:
            return
        if index is not self._seen:
            self._forget_mirrors(index)
        state = book.state
        copy = None
        if state is not _LIVE:
            self._mirrored.pop(symbol, None)
        elif self._mirrored.get(symbol) != uid:
            copy = book.book.copy()
            self._mirrored[symbol] = uid
        self._put((_BOOK, symbol, state, uid, book.event_time_ms, copy))

    def on_candle(self, symbol: str, candle: Candle) -> None:
        """Candles are not needed: every kind reads trades or the book."""

    def _forget_mirrors(self, index: object) -> None:
        """The rules changed: a symbol may have had no book rule for a while (its diffs
        were not queued), so every mirror is copied afresh at its symbol's next on_book."""
        self._seen = index
        self._mirrored.clear()

    # -- the alert thread -----------------------------------------------------------------

    def _run(self) -> None:
        """Handle the queue, then look again every ``POLL_S`` (``IDLE_POLL_S`` when idle):
        the feed's thread only appends to a deque (no lock, no wake-up call per message)."""
        queue, take = self._queue, self._queue.popleft
        last_item = time.monotonic()
        while True:
            if not queue:
                if self._stopping:
                    return
                idle = time.monotonic() - last_item > IDLE_AFTER_S
                time.sleep(IDLE_POLL_S if idle else POLL_S)
                continue
            last_item = time.monotonic()
            item = take()
            try:
                self._handle(item)
            except Exception:
                self.errors += 1
                log.exception("alert evaluation failed on %s", item[1])
            self.processed += 1

    def _handle(self, item: tuple) -> None:
        tag = item[0]
        tap = self.tap
        if tag == _LEVELS:
            _, symbol, bids, asks, uid, time_ms = item
            mirror = self._mirrors[symbol]
            if bids:
                mirror.book.apply_bids(bids)
            if asks:
                mirror.book.apply_asks(asks)
            mirror.state, mirror.last_update_id, mirror.event_time_ms = _LIVE, uid, time_ms
            tap.on_levels(symbol, mirror, bids, asks)  # type: ignore[arg-type]
            tap.on_book(symbol, mirror)  # type: ignore[arg-type]
        elif tag == _TRADE:
            _, symbol, (trade_id, time_ms, price, qty, buyer_maker) = item
            side = -1.0 if buyer_maker else 1.0
            tap.on_rows(symbol, Trades([trade_id], [time_ms], [price], [qty], [side]))
        elif tag == _TRADES:
            tap.on_trades(item[1], item[2])
        elif tag == _BOOK:
            _, symbol, state, uid, time_ms, copy = item
            mirror = self._mirrors.get(symbol)
            if copy is not None or mirror is None:
                mirror = MirrorBook(state, uid, time_ms, copy if copy is not None else OrderBook())
                self._mirrors[symbol] = mirror
            else:
                mirror.state, mirror.last_update_id, mirror.event_time_ms = state, uid, time_ms
            tap.on_book(symbol, mirror)  # type: ignore[arg-type]
        elif tag == _MARK:
            item[1].set()
