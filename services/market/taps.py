"""Feed taps: what other rooms (history, alerts, push streams) receive from the feed as it
happens, without reading the store.

A ``FeedTap`` is handed to ``Feed(config, store, taps=...)``. The feed calls it on its own
event-loop thread, right after its state machine accepted a message, so a tap must return
quickly and do any slow work (disk, network) on a thread or queue of its own. An exception
raised by a tap is counted (``FeedCounters.tap_errors``) and logged; it never reaches the
feed's state or the other taps.

What each call guarantees:

- ``on_trades(symbol, trades)``: trades accepted into the symbol's trade log, each exactly
  once per feed, in increasing id order across calls — as soon as they are released
  (immediately for in-sequence trades; after the REST backfill for trades held behind a gap).
  Rows that the REST warm-up merges in *before* trades already delivered are not delivered
  (a tap that needs them fetches them itself, e.g. ``aggTrades?fromId=``).
- ``on_book(symbol, book)``: after a diff, a snapshot or a disconnect changed the book or its
  sync state. Read what you need right away (``book.state``, ``book.book.best_bid()``,
  ``book.book.bid_arrays(n)``); never keep a reference, the next frame mutates it.
- ``on_candle(symbol, candle)``: after each kline frame (the bar so far, or closed).
- ``on_trade_row(symbol, kind, row)`` — optional, called only on taps that define it:
  the one trade just accepted and released, as decoded (``row``: a
  ``trade_log.TradeRow``; ``kind``: the log's, ``aggTrade`` or ``trade``), instead of
  ``on_trades`` with a one-trade view, which costs the feed a view per trade. Several
  trades released at once (after a backfill) still come as ``on_trades``.
- ``on_levels(symbol, book, bids_changed, asks_changed)`` — optional, called only on taps
  that define it: right after each diff is applied to the book (before that diff's
  ``on_book``), with the ``(price, qty)`` levels it set (qty 0: removed), so a tap can
  follow the book in O(levels changed). Not called for the diffs a snapshot replays from
  its buffer: the ``on_book`` after a snapshot has a new ``book.last_update_id`` and the
  tap reads the book afresh.
- ``lane_for(symbol, kind)`` — optional: asked once per symbol when the feed adds it, it
  returns a callable ``put`` (e.g. a bound ``deque.append``: a builtin, no Python frame on
  the feed's thread) that then takes the symbol's two hot messages instead of the hooks:
  each trade released alone in sequence as its ``TradeRow`` (no ``on_trade_row``, no view)
  and each diff applied to a book that was LIVE before and after it as the decoded
  ``DepthUpdate`` (no ``on_levels``, no ``on_book``; the book is LIVE at the diff's event
  time ``E`` and is exactly the last state the tap saw plus the diff's levels). A diff
  that does not change a LIVE book (a duplicate) reaches the tap nowhere. Everything else
  still comes through the hooks, including ``on_levels`` for every other applied diff, so
  every applied diff is seen once, by ``put`` or by ``on_levels``.
"""

from __future__ import annotations

from typing import Protocol

from services.binance.messages import Level
from services.market.book_sync import BookSync
from services.market.views import TradeView
from services.store import Candle


class FeedTap(Protocol):
    """A consumer of the feed's accepted messages (see the module docstring)."""

    def on_trades(self, symbol: str, trades: TradeView) -> None: ...

    def on_book(self, symbol: str, book: BookSync) -> None: ...

    def on_candle(self, symbol: str, candle: Candle) -> None: ...


class LevelTap(FeedTap, Protocol):
    """A ``FeedTap`` that also follows the book level by level (``on_levels``)."""

    def on_levels(
        self, symbol: str, book: BookSync, bids_changed: list[Level], asks_changed: list[Level]
    ) -> None: ...
