"""Decoding of Binance public market-data frames (no I/O).

Every frame the stream sends is decoded here into a typed, immutable event. Prices and
quantities become floats inside the C decoder (msgspec, ``strict=False``): the same decimal
string always gives the same float, so floats are safe as book keys and a zero quantity in
any formatting (``"0"``, ``"0.000"``, ``"0.00000000"``) compares equal to ``0.0``. Prices
must be finite and positive and quantities finite and not negative: anything else (NaN,
infinities, negative or non-numeric values) makes the frame malformed, checked in C while
decoding.

``decode_frame`` accepts the combined-stream envelope (``{"stream": ..., "data": ...}``),
a raw-stream payload (``/ws/<stream>``, dispatched on its ``e`` field) and the answers to
control messages: ``{"result": ..., "id": ...}``, or an error, either as documented
(``{"code": ..., "msg": ..., "id": ...}``) or as the live servers send it
(``{"error": {"code": ..., "msg": ...}, "id": ...}``).
A frame that cannot be decoded raises ``MalformedFrame`` whatever went wrong inside the
decoder (a schema mismatch, but also nesting deep enough to raise ``RecursionError``, invalid
UTF-8, a ``str`` frame with lone surrogates, memory): callers catch one exception, count the
frame and move on. An event type nobody knows gives a ``Frame`` whose ``event`` is
``UnknownEvent`` so that callers can count it too.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, Generic, ParamSpec, TypeVar

import msgspec

Price = Annotated[float, msgspec.Meta(gt=0.0, lt=1e15)]
"""A price: finite and above zero (NaN, infinities and negatives fail decoding)."""
Qty = Annotated[float, msgspec.Meta(ge=0.0, lt=1e15)]
"""A quantity: finite and not negative (0 deletes a book level)."""
Level = tuple[Price, Qty]
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
"""An update id, trade id, count or time: Binance's are 64-bit; a larger integer (msgspec
would otherwise decode hundreds of digits) fails decoding instead of breaking an id chain."""


class MalformedFrame(ValueError):
    """A frame that is not valid JSON or does not match the payload of its stream."""


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _malformed_on_any_error(decode: Callable[_P, _R]) -> Callable[_P, _R]:
    """Make every exception a decoder raises a ``MalformedFrame`` (the original is chained).

    msgspec reports schema and syntax errors as ``DecodeError``, but a frame can also make it
    raise ``RecursionError`` (deep nesting), ``UnicodeError`` or ``MemoryError``; a hostile
    frame must cost one counted frame, never the connection or the run.
    """

    @wraps(decode)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return decode(*args, **kwargs)
        except MalformedFrame:
            raise
        except Exception as exc:
            raise MalformedFrame(f"undecodable: {type(exc).__name__}: {exc}"[:300]) from exc

    return guarded


class DepthUpdate(msgspec.Struct, frozen=True, gc=False):
    """Diff depth event: absolute quantities per price level; quantity 0 deletes the level.

    Spot carries ``U`` (first update id) and ``u`` (final update id); USD-M adds ``pu``
    (final update id of the previous event) and ``T`` (transaction time).
    """

    e: str
    E: Int64
    s: str
    U: Int64
    u: Int64
    b: list[Level]
    a: list[Level]
    pu: Int64 | None = None
    T: Int64 | None = None


class PartialDepth(msgspec.Struct, frozen=True, gc=False):
    """Top-N book replacement (``@depth5/10/20``). It names no symbol: the stream does."""

    lastUpdateId: Int64
    bids: list[Level]
    asks: list[Level]


class Trade(msgspec.Struct, frozen=True, gc=False):
    """One fill. ``m`` true means the buyer was the maker, so the taker (aggressor) sold."""

    e: str
    E: Int64
    s: str
    t: Int64
    p: Price
    q: Qty
    T: Int64
    m: bool


class AggTrade(msgspec.Struct, frozen=True, gc=False):
    """Fills of one taker order at one price (ids ``f``..``l``); ``m`` as for ``Trade``."""

    e: str
    E: Int64
    s: str
    a: Int64
    p: Price
    q: Qty
    f: Int64
    l: Int64  # noqa: E741 - Binance's field name
    T: Int64
    m: bool


class KlineBar(msgspec.Struct, frozen=True, gc=False):
    """One candle: open time ``t``, close time ``T``, interval ``i``, OHLC, base volume ``v``,
    quote volume ``q``, trade count ``n``, taker-buy base volume ``V``, closed flag ``x``."""

    t: Int64
    T: Int64
    s: str
    i: str
    o: float
    c: float
    h: float
    l: float  # noqa: E741 - Binance's field name
    v: float
    n: Int64
    x: bool
    q: float
    V: float
    Q: float
    f: Int64 = -1
    L: Int64 = -1


class Kline(msgspec.Struct, frozen=True, gc=False):
    """Kline event wrapping the current bar of one interval."""

    e: str
    E: Int64
    s: str
    k: KlineBar


class MiniTicker(msgspec.Struct, frozen=True, gc=False):
    """Rolling 24 h window: close ``c``, open ``o``, high ``h``, low ``l``, base volume ``v``,
    quote volume ``q``."""

    e: str
    E: Int64
    s: str
    c: float
    o: float
    h: float
    l: float  # noqa: E741 - Binance's field name
    v: float
    q: float


class Ticker(msgspec.Struct, frozen=True, gc=False):
    """Rolling 24 h statistics including price change ``p``/``P``, weighted average ``w``,
    last price ``c`` and best bid/ask ``b``/``a`` with sizes ``B``/``A``."""

    e: str
    E: Int64
    s: str
    p: float
    P: float
    w: float
    c: float
    Q: float
    o: float
    h: float
    l: float  # noqa: E741 - Binance's field name
    v: float
    q: float
    O: Int64  # noqa: E741 - Binance's field name
    C: Int64
    F: Int64
    L: Int64
    n: Int64
    b: float = 0.0
    B: float = 0.0
    a: float = 0.0
    A: float = 0.0
    x: float = 0.0


class BookTicker(msgspec.Struct, frozen=True, gc=False):
    """Best bid/ask with sizes after update ``u``. Spot sends no ``e``/``E``; USD-M does."""

    u: Int64
    s: str
    b: float
    B: float
    a: float
    A: float
    e: str = "bookTicker"
    E: Int64 | None = None
    T: Int64 | None = None


class ServerShutdown(msgspec.Struct, frozen=True, gc=False):
    """The server is about to close this connection: reconnect elsewhere now."""

    e: str
    E: Int64


class UnknownEvent(msgspec.Struct, frozen=True):
    """An event type this decoder does not know; kept only by its name."""

    e: str


class ControlResponse(msgspec.Struct, frozen=True):
    """Answer to SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS (``result``) or an error
    (``code``, ``msg``)."""

    id: int | str | None
    result: Any = None
    code: int | None = None
    msg: str | None = None

    @property
    def ok(self) -> bool:
        return self.code is None


Event = (
    DepthUpdate
    | PartialDepth
    | Trade
    | AggTrade
    | Kline
    | MiniTicker
    | Ticker
    | BookTicker
    | ServerShutdown
    | UnknownEvent
    | ControlResponse
)


EventT = TypeVar("EventT")


class Frame(msgspec.Struct, Generic[EventT], frozen=True, gc=False):
    """A decoded frame: the stream it came on ('' for raw streams and control answers) and
    its event (one of ``Event``). As JSON it is the combined-stream envelope itself
    (``{"stream": ..., "data": ...}``), so a whole frame decodes in one pass."""

    stream: str
    event: EventT = msgspec.field(name="data")


class ErrorBody(msgspec.Struct, frozen=True, gc=False):
    """Binance's error answer: ``{"code": -1121, "msg": "Invalid symbol."}``."""

    code: int | None = None
    msg: str | None = None


class _Envelope(msgspec.Struct, frozen=True, gc=False):
    stream: str | None = None
    data: msgspec.Raw = msgspec.Raw(b"")
    id: int | str | None = None
    result: Any = None
    code: int | None = None
    msg: str | None = None
    e: str | None = None
    error: ErrorBody | None = None


class _EventName(msgspec.Struct, frozen=True, gc=False):
    e: str | None = None


_DECODERS_BY_EVENT: dict[str, msgspec.json.Decoder] = {
    "depthUpdate": msgspec.json.Decoder(DepthUpdate, strict=False),
    "trade": msgspec.json.Decoder(Trade, strict=False),
    "aggTrade": msgspec.json.Decoder(AggTrade, strict=False),
    "kline": msgspec.json.Decoder(Kline, strict=False),
    "24hrMiniTicker": msgspec.json.Decoder(MiniTicker, strict=False),
    "24hrTicker": msgspec.json.Decoder(Ticker, strict=False),
    "bookTicker": msgspec.json.Decoder(BookTicker, strict=False),
    "serverShutdown": msgspec.json.Decoder(ServerShutdown, strict=False),
}
_PARTIAL_DEPTH = msgspec.json.Decoder(PartialDepth, strict=False)
_ENVELOPE = msgspec.json.Decoder(_Envelope)
_EVENT_NAME = msgspec.json.Decoder(_EventName)


def stream_kind(stream: str) -> str:
    """The stream type of a stream name, as used for statistics and dispatch.

    ``btcusdt@depth@100ms`` → ``depth``; ``btcusdt@depth20@100ms`` → ``depth20``;
    ``btcusdt@kline_1m`` → ``kline``; ``!serverShutdown`` → ``serverShutdown``;
    ``!miniTicker@arr`` → ``miniTicker@arr`` (an array of every changed symbol's).
    """
    if stream.startswith("!"):
        return stream[1:]
    parts = stream.split("@")
    kind = parts[1] if len(parts) > 1 else parts[0]
    if kind.startswith("kline_"):
        return "kline"
    if kind.startswith("ticker_"):
        return "ticker"
    return kind


_DECODERS_BY_KIND: dict[str, msgspec.json.Decoder] = {
    "depth": _DECODERS_BY_EVENT["depthUpdate"],
    "depth5": _PARTIAL_DEPTH,
    "depth10": _PARTIAL_DEPTH,
    "depth20": _PARTIAL_DEPTH,
    "trade": _DECODERS_BY_EVENT["trade"],
    "aggTrade": _DECODERS_BY_EVENT["aggTrade"],
    "kline": _DECODERS_BY_EVENT["kline"],
    "miniTicker": _DECODERS_BY_EVENT["24hrMiniTicker"],
    "miniTicker@arr": msgspec.json.Decoder(list[MiniTicker], strict=False),
    "ticker": _DECODERS_BY_EVENT["24hrTicker"],
    "bookTicker": _DECODERS_BY_EVENT["bookTicker"],
    "serverShutdown": _DECODERS_BY_EVENT["serverShutdown"],
}

_STREAM_PREFIX = b'{"stream":"'
# Whole-frame decoders by stream name; the decoders themselves are one per stream kind
# (_KIND_FRAME_DECODERS), so an entry is just its name. Room for every stream of 8,000
# symbols (4 streams each): a worker streaming the whole market (≈ 6,000 names) never
# builds a decoder per frame; unknown names beyond it still decode, without a cache entry.
_MAX_FRAME_DECODERS = 32768
_FRAME_DECODERS: dict[bytes, msgspec.json.Decoder | None] = {}
_KIND_FRAME_DECODERS: dict[str, msgspec.json.Decoder] = {}


def _frame_decoder(stream: bytes) -> msgspec.json.Decoder | None:
    """The one-pass decoder for whole combined-stream frames of this stream's kind (None
    for an unknown kind), kept under the stream's name for the next frame while the cache
    has room."""
    kind = stream_kind(stream.decode(errors="replace"))
    decoder = _KIND_FRAME_DECODERS.get(kind)
    if decoder is None:
        payload = _DECODERS_BY_KIND.get(kind)
        if payload is not None:
            decoder = msgspec.json.Decoder(Frame[payload.type], strict=False)  # type: ignore[name-defined]
            _KIND_FRAME_DECODERS[kind] = decoder
    if len(_FRAME_DECODERS) < _MAX_FRAME_DECODERS:
        _FRAME_DECODERS[stream] = decoder
    return decoder


def _payload(stream: str, data: bytes | memoryview) -> Event:
    """Decode the ``data`` of a combined-stream frame, knowing its stream name."""
    decoder = _DECODERS_BY_KIND.get(stream_kind(stream))
    try:
        if decoder is not None:
            return decoder.decode(data)
        return _raw_event(data)
    except msgspec.DecodeError as exc:
        raise MalformedFrame(f"{stream}: {exc}") from exc


def _raw_event(data: bytes | memoryview) -> Event:
    """Decode a raw-stream payload by its ``e`` field (``/ws/<stream>`` connections)."""
    try:
        name = _EVENT_NAME.decode(data).e
    except msgspec.DecodeError as exc:
        raise MalformedFrame(str(exc)) from exc
    if name is None:
        try:
            return _PARTIAL_DEPTH.decode(data)
        except msgspec.DecodeError as exc:
            raise MalformedFrame(f"payload without event type: {exc}") from exc
    decoder = _DECODERS_BY_EVENT.get(name)
    if decoder is None:
        return UnknownEvent(e=name)
    try:
        return decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise MalformedFrame(f"{name}: {exc}") from exc


decode_payload = _malformed_on_any_error(_payload)
decode_raw_event = _malformed_on_any_error(_raw_event)


def decode_frame(raw: bytes | str) -> Frame:
    """Decode one WebSocket text frame (combined envelope, raw payload or control answer).

    Raises ``MalformedFrame`` when the frame is not JSON or its payload does not match the
    stream's schema (missing fields, wrong types, non-numeric prices), and for any other
    exception decoding raises (deep nesting, invalid UTF-8).
    """
    try:
        if type(raw) is bytes and raw.startswith(_STREAM_PREFIX):
            # Binance's own framing: the stream name first, then the payload. Envelope and
            # payload are decoded together in one pass by a decoder chosen by the stream name.
            end = raw.find(b'"', 11, 200)
            stream = raw[11:end]
            decoder = (_FRAME_DECODERS.get(stream) or _frame_decoder(stream)) if end > 11 else None
            if decoder is not None:
                try:
                    return decoder.decode(raw)
                except msgspec.DecodeError:
                    pass
        return _decode_envelope(raw)
    except MalformedFrame:
        raise
    except Exception as exc:  # RecursionError, UnicodeError, ...: see _malformed_on_any_error
        raise MalformedFrame(f"undecodable: {type(exc).__name__}: {exc}"[:300]) from exc


def _decode_envelope(raw: bytes | str) -> Frame:
    """Decode a frame by its envelope first (any framing, control answers)."""
    try:
        envelope = _ENVELOPE.decode(raw)
    except msgspec.DecodeError as exc:
        raise MalformedFrame(str(exc)) from exc
    if envelope.stream is not None and len(envelope.data):
        return Frame(envelope.stream, _payload(envelope.stream, envelope.data))
    if envelope.e is not None:
        return Frame("", _raw_event(raw.encode() if isinstance(raw, str) else raw))
    if envelope.error is not None:
        return Frame(
            "",
            ControlResponse(id=envelope.id, code=envelope.error.code, msg=envelope.error.msg),
        )
    if envelope.id is not None or envelope.code is not None:
        return Frame(
            "",
            ControlResponse(
                id=envelope.id, result=envelope.result, code=envelope.code, msg=envelope.msg
            ),
        )
    if envelope.stream is not None:
        raise MalformedFrame(f"{envelope.stream}: envelope without data")
    return Frame("", _raw_event(raw.encode() if isinstance(raw, str) else raw))


class DepthSnapshot(msgspec.Struct, frozen=True, gc=False):
    """REST depth snapshot (``/api/v3/depth``, ``/fapi/v1/depth``): the book as of
    ``lastUpdateId``, best level first on each side. USD-M adds ``E`` and ``T``."""

    lastUpdateId: Int64
    bids: list[Level]
    asks: list[Level]
    E: Int64 | None = None
    T: Int64 | None = None


_DEPTH_SNAPSHOT = msgspec.json.Decoder(DepthSnapshot, strict=False)


@_malformed_on_any_error
def decode_depth_snapshot(body: bytes | str) -> DepthSnapshot:
    """Decode a REST depth snapshot body; raises ``MalformedFrame`` when it is not one."""
    try:
        return _DEPTH_SNAPSHOT.decode(body)
    except msgspec.DecodeError as exc:
        raise MalformedFrame(f"depth snapshot: {exc}") from exc
