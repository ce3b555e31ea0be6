"""``python -m app check FILE.jsonl.gz [FILE ...]``: replay recordings through the live code.

Every message goes through the same decoding (``services.binance.messages``), ``BookSync``
and ``TradeLog`` that the live feed uses, in arrival order: diffs received before a symbol's
snapshot line are buffered exactly as live, and a snapshot recorded before the symbol's first
diff is used as the live feed would use it. A REST depth line's URL names the symbol.

The market (spot or USD-M, which decides the continuity rule) is the recording's, read from
the first message that names one (``recording_market``: a ``/fapi/`` URL, a diff carrying
``pu``, ...), whichever symbol it is about, never from the kind of a symbol's first line.

Nothing in a recording ends the run: a frame that does not decode, a line that is not a
recording line, a REST body that is not a depth snapshot are counted (``malformed_frames``)
and skipped; unknown events are counted (``unknown_frames``); a frame whose payload names
another symbol than its stream is counted (``foreign_frames``) and not applied; REST lines
other than depth snapshots are counted (``other_rest``) and skipped.

One JSON object per (file, symbol) is printed, one per line. Besides the book and trade
figures it reports an independent top-of-book check: after each applied diff the
reconstructed best bid/ask (price and quantity) is compared with the ``bookTicker`` whose
``u`` is the largest not above the diff's ``u`` and not below the previous event's final id
(spot ``U - 1``, USD-M ``pu``: the ids the diff covers), among all of the file's bookTickers
(on a 0 ms stream the matching ticker may arrive after the diff). This is the definition
behind manifest.json's figures (file 1: 5,853 checks, 2 misses; file 3: 5,754, 0).

Exit status: 0 when every book ends LIVE and uncrossed, 1 otherwise (the ``status`` field
says why), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from services.binance.messages import (
    AggTrade,
    BookTicker,
    DepthUpdate,
    MalformedFrame,
    Trade,
    UnknownEvent,
    decode_depth_snapshot,
    decode_frame,
)
from services.market.book_sync import BookSync
from services.market.trade_log import TradeLog
from services.market.views import SyncState
from services.replay.recording import (
    RecordedMessage,
    RecordingError,
    read_recording,
    recording_market,
)

_LEVEL = re.compile(rb'\["(\d+)(?:\.(\d*))?","(\d+)(?:\.(\d*))?"\]')
_TRADE_QTY = re.compile(rb'"q":"(\d+)(?:\.(\d*))?"')
_TOP = 5


@dataclass
class _ExactSum:
    """A sum of decimal strings kept as an integer count of 10**-decimals."""

    units: int = 0
    decimals: int = 0

    def add(self, whole: bytes, fraction: bytes | None) -> None:
        fraction = fraction or b""
        if len(fraction) > self.decimals:
            self.units *= 10 ** (len(fraction) - self.decimals)
            self.decimals = len(fraction)
        self.units += int(whole + fraction.ljust(self.decimals, b"0"))

    def __str__(self) -> str:
        if self.decimals == 0:
            return str(self.units)
        digits = str(self.units).rjust(self.decimals + 1, "0")
        return f"{digits[: -self.decimals]}.{digits[-self.decimals :]}"


@dataclass
class _SymbolCheck:
    """Everything the check tracks for one symbol of one file."""

    symbol: str
    market: str
    sync: BookSync | None = None
    trades: TradeLog | None = None
    price_decimals: int = 0
    qty_decimals: int = 0
    trade_qty: _ExactSum = field(default_factory=_ExactSum)
    trade_count: int = 0
    buyer_maker_count: int = 0
    quote_sum: float = 0.0
    base_sum: float = 0.0
    ticker_ids: list[int] = field(default_factory=list)
    tickers: list[tuple[float, float, float, float]] = field(default_factory=list)
    tops: list[tuple[int, int, tuple[float, ...] | None]] = field(default_factory=list)
    ticker_checks: int = 0
    ticker_miss_ids: list[int] = field(default_factory=list)

    def book_sync(self) -> BookSync:
        """The symbol's book sync, made on its first depth message with the file's market."""
        if self.sync is None:
            self.sync = BookSync(self.symbol, self.market, on_applied=self.record_top)
        return self.sync

    def trade_log(self, kind: str) -> TradeLog:
        if self.trades is None:
            self.trades = TradeLog(self.symbol, kind=kind)
        return self.trades

    def add_trade(self, event: Trade | AggTrade, raw: bytes) -> None:
        """Log one trade; a duplicate counts in the log only, not in the trade figures."""
        is_agg = isinstance(event, AggTrade)
        log = self.trade_log("aggTrade" if is_agg else "trade")
        duplicates = log.duplicates
        log.add(event.a if is_agg else event.t, event.T, event.p, event.q, event.m)
        if log.duplicates != duplicates:
            return
        self.trade_count += 1
        qty = _TRADE_QTY.search(raw)
        if qty is not None:
            self.trade_qty.add(qty.group(1), qty.group(2))
        self.buyer_maker_count += event.m
        self.quote_sum += event.p * event.q
        self.base_sum += event.q

    def record_top(self, diff: DepthUpdate) -> None:
        """Remember the book's top after an applied diff, for the bookTicker comparison."""
        if self.sync is None:
            return
        book = self.sync.book
        bid, ask = book.best_bid(), book.best_ask()
        top = (*bid, *ask) if bid is not None and ask is not None else None
        previous_id = diff.U - 1 if diff.pu is None else diff.pu
        self.tops.append((previous_id, diff.u, top))

    def compare_tickers(self) -> None:
        """Compare each recorded top with the bookTicker whose ``u`` is the largest not
        above the diff's ``u``, when that ``u`` is in the diff's range (see module doc)."""
        for previous_id, last_id, top in self.tops:
            index = bisect_right(self.ticker_ids, last_id) - 1
            if index < 0 or self.ticker_ids[index] < previous_id:
                continue
            self.ticker_checks += 1
            if top != self.tickers[index]:
                self.ticker_miss_ids.append(last_id)


def _decimals(body: bytes) -> tuple[int, int]:
    """Price and quantity decimals used by a depth body's first level (0, 0 if empty)."""
    match = _LEVEL.search(body)
    if match is None:
        return 0, 0
    return len(match.group(2) or b""), len(match.group(4) or b"")


def _format_levels(levels: Iterable[tuple[float, float]], check: _SymbolCheck) -> list:
    return [
        [f"{price:.{check.price_decimals}f}", f"{qty:.{check.qty_decimals}f}"]
        for price, qty in levels
    ]


@dataclass
class _FileCounts:
    """What a file held besides its symbols' data (see the module doc)."""

    malformed: int = 0
    unknown: int = 0
    foreign: int = 0
    other_rest: int = 0

    def bad_line(self, error: RecordingError) -> None:
        self.malformed += 1


def check_recording(path: str | Path, drop_lines: Iterable[int] = ()) -> list[dict]:
    """Replay one recording and return one result dict per symbol (sorted by symbol)."""
    counts = _FileCounts()
    market = recording_market(read_recording(path, lambda _: None)) or "spot"
    messages = read_recording(path, counts.bad_line)
    return check_messages(Path(path).name, messages, market, drop_lines, counts)


def check_messages(
    file: str,
    messages: Iterable[RecordedMessage],
    market: str,
    drop_lines: Iterable[int] = (),
    counts: _FileCounts | None = None,
) -> list[dict]:
    """Replay recorded messages of one ``market`` and return one result dict per symbol."""
    dropped = set(drop_lines)
    run = _FileCheck(market, counts or _FileCounts())
    for message in messages:
        if message.line in dropped:
            continue
        if message.src == "rest":
            run.on_rest(message)
        else:
            run.on_frame(message)
    for check in run.symbols.values():
        check.compare_tickers()
    return [_result(file, run.symbols[s], run.counts) for s in sorted(run.symbols)]


@dataclass
class _FileCheck:
    """The symbols of one file being checked, and what else the file held."""

    market: str
    counts: _FileCounts
    symbols: dict[str, _SymbolCheck] = field(default_factory=dict)

    def symbol_check(self, symbol: str) -> _SymbolCheck:
        check = self.symbols.get(symbol)
        if check is None:
            check = self.symbols[symbol] = _SymbolCheck(symbol, self.market)
        return check

    def on_rest(self, message: RecordedMessage) -> None:
        symbol = message.rest_target()[0]
        if not symbol or not message.url.partition("?")[0].endswith("/depth"):
            self.counts.other_rest += 1
            return
        try:
            snapshot = decode_depth_snapshot(message.raw)
        except MalformedFrame:
            self.counts.malformed += 1
            return
        check = self.symbol_check(symbol)
        check.price_decimals, check.qty_decimals = _decimals(message.raw)
        check.book_sync().on_snapshot(snapshot)

    def on_frame(self, message: RecordedMessage) -> None:
        try:
            frame = decode_frame(message.raw)
        except MalformedFrame:
            self.counts.malformed += 1
            return
        event = frame.event
        if isinstance(event, UnknownEvent):
            self.counts.unknown += 1
            return
        symbol = getattr(event, "s", None)
        if symbol is None:
            return
        if frame.stream and frame.stream.partition("@")[0].upper() != symbol:
            self.counts.foreign += 1
            return
        if isinstance(event, DepthUpdate):
            self.symbol_check(symbol).book_sync().on_diff(event)
        elif isinstance(event, Trade | AggTrade):
            self.symbol_check(symbol).add_trade(event, message.raw)
        elif isinstance(event, BookTicker):
            check = self.symbol_check(symbol)
            check.ticker_ids.append(event.u)
            check.tickers.append((event.b, event.B, event.a, event.A))


def _status(sync: BookSync | None) -> str:
    if sync is None:
        return "no depth data"
    if sync.book.is_crossed():
        return "crossed book"
    if sync.state is not SyncState.LIVE:
        reason = f" ({sync.resync_reason})" if sync.resync_reason else ""
        return f"not in sync: {sync.state.value}{reason}"
    return "ok"


def _result(file: str, check: _SymbolCheck, counts: _FileCounts) -> dict:
    sync = check.sync
    counters = sync.counters if sync is not None else None
    book = sync.book if sync is not None else None
    trades = check.trades
    return {
        "file": file,
        "symbol": check.symbol,
        "market": sync.market if sync is not None else check.market,
        "status": _status(sync),
        "state": sync.state.value if sync is not None else "",
        "resync_reason": sync.resync_reason if sync is not None else "",
        "last_update_id": sync.last_update_id if sync is not None else 0,
        "bids_top5": _format_levels(book.top_bids(_TOP), check) if book else [],
        "asks_top5": _format_levels(book.top_asks(_TOP), check) if book else [],
        "levels": [book.n_bids, book.n_asks] if book else [0, 0],
        "resyncs": counters.resyncs if counters else 0,
        "gaps": counters.gaps if counters else 0,
        "diffs_applied": counters.diffs_applied if counters else 0,
        "diffs_dropped": counters.diffs_dropped if counters else 0,
        "diffs_buffered": counters.diffs_buffered if counters else 0,
        "snapshots_requested": counters.snapshots_requested if counters else 0,
        "trades": check.trade_count,
        "trade_duplicates": trades.duplicates if trades else 0,
        "trade_gaps": len(trades.gaps) if trades else 0,
        "trade_qty_sum": str(check.trade_qty),
        "buyer_maker_count": check.buyer_maker_count,
        "vwap": check.quote_sum / check.base_sum if check.base_sum else 0.0,
        "book_ticker_checks": check.ticker_checks,
        "book_ticker_misses": len(check.ticker_miss_ids),
        "book_ticker_miss_u": check.ticker_miss_ids,
        "malformed_frames": counts.malformed,
        "unknown_frames": counts.unknown,
        "foreign_frames": counts.foreign,
        "other_rest": counts.other_rest,
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app check",
        description="Replay recordings through the live decoding, book sync and trade log; "
        "print one JSON line per file and symbol.",
    )
    parser.add_argument("files", nargs="+", type=Path, help="recordings (*.jsonl.gz)")
    parser.add_argument(
        "--drop-line",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="skip line N of every file (1-based; repeatable), e.g. to derive a gap",
    )
    return parser


def main(args: list[str]) -> int:
    """Run the check; 0 when every book ends LIVE and uncrossed, 1 otherwise."""
    options = _parser().parse_args(args)
    failed = False
    for path in options.files:
        if not path.exists():
            print(f"{path}: no such file", file=sys.stderr)
            return 2
        for result in check_recording(path, options.drop_line):
            print(json.dumps(result))
            failed = failed or result["status"] != "ok"
    return 1 if failed else 0
