"""``AlertTap``: evaluates the rules on the feed's own messages, in the ingest process.

Rules are indexed by symbol (plus the "*" rules), so a message costs one dictionary lookup
when its symbol has no rules, whatever the rules on other symbols; within a symbol each
kind keeps its thresholds precomputed (``trade_kinds``, ``book_kinds``). Firings go to the
``Dispatcher``'s queue; nothing slow runs on the feed's thread.

The index is rebuilt on a thread of its own when the rule store's version changes (a web
worker wrote), and swapped in whole; evaluator state (armed flags, the last price, walls
being watched) carries over for rules that did not change.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from services.alerts.book_kinds import BOOK_EVERY_MS, Band, Imbalance, Walls, band, mid_price
from services.alerts.delivery import Dispatcher
from services.alerts.firing import Cooldown, Firing
from services.alerts.rule_store import RuleStore
from services.alerts.rules import ANY_SYMBOL, Rule
from services.alerts.trade_kinds import FlowChange, LargeTrades, PriceCrossings, PriceMove
from services.market.book_sync import BookSync
from services.market.views import SyncState, TradeView
from services.store import Candle

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _BookRules:
    walls: list[Walls] = field(default_factory=list)
    imbalances: list[Imbalance] = field(default_factory=list)
    bps: float = 0.0
    last: Band | None = None
    last_ms: int = -BOOK_EVERY_MS


@dataclass(slots=True)
class _Index:
    rules: dict[str, Rule] = field(default_factory=dict)
    trades: dict[str, list] = field(default_factory=dict)
    any_trades: list = field(default_factory=list)
    books: dict[str, _BookRules] = field(default_factory=dict)
    prices: dict[str, PriceCrossings] = field(default_factory=dict)
    singles: dict[str, object] = field(default_factory=dict)


def _build(rules: list[Rule], fired: dict, old: _Index) -> _Index:
    """The index of the enabled ``rules``, reusing ``old``'s evaluators of unchanged rules."""
    index = _Index(rules={r.id: r for r in rules if r.enabled})
    large: dict[str, list[Rule]] = {}
    price: dict[str, list[Rule]] = {}
    for rule in index.rules.values():
        if rule.kind == "large_trade":
            large.setdefault(rule.symbol, []).append(rule)
        elif rule.kind == "price":
            price.setdefault(rule.symbol, []).append(rule)
        else:
            kept = old.singles.get(rule.id)
            if kept is None or kept.rule != rule:  # type: ignore[attr-defined]
                kept = {"wall": Walls, "imbalance": Imbalance, "flow": FlowChange}.get(
                    rule.kind, PriceMove
                )(rule)
            index.singles[rule.id] = kept
            if isinstance(kept, Walls | Imbalance):
                book = index.books.setdefault(rule.symbol, _BookRules())
                (book.walls if isinstance(kept, Walls) else book.imbalances).append(kept)
                book.bps = max(book.bps, kept.bps)
            if isinstance(kept, FlowChange | PriceMove):
                _trade_list(index, rule.symbol).append(kept)
    for symbol, group in large.items():
        _trade_list(index, symbol).append(LargeTrades(group, fired))
    for symbol, group in price.items():
        crossings = PriceCrossings(group, fired, old.prices.get(symbol))
        index.prices[symbol] = crossings
        _trade_list(index, symbol).append(crossings)
    return index


def _trade_list(index: _Index, symbol: str) -> list:
    if symbol == ANY_SYMBOL:
        return index.any_trades
    return index.trades.setdefault(symbol, [])


class AlertTap:
    """A ``FeedTap`` evaluating the rules of ``rules`` and handing firings to
    ``dispatcher`` (see the module docstring). ``start()`` loads the rules and the trade
    ids already fired on (from the event log) and begins watching for rule changes."""

    def __init__(self, rules: RuleStore, dispatcher: Dispatcher, reload_s: float = 0.5) -> None:
        self.rules = rules
        self.dispatcher = dispatcher
        self.reload_s = reload_s
        self.cooldown = Cooldown()
        self.fired: dict[tuple[str, str], int] = {}
        self._index = _Index()
        self._version: int | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> AlertTap:
        self.fired.update(self.dispatcher.events.fired_trade_ids())
        self.dispatcher.start()
        self.refresh()
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="alert-rules", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(2.0)
        self.dispatcher.stop()

    def refresh(self) -> bool:
        """Rebuild the index when the rule store changed; True when it did."""
        with self._lock:
            version = self.rules.version()
            if version == self._version:
                return False
            self._index = _build(self.rules.all(), self.fired, self._index)
            self._version = version
            return True

    def _watch(self) -> None:
        while not self._stopping.wait(self.reload_s):
            try:
                self.refresh()
            except Exception:
                log.exception("alert rules not reloaded")

    # -- FeedTap ---------------------------------------------------------------------------

    def on_trades(self, symbol: str, trades: TradeView) -> None:
        index = self._index
        evaluators = index.trades.get(symbol)
        book = index.books.get(symbol)
        if book is not None and book.walls:
            for walls in book.walls:
                walls.on_trades(trades)
        if evaluators is None and not index.any_trades:
            return
        out: list[Firing] = []
        for evaluator in evaluators or ():
            evaluator.on_trades(symbol, trades, self.cooldown, out)
        for evaluator in index.any_trades:
            evaluator.on_trades(symbol, trades, self.cooldown, out)
        if out:
            self.dispatcher.submit(out)

    def on_book(self, symbol: str, book: BookSync) -> None:
        rules = self._index.books.get(symbol)
        if rules is None:
            return
        mid = mid_price(book.book) if book.state is SyncState.LIVE else None
        if mid is None:
            for evaluator in (*rules.walls, *rules.imbalances):
                evaluator.reset()
            rules.last_ms = -BOOK_EVERY_MS
            return
        now = book.event_time_ms
        if 0 <= now - rules.last_ms < BOOK_EVERY_MS:
            return
        rules.last_ms = now
        levels = rules.last = band(book.book, mid, rules.bps, rules.last)
        out: list[Firing] = []
        for evaluator in (*rules.walls, *rules.imbalances):
            evaluator.on_book(symbol, book, levels, self.cooldown, out)
        if out:
            self.dispatcher.submit(out)

    def on_candle(self, symbol: str, candle: Candle) -> None:
        """Candles are not needed: every kind reads trades or the book."""
