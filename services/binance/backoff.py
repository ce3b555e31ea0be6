"""Reconnect and retry delays: capped exponential backoff with full jitter and a floor.

The delay before retry number ``n`` (0 for the first retry after a failure) is
``floor + uniform(0, min(cap, initial * 2**n))``. Full jitter spreads many clients (or many
connections of one client) that failed together; the floor keeps even an unlucky draw from
turning into a tight loop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay policy; ``initial``, ``cap`` and ``floor`` are seconds."""

    initial: float = 0.5
    cap: float = 30.0
    floor: float = 0.1
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (0-based count of failures so far)."""
        ceiling = min(self.cap, self.initial * 2.0 ** min(attempt, 62))
        return self.floor + self.rng.uniform(0.0, ceiling)
