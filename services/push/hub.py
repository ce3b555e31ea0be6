"""The push hub: per symbol, the subscribers of its ``trades``, ``prices`` and ``book``
streams, and a fan-out that never waits for any of them.

Whoever learns of market changes publishes here — the ``StreamTap`` on the feed's thread in
one process, or the Redis reader in a web worker of the several-process mode:

- ``publish_trades``: appended to the symbol's recent ring (at most ``ring_trades`` trades)
  and offered to every trades subscriber's bounded queue; a full queue cuts that client.
- ``publish_prices`` / ``publish_book``: replace the latest value; each client's sender
  sends at most one message per ``coalesce_s`` (the newest), so these never queue.

``subscribe_trades(symbol, from_id=N)`` registers the client and reads the ring after N in
one step under the hub's lock, so the ring part and the live part neither overlap nor leave
a hole; trades older than the ring come from the archives (trade window, history), in that
order, each filling what is still missing below the oldest id found so far.

Thread safety: one lock guards the rings and subscriber sets; each subscription has its own
condition. A stalled client (blocked in a send for ``stall_s``) is aborted by the reaper.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass

from services.market.views import BookView, TradeView
from services.push.archive import TradeArchive
from services.push.messages import (
    Prices,
    book_message,
    chunks,
    concat,
    prices_message,
    slice_after,
    trades_message,
)
from services.push.poller import Poller
from services.push.subscription import Latest, Queue, Subscription

STREAMS = ("trades", "prices", "book")


class TradeBatch:
    """Trades handed over together, encoded once (lazily) for all subscribers."""

    __slots__ = ("_encoded", "first_id", "last_id", "replay", "trades")

    def __init__(self, trades: TradeView, replay: bool = False) -> None:
        self.trades = trades
        self.replay = replay
        self.first_id = int(trades.trade_id[0])
        self.last_id = int(trades.trade_id[-1])
        self._encoded: bytes | None = None

    def encoded(self, after_id: int | None = None) -> bytes | None:
        """The ``trades`` message of the batch's trades above ``after_id`` (None: all);
        None when none is above it."""
        if after_id is not None and after_id >= self.first_id:
            if after_id >= self.last_id:
                return None
            return trades_message(slice_after(self.trades, after_id), self.replay)
        if self._encoded is None:
            self._encoded = trades_message(self.trades, self.replay)
        return self._encoded


class BookState:
    """A published book and its messages per requested depth and band (each encoded once)."""

    __slots__ = ("_by_levels", "book")

    def __init__(self, book: BookView) -> None:
        self.book = book
        self._by_levels: dict[tuple[int, int | None], bytes] = {}

    def message(self, levels: int, band_bps: int | None = None) -> bytes:
        key = (levels, band_bps)
        found = self._by_levels.get(key)
        if found is None:
            found = self._by_levels[key] = book_message(self.book, levels, band_bps)
        return found


@dataclass(frozen=True, slots=True)
class HubStats:
    """Subscribers now open per stream; messages published and sent; clients cut as slow
    (``cut``) and aborted after a stalled send (``aborted``) since start."""

    subscribers: dict[str, int]
    symbols: list[str]
    trades_published: int
    messages_sent: int
    cut: int
    aborted: int


class PushHub:
    """Fan-out of one process's market changes to its WebSocket clients."""

    def __init__(
        self,
        archives: Sequence[TradeArchive] = (),
        *,
        ring_trades: int = 50_000,
        max_queue: int = 1024,
        coalesce_s: float = 0.1,
        stall_s: float = 10.0,
    ) -> None:
        self.archives = list(archives)
        self.ring_trades = ring_trades
        self.max_queue = max_queue
        self.coalesce_s = coalesce_s
        self.stall_s = stall_s
        self._lock = threading.Lock()
        self._rings: dict[str, deque[TradeBatch]] = defaultdict(deque)
        self._ring_sizes: dict[str, int] = defaultdict(int)
        self._subs: dict[str, dict[str, set[Subscription]]] = {
            stream: defaultdict(set) for stream in STREAMS
        }
        self._prices: dict[str, Prices | bytes] = {}
        self._books: dict[str, BookState] = {}
        self._trades_published = 0
        self._sent_closed = 0
        self._cut = 0
        self._aborted = 0
        self._reaper = Poller(
            "tapescope-push-reaper",
            lambda: self.reap_stalled(time.monotonic()),
            min(1.0, stall_s / 4),
        )

    # -- publishing ---------------------------------------------------------------------

    def publish_trades(self, symbol: str, trades: TradeView) -> None:
        """New trades of ``symbol`` (ids ascending, above every id published before)."""
        if not len(trades):
            return
        batch = TradeBatch(trades)
        with self._lock:
            ring = self._rings[symbol]
            ring.append(batch)
            self._ring_sizes[symbol] += len(trades)
            while self._ring_sizes[symbol] - len(ring[0].trades) >= self.ring_trades:
                self._ring_sizes[symbol] -= len(ring.popleft().trades)
            self._trades_published += len(trades)
            subs = list(self._subs["trades"].get(symbol, ()))
        for sub in subs:
            if not sub.offer(batch):  # type: ignore[attr-defined]
                self._drop_if_cut("trades", symbol, sub)

    def publish_prices(self, prices: Prices | bytes, symbol: str | None = None) -> None:
        """The latest prices of a symbol: a ``Prices`` (encoded once, and only when someone
        listens) or an encoded ``prices`` message of ``symbol``; coalesced per client."""
        name = prices.symbol if isinstance(prices, Prices) else symbol
        assert name is not None, "an encoded prices message needs its symbol"
        with self._lock:
            self._prices[name] = prices
            subs = list(self._subs["prices"].get(name, ()))
        if not subs:
            return
        message = prices_message(prices) if isinstance(prices, Prices) else prices
        for sub in subs:
            sub.offer(message)  # type: ignore[attr-defined]

    def publish_book(self, book: BookView) -> None:
        """The latest book of a symbol (encoded per depth asked for, coalesced per client)."""
        state = BookState(book)
        with self._lock:
            self._books[book.symbol] = state
            subs = list(self._subs["book"].get(book.symbol, ()))
        for sub in subs:
            sub.offer(state)  # type: ignore[attr-defined]

    def last_trade_id(self, symbol: str) -> int | None:
        """The newest trade id published for ``symbol`` (None before any)."""
        with self._lock:
            ring = self._rings.get(symbol)
            return ring[-1].last_id if ring else None

    # -- subscribing ----------------------------------------------------------------------

    def subscribe_trades(self, symbol: str, from_id: int | None = None) -> Queue[TradeBatch]:
        """A trades subscription: with ``from_id``, the trades after it first (archives,
        then the ring), then every live trade; without, live trades only."""
        with self._lock:
            ring = list(self._rings.get(symbol, ()))
            sub: Queue[TradeBatch] = Queue(self.max_queue)
            self._subs["trades"][symbol].add(sub)
        if from_id is None:
            return sub
        recent = [b for b in ring if b.last_id > from_id]
        oldest = recent[0].first_id if recent else None
        older = self._from_archives(symbol, from_id, oldest)
        if recent:  # the ring's batches, joined and re-cut as replay messages
            joined = slice_after(concat([b.trades for b in recent]), from_id)
            older += chunks(joined)
        sub.prepend([TradeBatch(part, replay=True) for part in older])
        return sub

    def _from_archives(self, symbol: str, after_id: int, before_id: int | None) -> list[TradeView]:
        """Trades in (after_id, before_id) from the archives, freshest first, each filling
        below what the previous found; cut in messages of ``REPLAY_CHUNK``."""
        parts: list[TradeView] = []
        upper = before_id
        for archive in self.archives:
            if upper is not None and upper <= after_id + 1:
                break
            found = archive.trades_between(symbol, after_id, upper)
            if len(found):
                parts.insert(0, found)
                upper = int(found.trade_id[0])
        return [chunk for part in parts for chunk in chunks(part)]

    def subscribe_prices(self, symbol: str) -> Latest[bytes]:
        """The latest ``prices`` message of ``symbol`` (the current one first, if any)."""
        with self._lock:
            latest = self._prices.get(symbol)
            if isinstance(latest, Prices):
                latest = prices_message(latest)
            sub: Latest[bytes] = Latest(latest)
            self._subs["prices"][symbol].add(sub)
        return sub

    def subscribe_book(self, symbol: str) -> Latest[BookState]:
        """The latest book of ``symbol`` (the current one first, if any)."""
        with self._lock:
            sub: Latest[BookState] = Latest(self._books.get(symbol))
            self._subs["book"][symbol].add(sub)
        return sub

    def unsubscribe(self, stream: str, symbol: str, sub: Subscription) -> None:
        """The client of ``sub`` is gone."""
        sub.close()
        with self._lock:
            subs = self._subs[stream].get(symbol)
            if subs is not None and sub in subs:
                subs.discard(sub)
                self._sent_closed += sub.sent
                if not subs:
                    del self._subs[stream][symbol]

    def _drop_if_cut(self, stream: str, symbol: str, sub: Subscription) -> None:
        if sub.cut_reason is None:
            return
        with self._lock:
            subs = self._subs[stream].get(symbol)
            if subs is None or sub not in subs:
                return
            subs.discard(sub)
            self._cut += 1

    def disconnect_all(self, reason: str) -> int:
        """Cut every subscription with ``reason`` (their senders close them); how many."""
        subs = self._every_subscription()
        for stream, symbol, sub in subs:
            sub.cut(reason)
            self.unsubscribe(stream, symbol, sub)
        return len(subs)

    def _every_subscription(self) -> list[tuple[str, str, Subscription]]:
        """(stream, symbol, subscription) of every open subscription, taken under the lock."""
        with self._lock:
            return [
                (stream, symbol, sub)
                for stream, by in self._subs.items()
                for symbol, group in by.items()
                for sub in group
            ]

    def watched(self) -> set[str]:
        """Symbols with at least one subscriber on any stream."""
        with self._lock:
            return {s for by_symbol in self._subs.values() for s, subs in by_symbol.items() if subs}

    def watched_on(self, stream: str) -> set[str]:
        """Symbols with at least one subscriber on ``stream``."""
        with self._lock:
            return {s for s, subs in self._subs[stream].items() if subs}

    def stats(self) -> HubStats:
        with self._lock:
            counts = {stream: sum(map(len, self._subs[stream].values())) for stream in STREAMS}
            sent = self._sent_closed + sum(
                sub.sent for by in self._subs.values() for subs in by.values() for sub in subs
            )
            symbols = sorted({s for by in self._subs.values() for s in by})
            return HubStats(
                subscribers=counts,
                symbols=symbols,
                trades_published=self._trades_published,
                messages_sent=sent,
                cut=self._cut,
                aborted=self._aborted,
            )

    # -- stalled clients ------------------------------------------------------------------

    def start_reaper(self) -> None:
        """Check for stalled clients in a daemon thread (once; ``stop_reaper`` ends it)."""
        self._reaper.start()

    def stop_reaper(self) -> None:
        self._reaper.stop()

    def reap_stalled(self, now: float) -> int:
        """Abort clients blocked in one send for ``stall_s`` or more; how many."""
        aborted = 0
        for stream, symbol, sub in self._every_subscription():
            since = sub.sending_since
            if since is not None and now - since >= self.stall_s and sub.abort is not None:
                sub.cut(f"slow consumer: a send was blocked for {self.stall_s:g} s")
                sub.abort()
                self.unsubscribe(stream, symbol, sub)
                aborted += 1
        with self._lock:
            self._aborted += aborted
        return aborted
