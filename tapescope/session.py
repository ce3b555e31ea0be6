"""``Session``: Tapescope in-process — the feed (Binance live, or the local exchange
replaying a recording) in a background thread, a memory store, and the push hub — with the
API's async methods reading what the feed publishes.

The methods mirror the seed's task functions (see ``tapescope.__init__`` for the table);
every figure comes from ``tapescope.metrics``, the same computation as the JSON API.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from app import config, market_source
from app.api import health, json_ready
from app.callbacks.derived import DerivedCache
from app.history_api import MAX_SPAN_DAYS, range_body
from services.history.ranges import checked_range
from services.history.reader import HistoryError, HistoryReader
from services.market.feed import Feed
from services.push.messages import slice_after, trade_rows
from services.push.service import PushService
from services.store import MemoryStore, SymbolSnapshot
from tapescope import metrics

Time = str | int | None
"""A range bound: ISO 8601 UTC text or epoch ms."""


class NotStreaming(RuntimeError):
    """The session has not been started, or the symbol is not streamed."""


class Session:
    """One in-process Tapescope (``start`` → queries → ``stop``); ``history_dir``: where
    ``start``/``end`` ranges are read from (a history root, e.g. the ``data/history`` that
    ``python -m app run`` records)."""

    def __init__(self, history_dir: str | Path | None = None) -> None:
        self.history_dir = Path(history_dir) if history_dir is not None else None
        self.store: MemoryStore | None = None
        self.push: PushService | None = None
        self.feed: Feed | None = None
        self.source: market_source.MarketSource | None = None
        self.cache = DerivedCache()

    @property
    def running(self) -> bool:
        return self.feed is not None

    async def start(
        self,
        symbols: Sequence[str] = (),
        *,
        source: str = "replay",
        recording: str | Path | None = None,
        speed: float | str = 1.0,
        loop: bool = True,
        wait_s: float = 30.0,
    ) -> list[str]:
        """Stream ``symbols`` (empty: the source's default set) from ``source`` ("live",
        "replay" or "auto"); returns the streamed symbols once each has a LIVE book or
        ``wait_s`` passed. Starting a running session raises."""
        if self.running:
            raise RuntimeError("already streaming; stop() first")
        settings = replace(
            config.Settings(),
            source=source,
            symbols=tuple(s.upper() for s in symbols),
            speed=str(speed),
            loop=loop,
            history=False,  # a session records no history, so its replay starts at pass 0
        )
        if recording is not None:
            settings = replace(settings, recording=Path(recording))
        config.validate(settings)
        self.source = await asyncio.to_thread(market_source.resolve, settings)
        self.store = MemoryStore()
        self.push = PushService.embedded(self.store)
        self.push.start()
        feed_config = market_source.feed_config(settings, self.source)
        self.feed = Feed(feed_config, self.store, taps=[self.push.tap])
        self.feed.start_in_thread()
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            streamed = self.store.published_symbols()
            wanted = settings.symbols or tuple(streamed)
            snaps = [self.store.snapshot(s) for s in wanted]
            if wanted and all(s is not None and s.book.is_live for s in snaps):
                break
            await asyncio.sleep(0.1)
        return self.store.published_symbols()

    async def stop(self) -> None:
        """Stop the feed and the local exchange (if a replay); the session can start again."""
        feed, source, push = self.feed, self.source, self.push
        self.feed = self.source = self.push = self.store = None
        if feed is not None:
            await asyncio.to_thread(feed.stop)
        if push is not None:
            push.stop()
        if source is not None:
            await asyncio.to_thread(source.close)

    def _snapshot(self, symbol: str) -> SymbolSnapshot:
        if self.store is None:
            raise NotStreaming("not streaming: call start() first")
        snapshot = self.store.snapshot(symbol.upper())
        if snapshot is None:
            streamed = ", ".join(self.store.published_symbols())
            raise NotStreaming(f"{symbol.upper()} is not streamed (streamed: {streamed})")
        return snapshot

    async def order_book(self, symbol: str, levels: int = 10) -> dict[str, Any]:
        """The order book's top ``levels`` per side and its summary."""
        return metrics.order_book(self.cache, self._snapshot(symbol), levels)

    async def trade_stats(
        self, symbol: str, window: str = "1m", *, start: Time = None, end: Time = None
    ) -> dict[str, Any]:
        """Trade statistics over a time window ("1m", "5m", "15m", "1h"), or over the stored
        range ``start``..``end`` (ISO 8601 UTC or epoch ms; the session's history)."""
        if start is not None or end is not None:
            return await self._range("trade-stats", symbol, start, end, {})
        return metrics.trade_stats(self.cache, self._snapshot(symbol), window)

    async def trade_flow(
        self, symbol: str, window: int | str = 100, *, start: Time = None, end: Time = None
    ) -> dict[str, Any]:
        """Buy vs sell aggression over the last ``window`` trades (or a time window), or
        over the stored range ``start``..``end`` (the session's history)."""
        if start is not None or end is not None:
            return await self._range("trade-flow", symbol, start, end, {})
        return metrics.trade_flow(self.cache, self._snapshot(symbol), window)

    async def large_trades(
        self, symbol: str, threshold: float = 10.0, *, start: Time = None, end: Time = None
    ) -> dict[str, Any]:
        """Trades of ``threshold`` × the mean trade size or more, newest first: over the
        trade window, or over the stored range ``start``..``end`` (the mean is then the
        range's; the session's history)."""
        if start is not None or end is not None:
            if not threshold > 0:
                raise ValueError("threshold must be positive (a multiple of the mean trade size)")
            return await self._range("large-trades", symbol, start, end, {"multiple": threshold})
        return metrics.large_trades(self._snapshot(symbol), threshold)

    async def volume_profile(
        self, symbol: str, bins: int = 50, *, start: Time = None, end: Time = None
    ) -> dict[str, Any]:
        """Volume by price over the trade window, or over the stored range ``start``..``end``
        (ISO 8601 UTC or epoch ms; the session's history): POC, value area, per-row volumes."""
        if start is not None or end is not None:
            return await self._range("volume-profile", symbol, start, end, {"bins": bins})
        return metrics.volume_profile(self.cache, self._snapshot(symbol), bins)

    async def _range(
        self, endpoint: str, symbol: str, start: Time, end: Time, params: dict[str, Any]
    ) -> dict[str, Any]:
        """The JSON API's answer for ``endpoint`` over a stored range, computed here."""
        if self.history_dir is None:
            raise NotStreaming("no history: create the session with Session(history_dir=...)")
        span = checked_range(
            None if start is None else str(start),
            None if end is None else str(end),
            MAX_SPAN_DAYS * 86_400_000,
        )
        reader = HistoryReader(self.history_dir)
        symbol = symbol.upper()
        market = reader.market_of(symbol)
        if market is None:
            raise HistoryError(f"no history for {symbol}", 404, symbol=symbol)
        infos = self.store.symbols() if self.store is not None else []
        body = await asyncio.to_thread(
            range_body, reader, endpoint, symbol, market, span, params, infos
        )
        return json_ready(body)

    async def websocket_stats(self) -> dict[str, Any]:
        """The feed's connections (messages, reconnects, lag, malformed frames), counters,
        and the push streams' subscribers."""
        if self.feed is None or self.push is None:
            raise NotStreaming("not streaming: call start() first")
        stats = self.feed.stats()
        return json_ready(
            {
                "connections": [{**asdict(c), "messages": c.messages} for c in stats.connections],
                "counters": asdict(stats.counters),
                "resyncs": stats.resyncs,
                "gaps": stats.gaps,
                "trade_duplicates": stats.trade_duplicates,
                "push": asdict(self.push.hub.stats()),
            }
        )

    async def health(self) -> dict[str, Any]:
        """``ok`` while the feed publishes, with each book's sync state (as ``/healthz``)."""
        if self.store is None:
            raise NotStreaming("not streaming: call start() first")
        return health(self.store)

    async def health_checks(self, interval_s: float = 30.0) -> AsyncIterator[dict[str, Any]]:
        """``health()`` now and every ``interval_s`` after, for as long as it is iterated."""
        while True:
            yield await self.health()
            await asyncio.sleep(interval_s)

    async def trades(self, symbol: str, from_id: int | None = None) -> AsyncIterator[dict]:
        """Trades as the ``trades`` stream sends them (dicts with id, time, price, qty,
        side), after ``from_id`` first when given, then live; ends when the session stops."""
        if self.push is None:
            raise NotStreaming("not streaming: call start() first")
        hub = self.push.hub
        name = symbol.upper()
        sub = hub.subscribe_trades(name, from_id)
        last = from_id
        try:
            while self.push is not None:
                batch = await asyncio.to_thread(sub.take, 0.5)
                if batch is None:
                    if sub.cut_reason is not None:
                        raise NotStreaming(sub.cut_reason)
                    continue
                fresh = batch.trades if last is None else slice_after(batch.trades, last)
                for row in trade_rows(fresh):
                    last = row["id"]
                    yield row
        finally:
            hub.unsubscribe("trades", name, sub)
