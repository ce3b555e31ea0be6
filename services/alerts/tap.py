"""``AlertTap``: evaluates the rules on the feed's own messages, in the ingest process.

Rules are indexed by symbol (plus the "*" rules), so a message costs one dictionary lookup
when its symbol has no rules, whatever the rules on other symbols; within a symbol each
kind keeps its thresholds precomputed (``trade_kinds``, ``book_kinds``). Firings go to the
``Dispatcher``'s queue; nothing slow runs on the feed's thread.

Book kinds follow the feed's diffs level by level: the feed hands ``on_levels`` the levels
each applied diff carried; the tap cuts each side to the symbol's widest band
(``book_kinds.in_band``), keeps the quantities within the band (to know each level's old
quantity) and passes the band's levels on — a level set to the quantity it already had is
passed too, and changes nothing (it adds 0 to an imbalance's sums and leaves a wall as it
was). The whole band is read only when the book turns LIVE and when the mid moves enough to
re-centre the band (``book_kinds``). The mid is computed once per diff. A feed that does not
call ``on_levels`` still gets the right answers: ``on_book`` then sees a book the tap has
not followed and reads the whole band.

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
    BandLevels,
    Imbalance,
    Walls,
    band,
    bounds,
    in_band,
    mid_price,
    recentred,
)
from services.alerts.delivery import Dispatcher
from services.alerts.firing import Cooldown, Firing, Trades
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
    ``centre`` and ``low``/``high`` the band now, ``shift`` how far the mid may move from
    the centre before the band is re-centred (``recentred``), ``held`` the
    quantities within it (a level removed since the last full read is kept at 0) and the
    mid after the diff of update id ``mid_id`` (computed once per diff, in ``on_levels``,
    and read again by that diff's ``on_book``), ``followed_id`` the book's update id they
    match (None: not followed)."""

    walls: list[Walls] = field(default_factory=list)
    imbalances: list[Imbalance] = field(default_factory=list)
    bps: float = 0.0
    narrowest: float = float("inf")
    last: Band | None = None
    centre: float | None = None
    shift: float = 0.0
    low: float = 0.0
    high: float = 0.0
    held: BandLevels = field(default_factory=lambda: BandLevels({}, {}))
    followed_id: int | None = None
    mid_id: int | None = None


@dataclass(slots=True)
class _Index:
    """The enabled rules by symbol. ``trade_symbols``: the symbols whose trades some rule
    reads (trade kinds, and walls, which count the trades at their price); with "*" rules
    (``any_trades``) every symbol's trades are read."""

    rules: dict[str, Rule] = field(default_factory=dict)
    trades: dict[str, list] = field(default_factory=dict)
    any_trades: list = field(default_factory=list)
    books: dict[str, _BookRules] = field(default_factory=dict)
    prices: dict[str, PriceCrossings] = field(default_factory=dict)
    singles: dict[str, object] = field(default_factory=dict)
    trade_symbols: frozenset[str] = frozenset()


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
    index.trade_symbols = frozenset(index.trades) | {s for s, b in index.books.items() if b.walls}
    return index


def _on_update(firings: list[Firing], update_id: int) -> list[Firing]:
    """Book firings carry the final update id ``u`` of the diff (or snapshot) after which
    they were decided: Binance's, increasing per symbol and the same on every worker, so a
    sharded hand-over's two owners claim each event once (``redis_backend``)."""
    for firing in firings:
        firing.details["update_id"] = update_id
    return firings


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
        self.index = _Index()
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
            self.index = _build(self.rules.all(), self.fired, self.index)
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
        """The batch's columns are converted to lists once and shared by every evaluator."""
        index = self.index
        if symbol in index.trade_symbols or index.any_trades:
            self.on_rows(symbol, Trades.of(trades))

    def on_rows(self, symbol: str, rows: Trades) -> None:
        """Evaluate a batch of ``symbol``'s trades, given as lists."""
        index = self.index
        evaluators = index.trades.get(symbol)
        book = index.books.get(symbol)
        walls = book.walls if book is not None else None
        if evaluators is None and not index.any_trades and not walls:
            return
        for wall in walls or ():
            wall.on_trades(rows)
        out: list[Firing] = []
        for evaluator in evaluators or ():
            evaluator.on_trades(symbol, rows, self.cooldown, out)
        for evaluator in index.any_trades:
            evaluator.on_trades(symbol, rows, self.cooldown, out)
        if out:
            self.dispatcher.submit(out)

    def on_levels(
        self, symbol: str, book: BookSync, bids_changed: list[Level], asks_changed: list[Level]
    ) -> None:
        """A diff was applied to ``book``: follow the levels it set within the band
        (O(log levels of the diff + levels changed in the band), plus a full band read when
        the mid moved far enough to re-centre it). The mid is kept for this diff's
        ``on_book``."""
        rules = self.index.books.get(symbol)
        if rules is None or rules.followed_id is None or book.state is not SyncState.LIVE:
            return
        mid = mid_price(book.book)
        if mid is None:
            return
        held = rules.held
        held.mid, rules.mid_id = mid, book.last_update_id
        out: list[Firing] = []
        if abs(mid - rules.centre) >= rules.shift:  # type: ignore[operator]
            self._read_band(symbol, book, rules, mid, out)
        else:
            low, high = rules.low, rules.high
            bids = in_band(bids_changed, low, high)
            asks = in_band(asks_changed, low, high)
            for side, changed, side_held in (("bid", bids, held.bids), ("ask", asks, held.asks)):
                if changed:
                    for imbalance in rules.imbalances:
                        imbalance.on_levels(side, changed, side_held)
                    side_held.update(changed)
            if bids or asks:
                now = book.event_time_ms
                for wall in rules.walls:
                    wall.on_levels(symbol, bids, asks, held, now, self.cooldown, out)
            rules.followed_id = book.last_update_id
        if out:
            self.dispatcher.submit(_on_update(out, book.last_update_id))
        self._tell_ended(symbol, rules, book.last_update_id)

    def _tell_ended(self, symbol: str, rules: _BookRules, update_id: int) -> None:
        """Hand the dispatcher the imbalance episodes that ended on this update (after the
        update's firings, in the same queue)."""
        for imbalance in rules.imbalances:
            if imbalance.episode_ended:
                imbalance.episode_ended = False
                self.dispatcher.end_episode(imbalance.rule, symbol, update_id)

    def _adopt(self, symbol: str, imbalances: list[Imbalance]) -> None:
        """New imbalance rules on ``symbol`` take the event log's open episodes (a log
        shared by workers: Redis; none elsewhere)."""
        events = getattr(self.dispatcher, "events", None)
        open_episodes = getattr(events, "open_episodes", None)
        try:
            opened = open_episodes(symbol) if open_episodes is not None else set()
        except Exception:
            log.exception("open imbalance episodes of %s not read", symbol)
            opened = set()
        for imbalance in imbalances:
            imbalance.adopt(imbalance.rule.id in opened)

    def on_book(self, symbol: str, book: BookSync) -> None:
        rules = self.index.books.get(symbol)
        if rules is None:
            return
        if book.state is not SyncState.LIVE:
            mid = None
        elif rules.mid_id == book.last_update_id and rules.followed_id == rules.mid_id:
            mid = rules.held.mid  # this diff's, from on_levels
        else:
            mid = mid_price(book.book)
        if mid is None:
            for evaluator in (*rules.walls, *rules.imbalances):
                evaluator.reset()
            rules.followed_id = rules.centre = rules.mid_id = None
            return
        out: list[Firing] = []
        now = book.event_time_ms
        if rules.followed_id != book.last_update_id:
            centre = recentred(rules.centre, mid, rules.narrowest * RECENTRE_FRACTION)
            self._read_band(symbol, book, rules, centre, out)
        rules.held.mid = mid
        for wall in rules.walls:
            wall.on_time(symbol, rules.held, now, self.cooldown, out)
        for imbalance in rules.imbalances:
            imbalance.check(symbol, mid, now, self.cooldown, out)
        if out:
            self.dispatcher.submit(_on_update(out, book.last_update_id))
        self._tell_ended(symbol, rules, book.last_update_id)

    def _read_band(
        self, symbol: str, book: BookSync, rules: _BookRules, centre: float, out: list[Firing]
    ) -> None:
        """The full path: read the band around ``centre`` and hand it to every rule."""
        levels = rules.last = band(book.book, centre, rules.bps, rules.last)
        rules.centre = centre
        rules.shift = centre * (rules.narrowest * RECENTRE_FRACTION) / 10_000.0
        rules.low, rules.high = bounds(centre, rules.bps)
        rules.held = BandLevels(
            dict(zip(levels.bid_prices.tolist(), levels.bid_qtys.tolist(), strict=True)),
            dict(zip(levels.ask_prices.tolist(), levels.ask_qtys.tolist(), strict=True)),
            mid_price(book.book) or centre,
        )
        rules.followed_id = book.last_update_id
        fresh = [imbalance for imbalance in rules.imbalances if not imbalance.adopted]
        if fresh:
            self._adopt(symbol, fresh)
        for evaluator in (*rules.walls, *rules.imbalances):
            evaluator.on_book(symbol, book, levels, self.cooldown, out)

    def on_candle(self, symbol: str, candle: Candle) -> None:
        """Candles are not needed: every kind reads trades or the book."""
