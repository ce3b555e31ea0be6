"""The push streams on the dashboard's own Flask server (flask-sock; schemas in
``docs/streams.md``):

- ``/ws/asset/<SYMBOL>/prices/``: best bid/ask, mid, last price, sync state; at most one
  message per ``coalesce_s`` per client (the newest).
- ``/ws/asset/<SYMBOL>/trades/?from_id=N``: every trade in id order, none twice; with
  ``from_id`` the trades after N first (ring, trade window, history), then live.
- ``/ws/asset/<SYMBOL>/book/?levels=N&band_bps=B``: the top N levels per side (only those
  within ±B basis points of the mid when B is given), coalesced like prices.
- ``/ws/asset/<SYMBOL>/status/``: the status bar's badges, once a second
  (``app.status_stream``).
- ``/ws/alerts/``: alert events.

Before the handshake a request is refused with a JSON 403 when its ``Origin`` is not
allowed (default: the dashboard's own host; clients that send no Origin, i.e. not
browsers, are served) and a 400 naming a bad parameter. An unknown symbol is closed right
after the handshake with code 4404 and a reason naming streamed and close symbols.

Each connection is served by one thread (gunicorn gthread, or the dev server's threads)
that only waits on its own subscription; the feed and the other clients never wait for it.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, jsonify, request
from flask_sock import Sock

from app.callbacks.symbol import trading_symbols
from app.status_stream import StatusRelay
from components.symbol_picker import close_matches
from services.push.service import PushService
from services.push.subscription import Latest, Queue, Subscription
from services.store import MarketStore, unavailable

UNKNOWN_SYMBOL = 4404
TRY_AGAIN_LATER = 1013
POLICY = 1008
IDLE_CHECK_S = 1.0
MAX_REASON_BYTES = 123
"""The WebSocket protocol's limit on a close reason."""
MAX_BAND_BPS = 10_000
"""The widest band a book stream may ask for: ±100 % of the mid."""


def closing_reason(text: str) -> str:
    """``text`` cut to what fits a close frame (123 bytes of UTF-8)."""
    data = text.encode()
    if len(data) <= MAX_REASON_BYTES:
        return text
    return data[: MAX_REASON_BYTES - 3].decode(errors="ignore") + "..."


def unknown_symbol_reason(symbol: str, streamed: Sequence[str], known: Sequence[str]) -> str:
    """Why ``symbol`` is refused, naming close matches first, then streamed symbols."""
    valid = list(dict.fromkeys([*close_matches(symbol, known), *streamed, *known]))
    return closing_reason(f"unknown symbol {symbol}; valid: {', '.join(valid)}")


def origin_allowed(origin: str | None, host: str, allowed: Sequence[str]) -> bool:
    """Whether a handshake's ``Origin`` may connect: absent (not a browser), listed in
    ``allowed`` (scheme://host[:port] or ``*``), or — when nothing is listed — the
    dashboard's own ``host``."""
    if not origin:
        return True
    if allowed:
        return "*" in allowed or origin.rstrip("/") in allowed
    return urlsplit(origin).netloc == host


def _int_param(name: str, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    value = int(raw)  # ValueError answered as 400 by the caller
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}")
    return value


def _refusal(paused: bool, allowed: Sequence[str], max_levels: int) -> tuple[Response, int] | None:
    """The JSON answer refusing a handshake (503 paused, 403 origin, 400 parameter), or
    None."""
    if paused:
        return jsonify(error="push streams paused; poll the JSON API"), 503
    origin = request.headers.get("Origin")
    if not origin_allowed(origin, request.host, allowed):
        return jsonify(error=f"origin {origin} is not allowed", parameter="Origin"), 403
    for name, low, high in (
        ("from_id", -1, 2**63 - 1), ("levels", 1, max_levels), ("band_bps", 1, MAX_BAND_BPS),
    ):  # fmt: skip
        try:
            _int_param(name, low, high)
        except ValueError as exc:
            problem = str(exc) if "between" in str(exc) else f"{name} must be an integer"
            return jsonify(error=problem, parameter=name), 400
    return None


def _admit(ws: object, store: MarketStore, symbol: str) -> str | None:
    """The symbol (upper case) when tradable — asking the feed for it if not streamed
    yet — else None after closing ``ws`` with 4404 and the valid symbols, or with 1013
    (try again later) while the store cannot read the symbol list (a Redis failover)."""
    symbol = symbol.upper()
    known = trading_symbols(store)
    if symbol in known:
        if store.snapshot(symbol) is None and unavailable(store, symbol) is None:
            store.request_symbol(symbol)
        return symbol
    if (reason := unavailable(store)) is not None:
        ws.close(TRY_AGAIN_LATER, closing_reason(reason))  # type: ignore[attr-defined]
        return None
    reason = unknown_symbol_reason(symbol, store.published_symbols(), known)
    ws.close(UNKNOWN_SYMBOL, reason)  # type: ignore[attr-defined]
    return None


def register(
    server: Flask, store: MarketStore, push: PushService, allowed_origins: Sequence[str] = ()
) -> None:
    """Serve the push streams of ``push`` on ``server`` (see the module docstring)."""
    bp = Blueprint("streams", __name__)
    sock = Sock()
    limits = push.limits
    allowed = [o.rstrip("/") for o in allowed_origins]
    server.config.setdefault("SOCK_SERVER_OPTIONS", {"ping_interval": 25})
    server.extensions["tapescope_push"] = push

    @bp.before_request
    def check_request() -> tuple[Response, int] | None:
        refused = _refusal(push.paused, allowed, limits.max_levels)
        if refused is None:
            push.start()
        return refused

    @sock.route("/ws/asset/<symbol>/trades/", bp=bp)
    def trades(ws: object, symbol: str) -> None:
        with _session(ws):
            if (name := _admit(ws, store, symbol)) is None:
                return
            from_id = _int_param("from_id", -1, 2**63 - 1)
            sub = push.hub.subscribe_trades(name, from_id)
            try:
                _serve_queue(ws, sub, limits.send_buffer, from_id)
            finally:
                push.hub.unsubscribe("trades", name, sub)

    def serve_latest(
        ws: object,
        stream: str,
        symbol: str,
        subscribe: Callable[[str], Latest],
        encode: Callable[[object], bytes],
    ) -> None:
        """Serve a coalesced stream (prices, book) of ``symbol`` to ``ws``."""
        with _session(ws):
            if (name := _admit(ws, store, symbol)) is None:
                return
            sub = subscribe(name)
            try:
                _serve_latest(ws, sub, limits.send_buffer, limits.coalesce_s, encode)
            finally:
                push.hub.unsubscribe(stream, name, sub)

    @sock.route("/ws/asset/<symbol>/prices/", bp=bp)
    def prices(ws: object, symbol: str) -> None:
        serve_latest(ws, "prices", symbol, push.hub.subscribe_prices, lambda m: m)

    @sock.route("/ws/asset/<symbol>/book/", bp=bp)
    def book(ws: object, symbol: str) -> None:
        levels = _int_param("levels", 1, limits.max_levels) or 20
        band = _int_param("band_bps", 1, MAX_BAND_BPS)
        serve_latest(ws, "book", symbol, push.hub.subscribe_book, lambda s: s.message(levels, band))

    status_relay = StatusRelay(store, lambda: push.paused)

    @sock.route("/ws/asset/<symbol>/status/", bp=bp)
    def status(ws: object, symbol: str) -> None:
        _serve_status(ws, store, status_relay, symbol, limits.send_buffer)

    @sock.route("/ws/alerts/", bp=bp)
    def alerts(ws: object) -> None:
        with _session(ws):
            sub = push.events.subscribe()
            try:
                _serve_queue(ws, sub, limits.send_buffer, None)
            finally:
                push.events.unsubscribe(sub)

    server.register_blueprint(bp)


def _serve_status(
    ws: object, store: MarketStore, relay: StatusRelay, symbol: str, send_buffer: int
) -> None:
    """Serve ``symbol``'s status stream (one message per relay interval) to ``ws``."""
    with _session(ws):
        if (name := _admit(ws, store, symbol)) is None:
            return
        relay.start()
        sub = relay.subscribe(name)
        try:
            _serve_latest(ws, sub, send_buffer, 0.0, lambda m: m)
        finally:
            relay.unsubscribe(name, sub)


@contextlib.contextmanager
def _session(ws: object) -> Iterator[None]:
    """End the connection for good when a stream's loop ends: a close frame (if none was
    sent), the peer's answer awaited briefly, then the TCP stream shut, so a keep-alive
    HTTP server (werkzeug) does not wait for a next request on it. The stream is shut
    through a duplicate of the socket: simple-websocket closes its own object when the peer
    closes, which leaves the server's references open."""
    held: socket.socket = ws.sock.dup()  # type: ignore[attr-defined]
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            ws.close()  # type: ignore[attr-defined]
        ws.thread.join(timeout=1.0)  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):
            held.shutdown(socket.SHUT_RDWR)
        held.close()


def _prepare(ws: object, sub: Subscription, send_buffer: int) -> None:
    """Bound the connection's kernel send buffer and let the hub abort a stalled send."""
    raw: socket.socket = ws.sock.dup()  # type: ignore[attr-defined]
    if send_buffer:
        with contextlib.suppress(OSError):
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)

    def abort() -> None:
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_RDWR)

    sub.abort = abort


def _send(ws: object, sub: Subscription, message: bytes) -> None:
    sub.sending(True)
    try:
        ws.send(message.decode())  # type: ignore[attr-defined]
    finally:
        sub.sending(False)


def _close_cut(ws: object, sub: Subscription) -> bool:
    """Close with the cut reason when the hub cut this client; whether it did."""
    if sub.cut_reason is None:
        return False
    with contextlib.suppress(Exception):
        ws.close(POLICY, closing_reason(sub.cut_reason))  # type: ignore[attr-defined]
    return True


def _serve_queue(ws: object, sub: Queue, send_buffer: int, after_id: int | None) -> None:
    """Send queued messages in order until the client leaves or is cut. Trade batches are
    sent only above the last trade id sent (a batch straddling it is trimmed), so a replay
    joining live trades never repeats one."""
    _prepare(ws, sub, send_buffer)
    last = after_id
    while ws.connected:  # type: ignore[attr-defined]
        item = sub.take(IDLE_CHECK_S)
        if item is None:
            if _close_cut(ws, sub):
                return
            continue
        if isinstance(item, bytes):
            _send(ws, sub, item)
            continue
        message = item.encoded(last)
        if message is not None:
            _send(ws, sub, message)
        last = item.last_id if last is None else max(last, item.last_id)


def _serve_latest(
    ws: object,
    sub: Latest,
    send_buffer: int,
    coalesce_s: float,
    encode: Callable[[object], bytes],
) -> None:
    """Send the newest value whenever it changes, at most once per ``coalesce_s``."""
    _prepare(ws, sub, send_buffer)
    version = 0
    next_at = 0.0
    while ws.connected:  # type: ignore[attr-defined]
        version, value = sub.newer_than(version, IDLE_CHECK_S)
        if value is None:
            if _close_cut(ws, sub):
                return
            continue
        wait = next_at - time.monotonic()
        if wait > 0:
            time.sleep(wait)
            version, value = sub.current()
        _send(ws, sub, encode(value))
        next_at = time.monotonic() + coalesce_s
