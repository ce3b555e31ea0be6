"""Binary encoding of store records for the Redis backend.

A symbol record is a small msgspec-JSON header (symbol, seq, times, book state, symbol
rules, candles, ticker, trade-stream pointer) followed by the four book columns as raw
little-endian float64 bytes: ``[u32 header length][header][bid px][bid qty][ask px][ask
qty]``. Decoding the book is ``np.frombuffer``, no per-level work. A trade block packs the
five trade columns as raw bytes, 33 bytes a trade (int64 id, int64 time, float64 price,
float64 qty, int8 side). ``bench/bench_store_codec.py`` measures this layout against
orjson and msgspec lists.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, fields

import msgspec
import numpy as np

from services.market.views import BookView, SymbolInfo, SyncState, TradeView
from services.store import Candle, FeedStatus, SymbolSnapshot, Ticker24h

_LEN = struct.Struct("<I")
_F8 = np.dtype("<f8")
_I8 = np.dtype("<i8")
TRADE_BYTES = 33
_STATUS_FIELDS = frozenset(f.name for f in fields(FeedStatus))
_INFO_FIELDS = frozenset(f.name for f in fields(SymbolInfo))
_TICKER_FIELDS = tuple(f.name for f in fields(Ticker24h))

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class TradePointer:
    """Where the trades of a published snapshot are: the stream ``generation`` (a new one
    whenever a writer starts over), the block number of the last block included, and the
    number of trades the writer's window held (readers keep that many)."""

    generation: str
    last_block: int
    window: int


@dataclass(frozen=True, slots=True)
class DecodedRecord:
    """A symbol record: the snapshot without trades, where its trades are, and the
    writer that published it."""

    snapshot: SymbolSnapshot
    trades: TradePointer
    writer: str


def _candle_row(c: Candle) -> list[object]:
    return [
        c.open_time_ms,
        c.interval,
        c.open,
        c.high,
        c.low,
        c.close,
        c.volume,
        c.taker_buy_volume,
        c.closed,
    ]


class CandleRows:
    """A writer's encoded candle rows, per symbol. A symbol's candles change only at the
    end (the open bar is replaced, a new bar appended, the oldest dropped), and encoding
    a full history (120 bars of 9 fields) costs ≈ 0.1 ms — more than the rest of a
    light record — so a record re-encodes only the bars that are not the very objects
    of the symbol's previous record. The bytes are those ``encode_record`` writes
    without it."""

    def __init__(self) -> None:
        self._held: dict[str, tuple[Sequence[Candle], list[bytes]]] = {}

    def encoded(self, symbol: str, candles: Sequence[Candle]) -> msgspec.Raw:
        """The JSON array of ``candles``' rows, as ``encode_record`` writes it."""
        parts: list[bytes] = []
        held = self._held.get(symbol)
        if held is not None and candles:
            old, old_parts = held
            first = candles[0]
            start = next((i for i, c in enumerate(old[:8]) if c is first), None)
            if start is not None:
                for new, was, part in zip(candles, old[start:], old_parts[start:], strict=False):
                    if new is not was:
                        break
                    parts.append(part)
        parts += [_encoder.encode(_candle_row(c)) for c in candles[len(parts) :]]
        self._held[symbol] = (candles, parts)
        return msgspec.Raw(b"[" + b",".join(parts) + b"]")


def encode_record(
    snapshot: SymbolSnapshot,
    trades: TradePointer,
    writer: str,
    seq: int | None = None,
    candles: CandleRows | None = None,
) -> bytes:
    """A snapshot (its trades excepted) as one compact byte string; ``seq``, when given,
    is written instead of the snapshot's (the store's numbering, without a copy of the
    snapshot); ``candles``, when given, encodes the candle rows (the same bytes)."""
    book = snapshot.book
    header = {
        "symbol": snapshot.symbol,
        "seq": snapshot.seq if seq is None else seq,
        "published_at": snapshot.published_at,
        "writer": writer,
        "book": {
            "bids": int(book.bid_prices.shape[0]),
            "asks": int(book.ask_prices.shape[0]),
            "last_update_id": book.last_update_id,
            "sync_state": book.sync_state.value,
            "event_time_ms": book.event_time_ms,
            "resync_reason": book.resync_reason,
        },
        "trades": [trades.generation, trades.last_block, trades.window, snapshot.trades.kind],
        "info": snapshot.info,  # msgspec writes a dataclass's fields in order, as asdict
        "candles": [_candle_row(c) for c in snapshot.candles]
        if candles is None
        else candles.encoded(snapshot.symbol, snapshot.candles),
        "ticker": None
        if snapshot.ticker is None
        else [getattr(snapshot.ticker, name) for name in _TICKER_FIELDS],
    }
    head = _encoder.encode(header)
    return b"".join(
        (
            _LEN.pack(len(head)),
            head,
            np.ascontiguousarray(book.bid_prices, dtype=_F8).tobytes(),
            np.ascontiguousarray(book.bid_qtys, dtype=_F8).tobytes(),
            np.ascontiguousarray(book.ask_prices, dtype=_F8).tobytes(),
            np.ascontiguousarray(book.ask_qtys, dtype=_F8).tobytes(),
        )
    )


def decode_record(data: bytes) -> DecodedRecord:
    """The record ``encode_record`` made; its snapshot's trade window is empty (of the
    right kind) until the reader fills it from the trade stream."""
    (size,) = _LEN.unpack_from(data)
    header = _decoder.decode(data[_LEN.size : _LEN.size + size])
    book = header["book"]
    bids, asks = book["bids"], book["asks"]
    offset = _LEN.size + size
    columns = []
    for count in (bids, bids, asks, asks):
        columns.append(np.frombuffer(data, dtype=_F8, count=count, offset=offset))
        offset += count * 8
    generation, last_block, window, kind = header["trades"]
    info = SymbolInfo(**{k: v for k, v in header["info"].items() if k in _INFO_FIELDS})
    ticker = header["ticker"]
    snapshot = SymbolSnapshot(
        symbol=header["symbol"],
        seq=header["seq"],
        book=BookView(
            symbol=header["symbol"],
            bid_prices=columns[0],
            bid_qtys=columns[1],
            ask_prices=columns[2],
            ask_qtys=columns[3],
            last_update_id=book["last_update_id"],
            sync_state=SyncState(book["sync_state"]),
            event_time_ms=book["event_time_ms"],
            resync_reason=book["resync_reason"],
        ),
        trades=TradeView(symbol=header["symbol"], kind=kind),
        info=info,
        candles=tuple(Candle(*row) for row in header["candles"]),
        ticker=None if ticker is None else Ticker24h(*ticker),
        published_at=header["published_at"],
    )
    return DecodedRecord(snapshot, TradePointer(generation, last_block, window), header["writer"])


def encode_trades(trades: TradeView, start: int, stop: int) -> bytes:
    """Rows ``start:stop`` of a trade window as one packed block."""
    sl = slice(start, stop)
    return b"".join(
        (
            np.ascontiguousarray(trades.trade_id[sl], dtype=_I8).tobytes(),
            np.ascontiguousarray(trades.time_ms[sl], dtype=_I8).tobytes(),
            np.ascontiguousarray(trades.price[sl], dtype=_F8).tobytes(),
            np.ascontiguousarray(trades.qty[sl], dtype=_F8).tobytes(),
            np.asarray(trades.side[sl]).astype(np.int8).tobytes(),
        )
    )


def decode_trades(data: bytes) -> tuple[np.ndarray, ...]:
    """The columns (trade_id, time_ms, price, qty, side) of a packed block."""
    n = len(data) // TRADE_BYTES
    return (
        np.frombuffer(data, dtype=_I8, count=n, offset=0),
        np.frombuffer(data, dtype=_I8, count=n, offset=8 * n),
        np.frombuffer(data, dtype=_F8, count=n, offset=16 * n),
        np.frombuffer(data, dtype=_F8, count=n, offset=24 * n),
        np.frombuffer(data, dtype=np.int8, count=n, offset=32 * n).astype(np.float64),
    )


def encode_status(status: FeedStatus) -> bytes:
    return _encoder.encode(status)


def decode_status(data: bytes) -> FeedStatus:
    values = _decoder.decode(data)
    return FeedStatus(**{k: v for k, v in values.items() if k in _STATUS_FIELDS})


def encode_symbols(infos: list[SymbolInfo]) -> bytes:
    return _encoder.encode(infos)


def decode_symbols(data: bytes) -> list[SymbolInfo]:
    return [
        SymbolInfo(**{k: v for k, v in row.items() if k in _INFO_FIELDS})
        for row in _decoder.decode(data)
    ]
