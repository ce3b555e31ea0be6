"""What an evaluator hands on when a rule's condition is met, and the cooldown gate every
kind shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from services.alerts.rules import Rule
from services.market.views import TradeView


@dataclass(frozen=True, slots=True)
class Firing:
    """A rule met on one symbol at ``time_ms`` (exchange time), with what happened
    (``details``, the event's numbers). The dispatcher turns it into a stored event."""

    rule: Rule
    symbol: str
    time_ms: int
    details: dict[str, Any]


class EpisodeEnd(NamedTuple):
    """``rule``'s imbalance on ``symbol`` was seen back inside its threshold at the book's
    ``update_id``: its episode is over (``book_kinds.Imbalance``)."""

    rule: Rule
    symbol: str
    update_id: int


class Trades(NamedTuple):
    """The columns of a ``TradeView`` as Python lists, converted once per batch by the tap
    and shared by every evaluator of the symbol (and the "*" ones). ``side`` is +1.0 for a
    taker buy, -1.0 for a taker sell."""

    trade_id: list[int]
    time_ms: list[int]
    price: list[float]
    qty: list[float]
    side: list[float]

    @classmethod
    def of(cls, view: TradeView) -> Trades:
        return cls(
            view.trade_id.tolist(),
            view.time_ms.tolist(),
            view.price.tolist(),
            view.qty.tolist(),
            view.side.tolist(),
        )


def side_name(side: float) -> str:
    return "buy" if side > 0 else "sell"


class Cooldown:
    """Per (rule, symbol): the market time of the last firing; a rule with ``cooldown_s``
    stays quiet until that much market time has passed."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], int] = {}

    def allows(self, rule: Rule, symbol: str, time_ms: int) -> bool:
        if rule.cooldown_s <= 0:
            return True
        last = self._last.get((rule.id, symbol))
        return last is None or time_ms - last >= rule.cooldown_s * 1000.0

    def fired(self, rule: Rule, symbol: str, time_ms: int) -> None:
        if rule.cooldown_s > 0:
            self._last[(rule.id, symbol)] = time_ms
