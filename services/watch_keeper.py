"""``WatchKeeper``: tells the feed, again and again, which symbols someone is still looking
at.

The feed treats a symbol as watched while it was asked for (``MarketStore.request_symbol``)
within ``on_demand_idle_s`` (5 minutes by default): a watched book streams 100 ms diffs and
is deepened, an on-demand symbol stays streamed. A page asks when a symbol is chosen, a push
stream or an API client when it first reads one; a keeper re-asks for the symbols a page
shows or a push stream serves every ``every_s``, so a symbol looked at for hours stays
watched, and one nobody looks at any more lapses after the feed's idle time. (A one-off API
read is not looking: a script reading every symbol once must not make them all watched.)
One keeper per process: each symbol costs the store one small write a minute, however many
pages and streams show it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from services.store import MarketStore

REASK_S = 60.0
"""How often a symbol still looked at is asked for again: well inside the feed's idle time
(``FeedConfig.on_demand_idle_s``, 300 s), so one lost write never lapses it."""


class WatchKeeper:
    """Re-asks ``store`` for symbols still looked at, each at most every ``every_s``."""

    def __init__(
        self,
        store: MarketStore,
        every_s: float = REASK_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.every_s = every_s
        self._clock = clock
        self._asked: dict[str, float] = {}
        self._lock = threading.Lock()

    def still_watching(self, symbols: Iterable[str]) -> int:
        """``symbols`` are on screen: ask for each not asked for within ``every_s``; how
        many were asked for."""
        now = self._clock()
        due = []
        with self._lock:
            for symbol in symbols:
                if now - self._asked.get(symbol, -self.every_s) >= self.every_s:
                    self._asked[symbol] = now
                    due.append(symbol)
        for symbol in due:
            self.store.request_symbol(symbol)
        return len(due)
