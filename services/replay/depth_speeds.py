"""Diff-depth update speeds: which ``<symbol>@depth[@<speed>]`` names a market serves, and
coarser speeds derived from a finer recorded one.

Binance documents these diff-depth speeds (ms between pushes):

* spot: ``@depth`` = ``@depth@1000ms`` and ``@depth@100ms``;
* USD-M: ``@depth`` = ``@depth@250ms``, ``@depth@500ms``, ``@depth@100ms`` and
  ``@depth@0ms`` (every update, unbatched; only when recorded).

A coarser stream is derived from the finest recorded one by **batching**: every diff played
during one period is merged into a single diff — ``U`` (and USD-M ``pu``) of the first,
``u`` (and ``T``) of the last, and for each price its last quantity — pushed when the period
ends on the replay clock's 100 ms grid. The merged diff is exactly what Binance sends: it
takes a book at ``U − 1`` to the book at ``u``, so a client that bridges a snapshot to it
stays equal to the exchange's book.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import orjson

SPEEDS_MS: dict[str, tuple[int, ...]] = {"spot": (100, 1000), "usdm": (0, 100, 250, 500)}
DEFAULT_SPEED_MS = {"spot": 1000, "usdm": 250}
_DIFF_DEPTH = re.compile(r"^([a-z0-9]+)@depth(?:@(\d+)ms)?$")


def diff_depth_speed(stream: str, market: str) -> tuple[str, int] | None:
    """``(symbol, speed ms)`` of a diff-depth stream name, ``None`` for any other name or an
    undocumented speed (``btcusdt@depth`` → ``("btcusdt", 1000)`` on spot)."""
    match = _DIFF_DEPTH.match(stream)
    if match is None:
        return None
    speed = int(match.group(2)) if match.group(2) else DEFAULT_SPEED_MS[market]
    return (match.group(1), speed) if speed in SPEEDS_MS[market] else None


def depth_names(symbol: str, speed_ms: int, market: str) -> list[str]:
    """Every name of one diff-depth speed (the default speed also answers to ``@depth``)."""
    names = [f"{symbol}@depth@{speed_ms}ms"]
    if speed_ms == DEFAULT_SPEED_MS[market]:
        names.insert(0, f"{symbol}@depth")
    return names


def derived_speeds(recorded_ms: int, market: str) -> list[int]:
    """Speeds derivable from a recorded one: every documented coarser speed."""
    return [speed for speed in SPEEDS_MS[market] if speed > recorded_ms]


@dataclass(slots=True)
class DepthBatch:
    """Diffs merged during one period of a derived speed (see the module docstring)."""

    first_id: int = -1
    final_id: int = -1
    previous_id: int | None = None
    transaction_ms: int | None = None
    bids: dict[str, str] = field(default_factory=dict)
    asks: dict[str, str] = field(default_factory=dict)

    def add(self, diff: dict) -> None:
        if self.first_id < 0:
            self.first_id = diff["U"]
            self.previous_id = diff.get("pu")
        self.final_id = diff["u"]
        self.transaction_ms = diff.get("T")
        self.bids.update((price, qty) for price, qty in diff["b"])
        self.asks.update((price, qty) for price, qty in diff["a"])

    def payload(self, symbol: str, event_ms: int) -> bytes:
        """The merged diff as Binance writes it (``E`` = the push time)."""
        body: dict = {"e": "depthUpdate", "E": event_ms}
        if self.transaction_ms is not None:
            body["T"] = self.transaction_ms
        body |= {"s": symbol, "U": self.first_id, "u": self.final_id}
        if self.previous_id is not None:
            body["pu"] = self.previous_id
        body |= {"b": [list(level) for level in self.bids.items()]}
        body |= {"a": [list(level) for level in self.asks.items()]}
        return orjson.dumps(body)


class DepthSpeeds:
    """Batches of the derived speeds a symbol's subscribers listen to, keyed by speed."""

    def __init__(self) -> None:
        self.batches: dict[int, DepthBatch] = {}

    def add(self, diff: dict, speeds: list[int]) -> None:
        """Merge one played diff into the open batch of each listened speed."""
        for speed in speeds:
            self.batches.setdefault(speed, DepthBatch()).add(diff)

    def due(self, event_ms: int, everything: bool = False) -> list[tuple[int, DepthBatch]]:
        """Batches whose period ends at ``event_ms`` (on the 100 ms grid), or all of them;
        they are removed."""
        tick = event_ms // 100
        ready = [speed for speed in self.batches if everything or tick % max(1, speed // 100) == 0]
        return [(speed, self.batches.pop(speed)) for speed in ready]
