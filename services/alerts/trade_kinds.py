"""Kinds evaluated on trades: large_trade, price, flow and move.

Each evaluator holds the rules of one symbol (or of "*"), with its thresholds precomputed
so that a trade below every rule's threshold costs one comparison. Trades arrive exactly
once each and in id order (the feed's tap guarantee); an evaluator also remembers, per
rule and symbol, the newest trade id it fired on, so trades a restarted feed hands over
again (its REST warm-up) never fire twice.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from operator import mul

from services.alerts.firing import Cooldown, Firing, Trades, side_name
from services.alerts.rules import Rule

FiredIds = dict[tuple[str, str], int]


class LargeTrades:
    """large_trade rules: one aggTrade (one taker order at one price) whose notional
    (price × qty, quote currency) is at least ``min_notional``, of ``side`` when given.

    Details: ``trade_id``, ``price``, ``qty``, ``notional``, ``side`` ("buy" when the taker
    bought)."""

    def __init__(self, rules: list[Rule], fired: FiredIds) -> None:
        self._rules = sorted(rules, key=lambda r: r.params["min_notional"])
        self._thresholds = [r.params["min_notional"] for r in self._rules]
        self.min_notional = self._thresholds[0]
        self._fired = fired

    def on_trades(self, symbol: str, trades: Trades, cooldown: Cooldown, out: list[Firing]):
        prices, qtys = trades.price, trades.qty
        if len(prices) == 1:
            if prices[0] * qtys[0] < self.min_notional:
                return
        else:
            least = self.min_notional
            big = [i for i, notional in enumerate(map(mul, prices, qtys)) if notional >= least]
            if not big:
                return
            if len(big) < len(prices):
                trades = Trades(*([column[i] for i in big] for column in trades))
        for trade_id, time_ms, price, qty, side in zip(*trades, strict=True):
            notional = price * qty
            side_text = side_name(side)
            for i in range(bisect_right(self._thresholds, notional)):
                rule = self._rules[i]
                wanted = rule.params["side"]
                if wanted is not None and wanted != side_text:
                    continue
                key = (rule.id, symbol)
                if trade_id <= self._fired.get(key, -1):
                    continue
                if not cooldown.allows(rule, symbol, time_ms):
                    continue
                self._fired[key] = trade_id
                cooldown.fired(rule, symbol, time_ms)
                details = {
                    "trade_id": trade_id,
                    "price": price,
                    "qty": qty,
                    "notional": notional,
                    "side": side_text,
                }
                out.append(Firing(rule, symbol, time_ms, details))


class _Level:
    __slots__ = ("armed_down", "armed_up", "level", "rearm", "rule")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.level = float(rule.params["level"])
        self.rearm = self.level * rule.params["rearm_bps"] / 10_000.0
        self.armed_up = True
        self.armed_down = True


class PriceCrossings:
    """price rules of one symbol: the last trade price crosses ``level``.

    Up-crossing: the previous trade was below the level and this one is at or above it;
    down-crossing: previous above, this one at or below. A rule fires on a crossing in its
    ``direction`` while armed, then is disarmed for that direction until the price is back
    on the other side by more than ``rearm_bps`` of the level (0: any price strictly on the
    other side). The first trade seen only sets the previous price.

    Details: ``price``, ``level``, ``direction`` ("up"/"down", the crossing's), ``trade_id``.
    """

    def __init__(
        self, rules: list[Rule], fired: FiredIds, previous: PriceCrossings | None = None
    ) -> None:
        self._levels = sorted((_Level(r) for r in rules), key=lambda lv: lv.level)
        self._keys = [lv.level for lv in self._levels]
        self._fired = fired
        self.last_price: float | None = None
        if previous is not None:  # the rules changed: keep the price and unchanged states
            self.last_price = previous.last_price
            before = {lv.rule.id: lv for lv in previous._levels}
            for lv in self._levels:
                kept = before.get(lv.rule.id)
                if kept is not None and kept.rule == lv.rule:
                    lv.armed_up, lv.armed_down = kept.armed_up, kept.armed_down
        self._disarmed = [lv for lv in self._levels if not (lv.armed_up and lv.armed_down)]

    def on_trades(self, symbol: str, trades: Trades, cooldown: Cooldown, out: list[Firing]):
        prev = self.last_price
        for trade_id, time_ms, price, _qty, _side in zip(*trades, strict=True):
            if self._disarmed:
                self._rearm(price)
            if prev is not None and price != prev:
                keys = self._keys
                if price > prev:  # levels in (prev, price]
                    hits = self._levels[bisect_right(keys, prev) : bisect_right(keys, price)]
                    direction = "up"
                else:  # levels in [price, prev)
                    hits = self._levels[bisect_left(keys, price) : bisect_left(keys, prev)]
                    direction = "down"
                for lv in hits:
                    self._cross(lv, direction, symbol, trade_id, time_ms, price, cooldown, out)
            prev = price
        self.last_price = prev

    def _cross(
        self,
        lv: _Level,
        direction: str,
        symbol: str,
        trade_id: int,
        time_ms: int,
        price: float,
        cooldown: Cooldown,
        out: list[Firing],
    ) -> None:
        rule = lv.rule
        if rule.params["direction"] not in (direction, "any"):
            return
        armed = lv.armed_up if direction == "up" else lv.armed_down
        key = (rule.id, symbol)
        if not armed or trade_id <= self._fired.get(key, -1):
            return
        if not cooldown.allows(rule, symbol, time_ms):
            return
        if direction == "up":
            lv.armed_up = False
        else:
            lv.armed_down = False
        self._disarmed.append(lv)
        self._fired[key] = trade_id
        cooldown.fired(rule, symbol, time_ms)
        details = {"price": price, "level": lv.level, "direction": direction, "trade_id": trade_id}
        out.append(Firing(rule, symbol, time_ms, details))

    def _rearm(self, price: float) -> None:
        still = []
        for lv in self._disarmed:
            if not lv.armed_up and price < lv.level - lv.rearm:
                lv.armed_up = True
            if not lv.armed_down and price > lv.level + lv.rearm:
                lv.armed_down = True
            if not (lv.armed_up and lv.armed_down):
                still.append(lv)
        self._disarmed = still


class FlowChange:
    """A flow rule on one symbol: the CVD change over the last ``window_s`` — the sum of
    taker-buy minus taker-sell notional of trades whose notional is at least
    ``min_trade_notional`` — reaches ``threshold`` (up: ≥ +threshold, down: ≤ −threshold).
    Fires once, re-arms when the change is back inside the threshold.

    Details: ``cvd_change``, ``window_s``, ``threshold``, ``price``, ``trade_id``."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self._window_ms = rule.params["window_s"] * 1000.0
        self._threshold = rule.params["threshold"]
        self._min = rule.params["min_trade_notional"]
        self._flows: deque[tuple[int, float]] = deque()
        self._sum = 0.0
        self._armed = True

    def on_trades(self, symbol: str, trades: Trades, cooldown: Cooldown, out: list[Firing]):
        rule, flows = self.rule, self._flows
        wanted = rule.params["direction"]
        for trade_id, time_ms, price, qty, side in zip(*trades, strict=True):
            notional = price * qty
            if notional < self._min:
                continue
            flows.append((time_ms, side * notional))
            self._sum += side * notional
            while flows and flows[0][0] <= time_ms - self._window_ms:
                self._sum -= flows.popleft()[1]
            change = self._sum
            met = (change >= self._threshold and wanted in ("up", "any")) or (
                change <= -self._threshold and wanted in ("down", "any")
            )
            if not met:
                self._armed = True
            elif self._armed and cooldown.allows(rule, symbol, time_ms):
                self._armed = False
                cooldown.fired(rule, symbol, time_ms)
                details = {
                    "cvd_change": change,
                    "window_s": rule.params["window_s"],
                    "threshold": self._threshold,
                    "price": price,
                    "trade_id": trade_id,
                }
                out.append(Firing(rule, symbol, time_ms, details))


class _MoveState:
    __slots__ = ("armed", "points")

    def __init__(self) -> None:
        self.points: deque[tuple[int, float]] = deque()
        self.armed = True


class PriceMove:
    """A move rule: the last trade price against the last price at or before ``window_s``
    earlier changed by at least ``pct`` % (up, down or either way). On "*" it watches every
    streamed symbol separately. Prices are kept at most every ``window_s``/600 s, so the
    reference is exact to that step. Fires once, re-arms when the change is back inside.

    Details: ``change_pct``, ``price``, ``reference_price``, ``window_s``, ``trade_id``."""

    STEPS = 600

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self._window_ms = rule.params["window_s"] * 1000.0
        self._step_ms = self._window_ms / self.STEPS
        self._states: dict[str, _MoveState] = {}

    def on_trades(self, symbol: str, trades: Trades, cooldown: Cooldown, out: list[Firing]):
        state = self._states.get(symbol)
        if state is None:
            state = self._states[symbol] = _MoveState()
        rule, points = self.rule, state.points
        wanted, pct = rule.params["direction"], rule.params["pct"]
        for trade_id, time_ms, price, _qty, _side in zip(*trades, strict=True):
            if not points or time_ms - points[-1][0] >= self._step_ms:
                points.append((time_ms, price))
            cutoff = time_ms - self._window_ms
            while len(points) > 1 and points[1][0] <= cutoff:
                points.popleft()
            if points[0][0] > cutoff:
                continue  # less than a window of prices so far
            reference = points[0][1]
            change = (price / reference - 1.0) * 100.0
            met = (change >= pct and wanted in ("up", "any")) or (
                change <= -pct and wanted in ("down", "any")
            )
            if not met:
                state.armed = True
            elif state.armed and cooldown.allows(rule, symbol, time_ms):
                state.armed = False
                cooldown.fired(rule, symbol, time_ms)
                details = {
                    "change_pct": change,
                    "price": price,
                    "reference_price": reference,
                    "window_s": rule.params["window_s"],
                    "trade_id": trade_id,
                }
                out.append(Firing(rule, symbol, time_ms, details))
