"""Which symbols a publication round writes, within the worker's publication budget.

Publishing a symbol costs a copy of its book and trade view, an encoded record and a
script call in Redis — about a quarter of a millisecond of the worker's core. A worker
streaming the whole market (1,500 symbols, most of them changing every round) cannot pay
that for every symbol four times a second, so a round writes at most ``cap`` symbols:

- every symbol due (changed, or unchanged past its heartbeat) when they fit the cap —
  the usual case for up to a few hundred symbols, where nothing changes;
- otherwise the watched symbols first (the ones a user has open: published every round),
  then the others in order of their last publication, oldest first (never published
  before any), so each of N due symbols is written at least once every
  ``ceil(N / cap)`` rounds and none starves.

A symbol left out stays due (its changes are not lost: the next publication carries the
book and trades as they are then).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping


def round_cap(budget_per_s: float, interval_s: float) -> int:
    """Symbols one round may write: the budget (symbol publications a second) times the
    round's period, at least one; 0 budget means no cap."""
    if budget_per_s <= 0:
        return 0
    return max(1, int(budget_per_s * interval_s))


def publication_order(
    due: Mapping[str, float | None], watched: Collection[str], cap: int
) -> list[str]:
    """The due symbols this round writes. ``due``: symbol → time of its last publication
    (None: never published); ``cap``: at most this many (0: all)."""
    if not cap or len(due) <= cap:
        return list(due)
    ranked = sorted(due, key=lambda s: (s not in watched, due[s] or 0.0, s))
    return ranked[:cap]
