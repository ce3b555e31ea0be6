"""One Binance combined-stream connection's lifecycle: its sessions, reading, control
messages, reconnects and make-before-break rotation (no stream bookkeeping across
connections: that is ``ws_client``'s).

A connection's streams go in its URL (as much as fits in ``url_max_chars``, the rest by
SUBSCRIBE). Control messages on a connection are
paced to ``control_rate`` per second (Binance closes a connection receiving more than 5
messages/s, pongs included) and batched (``max_params_per_message``). Reconnects wait
``Backoff`` delays (capped exponential, full jitter, floor) forever unless the client is
closed; failures are only forgotten after a session stayed up ``stable_after_s`` and did
not end with close code 1008. Connection attempts are limited to 300 per 5 minutes.

The protocol itself is aiohttp's client (its compiled frame reader): pings are answered
with pongs carrying their payload, fragmented messages are reassembled, a message above
``max_message_bytes`` closes the session with 1009, a close frame is answered and the
close handshake waits at most ``close_timeout_s``. No compression is offered. The client
pings after ``ping_interval_s`` without traffic and drops a session whose pong does not
come within half that interval. Text frames are read as bytes (no ``str`` copy):
``decode_frame`` checks their UTF-8.

Rotation: when the server announces ``serverShutdown`` or a session reaches
``rotate_after_s`` (23 h by default), a successor session opens with the same streams. The
old session keeps delivering; the successor's frames are held back from its first data
frame on for ``rotation_overlap_s``, then delivery switches to the successor (held frames
first, so each stream stays in order) and the old session is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import statistics
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import aiohttp
import msgspec
from yarl import URL

from services.binance import streams as names
from services.binance.backoff import Backoff
from services.binance.endpoints import Endpoints
from services.binance.messages import (
    ControlResponse,
    Frame,
    MalformedFrame,
    ServerShutdown,
    UnknownEvent,
    decode_frame,
)
from services.binance.rate_limit import SlidingWindowLimiter

POLICY_VIOLATION = 1008
"""Close code Binance sends for too many incoming messages ("Too many requests")."""

_TEXT = aiohttp.WSMsgType.TEXT
_BINARY = aiohttp.WSMsgType.BINARY
_OPEN_ERRORS = (OSError, TimeoutError, aiohttp.ClientError)
"""What opening a session can raise when the server is down, slow or refuses the upgrade."""


class LifecycleKind(enum.StrEnum):
    """What happened to a connection (see the module docstring for what to do)."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    RECONNECTED = "reconnected"
    ROTATED = "rotated"
    DROPPED = "dropped"


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    """A lifecycle change of one connection; ``at`` is wall-clock seconds."""

    kind: LifecycleKind
    connection_id: int
    streams: tuple[str, ...]
    reason: str = ""
    at: float = field(default_factory=time.time)


class Received(NamedTuple):
    """A decoded data frame, the wall-clock second it was read, and its connection."""

    frame: Frame
    received_at: float
    connection_id: int


FeedItem = Received | ConnectionEvent


class ControlError(RuntimeError):
    """The server refused a control message (``code``/``msg`` as Binance sent them)."""

    def __init__(self, method: str, code: int | None, msg: str | None) -> None:
        super().__init__(f"{method} refused: code {code}: {msg}")
        self.method = method
        self.code = code
        self.msg = msg


class ConnectionLost(RuntimeError):
    """The session closed before a control message was answered."""


@dataclass(frozen=True, slots=True)
class ConnectionStats:
    """Counters of one logical connection, cumulative across its sessions.

    messages_by_kind / bytes_by_kind: decoded frames and their bytes per stream kind
        (``depth``, ``aggTrade``, ``serverShutdown``, ...); control answers count under
        ``control``.
    malformed: frames that could not be decoded (skipped). unknown: unknown events.
    dropped: frames dropped because the consumer queue was full.
    reconnects: sessions opened after a loss. rotations: make-before-break switches.
    failed_attempts: connection attempts that failed. policy_closes: closes with 1008.
    control_sent: control messages sent (SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS).
    uptime_s: age of the current session (0 when down).
    last_message_age_s: seconds since the last frame of any kind (None before any).
    lag_ms_median / lag_ms_p95: receive time − event time ``E`` over the last
        ``lag_window`` data frames that carry ``E`` (None before any).
    """

    connection_id: int
    url: str
    streams: int
    connected: bool
    messages_by_kind: dict[str, int]
    bytes_by_kind: dict[str, int]
    malformed: int
    unknown: int
    dropped: int
    reconnects: int
    rotations: int
    failed_attempts: int
    policy_closes: int
    control_sent: int
    uptime_s: float
    last_message_age_s: float | None
    lag_ms_median: float | None
    lag_ms_p95: float | None

    @property
    def messages(self) -> int:
        """Decoded frames of every kind, control answers included."""
        return sum(self.messages_by_kind.values())


class _Role(enum.Enum):
    """What a session's data frames are for: held until it is activated (OPENING,
    SUCCESSOR), delivered (ACTIVE) or ignored (RETIRED)."""

    OPENING = 0
    ACTIVE = 1
    SUCCESSOR = 2
    RETIRED = 3


class _Session:
    """One open WebSocket of a connection."""

    def __init__(
        self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse, control_rate: float
    ):
        self.http = http
        self.ws = ws
        self.opened_at = time.monotonic()
        self.last_data = self.opened_at
        self.pending: dict[int, asyncio.Future[ControlResponse]] = {}
        self.pacer = SlidingWindowLimiter(1, 1.0 / control_rate)
        self.role = _Role.OPENING
        self.held: list[Received] = []
        self.switch_scheduled = False
        self.ended = False
        self.close_reason = ""
        self.close_code: int | None = None
        self.reader: asyncio.Task[None] | None = None

    def end(self, reason: str, code: int | None) -> None:
        if self.ended:
            return
        self.ended = True
        self.close_reason = reason
        self.close_code = code
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(reason))
        self.pending.clear()

    async def close(self, reason: str) -> None:
        self.end(reason, None)
        self.role = _Role.RETIRED
        await self.release()

    async def release(self) -> None:
        """Close the WebSocket (a no-op once closed) and its HTTP session (its connector):
        every session does, however it ended."""
        with contextlib.suppress(Exception):
            await self.ws.close()
        with contextlib.suppress(Exception):
            await self.http.close()


def _describe_close(
    last: aiohttp.WSMessage | None, ws: aiohttp.ClientWebSocketResponse
) -> tuple[str, int | None]:
    """Why a session's reading ended, from the last message ``receive`` gave, and the close
    code to act on (None when the connection was lost without a close frame)."""
    if last is not None and last.type is aiohttp.WSMsgType.CLOSE:
        return f"closed by server: code {last.data} {last.extra or ''}".rstrip(), last.data
    code = ws.close_code
    if last is not None and last.type is aiohttp.WSMsgType.ERROR:
        error = last.data
        if code is not None and code != aiohttp.WSCloseCode.ABNORMAL_CLOSURE:
            return f"closed: code {code} {error}".rstrip(), code
        return f"connection failed: {type(error).__name__}: {error}".rstrip(": "), None
    return "connection lost without a close frame", None


class ConnectionOwner(Protocol):
    """What a connection needs from the client that owns it: its settings and where frames,
    lifecycle events and background work go."""

    endpoints: Endpoints
    on_raw: Callable[[bytes, float], None] | None
    idle_timeout_s: float
    rotate_after_s: float | None
    rotation_overlap_s: float
    control_rate: float
    control_timeout_s: float
    max_params_per_message: int
    backoff: Backoff
    stable_after_s: float
    connection_attempts: SlidingWindowLimiter
    open_timeout_s: float
    ping_interval_s: float | None
    close_timeout_s: float
    max_message_bytes: int
    url_max_chars: int
    lag_window: int

    def deliver_frame(self, connection: Connection, item: Received) -> None:
        """Hand a data frame to the consumer (or count it dropped)."""

    def deliver_event(self, event: ConnectionEvent) -> None:
        """Hand a lifecycle event to the consumer."""

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run a fire-and-forget coroutine to completion."""

    def kind_of(self, stream: str) -> str:
        """The stream's kind (for per-kind statistics)."""

    def next_request_id(self) -> int:
        """A fresh id for a control message."""


class Connection:
    """One logical combined-stream connection: a stream set that survives its sessions."""

    def __init__(self, client: ConnectionOwner, connection_id: int, route: str):
        self.client = client
        self.id = connection_id
        self.route = route
        self.ws_url = client.endpoints.ws_url(route)
        self.desired: dict[str, None] = {}
        self.active: _Session | None = None
        self.successor: _Session | None = None
        self.opened = asyncio.Event()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.rotation_task: asyncio.Task[None] | None = None
        self.rotation_reason = ""
        self.rotation_failures = 0
        self.next_rotation_try = 0.0
        self.messages: dict[str, int] = {}
        self.bytes: dict[str, int] = {}
        self.lags: deque[float] = deque(maxlen=client.lag_window)
        self.malformed = self.unknown = self.dropped = 0
        self.reconnects = self.rotations = self.failed_attempts = 0
        self.policy_closes = self.control_sent = 0
        self.last_message_wall: float | None = None

    @property
    def streams(self) -> tuple[str, ...]:
        return tuple(self.desired)

    def start(self) -> None:
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        for task in (self.rotation_task, self.task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for session in (self.successor, self.active):
            if session is not None:
                await session.close("client closed")
                if session.reader is not None:
                    with contextlib.suppress(asyncio.CancelledError):
                        await session.reader

    def emit(self, kind: LifecycleKind, reason: str = "") -> None:
        self.client.deliver_event(ConnectionEvent(kind, self.id, self.streams, reason))

    # -- sessions -------------------------------------------------------------------------

    def _url_streams(self) -> list[str]:
        """Leading streams whose names fit in the URL budget."""
        chosen: list[str] = []
        length = len(self.ws_url) + len("/stream?streams=")
        for name in self.desired:
            length += len(name) + 1
            if length > self.client.url_max_chars:
                break
            chosen.append(name)
        return chosen

    async def _open_session(self) -> _Session:
        client = self.client
        await client.connection_attempts.acquire()
        url_streams = self._url_streams()
        http = aiohttp.ClientSession()
        try:
            async with asyncio.timeout(client.open_timeout_s):
                ws = await http.ws_connect(
                    URL(names.combined_url(self.ws_url, url_streams), encoded=True),
                    timeout=aiohttp.ClientWSTimeout(ws_close=client.close_timeout_s),
                    heartbeat=client.ping_interval_s,
                    max_msg_size=client.max_message_bytes,
                    compress=0,
                    decode_text=False,
                )
        except BaseException:
            await http.close()
            raise
        session = _Session(http, ws, client.control_rate)
        session.reader = asyncio.get_running_loop().create_task(self._read(session))
        in_url = set(url_streams)
        missing = [name for name in self.desired if name not in in_url]
        try:
            await self._send_batches(session, "SUBSCRIBE", missing)
        except BaseException:
            client.spawn(session.close("subscription at open failed"))
            raise
        return session

    def _activate(self, session: _Session, kind: LifecycleKind, reason: str = "") -> None:
        """Deliver from ``session`` from now on: the event first, then its held frames."""
        session.role = _Role.ACTIVE
        self.active = session
        self.emit(kind, reason)
        for item in session.held:
            self.client.deliver_frame(self, item)
        session.held.clear()

    async def _read(self, session: _Session) -> None:
        ws = session.ws
        message: aiohttp.WSMessage | None = None
        try:
            try:
                while True:
                    message = await ws.receive()
                    kind = message.type
                    if kind is not _TEXT and kind is not _BINARY:
                        break
                    self._on_message(session, message.data)
            except Exception as exc:
                session.end(f"reader failed: {exc!r}", None)
            if not session.ended:
                reason, code = _describe_close(message, ws)
                session.end(reason, code)
            self.wake.set()
        finally:
            await session.release()

    def _on_message(self, session: _Session, raw: bytes) -> None:
        now = time.time()
        if self.client.on_raw is not None:
            self.client.on_raw(raw, now)
        received = time.monotonic()
        self.last_message_wall = now
        try:
            frame = decode_frame(raw)
        except MalformedFrame:
            self.malformed += 1
            return
        event = frame.event
        kind = self.client.kind_of(frame.stream) if frame.stream else "control"
        self.messages[kind] = self.messages.get(kind, 0) + 1
        self.bytes[kind] = self.bytes.get(kind, 0) + len(raw)
        event_type = type(event)
        if event_type is ControlResponse:
            self._answer(session, event)
            return
        if event_type is UnknownEvent:
            self.unknown += 1
            return
        if event_type is ServerShutdown:
            self.request_rotation("serverShutdown")
            return
        event_time = getattr(event, "E", None)
        if event_time:
            self.lags.append(now * 1000.0 - event_time)
        session.last_data = received
        item = Received(frame, now, self.id)
        role = session.role
        if role is _Role.ACTIVE:
            self.client.deliver_frame(self, item)
        elif role is not _Role.RETIRED:
            session.held.append(item)
            if role is _Role.SUCCESSOR:
                self._schedule_switch(session)

    def _schedule_switch(self, successor: _Session) -> None:
        if successor.held and not successor.switch_scheduled:
            successor.switch_scheduled = True
            asyncio.get_running_loop().call_later(
                self.client.rotation_overlap_s, self._switch, successor
            )

    def _answer(self, session: _Session, response: ControlResponse) -> None:
        future = session.pending.pop(response.id, None) if isinstance(response.id, int) else None
        if future is not None and not future.done():
            future.set_result(response)

    async def control(
        self, session: _Session, method: str, params: list[str] | None = None
    ) -> ControlResponse:
        """Send one control message on ``session`` (paced) and await its answer."""
        await session.pacer.acquire()
        if session.ended:
            raise ConnectionLost(session.close_reason)
        request_id = self.client.next_request_id()
        future: asyncio.Future[ControlResponse] = asyncio.get_running_loop().create_future()
        session.pending[request_id] = future
        message: dict[str, Any] = {"method": method, "id": request_id}
        if params is not None:
            message["params"] = params
        try:
            await session.ws.send_frame(msgspec.json.encode(message), _TEXT)
        except ConnectionError as exc:
            session.pending.pop(request_id, None)
            raise ConnectionLost(str(exc)) from exc
        self.control_sent += 1
        try:
            async with asyncio.timeout(self.client.control_timeout_s):
                response = await future
        finally:
            session.pending.pop(request_id, None)
        if not response.ok:
            raise ControlError(method, response.code, response.msg)
        return response

    async def _send_batches(self, session: _Session, method: str, streams: list[str]) -> None:
        size = self.client.max_params_per_message
        for start in range(0, len(streams), size):
            batch = streams[start : start + size]
            await self.control(session, method, batch)

    def _live_sessions(self) -> list[_Session]:
        return [s for s in (self.active, self.successor) if s is not None and not s.ended]

    async def change(self, method: str, streams: list[str]) -> None:
        """SUBSCRIBE or UNSUBSCRIBE ``streams`` on the open sessions.

        A session that is lost meanwhile is not an error: the next session's URL carries
        the connection's stream set. A session that does not answer in time is closed
        (and so reconnected). A refusal raises ``ControlError``.
        """
        for session in self._live_sessions():
            try:
                await self._send_batches(session, method, streams)
            except ConnectionLost:
                continue
            except TimeoutError:
                await session.close(f"no answer to {method} in {self.client.control_timeout_s}s")

    # -- supervision ----------------------------------------------------------------------

    def request_rotation(self, reason: str) -> None:
        if not self.rotation_reason:
            self.rotation_reason = reason
        self.wake.set()

    async def _run(self) -> None:
        client = self.client
        failures = 0
        ever_connected = False
        while True:
            if failures:
                await asyncio.sleep(client.backoff.delay(failures - 1))
            try:
                session = await self._open_session()
            except (*_OPEN_ERRORS, ConnectionLost, ControlError):
                failures += 1
                self.failed_attempts += 1
                continue
            self.rotation_reason = ""
            self.rotation_failures = 0
            if ever_connected:
                self.reconnects += 1
                self._activate(session, LifecycleKind.RECONNECTED)
            else:
                self._activate(session, LifecycleKind.CONNECTED)
            ever_connected = True
            self.opened.set()
            last = await self._supervise()
            self.active = None
            if last.close_code == POLICY_VIOLATION:
                self.policy_closes += 1
            self.emit(LifecycleKind.DISCONNECTED, last.close_reason)
            lived = time.monotonic() - last.opened_at
            if lived >= client.stable_after_s and last.close_code != POLICY_VIOLATION:
                failures = 0
            failures += 1

    def _tick(self, session: _Session) -> float:
        """Seconds until the supervisor must look again without being woken."""
        now = time.monotonic()
        client = self.client
        waits = [client.idle_timeout_s - (now - session.last_data)]
        if self.successor is None and self.rotation_task is None:
            retry_in = self.next_rotation_try - now
            if self.rotation_reason:
                waits.append(retry_in)
            elif client.rotate_after_s is not None:
                waits.append(max(client.rotate_after_s - (now - session.opened_at), retry_in))
        return max(0.05, min(waits))

    async def _supervise(self) -> _Session:
        """Watch the active session until it is lost for good; returns the last one."""
        client = self.client
        while True:
            session = self.active
            assert session is not None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._tick(session)):
                    await self.wake.wait()
            self.wake.clear()
            session = self.active
            assert session is not None
            successor = self.successor
            if successor is not None and successor.ended:
                self.successor = None
                self._rotation_failed()
            if session.ended:
                if self.successor is not None:
                    self._switch(self.successor)
                    continue
                self._cancel_rotation()
                return session
            now = time.monotonic()
            if now - session.last_data >= client.idle_timeout_s:
                self._cancel_rotation()
                await session.close(f"idle: no data for {client.idle_timeout_s:g} s")
                return session
            due = client.rotate_after_s is not None and (
                now - session.opened_at >= client.rotate_after_s
            )
            if (
                (self.rotation_reason or due)
                and self.successor is None
                and self.rotation_task is None
                and now >= self.next_rotation_try
            ):
                self.rotation_task = asyncio.get_running_loop().create_task(self._rotate())

    async def _rotate(self) -> None:
        """Open the successor session; the switch happens once it delivers data."""
        try:
            successor = await self._open_session()
        except (*_OPEN_ERRORS, ConnectionLost, ControlError):
            self.failed_attempts += 1
            self._rotation_failed()
            successor = None
        self.rotation_task = None
        self.wake.set()
        if successor is None:
            return
        if self.active is None:
            await successor.close("rotation no longer needed")
            return
        successor.role = _Role.SUCCESSOR
        self.successor = successor
        self._schedule_switch(successor)

    def _rotation_failed(self) -> None:
        self.next_rotation_try = time.monotonic() + self.client.backoff.delay(
            self.rotation_failures
        )
        self.rotation_failures += 1

    def _cancel_rotation(self) -> None:
        if self.rotation_task is not None:
            self.rotation_task.cancel()
            self.rotation_task = None
        if self.successor is not None:
            self.client.spawn(self.successor.close("rotation abandoned"))
            self.successor = None

    def _switch(self, successor: _Session) -> None:
        """Make the successor the active session: held frames first, then live ones."""
        if successor is not self.successor:
            return
        old = self.active
        self.successor = None
        self.rotations += 1
        reason = self.rotation_reason or "rotation"
        self.rotation_reason = ""
        self.rotation_failures = 0
        if old is not None:
            old.role = _Role.RETIRED
            if not old.ended:
                self.client.spawn(old.close("rotated"))
        self._activate(successor, LifecycleKind.ROTATED, reason)
        self.wake.set()

    def stats(self) -> ConnectionStats:
        session = self.active
        connected = session is not None and not session.ended
        now = time.time()
        lags = sorted(self.lags)
        return ConnectionStats(
            connection_id=self.id,
            url=names.combined_url(self.ws_url, ()),
            streams=len(self.desired),
            connected=connected,
            messages_by_kind=dict(self.messages),
            bytes_by_kind=dict(self.bytes),
            malformed=self.malformed,
            unknown=self.unknown,
            dropped=self.dropped,
            reconnects=self.reconnects,
            rotations=self.rotations,
            failed_attempts=self.failed_attempts,
            policy_closes=self.policy_closes,
            control_sent=self.control_sent,
            uptime_s=time.monotonic() - session.opened_at if connected and session else 0.0,
            last_message_age_s=(
                None if self.last_message_wall is None else now - self.last_message_wall
            ),
            lag_ms_median=statistics.median(lags) if lags else None,
            lag_ms_p95=lags[min(len(lags) - 1, int(0.95 * len(lags)))] if lags else None,
        )
