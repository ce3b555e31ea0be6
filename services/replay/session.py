"""A recorded session prepared for replay: its WebSocket timeline and each symbol's
starting book.

Each symbol's book starts from the recording's REST depth snapshot. The diff stream starts at
the first diff that bridges that snapshot; older diffs are dropped from the timeline:

* spot: drop diffs with ``u <= lastUpdateId``; the first kept diff has
  ``U <= lastUpdateId + 1 <= u``;
* USD-M: drop diffs with ``u < lastUpdateId``; the first kept diff has
  ``U <= lastUpdateId <= u``.

A symbol without a snapshot starts from an empty book just before its first diff. REST lines
are not part of the timeline (the exchange serves its own snapshots).

Receive times are moved onto the exchange's clock: a recording whose recorder's clock ran
behind Binance's (frames received before their own event time ``E``) has every receive time
shifted by that skew (``clock_skew_ns``), so the replay clock never shows a negative lag.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path

import orjson

from services.binance.messages import (
    MalformedFrame,
    decode_depth_snapshot,
    decode_payload,
    stream_kind,
)
from services.binance.symbol_rules import decimals
from services.replay.exchange_book import ExchangeBook
from services.replay.recording import read_recording

_ENVELOPE_HEAD = re.compile(rb'^\{"stream":"([^"]+)","data":')
_FIRST_ID = re.compile(rb'"U":(\d+)')
_FINAL_ID = re.compile(rb'"u":(\d+)')
_PREVIOUS_ID = re.compile(rb'"pu":(-?\d+)')
_LEVEL = re.compile(rb'\["([0-9.]+)","([0-9.]+)"\]')
_EVENT_TIME = re.compile(rb'"E":(\d{1,16})[,}]')
_SKEW_SPREAD_NS = 10_000_000_000  # frames more than 10 s ahead of the median are not skew
_QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY")


class RecordingGap(ValueError):
    """A recording whose diff stream does not bridge its snapshot or breaks its chain."""


@dataclass(frozen=True, slots=True)
class ReplayEvent:
    """One recorded WebSocket frame: receive time, recorded stream name, symbol (upper case),
    stream kind (``depth``, ``trade``, ``aggTrade``, ``kline``, ``bookTicker``, ...) and the
    payload's exact bytes (the combined envelope's ``data``)."""

    ts_ns: int
    stream: str
    symbol: str
    kind: str
    data: bytes


@dataclass(slots=True)
class SymbolStart:
    """What a symbol looks like when the replay starts."""

    symbol: str
    book: ExchangeBook
    first_diff_ids: tuple[int, int, int | None] | None = None  # U, u, pu of the first kept diff
    price_decimals: int = 0
    quantity_decimals: int = 0
    price_width: int = 8
    quantity_width: int = 8


@dataclass(slots=True)
class RecordedSession:
    """The replayable content of one or more recordings of the same market."""

    market: str  # "spot" or "usdm"
    events: list[ReplayEvent]
    symbols: dict[str, SymbolStart]
    streams: dict[str, set[str]] = field(default_factory=dict)  # symbol → recorded kinds
    paths: list[Path] = field(default_factory=list)
    start_ns: int = 0  # receive time of the recording's first line (on the exchange's clock)
    end_ns: int = 0  # receive time of its last line
    clock_skew_ns: tuple[int, ...] = ()  # per path: added to its receive times (clock_skew_ns)
    skipped_frames: int = 0  # recorded frames the exchange cannot apply (see _applicable)

    def recorded_kinds(self, symbol: str) -> set[str]:
        return self.streams.get(symbol, set())


def split_symbol(symbol: str) -> tuple[str, str]:
    """Base and quote asset of a symbol (``BTCUSDT`` → ``BTC``, ``USDT``)."""
    for quote in _QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    return symbol[:-4], symbol[-4:]


def _widths(levels: list[tuple[bytes, bytes]], start: SymbolStart) -> None:
    for price, quantity in levels:
        p, q = price.decode(), quantity.decode()
        start.price_decimals = max(start.price_decimals, decimals(p))
        start.quantity_decimals = max(start.quantity_decimals, decimals(q))
        start.price_width = len(p.partition(".")[2])
        start.quantity_width = len(q.partition(".")[2])


def _int(pattern: re.Pattern[bytes], data: bytes) -> int | None:
    found = pattern.search(data)
    return None if found is None else int(found.group(1))


def load_session(paths: list[Path]) -> RecordedSession:
    """Read recordings (one market), find each symbol's starting book and drop the diffs
    that precede it. Raises ``RecordingGap`` when a diff chain does not bridge.

    The market is what the recording's messages say (``RecordedMessage.market``: REST
    paths, ``pu`` in diffs, USD-M-only events), whichever line of whichever symbol says it;
    spot when none does."""
    markets: set[str] = set()
    snapshots: dict[str, dict] = {}
    frames: list[tuple[ReplayEvent, bool]] = []  # each frame, and whether it is applicable
    times: list[int] = []
    skews: list[int] = []
    for path in paths:
        path_times: list[int] = []
        path_frames: list[tuple[ReplayEvent, bool]] = []
        for message in read_recording(path):
            path_times.append(message.ts_ns)
            if message.market:
                markets.add(message.market)
            if message.src == "rest":
                symbol = message.rest_target()[0]
                if symbol and symbol not in snapshots and _is_snapshot(message.raw):
                    snapshots[symbol] = orjson.loads(message.raw)
                continue
            head = _ENVELOPE_HEAD.match(message.raw)
            if head is None:
                continue
            stream = head.group(1).decode()
            event = ReplayEvent(
                message.ts_ns,
                stream,
                stream.split("@", 1)[0].upper(),
                stream_kind(stream),
                message.raw[head.end() : -1],
            )
            path_frames.append((event, _applicable(event)))
        skew = clock_skew_ns([e for e, ok in path_frames if ok and e.kind in _APPLIED_KINDS])
        skews.append(skew)
        times.extend(t + skew for t in path_times)
        frames.extend(
            (replace(e, ts_ns=e.ts_ns + skew), ok) if skew else (e, ok) for e, ok in path_frames
        )
    frames.sort(key=lambda frame: frame[0].ts_ns)
    if not markets:
        markets.add("spot")
    if len(markets) > 1:
        raise ValueError("recordings of different markets cannot be replayed together")
    market = markets.pop()
    session = RecordedSession(
        market,
        [],
        {},
        paths=list(paths),
        start_ns=min(times, default=0),
        end_ns=max(times, default=0),
        clock_skew_ns=tuple(skews),
    )
    for symbol, body in snapshots.items():
        start = SymbolStart(
            symbol,
            ExchangeBook(
                body["lastUpdateId"],
                [tuple(level) for level in body["bids"]],
                [tuple(level) for level in body["asks"]],
            ),
        )
        raw = orjson.dumps(body)
        _widths(_LEVEL.findall(raw), start)
        session.symbols[symbol] = start
    for event, applicable in frames:
        if not applicable:
            session.skipped_frames += 1
            continue
        session.streams.setdefault(event.symbol, set()).add(event.kind)
        if event.kind == "depth" and not _keep_diff(session, market, event):
            continue
        session.events.append(event)
    return session


def clock_skew_ns(events: list[ReplayEvent]) -> int:
    """How far the recorder's clock ran behind the exchange's, at least: the largest
    ``E − ts`` over the applicable recorded frames of one recording (a frame cannot arrive
    before it was sent; frames the exchange skips do not count), or 0
    when every frame arrived after its event time. Added to the receive times, the replay's
    clock (``/api/v3/time``, the lag it is measured against) is never behind an event time
    it has played. The 2024 hftbacktest recordings need ≈1.28 s; the 2021 one none.

    Frames whose ``E`` is more than 10 s ahead of the median ``E − ts`` are not counted: a
    network's delays differ by far less, so such a frame is hostile or broken (a fuzzed
    ``E`` would otherwise move the whole recording)."""
    ahead = [
        int(found.group(1)) * 1_000_000 - event.ts_ns
        for event in events
        if (found := _EVENT_TIME.search(event.data)) is not None
    ]
    if not ahead:
        return 0
    bound = statistics.median(ahead) + _SKEW_SPREAD_NS
    largest = max(d for d in ahead if d <= bound)  # the median's side is never empty
    return largest if largest > 0 else 0


_APPLIED_KINDS = frozenset(("depth", "trade", "aggTrade", "kline"))


def _applicable(event: ReplayEvent) -> bool:
    """Whether the exchange can apply a recorded frame of a kind it keeps state for: it
    decodes as its stream's payload (the protocol decoder, as a client would) and names the
    stream's own symbol. A hostile or foreign frame in a recording is skipped and counted,
    so it neither decides where a symbol's diff stream starts nor breaks the exchange's
    book; other kinds are played as recorded."""
    if event.kind not in _APPLIED_KINDS:
        return True
    try:
        payload = decode_payload(event.stream, event.data)
    except MalformedFrame:
        return False
    return getattr(payload, "s", None) == event.symbol


def _is_snapshot(body: bytes) -> bool:
    try:
        decode_depth_snapshot(body)
    except MalformedFrame:
        return False
    return True


def _keep_diff(session: RecordedSession, market: str, event: ReplayEvent) -> bool:
    first_id = _int(_FIRST_ID, event.data) or 0
    final_id = _int(_FINAL_ID, event.data) or 0
    previous_id = _int(_PREVIOUS_ID, event.data)
    start = session.symbols.get(event.symbol)
    if start is None:
        start = SymbolStart(
            event.symbol, ExchangeBook(first_id if market == "usdm" else first_id - 1)
        )
        _widths(_LEVEL.findall(event.data), start)
        session.symbols[event.symbol] = start
    if start.first_diff_ids is not None:
        return True
    last = start.book.last_update_id
    if market == "usdm":
        if final_id < last:
            return False
        bridges = first_id <= last <= final_id
    else:
        if final_id <= last:
            return False
        bridges = first_id <= last + 1 <= final_id
    if not bridges:
        raise RecordingGap(f"{event.symbol}: first diff {first_id}..{final_id} misses {last}")
    start.first_diff_ids = (first_id, final_id, previous_id)
    return True
