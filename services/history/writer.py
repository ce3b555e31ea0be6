"""The history writer: one background thread that turns batches from the feed into segments.

Producers (the feed's taps, the REST backfill, an import) only put items on a queue — never
blocking, never touching the disk — so a slow disk cannot delay a book update; the feed's
tap appends what it records to the writer's ``TapLane`` (one deque append per item: no
lock, no wake-up, no hand-over per message or per turn). A put does not wake the thread:
it sleeps until the next ``flush_interval_s`` (or an explicit flush or stop), then takes
everything in the lane and drains the queue, so its work (conversion, the grid, the
writes) comes once per interval instead of beside the feed at every message. It buffers
rows per (market, symbol, dataset) and writes a segment per buffer every
``flush_interval_s`` (or sooner when ``max_rows`` pile up). A kill -9 loses at most the
rows of the last interval plus what is queued; the next start's backfill fetches those
trades again from REST.

Exactly once: per trade dataset the writer knows the highest id stored (from the segment
names, at its first batch) and keeps only ids above it from live batches; a *fill* batch
(REST backfill of a hole) keeps only the ids inside the hole it names. So a reconnect, a
restart or a replayed batch never stores a trade twice.

Falling behind: the queue is unbounded; ``stats()`` reports its length and the age of the
oldest item not yet on disk (``lag_s``), and a failed write keeps its rows and retries at
the next interval (``write_errors``, ``last_error``). Nothing is dropped silently.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from services.binance.messages import DepthUpdate
from services.history import schema
from services.history.book_grid import GridConfig, mid_of
from services.history.book_pyramid import BOOK_GRID_1M, PYRAMID
from services.history.live_grid import BookChange, BookGrid
from services.history.reader import merged_ranges
from services.history.segments import (
    ALERT_EVENTS,
    BOOK_GRID,
    BOOK_TOP,
    CANDLES_1M,
    GAPS,
    Segment,
    WriterId,
    list_segments,
    remove_temp_files,
    trades_dataset,
    write_segment,
)
from services.market.views import TradeView

log = logging.getLogger(__name__)

FLUSH_ATTEMPTS = 20
YIELD_EVERY = 2_000
"""Tap entries handled between two chances for the other threads to take the GIL."""
FLUSH_RETRY_S = 0.1

Key = tuple[str, str, str]
"""(market, symbol, dataset)."""
HoleHandler = Callable[[str, str, int, int, int], None]
"""Called with (symbol, kind, first missing id, last missing id, time of the trade after)."""


@dataclass(slots=True)
class WriterStats:
    """The writer's health.

    queued: items waiting in the queue. lag_s: age of the oldest row not yet on disk (0 when
    everything is written). rows_written / segments_written / bytes_written: cumulative.
    duplicates_skipped: trade rows already stored (or outside the hole a fill names).
    write_errors / last_error: failed segment writes (their rows are kept and retried).
    """

    queued: int = 0
    lag_s: float = 0.0
    rows_written: int = 0
    segments_written: int = 0
    bytes_written: int = 0
    duplicates_skipped: int = 0
    write_errors: int = 0
    last_error: str = ""


@dataclass(slots=True)
class _Buffer:
    """Rows of one dataset not written yet (lists of column chunks) and since when."""

    columns: dict[str, list[np.ndarray]]
    first_at: float = 0.0
    rows: int = 0

    def add(self, chunk: dict[str, np.ndarray], at: float) -> None:
        n = len(next(iter(chunk.values())))
        if n == 0:
            return
        if self.rows == 0:
            self.first_at = at
        for name, values in chunk.items():
            self.columns[name].append(values)
        self.rows += n

    def frame(self, columns: dict[str, pl.DataType]) -> pl.DataFrame:
        data = {name: np.concatenate(self.columns[name]) for name in columns}
        return pl.DataFrame(data, schema=columns)

    def clear(self) -> None:
        for chunks in self.columns.values():
            chunks.clear()
        self.rows = 0


@dataclass(slots=True)
class _BookState:
    """Per-symbol book recording state: the book's copy and its open second, the last top
    row, the tick the tap last reported (for the states put as diffs)."""

    grid: BookGrid = field(default_factory=BookGrid)
    last_top: tuple = ()
    tick: float = 0.0


@dataclass(slots=True)
class _Item:
    kind: str
    key: Key
    payload: object
    at: float = field(default_factory=time.monotonic)


COLUMNS: dict[str, dict[str, pl.DataType]] = {
    BOOK_GRID: schema.BOOK_GRID,
    BOOK_TOP: schema.BOOK_TOP,
    CANDLES_1M: schema.CANDLES,
    GAPS: schema.GAPS,
    BOOK_GRID_1M: PYRAMID,  # derived (book_pyramid), listed for compaction and retention
    ALERT_EVENTS: schema.ALERT_EVENTS,  # services.alerts.archive; compacted and retained
}


def columns_of(dataset: str) -> dict[str, pl.DataType]:
    """The columns of a dataset (every ``trades-*`` dataset has the trade columns)."""
    return schema.TRADES if dataset.startswith("trades-") else COLUMNS[dataset]


class SymbolLane:
    """One symbol's lane, for a tap the feed hands its hot messages directly
    (``FeedTap.lane_for``): ``put`` is the bound ``deque.append`` of ``entries`` (a builtin:
    no Python frame on the feed's thread), and the feed puts each trade accepted in sequence
    as its ``TradeRow`` tuple and each diff applied to a book that was and stays LIVE as its
    decoded ``DepthUpdate`` — nothing allocated for them. The tap's trade views and book
    states for the symbol go in the same deque as ``LaneEntry``, so the writer meets its
    trades and book in the order they happened (closed candles, a dataset of their own,
    stay in the shared lane). ``trades``/``book``:
    the keys of its trades and ``book-top`` datasets; ``taken_at``: when the writer last
    emptied it (its oldest item is younger: ``stats().lag_s``)."""

    __slots__ = ("book", "entries", "put", "taken_at", "trades")

    def __init__(self, trades: Key, book: Key) -> None:
        self.trades = trades
        self.book = book
        self.entries: deque = deque()
        self.put = self.entries.append
        self.taken_at = time.monotonic()


@dataclass(frozen=True, slots=True)
class LaneEntry:
    """An item a tap put in a ``SymbolLane`` itself (the ``TapLane`` entry's kind, key and
    payload)."""

    kind: str
    key: Key
    payload: object


class TapLane:
    """Where a feed tap leaves what it records, on the feed's thread: each item is one
    ``deque`` append (thread-safe without a lock; nothing is handed over per message or per
    event-loop turn, nothing wakes the writer). The writer thread takes everything in the
    lane, in order, each time it wakes (its interval, a flush, a stop). ``since``: when the
    oldest item now in the lane was added (``stats().lag_s``). ``symbol_lane`` gives a
    symbol a lane of its own (``SymbolLane``), which the writer takes after this one."""

    __slots__ = ("_lock", "entries", "since", "symbols")

    def __init__(self) -> None:
        self.entries: deque[tuple[str, Key, object]] = deque()
        self.since = 0.0
        self.symbols: dict[Key, SymbolLane] = {}
        self._lock = threading.Lock()

    def symbol_lane(self, market: str, symbol: str, kind: str) -> SymbolLane:
        """The lane of (market, symbol) and its trades of ``kind``, made at the first call."""
        key = (market, symbol, trades_dataset(kind))
        with self._lock:
            lane = self.symbols.get(key)
            if lane is None:
                lane = SymbolLane(key, (market, symbol, BOOK_TOP))
                self.symbols = {**self.symbols, key: lane}  # the writer iterates a copy
            return lane

    def symbol_lanes(self) -> list[SymbolLane]:
        return list(self.symbols.values())

    def __len__(self) -> int:
        return len(self.entries) + sum(len(lane.entries) for lane in self.symbol_lanes())

    def trade_row(self, key: Key, row: tuple[int, int, float, float, bool]) -> None:
        """One trade as the feed decoded it (id, time ms, price, qty, buyer is maker);
        ``key``: (market, symbol, its trades dataset)."""
        entries = self.entries
        if not entries:
            self.since = time.monotonic()
        entries.append(("row", key, row))

    def trade_view(self, market: str, symbol: str, trades: TradeView) -> None:
        """Released trades as the feed hands them over (converted on the writer's thread)."""
        entries = self.entries
        if not entries:
            self.since = time.monotonic()
        entries.append(("view", (market, symbol, trades_dataset(trades.kind)), trades))

    def book(
        self,
        key: Key,
        time_ms: int,
        live: bool,
        tick: float,
        top: tuple[float, float, float, float],
        change: BookChange,
    ) -> None:
        """One book state (``key``: (market, symbol, ``book-top``)): ``top`` = (best bid,
        its qty, best ask, its qty), 0.0 for an empty side; ``change``: what set its levels
        since the last state."""
        entries = self.entries
        if not entries:
            self.since = time.monotonic()
        entries.append(("book", key, (time_ms, live, tick, top, change)))

    def candles(self, market: str, symbol: str, columns: dict[str, np.ndarray]) -> None:
        """1-minute candles (columns of ``schema.CANDLES``)."""
        entries = self.entries
        if not entries:
            self.since = time.monotonic()
        entries.append(("rows", (market, symbol, CANDLES_1M), columns))


class HistoryWriter:
    """Writes trades, the recorded book, candles and gaps under ``root`` from a thread."""

    def __init__(
        self,
        root: Path,
        *,
        flush_interval_s: float = 1.0,
        max_rows: int = 200_000,
        grid: GridConfig | None = None,
        writer_id: WriterId | None = None,
    ) -> None:
        self.root = Path(root)
        self.flush_interval_s = flush_interval_s
        self.max_rows = max_rows
        self.grid = grid or GridConfig()
        self.writer_id = writer_id or WriterId()
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._buffers: dict[Key, _Buffer] = {}
        self._last_ids: dict[Key, int] = {}
        self._books: dict[tuple[str, str], _BookState] = {}
        self._thread: threading.Thread | None = None
        self._stats = WriterStats()
        self._stats_lock = threading.Lock()
        self._oldest_queued: float | None = None
        self._drained = threading.Condition()
        self._wake = threading.Event()  # set by flush() and stop() only
        self._pending_items = 0
        self.lane = TapLane()
        self.on_hole: HoleHandler | None = None

    # -- producer side (any thread, never blocks on I/O) --------------------------------

    def add_trades(
        self,
        market: str,
        symbol: str,
        kind: str,
        columns: dict[str, np.ndarray],
        fill: tuple[int, int] | None = None,
    ) -> None:
        """Queue trades (columns of ``schema.TRADES``, id order). ``fill``: the hole
        (first id, last id) a REST backfill fills; only ids inside it are kept."""
        self._put(_Item("fill" if fill else "trades", (market, symbol, trades_dataset(kind)),
                        (columns, fill)))  # fmt: skip

    def add_candles(self, market: str, symbol: str, columns: dict[str, np.ndarray]) -> None:
        """Queue 1-minute candles (columns of ``schema.CANDLES``)."""
        self._put(_Item("rows", (market, symbol, CANDLES_1M), columns))

    def add_gap(
        self, market: str, symbol: str, kind: str, first_id: int, last_id: int,
        from_ms: int, to_ms: int, reason: str,
    ) -> None:  # fmt: skip
        """Queue the record of trade ids that could not be had."""
        columns = {
            "first_id": np.array([first_id], np.int64),
            "last_id": np.array([last_id], np.int64),
            "from_ms": np.array([from_ms], np.int64),
            "to_ms": np.array([to_ms], np.int64),
            "reason": np.array([f"{kind}: {reason}"], object),
        }
        self._put(_Item("rows", (market, symbol, GAPS), columns))

    def _put(self, item: _Item) -> None:
        with self._drained:
            self._pending_items += 1
            if self._oldest_queued is None:
                self._oldest_queued = item.at
        self._queue.put(item)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> HistoryWriter:
        if self._thread is None:
            remove_temp_files(self.root)
            self._thread = threading.Thread(
                target=self._run, name="tapescope-history-writer", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Write everything queued and buffered, then end the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._wake.set()
        self._thread.join(timeout)
        self._thread = None

    def unwritten_rows(self) -> int:
        """Rows buffered but not on disk yet."""
        return sum(buffer.rows for buffer in list(self._buffers.values()))

    def flush(self, timeout: float = 30.0) -> bool:
        """Block until every item queued so far is on disk; False on timeout or when the
        disk keeps failing (the rows stay buffered and are retried)."""
        deadline = time.monotonic() + timeout
        self._put(_Item("flush", ("", "", ""), None))
        self._wake.set()
        with self._drained:
            while self._pending_items > 0:
                left = deadline - time.monotonic()
                if left <= 0 or not self._drained.wait(left):
                    return False
        return self.unwritten_rows() == 0

    def stats(self) -> WriterStats:
        with self._stats_lock:
            stats = WriterStats(**{f: getattr(self._stats, f) for f in WriterStats.__slots__})
        lane = self.lane
        stats.queued = self._queue.qsize() + len(lane)
        oldest = [b.first_at for b in self._buffers.values() if b.rows]
        if self._oldest_queued is not None:
            oldest.append(self._oldest_queued)
        if lane.entries:
            oldest.append(lane.since)
        oldest.extend(s.taken_at for s in lane.symbol_lanes() if s.entries)
        stats.lag_s = time.monotonic() - min(oldest) if oldest else 0.0
        return stats

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        last_flush = time.monotonic()
        running = True
        while running:
            timeout = max(0.0, self.flush_interval_s - (time.monotonic() - last_flush))
            item = self._next_item(timeout)
            if item is None:
                running = False
                item = _Item("flush", ("", "", ""), None)
            try:
                self._handle(item)
            except Exception as exc:  # a bad batch must not stop the recording
                log.exception("history writer: %s item failed", item.kind)
                self._count_error(exc)
            now = time.monotonic()
            force = item.kind == "flush"
            if force:
                self._close_seconds()
                # An explicit flush (and the one at stop) retries a failing disk a while.
                for _ in range(FLUSH_ATTEMPTS):
                    self._flush_all(force=True)
                    if not self.unwritten_rows():
                        break
                    time.sleep(FLUSH_RETRY_S)
                last_flush = now
            elif now - last_flush >= self.flush_interval_s:
                self._flush_all(force=True)
                last_flush = now
            else:
                self._flush_all(force=False)
            if item.kind != "tick":
                with self._drained:
                    self._pending_items -= 1
                    if self._pending_items == 0:
                        self._oldest_queued = None
                    if self._pending_items == 0 or force:
                        self._drained.notify_all()

    def _next_item(self, timeout: float) -> _Item | None:
        """The next queued item; when there is none, sleep until the flush is due or a
        flush/stop is asked (a put does not wake the thread: it works once per interval,
        not beside the feed at every message), then a ``tick`` if still none."""
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            pass
        self._wake.wait(timeout)
        self._wake.clear()
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return _Item("tick", ("", "", ""), None)

    def _handle(self, item: _Item) -> None:
        self._take_lane()
        if item.kind in ("tick", "flush"):
            return
        if item.kind in {"trades", "fill"}:
            columns, fill = item.payload  # type: ignore[misc]
            self._add_trades(item.key, columns, fill, item.at)
        elif item.kind == "book":
            self._add_book(item.key, item.payload, item.at)  # type: ignore[arg-type]
        else:
            self._buffer(item.key).add(item.payload, item.at)  # type: ignore[arg-type]

    def _take_lane(self) -> None:
        """Everything the taps left in the lanes so far, in order, as one batch: the shared
        lane's, then each symbol lane's (its hot items as ``TapLane`` entries)."""
        lane = self.lane.entries
        taken: list[tuple[str, Key, object]] = []
        at = self.lane.since if lane else time.monotonic()
        take = lane.popleft
        while lane:
            taken.append(take())
        for symbol_lane in self.lane.symbol_lanes():
            entries = symbol_lane.entries
            if not entries:
                continue
            at = min(at, symbol_lane.taken_at)
            symbol_lane.taken_at = time.monotonic()
            trades, book = symbol_lane.trades, symbol_lane.book
            take = entries.popleft
            for _ in range(len(entries)):
                item = take()
                if type(item) is tuple:
                    taken.append(("row", trades, item))
                elif type(item) is LaneEntry:
                    taken.append((item.kind, item.key, item.payload))
                else:
                    taken.append(("diff", book, item))
        if taken:
            self._handle_batch(taken, at)

    def _handle_batch(self, entries: list[tuple[str, Key, object]], at: float) -> None:
        """Tap entries in order; each dataset's trades (rows and views, in order) are
        converted together. Every ``YIELD_EVERY`` entries the thread lets the others (the
        feed's) run: a second's worth of a busy market is not done in one hold of the GIL."""
        trades: dict[Key, list[list | TradeView]] = {}
        for index, (kind, key, payload) in enumerate(entries):
            if index % YIELD_EVERY == YIELD_EVERY - 1:
                time.sleep(0)
            if kind == "row":
                parts = trades.setdefault(key, [])
                if parts and isinstance(parts[-1], list):
                    parts[-1].append(payload)
                else:
                    parts.append([payload])
            elif kind == "diff":
                self._add_diff(key, payload, at)  # type: ignore[arg-type]
            elif kind == "view":
                trades.setdefault(key, []).append(payload)  # type: ignore[arg-type]
            elif kind == "book":
                self._add_book(key, payload, at)  # type: ignore[arg-type]
            else:
                self._buffer(key).add(payload, at)  # type: ignore[arg-type]
        for key, parts in trades.items():
            time.sleep(0)
            chunks = [
                schema.trade_row_columns(part)
                if isinstance(part, list)
                else schema.trade_columns(part)
                for part in parts
            ]
            columns = {
                name: np.concatenate([c[name] for c in chunks]) if len(chunks) > 1
                else chunks[0][name]
                for name in schema.TRADES
            }  # fmt: skip
            self._add_trades(key, columns, None, at)

    def _buffer(self, key: Key) -> _Buffer:
        buffer = self._buffers.get(key)
        if buffer is None:
            buffer = _Buffer({name: [] for name in columns_of(key[2])})
            self._buffers[key] = buffer
        return buffer

    def _last_id(self, key: Key) -> int:
        if key not in self._last_ids:
            listing = list_segments(self.root, *key, schema.TRADES)
            self._last_ids[key] = max((s.hi for s in listing.segments), default=-1)
            self._report_old_holes(key, listing.segments)
        return self._last_ids[key]

    def _report_old_holes(self, key: Key, segments: list[Segment]) -> None:
        """At a dataset's first batch of a run, tell ``on_hole`` of holes between stored id
        ranges that no gap record explains (e.g. a backfill cut short by a crash)."""
        if self.on_hole is None or len(segments) < 2:
            return
        market, symbol, dataset = key
        gaps = list_segments(self.root, market, symbol, GAPS, schema.GAPS).segments
        known = set()
        if gaps:
            frame = pl.read_parquet([g.path for g in gaps], schema=schema.GAPS)
            known = set(zip(frame["first_id"].to_list(), frame["last_id"].to_list(), strict=True))
        kind = dataset.removeprefix("trades-")
        ranges = merged_ranges(segments)
        for before, after in itertools.pairwise(ranges):
            first, last = before["last_id"] + 1, after["first_id"] - 1
            if (first, last) not in known:
                self.on_hole(symbol, kind, first, last, after["from_ms"])

    def _add_trades(
        self, key: Key, columns: dict[str, np.ndarray], fill: tuple[int, int] | None, at: float
    ) -> None:
        ids = np.asarray(columns["trade_id"], dtype=np.int64)
        if ids.shape[0] == 0:
            return
        if fill is None:
            last = self._last_id(key)
            keep = ids > last
            fill_key = key
            self._report_holes(key, ids[keep], columns["time_ms"][keep], last)
        else:
            keep = (ids >= fill[0]) & (ids <= fill[1])
            fill_key = (key[0], key[1], key[2] + "#fill")
        keep &= np.r_[True, ids[1:] > ids[:-1]]  # one row per id within the batch
        skipped = int(ids.shape[0] - keep.sum())
        if skipped:
            with self._stats_lock:
                self._stats.duplicates_skipped += skipped
        if not keep.any():
            return
        chunk = {name: np.asarray(columns[name])[keep] for name in schema.TRADES}
        if fill is None:
            self._last_ids[key] = int(chunk["trade_id"][-1])
        else:
            self._last_ids[key] = max(self._last_id(key), int(chunk["trade_id"][-1]))
        self._buffer(fill_key).add(chunk, at)

    def _report_holes(self, key: Key, ids: np.ndarray, times: np.ndarray, last: int) -> None:
        """Tell ``on_hole`` of ids missing before or inside a live batch (ids increase)."""
        if self.on_hole is None or ids.shape[0] == 0:
            return
        kind = key[2].removeprefix("trades-")
        if last >= 0 and ids[0] > last + 1:
            self.on_hole(key[1], kind, last + 1, int(ids[0]) - 1, int(times[0]))
        for i in np.flatnonzero(np.diff(ids) > 1).tolist():
            self.on_hole(key[1], kind, int(ids[i]) + 1, int(ids[i + 1]) - 1, int(times[i + 1]))

    def _add_book(self, key: Key, payload: tuple, at: float) -> None:
        time_ms, live, tick, best, change = payload
        market, symbol, _ = key
        state = self._books.setdefault((market, symbol), _BookState())
        state.tick = tick
        self._add_top(key, state, time_ms, live, best, at)
        rows = state.grid.step(
            time_ms // 1000, live, mid_of(best[0], best[2]), change, tick, self.grid
        )
        if rows is not None and rows["time_s"].shape[0]:
            self._buffer((market, symbol, BOOK_GRID)).add(rows, at)

    def _add_diff(self, key: Key, diff: DepthUpdate, at: float) -> None:
        """A diff the feed applied to a book that was and stayed LIVE (put in a symbol
        lane as decoded): the state after it is LIVE at the diff's event time, and its top
        is the best levels of the writer's own copy of the book (``BookGrid.top``), which
        the tap's last whole copy and every diff since made equal to the feed's."""
        market, symbol, _ = key
        state = self._books.get((market, symbol))
        if state is None or not state.grid.loaded:
            return  # never the case from the feed: a LIVE book was copied at its snapshot
        grid = state.grid
        rows = grid.step(diff.E // 1000, True, None, [(diff.b, diff.a)], state.tick, self.grid)
        if rows is not None and rows["time_s"].shape[0]:
            self._buffer((market, symbol, BOOK_GRID)).add(rows, at)
        self._add_top(key, state, diff.E, True, grid.top(), at)

    def _add_top(
        self, key: Key, state: _BookState, time_ms: int, live: bool, best: tuple, at: float
    ) -> None:
        """A ``book-top`` row when the best levels or the LIVE state changed."""
        top = (*best, bool(live))
        if top == state.last_top:
            return
        # Not LIVE: the last known prices are kept with live=False, never drawn as live.
        row = state.last_top[:4] if not live and state.last_top else best
        state.last_top = top
        values = schema.to_e8(np.array(row, dtype=np.float64))
        self._buffer(key).add(
            {
                "time_ms": np.array([time_ms], np.int64),
                "bid_e8": values[0:1],
                "bid_qty_e8": values[1:2],
                "ask_e8": values[2:3],
                "ask_qty_e8": values[3:4],
                "live": np.array([bool(live)]),
            },
            at,
        )

    def _close_second(self, market: str, symbol: str, state: _BookState, at: float) -> None:
        rows = state.grid.close()
        if rows is not None and rows["time_s"].shape[0]:
            self._buffer((market, symbol, BOOK_GRID)).add(rows, at)

    def _close_seconds(self) -> None:
        """Close every symbol's current second (on an explicit flush or at stop; a second
        that goes on afterwards gets a second row per bucket, which readers merge by max)."""
        for (market, symbol), state in self._books.items():
            self._close_second(market, symbol, state, time.monotonic())

    def _flush_all(self, force: bool) -> None:
        for key, buffer in list(self._buffers.items()):
            if buffer.rows and (force or buffer.rows >= self.max_rows):
                self._write(key, buffer)

    def _write(self, key: Key, buffer: _Buffer) -> None:
        market, symbol, dataset = key
        dataset = dataset.removesuffix("#fill")
        columns = columns_of(dataset)
        frame = buffer.frame(columns)
        if "trade_id" in columns:
            # A segment's name claims every id from lo to hi: split where ids jump.
            frame = frame.sort("trade_id")
            ids = frame["trade_id"].to_numpy()
            cuts = (np.flatnonzero(np.diff(ids) != 1) + 1).tolist()
            pieces = [frame[a:b] for a, b in zip([0, *cuts], [*cuts, frame.height], strict=True)]
        else:
            pieces = [frame]
        written = []
        try:
            for piece in pieces:
                written.append(self._write_piece(market, symbol, dataset, columns, piece))
        except Exception as exc:
            log.error("history writer: cannot write %s/%s/%s: %s", market, symbol, dataset, exc)
            self._count_error(exc)
            if written:  # keep only the rows not yet on disk, to retry
                rest = pl.concat(pieces[len(written) :])
                buffer.clear()
                buffer.add({name: rest[name].to_numpy() for name in columns}, buffer.first_at)
            return
        buffer.clear()
        with self._stats_lock:
            self._stats.rows_written += frame.height
            self._stats.segments_written += len(written)
            self._stats.bytes_written += sum(s.bytes for s in written)

    def _write_piece(
        self,
        market: str,
        symbol: str,
        dataset: str,
        columns: dict[str, pl.DataType],
        frame: pl.DataFrame,
    ) -> Segment:
        if "trade_id" in columns:
            lo, hi = int(frame["trade_id"][0]), int(frame["trade_id"][-1])
        else:
            lo = hi = 0
        time_col = next(c for c in ("time_ms", "time_s", "open_ms", "from_ms") if c in columns)
        times = frame[time_col]
        scale = 1000 if time_col == "time_s" else 1
        t0, t1 = int(times.min()) * scale, int(times.max()) * scale  # type: ignore[arg-type]
        return write_segment(
            self.root, market, symbol, dataset, frame,
            t0=t0, t1=t1, lo=lo, hi=hi, writer=self.writer_id.next(),
        )  # fmt: skip

    def _count_error(self, exc: Exception) -> None:
        with self._stats_lock:
            self._stats.write_errors += 1
            self._stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
