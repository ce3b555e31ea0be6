"""The USD-M perpetual twin of spot symbols, streamed on request.

A spot symbol's twin is the USD-M contract of the same name (BTCUSDT spot ↔ BTCUSDT
perpetual; dated contracts carry a suffix and are never twins). The twins run in a feed of
their own (the ``usdm`` endpoints: Binance's, or a local exchange replaying a USD-M
recording) publishing to a store of their own, so a perpetual never mixes with the spot
symbol of the same name. That feed starts with no symbol (``follow`` mode); ``request``
asks for a twin, and a twin nobody asked for within ``idle_s`` is released at the next
request (at most ``max_symbols`` at once, the most recently asked kept).
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from services.market.feed import Feed, FeedConfig
from services.store import MemoryStore, SymbolSnapshot


class PerpTwin:
    """USD-M twins of spot symbols in their own feed and store (module docstring)."""

    def __init__(
        self, store: MemoryStore | None = None, *, idle_s: float = 300.0, max_symbols: int = 5
    ) -> None:
        self.store = store if store is not None else MemoryStore()
        self.feed: Feed | None = None
        self.idle_s = idle_s
        self.max_symbols = max_symbols
        self._asked: dict[str, float] = {}
        self._following: frozenset[str] = frozenset()
        self._lock = threading.Lock()

    def start(self, config: FeedConfig) -> None:
        """Start the twins' feed on ``config``'s usdm endpoints in its own thread (no symbol
        streamed until requested; requests made before are served at the next one)."""
        if config.endpoints.market != "usdm":
            raise ValueError(f"twins stream from usdm endpoints, not {config.endpoints.market!r}")
        twin_config = replace(config, symbols=(), follow=True, watchlist_interval_s=0.0)
        self.feed = Feed(twin_config, self.store)
        self.feed.start_in_thread()
        with self._lock:
            self._following = frozenset()

    def stop(self) -> None:
        if self.feed is not None:
            self.feed.stop()

    def request(self, symbol: str, now: float | None = None) -> None:
        """Stream ``symbol``'s twin (if USD-M lists it) while it keeps being asked for."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._asked[symbol.upper()] = now
            fresh = sorted(
                ((t, s) for s, t in self._asked.items() if now - t <= self.idle_s), reverse=True
            )[: self.max_symbols]
            self._asked = {s: t for t, s in fresh}
            wanted = frozenset(self._asked)
            if wanted == self._following or self.feed is None:
                return
            if self.feed.follow_soon(wanted):
                self._following = wanted

    def has_twin(self, symbol: str) -> bool | None:
        """Whether USD-M lists ``symbol`` (None until the twins' feed has loaded its list)."""
        listed = self.store.symbols()
        if not listed:
            return None
        return any(info.symbol == symbol.upper() for info in listed)

    def following(self) -> frozenset[str]:
        """The twins the feed was last asked to stream."""
        return self._following

    def snapshot(self, symbol: str) -> SymbolSnapshot | None:
        """The latest snapshot of ``symbol``'s twin, or None while it is not streamed."""
        return self.store.snapshot(symbol.upper())
