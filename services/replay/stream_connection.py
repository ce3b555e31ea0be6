"""One client WebSocket connection to the local exchange, speaking Binance's stream protocol.

* ``/ws/<stream>`` sends raw payloads, ``/stream?streams=a/b`` the combined envelope
  ``{"stream":..,"data":..}``; ``SET_PROPERTY combined`` switches between them.
* Control messages: ``SUBSCRIBE``, ``UNSUBSCRIBE``, ``LIST_SUBSCRIPTIONS``, ``SET_PROPERTY``,
  ``GET_PROPERTY``, answered ``{"result":..,"id":..}`` or
  ``{"error":{"code":N,"msg":..},"id":..}`` (0 unknown property, 1 value not Boolean,
  2 invalid request, 3 invalid JSON). ``SUBSCRIBE`` of a stream the exchange cannot feed is
  refused with code 2 (all or none).

  Why the error is wrapped in ``"error"`` although Binance's stream documentation shows a
  flat ``{"code":2,"msg":..,"id":..}``: the live stream servers answer the wrapped shape.
  It was logged verbatim from stream.binance.com —
  ``{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":2}``
  (github.com/ctubio/Krypto-trading-bot issue #1121, 2021) — and clients written against
  the real servers read it there: ccxt.pro's ``binance.handle_ws_error`` (ccxt/pro/binance.py,
  added in ccxt pull request #19833) takes ``message["error"]["code"]``/``["msg"]`` and
  its ``handle_message`` routes a message to it only when it has an ``error`` key; a flat
  answer would leave a refused ``watch_*`` call waiting forever.
* Limits: more than ``max_incoming_per_second`` incoming messages (text, ping and pong frames
  all count; Binance allows 5 on spot, 10 on USD-M) within one second closes the connection
  with 1008 "Too many requests"; at most
  ``MAX_STREAMS`` streams per connection.
* Keepalive: the server pings every ``ping_interval`` seconds and closes the connection when
  no pong came for ``pong_timeout`` seconds.
* Outgoing frames go through a bounded queue. ``send(..., wait=True)`` waits for room (the
  back-pressure of speed *max*); otherwise a full queue closes the connection (a client
  that cannot keep up with the market is disconnected, as Binance does).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import WSMsgType, web

MAX_INCOMING_PER_SECOND = {"spot": 5, "usdm": 10}
MAX_STREAMS = 1024
STREAM_NAME = re.compile(r"^(![A-Za-z]+(@[a-z]+)?|[a-z0-9_]+@[A-Za-z0-9_@.:+-]+)$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9]{1,36}$")


class ControlError(Exception):
    """A control message Binance would refuse: ``code`` and ``msg`` as it answers them."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


def error_reply(code: int, msg: str, request_id: object) -> dict:
    """A refused control message as the stream servers answer it (see the module
    docstring for the evidence)."""
    return {"error": {"code": code, "msg": msg}, "id": request_id}


def invalid_streams(names: list[Any]) -> str | None:
    """Why a list of stream names is not acceptable, or ``None``."""
    for name in names:
        if not isinstance(name, str):  # never repr() it: deeply nested params would recurse
            return f"Invalid request: a stream name must be a string, not {type(name).__name__}"
        if not STREAM_NAME.match(name):
            return f"Invalid request: invalid stream name {name[:200]!r}"
    return None


class StreamConnection:
    """A client connection: its subscriptions, outgoing queue, limits and keepalive."""

    def __init__(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        combined: bool,
        on_subscribe: Callable[[StreamConnection, list[str]], None],
        on_unsubscribe: Callable[[StreamConnection, list[str]], None],
        queue_size: int = 50_000,
        ping_interval: float = 20.0,
        pong_timeout: float = 60.0,
        max_incoming_per_second: int = 5,
        refusal: Callable[[list[str]], str | None] = lambda names: None,
    ) -> None:
        self.request = request
        self.ws = ws
        self.combined = combined
        self.streams: dict[str, None] = {}  # insertion-ordered set
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(queue_size)
        self.incoming: deque[float] = deque()
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.max_incoming_per_second = max_incoming_per_second
        self.last_pong = time.monotonic()
        self.frames_sent = 0
        self._on_subscribe = on_subscribe
        self._on_unsubscribe = on_unsubscribe
        self._refusal = refusal
        self._closing = False

    @property
    def closed(self) -> bool:
        return self._closing or self.ws.closed

    def frame(self, stream: str, payload: bytes) -> bytes:
        """The frame for a payload on this connection (combined envelope or raw)."""
        if self.combined:
            return b'{"stream":"%s","data":%s}' % (stream.encode(), payload)
        return payload

    async def send(self, frame: bytes, wait: bool) -> None:
        """Queue a frame; see the module docstring for what happens when the queue is full."""
        if self.closed:
            return
        if wait:
            await self.queue.put(frame)
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.close_soon(1008, b"Queue overflow: client too slow")

    def reply(self, body: dict) -> None:
        """Queue a control answer ahead of nothing: answers share the data queue's order."""
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(orjson.dumps(body))

    def close_soon(self, code: int, message: bytes) -> None:
        if not self._closing:
            self._closing = True
            asyncio.get_running_loop().create_task(self.ws.close(code=code, message=message))

    def abort(self) -> None:
        """Cut the TCP stream without a close frame (the client sees 1006)."""
        self._closing = True
        if self.request.transport is not None:
            self.request.transport.close()

    async def run(self) -> None:
        """Serve the connection until it closes."""
        writer = asyncio.get_running_loop().create_task(self._write())
        pinger = asyncio.get_running_loop().create_task(self._ping())
        try:
            await self._read()
        finally:
            self._closing = True
            pinger.cancel()
            self._on_unsubscribe(self, list(self.streams))
            while not self.queue.empty():  # frees a player waiting for room
                self.queue.get_nowait()
            self.queue.put_nowait(b"")  # wakes the writer, which then ends
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(writer, 1.0)

    async def _write(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while not self._closing:
                frame = await self.queue.get()
                if self._closing:
                    return
                await self.ws.send_frame(frame, WSMsgType.TEXT)
                self.frames_sent += 1

    async def _ping(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while not self.closed:
                await asyncio.sleep(self.ping_interval)
                if time.monotonic() - self.last_pong > self.pong_timeout:
                    self.close_soon(1008, b"Pong timeout")
                    return
                await self.ws.ping(str(time.time_ns() // 1_000_000).encode())

    def _count_incoming(self) -> bool:
        """Record one incoming message; False when the rate limit is broken."""
        now = time.monotonic()
        self.incoming.append(now)
        while self.incoming and now - self.incoming[0] >= 1.0:
            self.incoming.popleft()
        if len(self.incoming) > self.max_incoming_per_second:
            self.close_soon(1008, b"Too many requests")
            return False
        return True

    async def _read(self) -> None:
        while not self.ws.closed:
            message = await self.ws.receive()
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return
            if message.type == WSMsgType.ERROR:
                return
            if not self._count_incoming():
                continue
            if message.type == WSMsgType.PING:
                await self.ws.pong(message.data)
            elif message.type == WSMsgType.PONG:
                self.last_pong = time.monotonic()
            elif message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                self.reply(self.control(message.data))

    def control(self, text: str | bytes) -> dict:
        """The answer to one control message."""
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            return error_reply(3, f"Invalid JSON: {exc}", None)
        request_id = request.get("id") if isinstance(request, dict) else None
        try:
            result = self._dispatch(request)
        except ControlError as exc:
            return error_reply(exc.code, exc.msg, request_id)
        return {"result": result, "id": request_id}

    def _dispatch(self, request: Any) -> Any:
        if not isinstance(request, dict):
            raise ControlError(2, "Invalid request: expected an object")
        request_id = request.get("id")
        valid_id = (
            request_id is None
            or (isinstance(request_id, int) and not isinstance(request_id, bool))
            or (isinstance(request_id, str) and _REQUEST_ID.match(request_id))
        )
        if not valid_id:
            raise ControlError(2, "Invalid request: request ID must be an unsigned integer")
        method = request.get("method")
        params = request.get("params", [])
        if not isinstance(params, list):
            raise ControlError(2, "Invalid request: params must be an array")
        if method == "SUBSCRIBE":
            return self._subscribe(params)
        if method == "UNSUBSCRIBE":
            if problem := invalid_streams(params):
                raise ControlError(2, problem)
            gone = [name for name in params if name in self.streams]
            for name in gone:
                del self.streams[name]
            self._on_unsubscribe(self, gone)
            return None
        if method == "LIST_SUBSCRIPTIONS":
            return list(self.streams)
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            return self._property(method, params)
        if method is None:
            raise ControlError(2, "Invalid request: missing field `method`")
        raise ControlError(
            2,
            f"Invalid request: unknown variant `{method}`, expected one of `SUBSCRIBE`, "
            "`UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`",
        )

    def _property(self, method: str, params: list[Any]) -> bool | None:
        """SET_PROPERTY / GET_PROPERTY of the only property, ``combined``."""
        if method == "SET_PROPERTY":
            if len(params) != 2:
                raise ControlError(2, "Invalid request: SET_PROPERTY takes 2 params")
            if params[0] != "combined":
                raise ControlError(0, "Unknown property")
            if not isinstance(params[1], bool):
                raise ControlError(1, "Invalid value type: expected Boolean")
            self.combined = params[1]
            return None
        if method == "GET_PROPERTY":
            if len(params) != 1:
                raise ControlError(2, "Invalid request: GET_PROPERTY takes 1 param")
            if params[0] != "combined":
                raise ControlError(0, "Unknown property")
        return self.combined

    def _subscribe(self, params: list[Any]) -> None:
        """Add streams (all or none: a bad name or too many streams changes nothing)."""
        if not params:
            raise ControlError(2, "Invalid request: SUBSCRIBE needs at least one stream")
        if problem := invalid_streams(params):
            raise ControlError(2, problem)
        new = [name for name in dict.fromkeys(params) if name not in self.streams]
        if len(self.streams) + len(new) > MAX_STREAMS:
            raise ControlError(2, f"Invalid request: too many streams (max {MAX_STREAMS})")
        if refused := self._refusal(new):
            raise ControlError(2, refused)
        for name in new:
            self.streams[name] = None
        self._on_subscribe(self, new)
