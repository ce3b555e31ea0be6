"""The ``status`` stream: a symbol's status bar (feed source and health, book sync,
staleness) pushed once per ``interval_s`` to the pages that watch it, instead of each page
polling it (``/ws/asset/<SYMBOL>/status/``, schema in ``docs/streams.md``).

One relay per web process computes the badges once per symbol per interval however many
pages watch (``app.callbacks.status.snapshot_status``: the same badges as the polled bar, from one
read of the snapshot) and
hands the encoded message to each watcher's coalesced slot. It reads only the store, so it
works the same in memory and over Redis (any web worker).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable

import orjson

from app.callbacks.status import snapshot_status
from services.push.poller import Poller
from services.push.subscription import Latest
from services.store import MarketStore

INTERVAL_S = 1.0


def status_message(store: MarketStore, symbol: str, now: float) -> bytes:
    """The ``status`` message of ``symbol`` at wall time ``now``: ``items`` = the status
    bar's badges (``label``, ``value``, ``level`` ok/warn/bad) and the book's ``sync_state``
    (None before the first snapshot)."""
    snapshot = store.snapshot(symbol)
    return orjson.dumps(
        {
            "type": "status",
            "symbol": symbol,
            "time": int(now * 1000),
            "sync_state": str(snapshot.book.sync_state) if snapshot else None,
            "items": [
                {"label": item.label, "value": item.value, "level": item.level}
                for item in snapshot_status(store, symbol, snapshot, now)
            ],
        }
    )


class StatusRelay:
    """Every ``interval_s`` the ``status`` message of each watched symbol, offered to its
    watchers; while ``paused()`` every watcher is cut with the reason (push drained)."""

    def __init__(
        self,
        store: MarketStore,
        paused: Callable[[], bool] = lambda: False,
        interval_s: float = INTERVAL_S,
    ) -> None:
        self.store = store
        self.paused = paused
        self._lock = threading.Lock()
        self._subs: dict[str, set[Latest[bytes]]] = defaultdict(set)
        self._poller = Poller("tapescope-status-relay", self.poll_once, interval_s)

    def subscribe(self, symbol: str) -> Latest[bytes]:
        """A watcher of ``symbol``'s status, given the current message at once."""
        sub: Latest[bytes] = Latest(status_message(self.store, symbol, time.time()))
        with self._lock:
            self._subs[symbol].add(sub)
        return sub

    def unsubscribe(self, symbol: str, sub: Latest[bytes]) -> None:
        sub.close()
        with self._lock:
            watchers = self._subs.get(symbol)
            if watchers is not None:
                watchers.discard(sub)
                if not watchers:
                    del self._subs[symbol]

    def watched(self) -> dict[str, int]:
        """Watchers per symbol."""
        with self._lock:
            return {symbol: len(subs) for symbol, subs in self._subs.items()}

    def poll_once(self, now: float | None = None) -> int:
        """Offer each watched symbol's message to its watchers; how many symbols."""
        with self._lock:
            watched = {symbol: list(subs) for symbol, subs in self._subs.items()}
        if self.paused():
            for subs in watched.values():
                for sub in subs:
                    sub.cut("push streams paused; poll the JSON API")
            return 0
        at = time.time() if now is None else now
        for symbol, subs in watched.items():
            message = status_message(self.store, symbol, at)
            for sub in subs:
                sub.offer(message)
        return len(watched)

    def start(self) -> None:
        """Tick in a daemon thread (once; later calls do nothing)."""
        self._poller.start()

    def stop(self) -> None:
        self._poller.stop()
