"""``BookRelay``: hands each newly published book of a watched symbol from the store to the
push hub, so the ``book`` stream works the same whether the store is in memory (one
process) or Redis (any web worker), and costs the feed nothing.

A symbol is polled only while someone watches its book; a view is handed over when its
snapshot ``seq`` changed (a republished heartbeat is not a change).
"""

from __future__ import annotations

from services.push.hub import PushHub
from services.push.poller import Poller
from services.store import MarketStore


class BookRelay:
    """Polls ``store`` every ``interval_s`` for the books the hub's clients watch."""

    def __init__(self, store: MarketStore, hub: PushHub, interval_s: float = 0.1) -> None:
        self.store = store
        self.hub = hub
        self._seqs: dict[str, int] = {}
        self._poller = Poller("tapescope-book-relay", self.poll_once, interval_s)

    def poll_once(self) -> int:
        """Hand over every watched book whose snapshot changed; how many were."""
        handed = 0
        watched = self.hub.watched_on("book")
        for symbol in list(self._seqs):
            if symbol not in watched:
                del self._seqs[symbol]
        for symbol in watched:
            snapshot = self.store.snapshot(symbol)
            if snapshot is None or self._seqs.get(symbol) == snapshot.seq:
                continue
            self._seqs[symbol] = snapshot.seq
            self.hub.publish_book(snapshot.book)
            handed += 1
        return handed

    def start(self) -> None:
        """Poll in a daemon thread (once per process; later calls do nothing)."""
        self._poller.start()

    def stop(self) -> None:
        self._poller.stop()
