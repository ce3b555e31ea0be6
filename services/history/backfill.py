"""REST backfill for the history: the trades missed while Tapescope was not listening, and
the klines before a symbol's first recorded minute.

Holes come from ``HistoryRecorder`` (the first trade the feed delivers after a restart, or
after a gap the feed itself abandoned, is above the last id stored). Each hole is fetched
oldest first with ``aggTrades?fromId=`` pages of 1000 under this backfill's own REST weight
budget (``weight_per_minute``, checked against the IP's total the exchange reports, so set
it below the feed's: the backfill then uses only what the feed leaves), and
the rows are written as a *fill* of that hole (ids outside it are ignored, so a fill never
duplicates a stored trade). What cannot be had — the exchange has no such ids any more, the
page limit is reached, a ``trade``-kind feed on a venue without ``historicalTrades``, or an
HTTP failure — is written as a gap record with its id range and the reason, which
``/history`` and ``history info`` show.

Klines: the first time a symbol is seen in a run, the 1-minute klines of the
``kline_limit`` minutes before its first delivered trade are fetched once (weight 2) and
stored as ``rest`` candles, so a new symbol shows its recent past.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import dataclass

import numpy as np

from services.binance.backoff import Backoff
from services.binance.endpoints import Endpoints
from services.binance.messages import MalformedFrame
from services.binance.rest_client import BinanceHttpError, BinanceRestClient
from services.history import schema
from services.history.recorder import kline_columns
from services.history.segments import CANDLES_1M, list_segments
from services.history.writer import HistoryWriter

log = logging.getLogger(__name__)

PAGE = 1000


@dataclass(slots=True)
class BackfillStats:
    """holes: holes asked for; filled: holes filled completely; trades: rows fetched;
    gaps: ranges recorded as unfillable; pending: jobs waiting; klines: bars stored."""

    holes: int = 0
    filled: int = 0
    trades: int = 0
    gaps: int = 0
    pending: int = 0
    klines: int = 0


@dataclass(frozen=True, slots=True)
class _Hole:
    symbol: str
    kind: str
    first_id: int
    last_id: int
    after_ms: int


@dataclass(frozen=True, slots=True)
class _Klines:
    symbol: str
    before_ms: int


class TradeBackfill:
    """Fills trade-id holes and backfills klines from REST on a thread of its own."""

    def __init__(
        self,
        writer: HistoryWriter,
        endpoints: Endpoints,
        market: str,
        *,
        weight_per_minute: int = 4200,
        max_pages: int = 2000,
        kline_limit: int = 1000,
        backoff: Backoff | None = None,
    ) -> None:
        self.writer = writer
        self.endpoints = endpoints
        self.market = market
        self.weight_per_minute = weight_per_minute
        self.max_pages = max_pages
        self.kline_limit = kline_limit
        self.backoff = backoff
        self.stats = BackfillStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[_Hole | _Klines | None] | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._lock = threading.Lock()
        self._seen: set[str] = set()

    # -- any thread -------------------------------------------------------------------------

    def start(self) -> TradeBackfill:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._serve, name="tapescope-history-backfill", daemon=True
            )
            self._thread.start()
            self._ready.wait(10.0)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._queue.put_nowait, None)  # type: ignore[union-attr]
        self._thread.join(timeout)
        self._thread = None

    def request_hole(
        self, symbol: str, kind: str, first_id: int, last_id: int, after_ms: int
    ) -> None:
        """Queue the hole ``first_id``..``last_id`` (the recorder's ``on_hole``)."""
        with self._lock:
            self.stats.holes += 1
        self._submit(_Hole(symbol, kind, first_id, last_id, after_ms))

    def request_klines(self, symbol: str, before_ms: int) -> None:
        """Queue the kline backfill of a symbol, once per run."""
        if symbol not in self._seen:
            self._seen.add(symbol)
            self._submit(_Klines(symbol, before_ms))

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until every queued job is done (for tests and shutdown)."""
        return self._idle.wait(timeout)

    def _submit(self, job: _Hole | _Klines) -> None:
        with self._lock:
            self.stats.pending += 1
            self._idle.clear()
        assert self._loop is not None and self._queue is not None, "start() first"
        self._loop.call_soon_threadsafe(self._queue.put_nowait, job)

    # -- the thread -------------------------------------------------------------------------

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._queue = asyncio.Queue()
        self._ready.set()
        try:
            loop.run_until_complete(self._run())
        finally:
            loop.close()

    async def _run(self) -> None:
        assert self._queue is not None
        async with BinanceRestClient(
            self.endpoints, weight_per_minute=self.weight_per_minute, backoff=self.backoff
        ) as rest:
            while True:
                job = await self._queue.get()
                if job is None:
                    return
                try:
                    if isinstance(job, _Hole):
                        await self._fill(rest, job)
                    else:
                        await self._klines(rest, job)
                except Exception:  # one failed job must not end the backfill
                    log.exception("history backfill: %s failed", job)
                finally:
                    with self._lock:
                        self.stats.pending -= 1
                        if self.stats.pending == 0:
                            self._idle.set()

    async def _fill(self, rest: BinanceRestClient, hole: _Hole) -> None:
        next_id = hole.first_id
        reason = ""
        last_ms = 0
        try:
            for _ in range(self.max_pages):
                if next_id > hole.last_id:
                    break
                columns = await self._page(rest, hole, next_id)
                if columns is None:
                    reason = "this venue serves no trade-by-id history for the feed's kind"
                    break
                ids = columns["trade_id"]
                keep = (ids >= next_id) & (ids <= hole.last_id)
                if not keep.any():
                    reason = "the exchange serves none of these ids"
                    break
                kept = {k: v[keep] for k, v in columns.items()}
                served = int(kept["trade_id"][0])
                if served > next_id:
                    self._gap(hole, next_id, served - 1, last_ms, "the exchange no longer has them")
                self.writer.add_trades(
                    self.market, hole.symbol, hole.kind, kept, fill=(hole.first_id, hole.last_id)
                )
                self.stats.trades += int(keep.sum())
                next_id = int(kept["trade_id"][-1]) + 1
                last_ms = int(kept["time_ms"][-1])
            else:
                reason = f"more than {self.max_pages} pages"
        except (BinanceHttpError, MalformedFrame) as exc:
            reason = f"REST failed: {exc}"[:200]
        if next_id <= hole.last_id:
            self._gap(hole, next_id, hole.last_id, last_ms, reason or "not served")
        else:
            self.stats.filled += 1

    async def _page(
        self, rest: BinanceRestClient, hole: _Hole, from_id: int
    ) -> dict[str, np.ndarray] | None:
        if hole.kind == "aggTrade":
            aggs = await rest.agg_trades(hole.symbol, from_id=from_id, limit=PAGE)
            return schema.trade_row_columns([(r.a, r.T, r.p, r.q, r.m) for r in aggs])
        try:
            trades = await rest.historical_trades(hole.symbol, from_id=from_id, limit=PAGE)
        except BinanceHttpError:
            return None
        return schema.trade_row_columns([(r.t, r.T, r.p, r.q, r.m) for r in trades])

    def _gap(self, hole: _Hole, first: int, last: int, from_ms: int, reason: str) -> None:
        self.stats.gaps += 1
        log.warning("history: trades %s..%s of %s not backfilled: %s", first, last,
                    hole.symbol, reason)  # fmt: skip
        self.writer.add_gap(self.market, hole.symbol, hole.kind, first, last, from_ms,
                            hole.after_ms, reason)  # fmt: skip

    async def _klines(self, rest: BinanceRestClient, job: _Klines) -> None:
        end = job.before_ms // 60_000 * 60_000 - 1
        start = end + 1 - self.kline_limit * 60_000
        stored = list_segments(
            self.writer.root, self.market, job.symbol, CANDLES_1M, schema.CANDLES, start, end
        )
        if stored.segments:
            return
        with contextlib.suppress(BinanceHttpError, MalformedFrame):
            bars = await rest.klines(
                job.symbol, "1m", start_time=start, end_time=end, limit=self.kline_limit
            )
            bars = [b for b in bars if b.x and b.t <= end]
            if bars:
                self.writer.add_candles(self.market, job.symbol, kline_columns(bars, "rest"))
                self.stats.klines += len(bars)
