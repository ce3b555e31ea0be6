"""The push streams across processes, over Redis Streams (beside ``redis_store``).

The ingest worker's ``RedisPushWriter`` (a sink of ``StreamTap``) appends:

- trades to ``tapescope:push:{sNNN}:<SYMBOL>:trades``, one entry per batch whose entry id
  is ``<last trade id>-0``: ids grow with trade ids, so a reader's cursor *is* a trade id
  and ``XREAD`` after ``N-0`` returns exactly the batches holding trades after N;
- prices to ``tapescope:push:{sNNN}:<SYMBOL>:prices`` (the encoded ``prices`` message);
- alert events to ``tapescope:push:alerts`` (``RedisEventSink.publish``).

``{sNNN}`` is the hash tag of the symbol's shard (``services.cluster.shards``): on a Redis
Cluster a symbol's streams live in one slot, beside its store keys.

Each stream is capped with ``XADD ... MAXLEN ~`` (trades: ``TRADE_ENTRIES`` batches). The
writer works from its own thread and queue, so the feed never waits for Redis; while Redis
is down it keeps what it could not write (up to ``max_pending`` batches, then the oldest
are dropped and counted) and writes it once Redis answers again. Trades at or below the
stream's newest id (a restarted worker's warm-up) are not written twice.

Each web worker's ``RedisPushReader`` reads, with ``XREAD BLOCK``, every symbol any of its
clients has watched, from its own cursors, and publishes to its local ``PushHub`` /
``EventHub``. It is a reader of streams, not a pub/sub subscriber: after a lost Redis
connection it resumes from its cursors and loses nothing still retained.

Single Redis or Redis Cluster is detected from the URL (``services.redis_connection``),
the same code runs on both. On a cluster one ``XREAD`` may only name keys of one slot
(CROSSSLOT otherwise), so the reader groups its cursors by slot (``slot_groups``) and each
group blocks in its own ``XREAD`` on the node serving that slot, in a thread of its own.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

import numpy as np
import orjson
import redis
import redis.cluster
from redis.crc import key_slot

from services.cluster.shards import shard_of, shard_tag
from services.market.views import TradeView
from services.push.events import EventHub
from services.push.hub import PushHub
from services.push.messages import Prices, prices_message, slice_after
from services.push.poller import Poller
from services.redis_connection import is_cluster, sync_client

log = logging.getLogger(__name__)

PREFIX = "tapescope:push:"
ALERTS_KEY = f"{PREFIX}alerts"
TRADE_ENTRIES = 20_000
PRICE_ENTRIES = 1_000
ALERT_ENTRIES = 1_000
PRIME_ENTRIES = 2_000
"""Trade batches a reader loads when it starts watching a symbol (for resumes)."""
_ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException, OSError)


def key(symbol: str, stream: str) -> str:
    """The Redis key of a symbol's ``trades`` or ``prices`` push stream (hash-tagged with
    the symbol's shard)."""
    return f"{PREFIX}{shard_tag(shard_of(symbol))}:{symbol}:{stream}"


def slot_groups(cursors: Mapping[str, str]) -> list[dict[str, str]]:
    """The cursors split by Redis Cluster hash slot (one ``XREAD`` each), in slot order."""
    groups: dict[int, dict[str, str]] = {}
    for name, cursor in cursors.items():
        groups.setdefault(key_slot(name.encode()), {})[name] = cursor
    return [groups[slot] for slot in sorted(groups)]


def encode_trades(trades: TradeView) -> bytes:
    """A batch as JSON columns: ids, times (ms), prices, quantities, sides (+1/-1)."""
    return orjson.dumps(
        [
            trades.trade_id.tolist(),
            trades.time_ms.tolist(),
            trades.price.tolist(),
            trades.qty.tolist(),
            trades.side.tolist(),
            trades.kind,
        ]
    )


def decode_trades(symbol: str, data: bytes) -> TradeView:
    ids, times, prices, qtys, sides, kind = orjson.loads(data)
    return TradeView(
        symbol=symbol,
        trade_id=np.asarray(ids, dtype=np.int64),
        time_ms=np.asarray(times, dtype=np.int64),
        price=np.asarray(prices, dtype=np.float64),
        qty=np.asarray(qtys, dtype=np.float64),
        side=np.asarray(sides, dtype=np.float64),
        kind=kind,
    )


def _entry_trade_id(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


class RedisPushWriter:
    """Appends trades, prices and events to Redis Streams from a thread of its own."""

    def __init__(self, url: str, max_pending: int = 100_000, retry_s: float = 0.2) -> None:
        self._redis = sync_client(url, socket_timeout_s=2.0)
        self.max_pending = max_pending
        self.retry_s = retry_s
        self._pending: deque[tuple[str, str, object]] = deque()
        self._cond = threading.Condition()
        self._tops: dict[str, int] = {}
        self._latest_prices: dict[str, Prices] = {}
        self._stopped = False
        self._busy = False
        self.dropped = 0
        self.written = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="tapescope-push-writer")
        self._thread.daemon = True
        self._thread.start()

    # -- what the StreamTap (or the alerts room) hands over, on the caller's thread --------

    def publish_trades(self, symbol: str, trades: TradeView) -> None:
        self._put(("trades", symbol, trades))

    def publish_prices(self, prices: Prices) -> None:
        """Only the newest prices of a symbol waiting to be written are written (one entry
        per symbol per write cycle, not one per book change)."""
        with self._cond:
            fresh = prices.symbol not in self._latest_prices
            self._latest_prices[prices.symbol] = prices
            if fresh:
                self._pending.append(("prices", prices.symbol, None))
            self._cond.notify()

    def publish_event(self, event: Mapping[str, object]) -> None:
        self._put(("alert", "", orjson.dumps(dict(event))))

    def _put(self, item: tuple[str, str, object]) -> None:
        with self._cond:
            self._pending.append(item)
            if len(self._pending) > self.max_pending:
                self._pending.popleft()
                self.dropped += 1
            self._cond.notify()

    # -- the writer thread ----------------------------------------------------------------

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything handed over is written (True) or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (self._pending or self._busy) and time.monotonic() < deadline:
                self._cond.wait(0.05)
            return not self._pending and not self._busy

    def close(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=5)
        self._redis.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                batch = [
                    (kind, symbol, self._latest_prices.pop(symbol) if kind == "prices" else data)
                    for kind, symbol, data in self._pending
                    if kind != "prices" or symbol in self._latest_prices
                ]
                self._pending.clear()
                self._busy = True
            try:
                refused = self._write(batch)
            except _ERRORS as exc:
                if isinstance(exc, redis.ResponseError):
                    self._tops.clear()  # re-read each stream's newest id before retrying
                log.warning("push writer: Redis unavailable (%s); keeping %d", exc, len(batch))
                self._keep(batch)
                continue
            if refused:  # only the entries Redis refused are written again
                log.warning("push writer: %d entries refused (%s)", len(refused), refused[0][1])
                self._keep([item for item, _ in refused])
            with self._cond:
                self._busy = False
                self.written += len(batch) - len(refused)
                self._cond.notify_all()

    def _keep(self, batch: list[tuple[str, str, object]]) -> None:
        """Put back what could not be written, and wait ``retry_s``."""
        self.failures += 1
        with self._cond:
            self._busy = False
            self._pending.extendleft(reversed(self._requeued(batch)))
            while len(self._pending) > self.max_pending:
                self._pending.popleft()
                self.dropped += 1
        time.sleep(self.retry_s)

    def _requeued(self, batch: list[tuple[str, str, object]]) -> list[tuple[str, str, object]]:
        """What a failed write puts back (under the lock): everything, except prices a
        newer value of which is already waiting."""
        kept = []
        for kind, symbol, data in batch:
            if kind != "prices":
                kept.append((kind, symbol, data))
            elif symbol not in self._latest_prices:
                self._latest_prices[symbol] = data  # type: ignore[assignment]
                kept.append((kind, symbol, None))
        return kept

    def _write(
        self, batch: list[tuple[str, str, object]]
    ) -> list[tuple[tuple[str, str, object], Exception]]:
        """One pipeline for everything pending; trades at or below a stream's newest id
        are skipped (the stream already has them). Returns the entries Redis refused (e.g.
        a trade batch below a stream's newest id, written meanwhile by a previous owner of
        the symbol) with the reason; the others are written."""
        pipe = self._redis.pipeline(transaction=False)
        tops = dict(self._tops)
        sent: list[tuple[str, str, object]] = []
        for item in batch:
            kind, symbol, payload = item
            sent.append(item)
            if kind == "trades":
                trades: TradeView = payload  # type: ignore[assignment]
                stream = key(symbol, "trades")
                if symbol not in tops:
                    tops[symbol] = self._top(stream)
                trades = slice_after(trades, tops[symbol])
                if not len(trades):
                    sent.pop()
                    continue
                last = int(trades.trade_id[-1])
                pipe.xadd(
                    stream,
                    {"d": encode_trades(trades)},
                    id=f"{last}-0",
                    maxlen=TRADE_ENTRIES,
                    approximate=True,
                )
                tops[symbol] = last
            elif kind == "prices":
                message = prices_message(payload)  # type: ignore[arg-type]
                pipe.xadd(
                    key(symbol, "prices"), {"d": message}, maxlen=PRICE_ENTRIES, approximate=True
                )
            else:
                pipe.xadd(ALERTS_KEY, {"d": payload}, maxlen=ALERT_ENTRIES, approximate=True)
        results = pipe.execute(raise_on_error=False)
        refused = [
            (item, result)
            for item, result in zip(sent, results, strict=True)
            if isinstance(result, Exception)
        ]
        for (_, symbol, _), _ in refused:
            tops.pop(symbol, None)  # re-read that stream's newest id before writing again
        self._tops = tops
        return refused

    def _top(self, stream: str) -> int:
        newest = self._redis.xrevrange(stream, count=1)
        return _entry_trade_id(newest[0][0]) if newest else -1


class RedisEventSink:
    """The ``publish(event)`` seam of the alerts room in the several-process mode."""

    def __init__(self, writer: RedisPushWriter) -> None:
        self.writer = writer

    def publish(self, event: Mapping[str, object]) -> None:
        self.writer.publish_event(event)


class _GroupReader:
    """One group of streams read with ``XREAD BLOCK`` from its own cursors, in a thread of
    its own: every stream of a single Redis, or one cluster slot's."""

    def __init__(
        self,
        name: str,
        read: Callable[[dict[str, str]], list],
        hand_on: Callable[[str, bytes], None],
        retry_s: float,
    ) -> None:
        self._read = read
        self._hand_on = hand_on
        self._cursors: dict[str, str] = {}
        self._lock = threading.Lock()
        self.poller = Poller(name, self.read_once, 0, retry_s=retry_s, errors=_ERRORS)

    def add(self, cursors: Mapping[str, str]) -> None:
        """Read these streams too, after these cursors."""
        with self._lock:
            self._cursors.update(cursors)

    def read_once(self) -> int:
        """One ``XREAD BLOCK``; how many entries were handed on."""
        with self._lock:
            cursors = dict(self._cursors)
        handed = 0
        for stream, entries in self._read(cursors):
            name = stream.decode() if isinstance(stream, bytes) else stream
            for entry_id, fields in entries:
                self._hand_on(name, fields[b"d"])
                with self._lock:
                    self._cursors[name] = entry_id.decode()
                handed += 1
        return handed


class RedisPushReader:
    """Feeds a web worker's hubs from the push streams (see the module docstring).

    A watcher thread (every ``watch_s``) primes each symbol a client starts watching and
    hands its streams to the reader of their group; each group's reader blocks in its own
    ``XREAD`` (one group on a single Redis, one per slot on a cluster, each sent to the
    node serving that slot), so no reader polls.
    """

    def __init__(
        self,
        url: str,
        hub: PushHub,
        events: EventHub,
        block_ms: int = 500,
        retry_s: float = 0.2,
        watch_s: float = 0.05,
    ) -> None:
        self._redis = sync_client(url, socket_timeout_s=block_ms / 1000 + 2.0)
        self._cluster = is_cluster(url)
        self.hub = hub
        self.events = events
        self.block_ms = block_ms
        self.retry_s = retry_s
        self._watched: set[str] = set()
        self._symbols: dict[str, str] = {}
        self._groups: dict[int, _GroupReader] = {}
        self._stopped = False
        self._watcher = Poller(
            "tapescope-push-watcher", self.watch_once, watch_s, retry_s=retry_s, errors=_ERRORS
        )

    @property
    def reconnects(self) -> int:
        """Reads that failed (Redis unavailable) and were retried from the cursors."""
        return self._watcher.failures + sum(g.poller.failures for g in list(self._groups.values()))

    def start(self) -> None:
        self._watcher.start()

    def stop(self) -> None:
        self._stopped = True
        self._watcher.stop()
        for group in list(self._groups.values()):
            group.poller.stop()

    def watch_once(self) -> None:
        """Follow the alert events, and every symbol a client started watching."""
        if not self._groups:
            newest = self._redis.xrevrange(ALERTS_KEY, count=1)
            self._read_from({ALERTS_KEY: newest[0][0].decode() if newest else "0-0"})
        for symbol in self.hub.watched() - self._watched:
            self._read_from(self._watch(symbol))
            self._watched.add(symbol)

    def _read_from(self, cursors: dict[str, str]) -> None:
        """Hand streams (with their cursors) to the reader of their group."""
        for group_cursors in slot_groups(cursors) if self._cluster else [cursors]:
            slot = key_slot(next(iter(group_cursors)).encode()) if self._cluster else 0
            group = self._groups.get(slot)
            if group is None:
                group = _GroupReader(
                    f"tapescope-push-reader-{slot}",
                    lambda c, s=slot: self._xread(s, c),
                    self._hand_on,
                    self.retry_s,
                )
            group.add(group_cursors)
            if slot not in self._groups and not self._stopped:
                self._groups[slot] = group
                group.poller.start()

    def _xread(self, slot: int, cursors: dict[str, str]) -> list:
        """``XREAD BLOCK`` of one group: on a cluster, sent to the node serving its slot
        (after a failure the cluster's layout is read again: a moved slot, a failover)."""
        if not self._cluster:
            return self._redis.xread(cursors, count=1000, block=self.block_ms) or []
        cluster: redis.cluster.RedisCluster = self._redis  # type: ignore[assignment]
        try:
            node = cluster.nodes_manager.get_node_from_slot(slot)
            client = cluster.get_redis_connection(node)
            return client.xread(cursors, count=1000, block=self.block_ms) or []
        except _ERRORS:
            with contextlib.suppress(*_ERRORS):
                cluster.nodes_manager.initialize()
            raise

    def _watch(self, symbol: str) -> dict[str, str]:
        """Load the symbol's recent trades (for resumes) and its latest prices; the cursors
        to read both streams from there."""
        trades, prices = key(symbol, "trades"), key(symbol, "prices")
        self._symbols[trades] = symbol
        self._symbols[prices] = symbol
        cursors = {trades: "0-0", prices: "0-0"}
        recent = self._redis.xrevrange(trades, count=PRIME_ENTRIES)
        for entry_id, fields in reversed(recent):
            self._hand_on(trades, fields[b"d"])
            cursors[trades] = entry_id.decode()
        newest = self._redis.xrevrange(prices, count=1)
        if newest:
            self._hand_on(prices, newest[0][1][b"d"])
            cursors[prices] = newest[0][0].decode()
        return cursors

    def _hand_on(self, stream: str, data: bytes) -> None:
        if stream == ALERTS_KEY:
            self.events.publish(orjson.loads(data))
            return
        symbol = self._symbols[stream]
        if stream.endswith(":prices"):
            self.hub.publish_prices(data, symbol)
            return
        trades = decode_trades(symbol, data)
        last = self.hub.last_trade_id(symbol)
        if last is not None:
            trades = slice_after(trades, last)
        self.hub.publish_trades(symbol, trades)
