"""Asyncio WebSocket client for Binance combined market streams.

Consumer interface
------------------
::

    client = BinanceWebSocketClient(preset("spot"), idle_timeout_s=30)
    await client.subscribe([streams.diff_depth("BTCUSDT"), streams.agg_trade("BTCUSDT")])
    async with client:                       # starts the connections, closes them at exit
        async for item in client.listen_with_reconnect():
            if isinstance(item, Received):   # item.frame: messages.Frame (stream, event)
                ...                          # item.received_at: wall-clock seconds
            else:                            # ConnectionEvent: lifecycle of one connection
                ...                          # item.kind, item.streams, item.reason

``listen_with_reconnect()`` never ends until ``close()``: connections are re-established
behind it and every stream is resubscribed. ``listen()`` yields only ``Received`` items
and ends at the first loss of any connection (for scripts and one-shot captures).

Lifecycle events (``ConnectionEvent.kind``), each naming the connection's streams:

- CONNECTED: the connection's first session is open; its streams start flowing.
- DISCONNECTED(reason): the session is gone (server close and its code, network error,
  idle watchdog, keepalive timeout). Frames of these streams stop: mark books STALE.
- RECONNECTED: a new session carries the streams again. Frames in between were lost:
  resync books from a snapshot, backfill trades from the last id seen.
- ROTATED: a make-before-break switch (``serverShutdown`` or the 24 h limit): no frame
  was lost, but frames from the overlap may arrive twice. Consumers dedupe by ids
  (diff depth ``u`` ≤ local id is ignored, trades by ``a``/``t``); no resync is needed.
- DROPPED(reason): the consumer fell behind and ``max_pending`` frames were queued; newer
  frames were dropped: treat like RECONNECTED for the named streams.

Control frames (answers to SUBSCRIBE and the like) and ``serverShutdown`` are handled here
and never reach the consumer; malformed frames and unknown events are counted and skipped.

The client keeps the subscription bookkeeping across connections (which connection carries
which stream, subscribe/unsubscribe, delivery to the consumer, back-pressure); one
connection's lifecycle — sessions, reading, control messages, reconnects, rotation — is
``ws_connection.Connection``. Streams are grouped into connections by route (USD-M
``/public`` vs ``/market``) and ``Endpoints.max_streams_per_connection``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any

from services.binance import streams as names
from services.binance.backoff import Backoff
from services.binance.endpoints import Endpoints
from services.binance.messages import stream_kind
from services.binance.rate_limit import SlidingWindowLimiter
from services.binance.ws_connection import (
    Connection,
    ConnectionEvent,
    ConnectionStats,
    ControlError,
    FeedItem,
    LifecycleKind,
    Received,
)

__all__ = [
    "BinanceWebSocketClient",
    "ConnectionEvent",
    "ConnectionStats",
    "ControlError",
    "FeedItem",
    "LifecycleKind",
    "Received",
]


class BinanceWebSocketClient:
    """Many Binance streams over few combined-stream connections, kept alive forever.

    endpoints: venue (``endpoints.preset(...)`` or ``endpoints.custom(...)``).
    idle_timeout_s: a session without a data frame for this long is reconnected. Keep it
        above the slowest stream's cadence (klines push every 2 s; a trade stream of a
        quiet symbol can be silent for minutes: pair it with a depth or ticker stream).
    rotate_after_s: age at which a session is rotated make-before-break (None: never).
    rotation_overlap_s: how long the successor's frames are held back before the switch.
    control_rate: control messages per second per connection (Binance allows 5 incoming
        messages/s, pings and pongs included). control_timeout_s: wait for an answer.
    backoff: reconnect delays. stable_after_s: session age that forgets past failures.
    connection_attempts: shared limiter of connection attempts (300 per 5 min per IP).
    max_pending: data frames queued for the consumer before newer ones are dropped.
    on_raw: called with the exact bytes of every frame read and its receive time (wall
        seconds), before decoding — used to record sessions. During a rotation both
        sessions' frames pass through it.
    """

    def __init__(
        self,
        endpoints: Endpoints,
        *,
        idle_timeout_s: float = 60.0,
        rotate_after_s: float | None = 23 * 3600.0,
        rotation_overlap_s: float = 1.0,
        control_rate: float = 3.0,
        control_timeout_s: float = 10.0,
        max_params_per_message: int = 100,
        backoff: Backoff | None = None,
        stable_after_s: float = 30.0,
        connection_attempts: SlidingWindowLimiter | None = None,
        open_timeout_s: float = 10.0,
        ping_interval_s: float | None = 20.0,
        close_timeout_s: float = 2.0,
        max_message_bytes: int = 8 * 1024 * 1024,
        max_pending: int = 100_000,
        url_max_chars: int = 4000,
        lag_window: int = 512,
        on_raw: Callable[[bytes, float], None] | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.on_raw = on_raw
        self.idle_timeout_s = idle_timeout_s
        self.rotate_after_s = rotate_after_s
        self.rotation_overlap_s = rotation_overlap_s
        self.control_rate = control_rate
        self.control_timeout_s = control_timeout_s
        self.max_params_per_message = max_params_per_message
        self.backoff = backoff or Backoff()
        self.stable_after_s = stable_after_s
        self.connection_attempts = connection_attempts or SlidingWindowLimiter(300, 300.0)
        self.open_timeout_s = open_timeout_s
        self.ping_interval_s = ping_interval_s
        self.close_timeout_s = close_timeout_s
        self.max_message_bytes = max_message_bytes
        self.max_pending = max_pending
        self.url_max_chars = url_max_chars
        self.lag_window = lag_window
        self._connections: list[Connection] = []
        self._owner: dict[str, Connection] = {}
        self._kinds: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._next_connection_id = itertools.count(1)
        self._pending: deque[FeedItem] = deque()
        self._frames_pending = 0
        self._dropped_since: dict[int, int] = {}
        self._ready = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()
        self._started = False
        self._closed = False

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run a fire-and-forget coroutine (closing a retired session) to completion."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def next_request_id(self) -> int:
        """A fresh id for a control message (unique across the client's connections)."""
        return next(self._ids)

    # -- stream set -----------------------------------------------------------------------

    @property
    def streams(self) -> tuple[str, ...]:
        """Every stream the client carries (or will carry once connected)."""
        return tuple(self._owner)

    def kind_of(self, stream: str) -> str:
        """The stream's kind, remembered for the streams this client asked for (a peer's
        unknown names are not kept)."""
        kind = self._kinds.get(stream)
        if kind is None:
            kind = stream_kind(stream)
            if stream in self._owner:
                self._kinds[stream] = kind
        return kind

    def _connection_for(self, stream: str) -> Connection:
        route = self.endpoints.route(stream)
        limit = self.endpoints.max_streams_per_connection
        for connection in self._connections:
            if connection.route == route and len(connection.desired) < limit:
                return connection
        connection = Connection(self, next(self._next_connection_id), route)
        self._connections.append(connection)
        return connection

    async def subscribe(self, streams: Iterable[str]) -> None:
        """Add streams. Before ``connect`` they are only recorded; afterwards they are
        subscribed live (batched, paced) or carried by new connections, and this returns
        once the server confirmed or the stream is part of a connection being re-opened.
        Raises ``ControlError`` (and forgets the streams) when the server refuses them."""
        added: dict[Connection, list[str]] = {}
        for name in dict.fromkeys(streams):
            if name in self._owner:
                continue
            connection = self._connection_for(name)
            connection.desired[name] = None
            self._owner[name] = connection
            added.setdefault(connection, []).append(name)
        if not self._started:
            return
        try:
            await asyncio.gather(*(self._add(c, n) for c, n in added.items()))
        except ControlError:
            for connection, group in added.items():
                for name in group:
                    connection.desired.pop(name, None)
                    self._owner.pop(name, None)
            raise

    async def _add(self, connection: Connection, streams: list[str]) -> None:
        if connection.task is None:
            connection.start()
            await connection.opened.wait()
            return
        await connection.change("SUBSCRIBE", streams)

    async def unsubscribe(self, streams: Iterable[str]) -> None:
        """Remove streams; a connection left without streams is closed."""
        removed: dict[Connection, list[str]] = {}
        for name in dict.fromkeys(streams):
            connection = self._owner.pop(name, None)
            if connection is not None:
                connection.desired.pop(name, None)
                removed.setdefault(connection, []).append(name)
        for connection, group in removed.items():
            if not connection.desired:
                self._connections.remove(connection)
                await connection.stop()
            elif connection.task is not None:
                await connection.change("UNSUBSCRIBE", group)

    async def list_subscriptions(self) -> list[str]:
        """Streams the server says the open sessions carry (LIST_SUBSCRIPTIONS), sorted."""
        result: set[str] = set()
        for connection in self._connections:
            session = connection.active
            if session is None or session.ended:
                continue
            response = await connection.control(session, "LIST_SUBSCRIPTIONS")
            result.update(response.result or ())
        return sorted(result)

    async def subscribe_depth_diff(self, symbol: str, speed_ms: int | None = 100) -> str:
        """Diff depth stream of ``symbol``; returns the stream name."""
        return await self._subscribe_one(names.diff_depth(symbol, speed_ms))

    async def subscribe_depth(
        self, symbol: str, levels: int = 20, speed_ms: int | None = 100
    ) -> str:
        """Partial (top-N) depth stream of ``symbol``; returns the stream name."""
        return await self._subscribe_one(names.partial_depth(symbol, levels, speed_ms))

    async def subscribe_trade(self, symbol: str) -> str:
        """Trade stream of ``symbol``; returns the stream name."""
        return await self._subscribe_one(names.trade(symbol))

    async def subscribe_agg_trade(self, symbol: str) -> str:
        """Aggregate trade stream of ``symbol``; returns the stream name."""
        return await self._subscribe_one(names.agg_trade(symbol))

    async def subscribe_kline(self, symbol: str, interval: str = "1m") -> str:
        """Kline stream of ``symbol`` and ``interval``; returns the stream name."""
        return await self._subscribe_one(names.kline(symbol, interval))

    async def subscribe_mini_ticker(self, symbol: str) -> str:
        """Mini ticker stream of ``symbol``; returns the stream name."""
        return await self._subscribe_one(names.mini_ticker(symbol))

    async def subscribe_ticker(self, symbol: str) -> str:
        """24 h ticker stream of ``symbol``; returns the stream name."""
        return await self._subscribe_one(names.ticker(symbol))

    async def subscribe_book_ticker(self, symbol: str) -> str:
        """Best bid/ask stream of ``symbol``; returns the stream name."""
        return await self._subscribe_one(names.book_ticker(symbol))

    async def _subscribe_one(self, stream: str) -> str:
        await self.subscribe([stream])
        return stream

    # -- lifecycle ------------------------------------------------------------------------

    async def connect(self, streams: Iterable[str] = ()) -> None:
        """Open connections for the recorded streams plus ``streams``; returns once each
        connection's first session is open (retrying with backoff until then)."""
        if self._closed:
            raise RuntimeError("client is closed")
        await self.subscribe(streams)
        self._started = True
        for connection in self._connections:
            connection.start()
        await asyncio.gather(*(c.opened.wait() for c in self._connections))

    async def connect_combined(self, streams: Iterable[str]) -> None:
        """Same as ``connect``: every connection is a combined-stream connection."""
        await self.connect(streams)

    async def close(self) -> None:
        """Close every connection; iterators end after the items already queued."""
        self._closed = True
        for connection in list(self._connections):
            await connection.stop()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        self._ready.set()

    async def __aenter__(self) -> BinanceWebSocketClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- delivery -------------------------------------------------------------------------

    def deliver_event(self, event: ConnectionEvent) -> None:
        self._pending.append(event)
        self._ready.set()

    def deliver_frame(self, connection: Connection, item: Received) -> None:
        dropped = self._dropped_since.get(connection.id)
        if self._frames_pending >= self.max_pending:
            connection.dropped += 1
            self._dropped_since[connection.id] = (dropped or 0) + 1
            return
        if dropped:
            del self._dropped_since[connection.id]
            connection.emit(LifecycleKind.DROPPED, f"consumer behind: {dropped} frames dropped")
        self._pending.append(item)
        self._frames_pending += 1
        self._ready.set()

    async def listen_with_reconnect(self) -> AsyncIterator[FeedItem]:
        """Frames (``Received``) and lifecycle events (``ConnectionEvent``) in arrival
        order, across reconnects and rotations, until ``close()``."""
        pending = self._pending
        while True:
            while pending:
                item = pending.popleft()
                if type(item) is Received:
                    self._frames_pending -= 1
                yield item
            if self._closed:
                return
            self._ready.clear()
            await self._ready.wait()

    async def listen(self) -> AsyncIterator[Received]:
        """Frames only; ends (and closes the client) when any connection is lost."""
        async for item in self.listen_with_reconnect():
            if type(item) is Received:
                yield item
            elif item.kind is LifecycleKind.DISCONNECTED:
                await self.close()
                return

    def get_stats(self) -> list[ConnectionStats]:
        """Counters of every connection, in connection order."""
        return [connection.stats() for connection in self._connections]
