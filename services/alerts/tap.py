"""``AlertTap``: evaluates the rules on the feed's own messages, in the ingest process.

Rules are indexed by symbol (plus the "*" rules), so a message costs one dictionary lookup
when its symbol has no rules, whatever the rules on other symbols; within a symbol each
kind keeps its thresholds precomputed (``trade_kinds``, ``book_kinds``). Firings go to the
``Dispatcher``'s queue; nothing slow runs on the feed's thread.

Book kinds follow the feed's diffs level by level: the feed hands ``on_levels`` the levels
each applied diff carried, the tap keeps the quantities within the symbol's widest band
(to know each level's change) and passes on only those within it; the whole band is read
only when the book turns LIVE and when the mid moves enough to re-centre the band
(``book_kinds``). A feed that does not call ``on_levels`` still gets the right answers:
``on_book`` then sees a book the tap has not followed and reads the whole band.

The index is rebuilt on a thread of its own when the rule store's version changes (a web
worker wrote), and swapped in whole; evaluator state (armed flags, the last price, walls
being watched) carries over for rules that did not change.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from services.alerts.book_kinds import (
    RECENTRE_FRACTION,
    Band,
    Imbalance,
    Walls,
    band,
    bounds,
    mid_price,
    recentred,
)
from services.alerts.delivery import Dispatcher
from services.alerts.firing import Cooldown, Firing
from services.alerts.rule_store import RuleStore
from services.alerts.rules import ANY_SYMBOL, Rule
from services.alerts.trade_kinds import FlowChange, LargeTrades, PriceCrossings, PriceMove
from services.binance.messages import Level
from services.market.book_sync import BookSync
from services.market.views import SyncState, TradeView
from services.store import Candle

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _BookRules:
    """A symbol's book rules and the band they are followed in: ``bps`` the widest band,
    ``narrowest`` the narrowest (it sets how far the mid may move before re-centring),
    ``centre`` and ``low``/``high`` the band now, ``bids``/``asks`` the quantities within
    it, ``followed_id`` the book's update id they match (None: not followed)."""

    walls: list[Walls] = field(default_factory=list)
    imbalances: list[Imbalance] = field(default_factory=list)
    bps: float = 0.0
    narrowest: float = float("inf")
    last: Band | None = None
    centre: float | None = None
    low: float = 0.0
    high: float = 0.0
    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)
    followed_id: int | None = None


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
                book.narrowest = min(book.narrowest, kept.bps)
            if isinstance(kept, FlowChange | PriceMove):
                _trade_list(index, rule.symbol).append(kept)
    for symbol, group in large.items():
        _trade_list(index, symbol).append(LargeTrades(group, fired))
    for symbol, group in price.items():
        crossings = PriceCrossings(group, fired, old.prices.get(symbol))
        index.prices[symbol] = crossings
        _trade_list(index, symbol).append(crossings)
    return index


def _follow(changed: dict[float, float], held: dict[float, float]) -> dict:
    """Set the band's ``held`` quantities to the ``changed`` ones; returns price → (old,
    new) for those that did change, and drops the others from ``changed``."""
    moved: dict[float, tuple[float, float]] = {}
    for price, qty in changed.items():
        old = held.pop(price, 0.0)
        if qty:
            held[price] = qty
        if qty != old:
            moved[price] = (old, qty)
    if len(moved) != len(changed):
        for price in [p for p in changed if p not in moved]:
            del changed[price]
    return moved


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

    def on_levels(
        self, symbol: str, book: BookSync, bids_changed: list[Level], asks_changed: list[Level]
    ) -> None:
        """A diff was applied to ``book``: follow the levels it set (O(levels changed),
        plus a full band read when the mid moved far enough to re-centre it)."""
        rules = self._index.books.get(symbol)
        if rules is None or rules.followed_id is None or book.state is not SyncState.LIVE:
            return
        mid = mid_price(book.book)
        if mid is None:
            return
        out: list[Firing] = []
        centre = recentred(rules.centre, mid, rules.narrowest * RECENTRE_FRACTION)
        if centre != rules.centre:
            self._read_band(symbol, book, rules, centre, out)
        else:
            now, low, high = book.event_time_ms, rules.low, rules.high
            # the band's levels the diff set (a price set twice: its last quantity)
            bids = {p: q for p, q in bids_changed if low <= p <= high}
            asks = {p: q for p, q in asks_changed if low <= p <= high}
            for side, changed, held in (("bid", bids, rules.bids), ("ask", asks, rules.asks)):
                moved = _follow(changed, held)
                if moved:
                    for imbalance in rules.imbalances:
                        imbalance.on_levels(side, moved)
            if bids or asks:
                for wall in rules.walls:
                    wall.on_levels(symbol, bids, asks, mid, now, self.cooldown, out)
            rules.followed_id = book.last_update_id
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
            rules.followed_id = rules.centre = None
            return
        out: list[Firing] = []
        now = book.event_time_ms
        if rules.followed_id != book.last_update_id:
            centre = recentred(rules.centre, mid, rules.narrowest * RECENTRE_FRACTION)
            self._read_band(symbol, book, rules, centre, out)
        for wall in rules.walls:
            wall.on_time(symbol, mid, now, self.cooldown, out)
        for imbalance in rules.imbalances:
            imbalance.check(symbol, mid, now, self.cooldown, out)
        if out:
            self.dispatcher.submit(out)

    def _read_band(
        self, symbol: str, book: BookSync, rules: _BookRules, centre: float, out: list[Firing]
    ) -> None:
        """The full path: read the band around ``centre`` and hand it to every rule."""
        levels = rules.last = band(book.book, centre, rules.bps, rules.last)
        rules.centre = centre
        rules.low, rules.high = bounds(centre, rules.bps)
        rules.bids = dict(zip(levels.bid_prices.tolist(), levels.bid_qtys.tolist(), strict=True))
        rules.asks = dict(zip(levels.ask_prices.tolist(), levels.ask_qtys.tolist(), strict=True))
        rules.followed_id = book.last_update_id
        for evaluator in (*rules.walls, *rules.imbalances):
            evaluator.on_book(symbol, book, levels, self.cooldown, out)

    def on_candle(self, symbol: str, candle: Candle) -> None:
        """Candles are not needed: every kind reads trades or the book."""
