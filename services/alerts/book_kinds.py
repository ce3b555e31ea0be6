"""Kinds evaluated on the order book: wall and imbalance.

Both watch the levels within ± ``band_bps`` of a *centre*: the mid, re-centred only when
the mid has moved away from the centre by ``RECENTRE_FRACTION`` of the narrowest band on
the symbol (``recentred``), so the band stays put between re-centres and each diff is
followed level by level:

- ``on_book`` (the full path, O(levels in the band)): reads the whole band — when the book
  turns LIVE, and at each re-centre (walls the band left behind are dropped silently,
  levels it reaches are taken as they come);
- ``on_levels`` (the incremental path, O(levels the diff set within the band)): a wall's
  size, a new wall, the imbalance's running band sums;
- ``on_time``/``check`` (O(walls leaving) / O(1)): decisions that wait on time (a pull's
  confirmation, an imbalance's hold).

Evaluating the full path after every diff (the plain loop the tests compare with) and the
incremental one give the same firings. Both kinds are handed only a LIVE book (an unsynced
book is never taken for the market; the tap calls ``reset()`` when the book leaves LIVE).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from operator import itemgetter

import numpy as np

from services.alerts.firing import Cooldown, Firing, Trades
from services.alerts.rules import Rule
from services.binance.messages import Level
from services.market.book_sync import BookSync
from services.market.order_book import OrderBook

CONFIRM_MS = 1000
"""How long (exchange time) trades may still arrive for a level that left the book before
a wall's pull is decided: trades and depth come on separate streams."""
RECENTRE_FRACTION = 0.1
"""The band is re-centred on the mid once the mid is this fraction of the narrowest band
(in bps of the centre) away from the centre."""
_PRICE = itemgetter(0)


def mid_price(book: OrderBook) -> float | None:
    bid, ask = book.best_bid(), book.best_ask()
    if bid is None or ask is None:
        return None
    return (bid[0] + ask[0]) / 2.0


def recentred(centre: float | None, mid: float, bucket_bps: float) -> float:
    """The band's centre once the mid is ``mid``: ``centre`` while the mid is less than
    ``bucket_bps`` of it away, else the mid (also when there is no centre yet)."""
    if centre is not None and abs(mid - centre) < centre * bucket_bps / 10_000.0:
        return centre
    return mid


SORT_FROM = 32
"""Levels on one side of a diff from which ``in_band`` sorts and bisects rather than tests
each level (measured on the recorded diffs: below this a plain test per level is faster)."""


def in_band(levels: list[Level], low: float, high: float) -> dict[float, float]:
    """The levels of one side of a diff within ``[low, high]``: price → qty (a price set
    twice in one diff: its last quantity).

    Binance does not document the order of a diff's levels (spot sends bids descending and
    asks ascending; the USD-M recording's bids come ascending), so a long side is sorted
    by price first (stable, so a repeated price keeps the diff's order; a side already in
    either order costs one pass in C) and cut with two bisections; a short side (fewer than
    ``SORT_FROM`` levels, the usual depth@100ms diff) is tested level by level."""
    if len(levels) < SORT_FROM:
        return {p: q for p, q in levels if low <= p <= high}
    ordered = sorted(levels, key=_PRICE)
    first = bisect_left(ordered, low, key=_PRICE)
    end = bisect_right(ordered, high, key=_PRICE)
    return dict(ordered[first:end])


def bounds(centre: float, bps: float) -> tuple[float, float]:
    """The lowest and highest price within ± ``bps`` of ``centre`` (inclusive); every
    path uses this one expression so they agree on the levels at the edge."""
    span = centre * bps / 10_000.0
    return centre - span, centre + span


@dataclass(frozen=True, slots=True)
class Band:
    """The book within ± ``bps`` of ``mid`` (the band's centre): bid prices descending and
    ask prices ascending, with their quantities (numpy arrays)."""

    mid: float
    bps: float
    bid_prices: np.ndarray
    bid_qtys: np.ndarray
    ask_prices: np.ndarray
    ask_qtys: np.ndarray

    def qty_at(self, side: str, price: float) -> float:
        """Resting quantity at ``price`` on ``side`` (0 when the level is absent)."""
        if side == "bid":
            i = int(np.searchsorted(-self.bid_prices, -price))
            found = i < self.bid_prices.size and self.bid_prices[i] == price
            return float(self.bid_qtys[i]) if found else 0.0
        i = int(np.searchsorted(self.ask_prices, price))
        found = i < self.ask_prices.size and self.ask_prices[i] == price
        return float(self.ask_qtys[i]) if found else 0.0


@dataclass(slots=True)
class BandLevels:
    """What the tap follows of a symbol's book within its widest band: the quantities
    (price → qty; 0 for a level removed since the last full read) and the mid after the
    latest diff."""

    bids: dict[float, float]
    asks: dict[float, float]
    mid: float = 0.0


def _side_within(arrays_of, limit: float, below: bool, guess: int) -> tuple[np.ndarray, np.ndarray]:
    """Best-first prices and quantities of one side up to ``limit`` (inclusive), fetched
    from ``guess`` levels on in growing pages so the cost follows the band, not the book."""
    n = max(guess, 16)
    while True:
        prices, qtys = arrays_of(n)
        if prices.size < n or (prices[-1] < limit if below else prices[-1] > limit):
            break
        n *= 4
    keep = int(np.count_nonzero(prices >= limit if below else prices <= limit))
    return prices[:keep], qtys[:keep]


def band(book: OrderBook, mid: float, bps: float, last: Band | None = None) -> Band:
    """The book within ± ``bps`` of ``mid`` (``last``: the previous band, whose size is a
    good first guess of how many levels to read)."""
    low, high = bounds(mid, bps)
    bid_guess = ask_guess = 64
    if last is not None:
        bid_guess = last.bid_prices.size * 5 // 4 + 8
        ask_guess = last.ask_prices.size * 5 // 4 + 8
    bid_p, bid_q = _side_within(book.bid_arrays, low, True, bid_guess)
    ask_p, ask_q = _side_within(book.ask_arrays, high, False, ask_guess)
    return Band(mid, bps, bid_p, bid_q, ask_p, ask_q)


def _within(levels: Band, bps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The band narrowed to ± ``bps`` (a rule's own band inside the widest one)."""
    low, high = bounds(levels.mid, bps)
    nb = int(np.count_nonzero(levels.bid_prices >= low))
    na = int(np.count_nonzero(levels.ask_prices <= high))
    return (
        levels.bid_prices[:nb],
        levels.bid_qtys[:nb],
        levels.ask_prices[:na],
        levels.ask_qtys[:na],
    )


@dataclass(slots=True)
class _Wall:
    side: str
    qty: float
    peak: float
    traded: float  # at its price since the peak
    left_ms: int = 0  # when it left the book (0: still there)


class Walls:
    """A wall rule on one symbol: one price within ± ``band_bps`` of the band's centre
    resting at least ``min_notional`` (price × qty).

    ``appear``: a price becomes a wall (walls already there when the book turns LIVE are
    taken as they are, not reported). ``pulled``: a wall leaves (drops below
    ``min_notional`` or out of the book) and more than ``pulled_fraction`` of its fall from
    its peak was not traded at its price — trades up to ``CONFIRM_MS`` after it left still
    count. A wall the band leaves behind when it re-centres is dropped silently.

    Details: ``event`` (appear/pulled), ``side`` (bid/ask), ``price``, ``qty``, ``notional``,
    ``mid``, ``distance_bps`` (from the mid); for pulled also ``peak_qty``, ``traded_qty``,
    ``pulled_qty``.
    """

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.bps = rule.params["band_bps"]
        self._min = rule.params["min_notional"]
        self._walls: dict[float, _Wall] = {}
        self._leaving: set[float] = set()
        self._low = self._high = 0.0
        self._seeded = False

    def reset(self) -> None:
        """The book left LIVE: forget the walls; the next LIVE book is taken as it is."""
        self._walls.clear()
        self._leaving.clear()
        self._seeded = False

    def on_trades(self, trades: Trades) -> None:
        """Count the trades at the walls' prices (what explains a wall's fall)."""
        walls = self._walls
        if not walls:
            return
        for price, qty in zip(trades.price, trades.qty, strict=True):
            wall = walls.get(price)
            if wall is not None:
                wall.traded += qty

    def on_book(
        self, symbol: str, sync: BookSync, levels: Band, cooldown: Cooldown, out: list[Firing]
    ) -> None:
        """The full path: the whole band around ``levels.mid`` (its centre)."""
        now, mid = sync.event_time_ms, mid_price(sync.book) or levels.mid
        self._low, self._high = low, high = bounds(levels.mid, self.bps)
        bid_p, bid_q, ask_p, ask_q = _within(levels, self.bps)
        walls = self._walls
        for price in list(walls):
            wall = walls[price]
            if not low <= price <= high:
                del walls[price]
                self._leaving.discard(price)
            elif self._track(wall, price, levels.qty_at(wall.side, price), now):
                self._decide(symbol, price, mid, now, cooldown, out)
        for side, prices, qtys in (("bid", bid_p, bid_q), ("ask", ask_p, ask_q)):
            big = np.flatnonzero(prices * qtys >= self._min)
            for price, qty in zip(prices[big].tolist(), qtys[big].tolist(), strict=True):
                if price not in walls:
                    walls[price] = _Wall(side, qty, qty, 0.0)
                    if self._seeded:
                        self._fire(symbol, "appear", price, walls[price], mid, now, cooldown, out)
        self._seeded = True

    def on_levels(
        self,
        symbol: str,
        bids: dict[float, float],
        asks: dict[float, float],
        held: BandLevels,
        now: int,
        cooldown: Cooldown,
        out: list[Firing],
    ) -> None:
        """The incremental path: the levels of the band a diff set (price → new qty, 0:
        removed), with the band where the last ``on_book`` put it; ``held``: the band's
        quantities after the diff. O(levels set + walls); events come in the full path's
        order (walls watched first, then new walls best price first), which decides which
        one a cooldown lets through."""
        walls = self._walls
        decided: list[float] = []
        if walls:
            for price in list(walls):
                wall = walls[price]
                qty = (bids if wall.side == "bid" else asks).get(price)
                if qty is None and price not in self._leaving:
                    continue
                if self._track(wall, price, wall.qty if qty is None else qty, now):
                    self._decide(symbol, price, held.mid, now, cooldown, out)
                    decided.append(price)
        self._appear(symbol, bids, asks, decided, held, now, cooldown, out)

    def on_time(self, symbol: str, held: BandLevels, now: int, cooldown: Cooldown, out: list):
        """Decide the pulls whose confirmation time has passed (O(walls leaving))."""
        if not self._leaving:
            return
        decided: list[float] = []
        for price in [p for p in self._walls if p in self._leaving]:  # the full path's order
            if now - self._walls[price].left_ms >= CONFIRM_MS:
                self._decide(symbol, price, held.mid, now, cooldown, out)
                decided.append(price)
        if decided:
            self._appear(symbol, {}, {}, decided, held, now, cooldown, out)

    def _appear(
        self,
        symbol: str,
        bids: dict[float, float],
        asks: dict[float, float],
        decided: list[float],
        held: BandLevels,
        now: int,
        cooldown: Cooldown,
        out: list[Firing],
    ) -> None:
        """New walls among the levels a diff set and the prices whose wall was just decided
        (the level there may be a wall again, even on the other side — as the full path,
        which reads every level, finds it), best price first per side."""
        low, high, least, walls = self._low, self._high, self._min, self._walls
        for side, changed, now_held, best_first in (
            ("bid", bids, held.bids, True),
            ("ask", asks, held.asks, False),
        ):
            if changed and max(changed.values()) * high >= least:  # else none can be (p ≤ high)
                new = [p for p, q in changed.items() if p * q >= least and p not in walls]
            else:
                new = []
            for price in decided:
                qty = now_held.get(price, 0.0)
                if price * qty >= least and price not in walls and price not in changed:
                    new.append(price)
            new = [p for p in new if low <= p <= high]
            for price in sorted(new, reverse=best_first):
                qty = now_held[price] if price in now_held else changed[price]
                wall = walls[price] = _Wall(side, qty, qty, 0.0)
                if self._seeded:
                    self._fire(symbol, "appear", price, wall, held.mid, now, cooldown, out)

    def _track(self, wall: _Wall, price: float, qty: float, now: int) -> bool:
        """Follow one wall's size; True when it left the book long enough ago to decide."""
        if wall.left_ms:
            if qty * price >= self._min:  # back before the pull was decided
                wall.left_ms, wall.qty, wall.peak = 0, qty, max(wall.peak, qty)
                self._leaving.discard(price)
                return False
            wall.qty = qty
            return now - wall.left_ms >= CONFIRM_MS
        if qty > wall.peak:
            wall.peak, wall.traded = qty, 0.0
        wall.qty = qty
        if qty * price < self._min:
            wall.left_ms = now or 1
            self._leaving.add(price)
        return False

    def _decide(
        self, symbol: str, price: float, mid: float, now: int, cooldown: Cooldown, out: list
    ) -> None:
        """The wall at ``price`` left long enough ago: forget it, reporting a pull when
        its fall was not explained by trades there."""
        wall = self._walls.pop(price)
        self._leaving.discard(price)
        fall = wall.peak - wall.qty
        unexplained = fall - wall.traded
        if fall > 0 and unexplained > self.rule.params["pulled_fraction"] * fall:
            self._fire(symbol, "pulled", price, wall, mid, now, cooldown, out)

    def _fire(
        self,
        symbol: str,
        event: str,
        price: float,
        wall: _Wall,
        mid: float,
        now: int,
        cooldown: Cooldown,
        out: list[Firing],
    ) -> None:
        wanted = self.rule.params["event"]
        if wanted not in (event, "any") or not cooldown.allows(self.rule, symbol, now):
            return
        cooldown.fired(self.rule, symbol, now)
        shown = wall.peak if event == "pulled" else wall.qty
        details = {
            "event": event,
            "side": wall.side,
            "price": price,
            "qty": shown,
            "notional": shown * price,
            "mid": mid,
            "distance_bps": (price - mid) / mid * 10_000.0,
        }
        if event == "pulled":
            details |= {
                "peak_qty": wall.peak,
                "traded_qty": wall.traded,
                "pulled_qty": max(wall.peak - wall.qty - wall.traded, 0.0),
            }
        out.append(Firing(self.rule, symbol, now, details))


class Imbalance:
    """An imbalance rule on one symbol: book imbalance (bid − ask notional) / (bid + ask
    notional) over the levels within ± ``band_bps`` of the band's centre stays beyond
    ``threshold`` (bid: ≥ +threshold, ask: ≤ −threshold) for at least ``hold_s`` of
    exchange time. Fires once, re-arms when it is back inside the threshold.

    The band's notionals are running sums: set by ``on_book`` (the full path), moved by
    ``on_levels`` by the levels' change of notional; a side whose last level in the band
    left is exactly 0 (no rounding residue left to pass for an imbalance).

    Details: ``imbalance``, ``bid_notional``, ``ask_notional``, ``band_bps``, ``held_s``,
    ``mid``.

    An *episode* runs from the imbalance going beyond the threshold until a LIVE book shows
    it back inside: it fires once. Across a hand-over the new owner takes (``adopt``) the
    event log's word on whether an episode fired elsewhere is still open (its own hold would start
    afresh and fire it again); ``episode_ended`` is raised when a check finds the imbalance
    inside after a firing or an adoption, for the owner to tell the log."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.bps = rule.params["band_bps"]
        self.bids = self.asks = 0.0
        self._n_bids = self._n_asks = 0
        self._low = self._high = 0.0
        self._since_ms: int | None = None
        self._armed = True
        self._ended_told = True
        self.adopted = False
        self.episode_ended = False

    def adopt(self, open_elsewhere: bool) -> None:
        """Take the log's word, once, before the first check: an episode fired by another
        worker is still open (this rule is then disarmed until the imbalance is back
        inside, and tells the log when it is)."""
        self.adopted = True
        if open_elsewhere:
            self._armed = self._ended_told = False

    def reset(self) -> None:
        """The book left LIVE: the imbalance held so far no longer counts."""
        self._since_ms = None

    def on_book(
        self, symbol: str, sync: BookSync, levels: Band, cooldown: Cooldown, out: list[Firing]
    ) -> None:
        """The full path: the band's notionals summed afresh, then ``check``."""
        self._low, self._high = bounds(levels.mid, self.bps)
        bid_p, bid_q, ask_p, ask_q = _within(levels, self.bps)
        self.bids, self.asks = float(bid_p @ bid_q), float(ask_p @ ask_q)
        self._n_bids, self._n_asks = bid_p.size, ask_p.size
        mid = mid_price(sync.book) or levels.mid
        self.check(symbol, mid, sync.event_time_ms, cooldown, out)

    def on_levels(self, side: str, changed: dict[float, float], held: dict[float, float]) -> None:
        """The incremental path: levels of one side of the tap's band a diff set (``changed``:
        price → qty) and their quantities before it (``held``; absent: 0). An unchanged
        level adds exactly 0. A plain loop: a diff sets ~5 levels per side in the band, too
        few for list-building C builtins to pay (measured: 1.0 µs per side against 4.5)."""
        low, high = self._low, self._high
        get = held.get
        count, change = 0, 0.0
        for price, qty in changed.items():
            if low <= price <= high:
                old = get(price, 0.0)
                count += (qty > 0) - (old > 0)
                change += price * (qty - old)
        if side == "bid":
            self._n_bids += count
            self.bids = self.bids + change if self._n_bids else 0.0
        else:
            self._n_asks += count
            self.asks = self.asks + change if self._n_asks else 0.0

    def check(self, symbol: str, mid: float, now: int, cooldown: Cooldown, out: list) -> None:
        """Whether the imbalance of the current sums is beyond the threshold, and has been
        long enough to fire."""
        bids, asks = self.bids, self.asks
        total = bids + asks
        imbalance = (bids - asks) / total if total > 0 else 0.0
        params = self.rule.params
        threshold, side = params["threshold"], params["side"]
        met = (imbalance >= threshold and side in ("bid", "any")) or (
            imbalance <= -threshold and side in ("ask", "any")
        )
        if not met:
            self._since_ms = None
            self._armed = True
            if not self._ended_told:
                self._ended_told = self.episode_ended = True
            return
        if self._since_ms is None:
            self._since_ms = now
        held_s = (now - self._since_ms) / 1000.0
        if self._armed and held_s >= params["hold_s"] and cooldown.allows(self.rule, symbol, now):
            self._armed = self._ended_told = False
            cooldown.fired(self.rule, symbol, now)
            details = {
                "imbalance": imbalance,
                "bid_notional": bids,
                "ask_notional": asks,
                "band_bps": self.bps,
                "held_s": held_s,
                "mid": mid,
            }
            out.append(Firing(self.rule, symbol, now, details))
