"""``PushService``: everything one process needs to serve the push streams — the hub, the
alert events hub, the book relay and where live trades and prices come from:

- ``PushService.embedded(store)``: the feed runs in this process; hand ``service.tap`` to
  ``Feed(..., taps=[service.tap])``.
- ``PushService.from_redis(store, url)``: a web worker of the several-process mode; the
  worker's ``RedisPushWriter`` tap publishes to Redis Streams and this process reads them
  (``services.redis_push``).

``keeper``: the process's ``WatchKeeper``; the symbols of open streams are re-asked for
every ``WATCH_CHECK_S`` (at most once a ``REASK_S`` each), so the feed keeps a symbol a
client streams for hours watched (100 ms book, streamed on demand).

Replay archives, freshest first: the trade window of the store's latest snapshot, then any
``history`` archive given (the history room's reader, when it lands).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.push.archive import TradeArchive, WindowArchive
from services.push.book_relay import BookRelay
from services.push.events import EventHub
from services.push.hub import PushHub
from services.push.poller import Poller
from services.push.tap import StreamTap
from services.store import MarketStore
from services.watch_keeper import WatchKeeper

if TYPE_CHECKING:
    from services.push.alert_relay import AlertRelay
    from services.redis_push import RedisPushReader


WATCH_CHECK_S = 10.0
"""How often the symbols of open streams are handed to the keeper."""


@dataclass(frozen=True, slots=True)
class PushLimits:
    """Per-client bounds. ``max_queue``: trades/alert messages a client may fall behind
    before it is cut; ``coalesce_s``: minimum time between two prices/book messages to one
    client; ``stall_s``: a send blocked this long aborts the client; ``ring_trades``: recent
    trades kept per symbol for ``from_id`` resumes; ``send_buffer``: kernel send buffer per
    connection (bytes, 0 = the system's default)."""

    max_queue: int = 1024
    coalesce_s: float = 0.1
    stall_s: float = 10.0
    ring_trades: int = 50_000
    send_buffer: int = 256 * 1024
    max_levels: int = 1000


class PushService:
    """The push side of one process (see the module docstring)."""

    def __init__(
        self,
        store: MarketStore,
        limits: PushLimits | None = None,
        history: TradeArchive | None = None,
    ) -> None:
        self.store = store
        self.limits = limits or PushLimits()
        archives: list[TradeArchive] = [WindowArchive(store)]
        if history is not None:
            archives.append(history)
        self.hub = PushHub(
            archives,
            ring_trades=self.limits.ring_trades,
            max_queue=self.limits.max_queue,
            coalesce_s=self.limits.coalesce_s,
            stall_s=self.limits.stall_s,
        )
        self.events = EventHub(max_queue=self.limits.max_queue)
        self.relay = BookRelay(store, self.hub, interval_s=min(0.1, self.limits.coalesce_s))
        self.tap = StreamTap(self.hub)
        self.reader: RedisPushReader | None = None
        self.alert_relay: AlertRelay | None = None
        self.keeper = WatchKeeper(store)
        self._watch = Poller(
            "tapescope-watch-keeper",
            lambda: self.keeper.still_watching(self.hub.watched()),
            WATCH_CHECK_S,
        )
        self._paused = False

    @classmethod
    def embedded(cls, store: MarketStore, **options: object) -> PushService:
        """The feed runs in this process and calls ``tap``."""
        return cls(store, **options)  # type: ignore[arg-type]

    @classmethod
    def from_redis(cls, store: MarketStore, redis_url: str, **options: object) -> PushService:
        """A web worker: live trades, prices and alert events come from Redis Streams."""
        from services.redis_push import RedisPushReader

        service = cls(store, **options)  # type: ignore[arg-type]
        service.reader = RedisPushReader(redis_url, service.hub, service.events)
        return service

    def follow_alerts(self, event_log: object) -> None:
        """Relay the alerts room's logged events (an ``EventLog``) to ``/ws/alerts/``."""
        from services.push.alert_relay import AlertRelay

        self.alert_relay = AlertRelay(event_log, self.events)  # type: ignore[arg-type]

    def use_history(self, history: TradeArchive | None) -> None:
        """Serve resumes older than the trade window from ``history`` too (None: no-op)."""
        if history is not None:
            self.hub.archives.append(history)

    @property
    def paused(self) -> bool:
        """New stream connections are refused (503) while paused."""
        return self._paused

    def pause(self, reason: str = "push streams paused") -> int:
        """Refuse new connections and close every open one with ``reason`` (drain before a
        restart; pages fall back to polling); how many were closed."""
        self._paused = True
        return self.hub.disconnect_all(reason) + self.events.disconnect_all(reason)

    def resume(self) -> None:
        self._paused = False

    def _runners(self) -> list[BookRelay | AlertRelay | RedisPushReader | Poller]:
        runners = (self.relay, self.alert_relay, self.reader, self._watch)
        return [r for r in runners if r is not None]

    def start(self) -> None:
        """Start the book relay, the stalled-client reaper, the watch keeper's rounds (and
        the alert relay, the Redis reader); idempotent."""
        self.hub.start_reaper()
        for runner in self._runners():
            runner.start()

    def stop(self) -> None:
        self.hub.stop_reaper()
        for runner in self._runners():
            runner.stop()
