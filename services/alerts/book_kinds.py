"""Kinds evaluated on the order book: wall and imbalance.

The tap evaluates them at most every ``BOOK_EVERY_MS`` of exchange time per symbol (a
wall or an imbalance lives for seconds; reading the band costs O(levels in the band)).
Both are handed only a LIVE book (an unsynced book is never taken for the market; the tap
calls ``reset()`` when the book leaves LIVE) and only the levels within their band around
the mid, walked best-first, so their cost follows the band, not the book's depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.alerts.firing import Cooldown, Firing
from services.alerts.rules import Rule
from services.market.book_sync import BookSync
from services.market.order_book import OrderBook
from services.market.views import TradeView

CONFIRM_MS = 1000
BOOK_EVERY_MS = 250
"""How long (exchange time) trades may still arrive for a level that left the book before
a wall's pull is decided: trades and depth come on separate streams."""


def mid_price(book: OrderBook) -> float | None:
    bid, ask = book.best_bid(), book.best_ask()
    if bid is None or ask is None:
        return None
    return (bid[0] + ask[0]) / 2.0


@dataclass(frozen=True, slots=True)
class Band:
    """The book within ± ``bps`` of ``mid``: bid prices descending and ask prices
    ascending, with their quantities (numpy arrays)."""

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
    span = mid * bps / 10_000.0
    bid_guess = ask_guess = 64
    if last is not None:
        bid_guess = last.bid_prices.size * 5 // 4 + 8
        ask_guess = last.ask_prices.size * 5 // 4 + 8
    bid_p, bid_q = _side_within(book.bid_arrays, mid - span, True, bid_guess)
    ask_p, ask_q = _side_within(book.ask_arrays, mid + span, False, ask_guess)
    return Band(mid, bps, bid_p, bid_q, ask_p, ask_q)


def _within(levels: Band, bps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The band narrowed to ± ``bps`` (a rule's own band inside the widest one)."""
    span = levels.mid * bps / 10_000.0
    nb = int(np.count_nonzero(levels.bid_prices >= levels.mid - span))
    na = int(np.count_nonzero(levels.ask_prices <= levels.mid + span))
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
    """A wall rule on one symbol: one price within ± ``band_bps`` of the mid resting at
    least ``min_notional`` (price × qty).

    ``appear``: a price becomes a wall (walls already there when the book turns LIVE are
    taken as they are, not reported). ``pulled``: a wall leaves (drops below
    ``min_notional`` or out of the book) and more than ``pulled_fraction`` of its fall from
    its peak was not traded at its price — trades up to ``CONFIRM_MS`` after it left still
    count. A wall the mid moves away from is dropped silently.

    Details: ``event`` (appear/pulled), ``side`` (bid/ask), ``price``, ``qty``, ``notional``,
    ``mid``, ``distance_bps``; for pulled also ``peak_qty``, ``traded_qty``, ``pulled_qty``.
    """

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.bps = rule.params["band_bps"]
        self._min = rule.params["min_notional"]
        self._walls: dict[float, _Wall] = {}
        self._seeded = False

    def reset(self) -> None:
        """The book left LIVE: forget the walls; the next LIVE book is taken as it is."""
        self._walls.clear()
        self._seeded = False

    def on_trades(self, view: TradeView) -> None:
        walls = self._walls
        if not walls:
            return
        for price, qty in zip(view.price.tolist(), view.qty.tolist(), strict=True):
            wall = walls.get(price)
            if wall is not None:
                wall.traded += qty

    def on_book(
        self, symbol: str, sync: BookSync, levels: Band, cooldown: Cooldown, out: list[Firing]
    ) -> None:
        now, mid = sync.event_time_ms, levels.mid
        span = mid * self.bps / 10_000.0
        bid_p, bid_q, ask_p, ask_q = _within(levels, self.bps)
        walls = self._walls
        for price in list(walls):
            wall = walls[price]
            if abs(price - mid) > span:
                del walls[price]
            elif self._track(wall, price, levels.qty_at(wall.side, price), now):
                del walls[price]
                self._decide(symbol, price, wall, mid, now, cooldown, out)
        for side, prices, qtys in (("bid", bid_p, bid_q), ("ask", ask_p, ask_q)):
            big = np.flatnonzero(prices * qtys >= self._min)
            for price, qty in zip(prices[big].tolist(), qtys[big].tolist(), strict=True):
                if price not in walls:
                    walls[price] = _Wall(side, qty, qty, 0.0)
                    if self._seeded:
                        self._fire(symbol, "appear", price, walls[price], mid, now, cooldown, out)
        self._seeded = True

    def _track(self, wall: _Wall, price: float, qty: float, now: int) -> bool:
        """Follow one wall's size; True when it left the book long enough ago to decide."""
        if wall.left_ms:
            if qty * price >= self._min:  # back before the pull was decided
                wall.left_ms, wall.qty, wall.peak = 0, qty, max(wall.peak, qty)
                return False
            wall.qty = qty
            return now - wall.left_ms >= CONFIRM_MS
        if qty > wall.peak:
            wall.peak, wall.traded = qty, 0.0
        wall.qty = qty
        if qty * price < self._min:
            wall.left_ms = now or 1
        return False

    def _decide(
        self,
        symbol: str,
        price: float,
        wall: _Wall,
        mid: float,
        now: int,
        cooldown: Cooldown,
        out: list[Firing],
    ) -> None:
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
    notional) over the levels within ± ``band_bps`` of the mid stays beyond ``threshold``
    (bid: ≥ +threshold, ask: ≤ −threshold) for at least ``hold_s`` of exchange time. Fires
    once, re-arms when it is back inside the threshold.

    Details: ``imbalance``, ``bid_notional``, ``ask_notional``, ``band_bps``, ``held_s``,
    ``mid``."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.bps = rule.params["band_bps"]
        self._since_ms: int | None = None
        self._armed = True

    def reset(self) -> None:
        """The book left LIVE: the imbalance held so far no longer counts."""
        self._since_ms = None

    def on_book(
        self, symbol: str, sync: BookSync, levels: Band, cooldown: Cooldown, out: list[Firing]
    ) -> None:
        now, mid = sync.event_time_ms, levels.mid
        bid_p, bid_q, ask_p, ask_q = _within(levels, self.bps)
        bids, asks = float(bid_p @ bid_q), float(ask_p @ ask_q)
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
            return
        if self._since_ms is None:
            self._since_ms = now
        held_s = (now - self._since_ms) / 1000.0
        if self._armed and held_s >= params["hold_s"] and cooldown.allows(self.rule, symbol, now):
            self._armed = False
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
