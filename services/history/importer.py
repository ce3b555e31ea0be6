"""Import a recording (``*.jsonl.gz``) into the history store, through the same decoding,
``BookSync`` and writer the live feed's recording uses.

Per symbol of the file: every trade (``trade`` or ``aggTrade``, as recorded, original
exchange times), the recorded book (after the REST snapshot and each applied diff, exactly
as live) and the 1-minute klines. Idempotent: trades whose ids are already stored are
skipped by the writer; the book and klines of a symbol are imported only when nothing of
the book is stored yet over the recording's time span.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from services.binance.messages import (
    AggTrade,
    DepthUpdate,
    Kline,
    MalformedFrame,
    Trade,
    decode_depth_snapshot,
    decode_frame,
)
from services.history import schema
from services.history.recorder import HistoryRecorder, kline_columns
from services.history.segments import BOOK_TOP, list_segments
from services.history.writer import HistoryWriter
from services.market.book_sync import BookSync
from services.replay.recording import read_recording

Progress = Callable[[int, int], None]
"""Called with (lines read, trades read) now and then."""


@dataclass
class _Symbol:
    market: str = ""
    kind: str = ""
    rows: list[tuple[int, int, float, float, bool]] = field(default_factory=list)
    klines: dict[int, Kline] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What one file brought: per symbol, trades added and whether its book was added."""

    file: str
    trades: dict[str, int]
    trades_skipped: dict[str, int]
    book_imported: dict[str, bool]


def _file_market(path: Path) -> str:
    return "usdm" if path.name.startswith("usdm") else "spot"


def _read(
    path: Path, progress: Progress | None
) -> tuple[str, dict[str, _Symbol], list[tuple[str, object]], int, int]:
    """The file's market, per-symbol trades and klines, book messages (snapshots and diffs
    in arrival order), and the counts of lines and trades read."""
    symbols: dict[str, _Symbol] = defaultdict(_Symbol)
    market = _file_market(path)
    lines = trades = 0
    last_report = time.monotonic()
    book_msgs: list[tuple[str, object]] = []
    for message in read_recording(path):
        lines += 1
        if message.src == "rest":
            symbol, market = message.rest_target()
            if symbol and b"lastUpdateId" in message.raw[:200]:
                book_msgs.append((symbol, decode_depth_snapshot(message.raw)))
        elif b"@bookTicker" not in message.raw[:40]:  # the top is read off the book instead
            trades += _take(message.raw, symbols, book_msgs)
        if progress is not None and time.monotonic() - last_report > 0.2:
            progress(lines, trades)
            last_report = time.monotonic()
    return market, dict(symbols), book_msgs, lines, trades


def _take(raw: bytes, symbols: dict[str, _Symbol], book_msgs: list[tuple[str, object]]) -> int:
    """File one WebSocket frame; returns 1 for a trade, else 0."""
    try:
        event = decode_frame(raw).event
    except MalformedFrame:
        return 0
    if isinstance(event, Trade | AggTrade):
        state = symbols[event.s]
        state.kind = "aggTrade" if isinstance(event, AggTrade) else "trade"
        trade_id = event.a if isinstance(event, AggTrade) else event.t
        state.rows.append((trade_id, event.T, event.p, event.q, event.m))
        return 1
    if isinstance(event, DepthUpdate):
        book_msgs.append((event.s, event))
    elif isinstance(event, Kline):
        symbols[event.s].klines[event.k.t] = event
    return 0


def import_recording(
    path: Path, writer: HistoryWriter, progress: Progress | None = None
) -> ImportResult:
    """Import one recording into ``writer``'s store (the writer must be started)."""
    path = Path(path)
    market, symbols, book_msgs, lines, trades = _read(path, progress)
    added: dict[str, int] = {}
    skipped: dict[str, int] = {}
    books: dict[str, bool] = {}
    for symbol, state in symbols.items():
        state.market = market
        if state.rows:
            before = writer.stats().duplicates_skipped
            _add_trades(writer, market, symbol, state)
            writer.flush()
            skipped[symbol] = writer.stats().duplicates_skipped - before
            added[symbol] = len(state.rows) - skipped[symbol]
    for symbol in {s for s, _ in book_msgs} | set(symbols):
        state = symbols.get(symbol) or _Symbol()
        books[symbol] = _import_book(writer, market, symbol, state, book_msgs)
    writer.flush()
    if progress is not None:
        progress(lines, trades)
    return ImportResult(path.name, added, skipped, books)


def _add_trades(writer: HistoryWriter, market: str, symbol: str, state: _Symbol) -> None:
    writer.add_trades(market, symbol, state.kind, schema.trade_row_columns(sorted(state.rows)))


def _import_book(
    writer: HistoryWriter,
    market: str,
    symbol: str,
    state: _Symbol,
    book_msgs: list[tuple[str, object]],
) -> bool:
    """Replay the symbol's snapshot and diffs through ``BookSync`` into the writer, and its
    klines; False (nothing added) when book rows already cover the recording's span."""
    mine = [m for s, m in book_msgs if s == symbol]
    times = [m.E for m in mine if isinstance(m, DepthUpdate)]
    times += list(state.klines)
    if not times:
        return False
    start, end = min(times), max(times)
    existing = list_segments(writer.root, market, symbol, BOOK_TOP, schema.BOOK_TOP, start, end)
    if existing.segments:
        return False
    recorder = HistoryRecorder(writer, market)
    sync = BookSync(symbol, market, on_applied=lambda d: recorder.on_levels(symbol, sync, d.b, d.a))
    for message in mine:
        if isinstance(message, DepthUpdate):
            sync.on_diff(message)
        else:
            sync.on_snapshot(message)  # type: ignore[arg-type]
        if sync.event_time_ms:
            recorder.on_book(symbol, sync)
    if state.klines:
        writer.add_candles(
            market, symbol, kline_columns([k.k for k in state.klines.values()], "stream")
        )
    return True
