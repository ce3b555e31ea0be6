"""Recordings of Binance sessions: gzip JSON lines, one wire message per line.

Line format (shared with the recorder)::

    {"ts":<int ns, local receive time>,"src":"ws","msg":<raw WebSocket text frame>}
    {"ts":<int>,"src":"rest","url":"<REST URL>","msg":<raw REST response body>}

``msg`` is the recorded text inserted verbatim, so the exact original bytes of a message are
``line[line.index(b',"msg":') + 7 : -1]``; reading never re-encodes a message.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, urlsplit

import orjson

BUNDLED_DIR = Path(__file__).resolve().parents[2] / "data" / "recordings"
SPOT_2024 = BUNDLED_DIR / "spot_BTCUSDT_20240808T2354Z_hftbacktest.jsonl.gz"
"""Spot BTCUSDT, 2024-08-08 23:54 → 00:05 (650.6 s): depth@100ms, trade, bookTicker."""
SPOT_2021 = BUNDLED_DIR / "spot_BTCUSDT-ETHUSDT-DOTUSDT_20210404T2003Z_cryptofeed.jsonl.gz"
"""Spot BTCUSDT/ETHUSDT/DOTUSDT, 2021-04-04 20:03 (91 s): depth@100ms, aggTrade, kline_1m."""
USDM_2024 = BUNDLED_DIR / "usdm_BTCUSDT_20240808T2354Z_hftbacktest.jsonl.gz"
"""USD-M BTCUSDT, 2024-08-08 23:54 (344.8 s): depth@0ms with pu, trade, bookTicker."""
DEFAULT_REPLAY = SPOT_2021
"""What the offline replay plays unless told otherwise: three symbols, aggTrades, klines."""

_EVENT_TYPE = re.compile(rb'"e"\s*:\s*"(depthUpdate|bookTicker|markPriceUpdate|forceOrder)"')
_PREVIOUS_ID = re.compile(rb'"pu"\s*:')
_HEAD = re.compile(rb'^\{"ts":(\d+),"src":"(ws|rest)"(?:,"url":("(?:[^"\\]|\\.)*"))?,"msg":')


@dataclass(frozen=True, slots=True)
class RecordedMessage:
    """One recorded wire message: line number (1-based), receive time, source, REST URL
    (empty for WebSocket frames) and the message's exact bytes."""

    line: int
    ts_ns: int
    src: str
    url: str
    raw: bytes

    def rest_target(self) -> tuple[str, str]:
        """(symbol, market) a recorded REST request asked about: the ``symbol`` parameter
        upper-cased ("" without one) and the market its path names (see ``market``)."""
        url = urlsplit(self.url)
        return parse_qs(url.query).get("symbol", [""])[0].upper(), self.market

    @property
    def market(self) -> str:
        """The market this message proves the recording is of: "usdm", "spot", or "" when
        it says nothing.

        A REST path under ``/fapi/`` is USD-M, under ``/api/`` spot. A ``depthUpdate``
        carrying ``pu`` is USD-M, one without it spot (USD-M diffs always carry ``pu``).
        Events only USD-M streams send — a ``bookTicker`` with an ``e`` field (spot's has
        none), ``markPriceUpdate``, ``forceOrder`` — are USD-M. Trades say nothing.
        """
        if self.src == "rest":
            path = urlsplit(self.url).path
            if path.startswith("/fapi/"):
                return "usdm"
            return "spot" if path.startswith("/api/") else ""
        event = _EVENT_TYPE.search(self.raw, 0, 400)
        if event is None:
            return ""
        if event.group(1) == b"depthUpdate":
            return "usdm" if _PREVIOUS_ID.search(self.raw) else "spot"
        return "usdm"


class RecordingError(ValueError):
    """A line that does not follow the recording format."""


def parse_line(line_no: int, line: bytes) -> RecordedMessage:
    """Split one recording line into its header fields and the verbatim message bytes."""
    line = line.rstrip(b"\r\n")
    head = _HEAD.match(line)
    if head is None or not line.endswith(b"}"):
        raise RecordingError(f"line {line_no}: not a recording line")
    url = orjson.loads(head.group(3)) if head.group(3) else ""
    return RecordedMessage(
        line_no, int(head.group(1)), head.group(2).decode(), url, line[head.end() : -1]
    )


def read_recording(
    path: str | Path, on_bad_line: Callable[[RecordingError], None] | None = None
) -> Iterator[RecordedMessage]:
    """Yield the messages of a recording in arrival order.

    A line that does not follow the format raises ``RecordingError``, unless
    ``on_bad_line`` is given: then it is handed the error and reading goes on; a file cut
    short (a recorder killed mid-write) is reported the same way and ends the messages."""
    line_no = 0
    with gzip.open(path, "rb") as fh:
        try:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    message = parse_line(line_no, line)
                except RecordingError as exc:
                    if on_bad_line is None:
                        raise
                    on_bad_line(exc)
                    continue
                yield message
        except (EOFError, gzip.BadGzipFile) as exc:
            if on_bad_line is None:
                raise
            on_bad_line(RecordingError(f"after line {line_no}: file cut short ({exc})"))


def recording_market(messages: Iterable[RecordedMessage]) -> str:
    """The market of a recording: that of its first message that names one (see
    ``RecordedMessage.market``), "" when none does. Stops reading at that message."""
    for message in messages:
        if market := message.market:
            return market
    return ""


def format_line(ts_ns: int, src: str, raw: bytes, url: str = "") -> bytes:
    """One recording line for a message (the inverse of ``parse_line``)."""
    url_part = b',"url":' + orjson.dumps(url) if url else b""
    return b'{"ts":%d,"src":"%s"%s,"msg":%s}\n' % (ts_ns, src.encode(), url_part, raw)


class RecordingWriter:
    """Appends messages to a gzip recording; usable as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self._fh: IO[bytes] = gzip.open(path, "wb")  # noqa: SIM115 - closed by close()

    def write(self, ts_ns: int, src: str, raw: bytes, url: str = "") -> None:
        self._fh.write(format_line(ts_ns, src, raw, url))

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
