"""RedisStore: the MarketStore shared by one ingest worker (the writer) and any number of
stateless web processes (readers).

Keys (all under ``tapescope:``):

- ``sym:{SYMBOL}``: hash ``seq`` + ``rec`` (``store_codec`` record: header and raw float64
  book columns), with a TTL so a dead worker's state expires.
- ``trades:{SYMBOL}:{generation}``: a stream of packed trade blocks, entry ids ``{n}-0``
  numbered by the writer. Each publication appends only the trades that are new since the
  last one; the writer trims the stream to the blocks covering its trade window. Each
  reader keeps its own bounded window and fetches only blocks it has not seen; a reader
  that is too far behind (or sees a new generation) reloads the retained tail.
- ``status``, ``symbols``: the feed status and the tradable symbols; ``writer``: the
  writer's heartbeat ``{writer id}|{time}``, refreshed with every status.
- ``requests``: hash symbol -> time of the latest UI request (on-demand symbols).
- ``watchlist``: the market board (``market_board.encode_watchlist``).

Staleness: every record carries ``published_at``. A reader also checks the heartbeat: when
no writer is alive, or the record came from a previous writer, the book is handed out as
STALE, never as LIVE. Published ``seq`` values start from the writer's start time in
microseconds, so they keep increasing across worker restarts and per-(symbol, seq) caches
never mix two workers' data.

Failures: a Redis error never reaches the caller. Readers get ``None`` (or a STORE_DOWN
status), the writer drops that publication; both retry after a short, growing backoff and
recover by themselves. After a failed write the writer starts new trade generations, so
readers reload complete windows.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from services import store_codec as codec
from services.market.market_board import WatchlistRows, decode_watchlist, encode_watchlist
from services.market.views import SymbolInfo, SyncState, TradeView
from services.store import FeedStatus, SymbolSnapshot

log = logging.getLogger(__name__)

PREFIX = "tapescope:"
SYMBOL_RE = re.compile(r"^[A-Z0-9_]{2,32}$")
BLOCK_TRADES = 16_384
_ERRORS = (redis.RedisError, OSError)
T = TypeVar("T")

_SNAPSHOT_SCRIPT = """
local seq = redis.call('HGET', KEYS[1], 'seq') or ''
local beat = redis.call('GET', KEYS[2]) or ''
if seq == '' or seq == ARGV[1] then return {seq, beat} end
return {seq, beat, redis.call('HGET', KEYS[1], 'rec')}
"""


def valid_symbol(symbol: str) -> bool:
    """True when ``symbol`` may become part of a key (upper-case letters, digits, ``_``)."""
    return isinstance(symbol, str) and SYMBOL_RE.match(symbol) is not None


class Availability:
    """Whether Redis answered lately, and when to try again after it did not.

    After a failure calls are skipped for ``delay`` seconds, doubling up to ``max_delay``;
    the first success resets it.
    """

    def __init__(self, min_delay: float = 0.25, max_delay: float = 2.0) -> None:
        self._lock = threading.Lock()
        self._min = min_delay
        self._max = max_delay
        self._delay = min_delay
        self._retry_at = 0.0
        self.error = ""

    @property
    def down(self) -> bool:
        return bool(self.error)

    def ready(self) -> bool:
        return time.monotonic() >= self._retry_at

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if not self.error:
                log.warning("Redis store unavailable: %s", exc)
            self.error = str(exc) or type(exc).__name__
            self._retry_at = time.monotonic() + self._delay
            self._delay = min(self._delay * 2, self._max)

    def succeeded(self) -> None:
        if self.error:
            with self._lock:
                log.info("Redis store available again")
                self.error = ""
                self._delay = self._min


@dataclass(slots=True)
class _StreamState:
    """The writer's side of one symbol's trade stream."""

    generation: str = ""
    block: int = 0
    last_trade_id: int | None = None
    blocks: deque[tuple[int, int]] = field(default_factory=deque)
    written: bool = False
    published_at: float = 0.0


class TradeWindow:
    """A reader's copy of one symbol's trade window, rebuilt from stream blocks.

    Rows are appended into spare capacity; when it runs out the retained rows move to new
    arrays, so arrays handed out in earlier views are never written again.
    """

    def __init__(self, generation: str) -> None:
        self.generation = generation
        self.last_block = 0
        self._cols = [np.empty(0, dtype=t) for t in (np.int64, np.int64, float, float, float)]
        self._start = 0
        self._end = 0

    def __len__(self) -> int:
        return self._end - self._start

    def append(self, columns: tuple[np.ndarray, ...], keep: int) -> None:
        """Add rows (oldest first) and keep only the newest ``keep``."""
        n = int(columns[0].shape[0])
        if self._end + n > self._cols[0].shape[0]:
            retained = min(len(self), keep)
            capacity = max(2 * keep, retained + n, 1024)
            fresh = [np.empty(capacity, dtype=col.dtype) for col in self._cols]
            for old, new in zip(self._cols, fresh, strict=True):
                new[:retained] = old[self._end - retained : self._end]
            self._cols, self._start, self._end = fresh, 0, retained
        for col, rows in zip(self._cols, columns, strict=True):
            col[self._end : self._end + n] = rows
        self._end += n
        self._start = max(self._start, self._end - keep)

    def view(self, symbol: str, kind: str) -> TradeView:
        cols = []
        for col in self._cols:
            part = col[self._start : self._end]
            part.flags.writeable = False
            cols.append(part)
        return TradeView(symbol, *cols, kind=kind)


@dataclass(slots=True)
class _Cached:
    """A reader's last read of a symbol: as published, and as handed out (liveness
    applied)."""

    seq: str
    snapshot: SymbolSnapshot
    shown: SymbolSnapshot
    writer: str
    checked_at: float


class RedisStore:
    """MarketStore over Redis. One instance is either the writer (the worker's feed) or a
    reader (a web process); both sides are thread-safe.

    ttl_s: lifetime of per-symbol state, status and heartbeat without a refresh.
    stale_after_s: a heartbeat older than this means no live writer.
    poll_s: readers reuse what they read for this long (callbacks of one refresh share it).
    max_catchup_blocks: a reader further behind than this reloads the retained tail.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl_s: float = 30.0,
        stale_after_s: float = 5.0,
        poll_s: float = 0.05,
        max_catchup_blocks: int = 64,
        socket_timeout_s: float = 2.0,
    ) -> None:
        self.url = url
        self._redis = redis.Redis.from_url(
            url,
            socket_connect_timeout=0.5,
            socket_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._ttl_ms = int(ttl_s * 1000)
        self._stale_after_s = stale_after_s
        self._poll_s = poll_s
        self._max_catchup = max_catchup_blocks
        self._snapshot_script = self._redis.register_script(_SNAPSHOT_SCRIPT)
        self.availability = Availability()
        self.writer_id = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._seq_base = time.time_ns() // 1000
        self._generations = 0
        self._streams: dict[str, _StreamState] = {}
        self._write_lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._cache: dict[str, _Cached] = {}
        self._windows: dict[str, TradeWindow] = {}
        self._status_cache: tuple[float, FeedStatus | None] = (0.0, None)
        self._symbols_cache: tuple[float, list[SymbolInfo]] = (0.0, [])
        self._requests_cache: dict[str, float] = {}

    # -- writer ---------------------------------------------------------------------------

    def publish(self, snapshot: SymbolSnapshot) -> None:
        """Store a symbol's snapshot and append its new trades to the symbol's stream."""
        symbol = snapshot.symbol
        if not valid_symbol(symbol):
            raise ValueError(f"invalid symbol {symbol!r}")
        if not self.availability.ready():
            return
        with self._write_lock:
            state = self._streams.setdefault(symbol, _StreamState())
            try:
                self._write_symbol(symbol, snapshot, state)
            except _ERRORS as exc:
                self._streams = {s: _StreamState() for s in self._streams}
                self.availability.failed(exc)
                return
        self.availability.succeeded()

    def _write_symbol(self, symbol: str, snapshot: SymbolSnapshot, state: _StreamState) -> None:
        trades = snapshot.trades
        ids = trades.trade_id
        newest = int(ids[-1]) if len(trades) else None
        if not state.generation or (
            newest is not None and state.last_trade_id is not None and newest < state.last_trade_id
        ):
            self._generations += 1
            state.generation = f"{self.writer_id}.{self._generations}"
            state.block, state.last_trade_id, state.written = 0, None, False
            state.blocks.clear()
        start = 0
        if state.last_trade_id is not None:
            start = int(np.searchsorted(ids, state.last_trade_id, side="right"))
        stream_key = f"{PREFIX}trades:{symbol}:{state.generation}"
        sym_key = f"{PREFIX}sym:{symbol}"
        blocks = list(state.blocks)
        block = state.block
        pipe = self._redis.pipeline(transaction=True)
        pipe.xlen(stream_key)
        for lo in range(start, len(trades), BLOCK_TRADES):
            hi = min(lo + BLOCK_TRADES, len(trades))
            block += 1
            pipe.xadd(stream_key, {"d": codec.encode_trades(trades, lo, hi)}, id=f"{block}-0")
            blocks.append((block, hi - lo))
        retained = sum(count for _, count in blocks)
        while blocks and retained - blocks[0][1] >= len(trades):
            retained -= blocks.pop(0)[1]
        if blocks:
            pipe.xtrim(stream_key, minid=f"{blocks[0][0]}-0", approximate=False)
        pipe.pexpire(stream_key, self._ttl_ms)
        pointer = codec.TradePointer(state.generation, block, len(trades))
        seq = self._seq_base + snapshot.seq
        record = codec.encode_record(replace(snapshot, seq=seq), pointer, self.writer_id)
        pipe.hset(sym_key, mapping={"seq": str(seq), "rec": record})
        pipe.pexpire(sym_key, self._ttl_ms)
        length = pipe.execute()[0]
        if state.written and length == 0:
            state.generation = ""
        state.block, state.blocks, state.written = block, deque(blocks), True
        state.published_at = time.time()
        if newest is not None:
            state.last_trade_id = newest

    def publish_status(self, status: FeedStatus) -> None:
        """Store the feed status and the writer's heartbeat; keep recent symbols alive."""
        now = time.time()
        recent = [
            (s, st.generation)
            for s, st in list(self._streams.items())
            if st.generation and now - st.published_at < 10 * self._ttl_ms / 1000
        ]

        def write() -> None:
            pipe = self._redis.pipeline(transaction=False)
            pipe.set(f"{PREFIX}status", codec.encode_status(status), px=self._ttl_ms)
            pipe.set(f"{PREFIX}writer", f"{self.writer_id}|{now!r}", px=self._ttl_ms)
            pipe.pexpire(f"{PREFIX}symbols", self._ttl_ms)
            for symbol, generation in recent:
                pipe.pexpire(f"{PREFIX}sym:{symbol}", self._ttl_ms)
                pipe.pexpire(f"{PREFIX}trades:{symbol}:{generation}", self._ttl_ms)
            pipe.execute()

        self._call(write, None)

    def publish_symbols(self, infos: list[SymbolInfo]) -> None:
        infos = sorted(infos, key=lambda info: info.symbol)
        data = codec.encode_symbols(infos)
        self._call(lambda: self._redis.set(f"{PREFIX}symbols", data, px=self._ttl_ms), None)

    # -- reader ---------------------------------------------------------------------------

    def snapshot(self, symbol: str) -> SymbolSnapshot | None:
        """The latest snapshot of ``symbol``; ``None`` when there is none or Redis is down.
        Its book is STALE when no live writer stands behind it."""
        if not valid_symbol(symbol):
            return None
        with self._symbol_lock(symbol):
            cached = self._cache.get(symbol)
            now = time.monotonic()
            if cached is not None and now - cached.checked_at < self._poll_s:
                return cached.shown
            return self._call(lambda: self._read_snapshot(symbol, cached, now), None)

    def published_symbols(self) -> list[str]:
        """The symbols that have a snapshot in Redis, sorted (empty when Redis is down)."""
        prefix = f"{PREFIX}sym:"
        return self._call(
            lambda: sorted(
                key.decode()[len(prefix) :] for key in self._redis.scan_iter(match=f"{prefix}*")
            ),
            [],
        )

    def _read_snapshot(
        self, symbol: str, cached: _Cached | None, now: float
    ) -> SymbolSnapshot | None:
        keys = [f"{PREFIX}sym:{symbol}", f"{PREFIX}writer"]
        reply = self._snapshot_script(keys=keys, args=[cached.seq if cached else ""])
        seq, beat = reply[0].decode(), reply[1].decode()
        if not seq:
            self._cache.pop(symbol, None)
            self._windows.pop(symbol, None)
            return None
        if len(reply) == 3:
            record = codec.decode_record(reply[2])
            trades = self._read_trades(symbol, record.trades, record.snapshot.trades.kind)
            fresh = replace(record.snapshot, trades=trades)
            cached = _Cached(seq, fresh, fresh, record.writer, now)
        assert cached is not None
        cached.shown = self._with_liveness(cached, beat)
        cached.checked_at = now
        self._cache[symbol] = cached
        return cached.shown

    def _with_liveness(self, cached: _Cached, beat: str) -> SymbolSnapshot:
        """The snapshot, its book marked STALE when its writer is gone or silent."""
        snapshot = cached.snapshot
        writer, _, beat_at = beat.partition("|")
        if not writer:
            reason = "no ingest worker is publishing"
        elif writer != cached.writer:
            reason = "published by a previous ingest worker"
        elif time.time() - float(beat_at) > self._stale_after_s:
            reason = f"ingest worker silent for {time.time() - float(beat_at):.0f} s"
        else:
            return snapshot
        if snapshot.book.sync_state is SyncState.STALE:
            return snapshot
        book = replace(snapshot.book, sync_state=SyncState.STALE, resync_reason=reason)
        return replace(snapshot, book=book)

    def _read_trades(self, symbol: str, pointer: codec.TradePointer, kind: str) -> TradeView:
        key = f"{PREFIX}trades:{symbol}:{pointer.generation}"
        window = self._windows.get(symbol)
        behind = pointer.last_block - window.last_block if window else 0
        if (
            window is None
            or window.generation != pointer.generation
            or behind < 0
            or behind > self._max_catchup
        ):
            window = self._reload(key, pointer)
        elif behind > 0:
            entries = self._redis.xrange(
                key, f"{window.last_block + 1}-0", f"{pointer.last_block}-0"
            )
            numbers = [int(entry_id.split(b"-")[0]) for entry_id, _ in entries]
            if numbers != list(range(window.last_block + 1, pointer.last_block + 1)):
                window = self._reload(key, pointer)
            else:
                for _, fields in entries:
                    window.append(codec.decode_trades(fields[b"d"]), pointer.window)
                window.last_block = pointer.last_block
        self._windows[symbol] = window
        return window.view(symbol, kind)

    def _reload(self, key: str, pointer: codec.TradePointer) -> TradeWindow:
        """A fresh window from the blocks the stream still holds up to ``pointer``."""
        window = TradeWindow(pointer.generation)
        if pointer.last_block > 0:
            for _, fields in self._redis.xrange(key, "-", f"{pointer.last_block}-0"):
                window.append(codec.decode_trades(fields[b"d"]), pointer.window)
        window.last_block = pointer.last_block
        return window

    def status(self) -> FeedStatus | None:
        """The feed status; STORE_DOWN while Redis cannot be reached, STALE when the
        worker stopped refreshing it, ``None`` before any worker published one."""
        checked_at, _ = self._status_cache
        stale_cache = time.monotonic() - checked_at >= self._poll_s
        if (self.availability.down or stale_cache) and not self._refresh_status():
            return self._store_down()
        _, status = self._status_cache
        if status is not None and time.time() - status.published_at > self._stale_after_s:
            age = time.time() - status.published_at
            return replace(
                status,
                connection_state="STALE",
                detail=f"no status from the ingest worker for {age:.0f} s",
            )
        return status

    def _refresh_status(self) -> bool:
        def read() -> bool:
            data = self._redis.get(f"{PREFIX}status")
            self._status_cache = (
                time.monotonic(),
                None if data is None else codec.decode_status(data),
            )
            return True

        return bool(self._call(read, False))

    def _store_down(self) -> FeedStatus:
        """What readers see while Redis is unreachable; ``published_at`` is the time of the
        last status actually read (0 when none), so it never passes for a fresh one."""
        _, last = self._status_cache
        return FeedStatus(
            connection_state="STORE_DOWN",
            detail=f"Redis store unavailable ({self.availability.error}); retrying",
            published_at=0.0 if last is None else last.published_at,
        )

    def symbols(self) -> list[SymbolInfo]:
        """The tradable symbols the worker published (the last known list while Redis is
        down)."""
        checked_at, infos = self._symbols_cache
        if time.monotonic() - checked_at < 2.0:
            return list(infos)

        def read() -> list[SymbolInfo]:
            data = self._redis.get(f"{PREFIX}symbols")
            fresh = [] if data is None else codec.decode_symbols(data)
            self._symbols_cache = (time.monotonic(), fresh)
            return fresh

        return list(self._call(read, infos))

    def request_symbol(self, symbol: str) -> None:
        """Ask the worker to stream ``symbol``; invalid names are ignored."""
        if not valid_symbol(symbol):
            log.warning("ignoring request for invalid symbol %r", symbol)
            return
        self._call(lambda: self._redis.hset(f"{PREFIX}requests", symbol, repr(time.time())), None)

    def requested_symbols(self) -> dict[str, float]:
        """Symbols asked for in the last day, with the time of the latest request (the
        last known requests while Redis is down)."""

        def read() -> dict[str, float]:
            raw = self._redis.hgetall(f"{PREFIX}requests")
            now = time.time()
            requests: dict[str, float] = {}
            expired = []
            for key, value in raw.items():
                symbol, asked_at = key.decode(), float(value)
                if valid_symbol(symbol) and now - asked_at < 86_400:
                    requests[symbol] = asked_at
                else:
                    expired.append(key)
            if expired:
                self._redis.hdel(f"{PREFIX}requests", *expired)
            self._requests_cache = requests
            return requests

        return dict(self._call(read, self._requests_cache))

    def publish_watchlist(self, board: WatchlistRows) -> None:
        """Store the market board."""
        data = encode_watchlist(board)
        self._call(lambda: self._redis.set(f"{PREFIX}watchlist", data, px=self._ttl_ms), None)

    def watchlist(self) -> WatchlistRows:
        """The market board (empty when there is none or Redis is down)."""

        def read() -> WatchlistRows:
            data = self._redis.get(f"{PREFIX}watchlist")
            return WatchlistRows() if data is None else decode_watchlist(data)

        return self._call(read, WatchlistRows())

    # -- plumbing -------------------------------------------------------------------------

    def _symbol_lock(self, symbol: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(symbol, threading.Lock())

    def _call(self, fn: Callable[[], T], fallback: T) -> T:
        """``fn()``, or ``fallback`` when Redis is in backoff or fails."""
        if not self.availability.ready():
            return fallback
        try:
            result = fn()
        except _ERRORS as exc:
            self.availability.failed(exc)
            return fallback
        self.availability.succeeded()
        return result

    def close(self) -> None:
        self._redis.close()
