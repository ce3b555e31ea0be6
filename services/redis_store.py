"""RedisStore: the MarketStore shared by one ingest worker (the writer) and any number of
stateless web processes (readers).

The same code serves a single Redis and a Redis Cluster (detected from the URL,
``services.redis_connection``): every key of a symbol carries its shard's hash tag
``{sNNN}`` (``services.cluster.shards``), so one server-side script reads or writes a
symbol's keys, its shard's heartbeat and its shard's lease in one slot.

Keys (all under ``tapescope:``):

- ``sym:{sNNN}:SYMBOL``: hash ``seq`` + ``rec`` (``store_codec`` record: header and raw
  float64 book columns), the book's ``update_id`` (highest stored), the writing ``epoch``
  and ``owner`` and the ``last_trade`` id stored, with a TTL so a dead worker's state
  expires.
- ``trades:{sNNN}:SYMBOL:{generation}``: a stream of packed trade blocks, entry ids ``{n}-0``
  numbered by the writer. Each publication appends only the trades that are new since the
  last one; the writer trims the stream to the blocks covering its trade window. Each
  reader keeps its own bounded window and fetches only blocks it has not seen; a reader
  that is too far behind (or sees a new generation) reloads the retained tail.
- ``status``, ``symbols``: the feed status (the latest of any worker's) and the tradable
  symbols; ``{workers}:status``: each worker's own latest status (hash by writer id);
  ``writer:{sNNN}``: the heartbeat ``{writer id}|{time}`` of the worker writing the shard,
  refreshed with every status it publishes.
- ``requests``: hash symbol -> time of the latest UI request (on-demand symbols).
- ``{watchlist}:boards`` / ``{watchlist}:at``: each worker's market board (hash by writer
  id, ``services.cluster.boards``) and when it was published (sorted set); merged on read,
  so with sharded workers every symbol's book columns come from the worker that owns it.
  ``{watchlist}:dropped``: when a silent worker's board was last removed (by a reader).

Fencing (sharded workers, ``fence_with``): every write carries the writer's lease on the
symbol's shard; the write script refuses it (``refused``, logged) unless that lease is still
the shard's lease at that epoch and no higher epoch has written (the fence), and refuses a
book update id below the stored one; record, trade blocks and fence move in that one
script, which writes a publication round's symbols of one shard in one atomic call. A
symbol whose shard the writer does not hold is not written at all.

Staleness: every record carries ``published_at``. A reader also checks the heartbeat: when
no writer is alive, the record came from a previous writer, or another worker holds the
shard's lease, the book is handed out as STALE, never as LIVE. ``owner(symbol)`` tells
which worker holds the symbol's shard and since when. Published ``seq`` values start from
the writer's start time in microseconds, so they keep increasing across worker restarts and
per-(symbol, seq) caches never mix two workers' data.

Failures: a Redis error never reaches the caller. A reader gets the book it read last,
STALE with the store's error as its reason, or ``None`` when it read none, and
``unavailable(symbol)`` then says why (a STORE_DOWN status for the feed): a book that cannot
be read is unavailable, never absent. The writer drops that publication. Both retry after a
short, growing backoff, kept per node on a Redis Cluster, so a killed master holds back only
its own books until its replica is promoted. Both recover by themselves. After a failed
write the writer starts new trade generations, so readers reload complete windows. Scripts
are loaded lazily on each node (``services.redis_scripts``), so a process started during a
failover runs them on the live masters. Calls wait out a cluster that refuses commands
mid-failover for a bounded time (``services.redis_connection.riding_cluster_down``).
``health()`` tells ``/healthz`` how the store is reached.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np
import redis
from redis.cluster import RedisCluster
from redis.commands.core import Script

from services import store_codec as codec
from services.cluster.boards import (
    PublishedBoard,
    StampedRow,
    decode_board,
    encode_board,
    merge_boards,
    stamp_rows,
)
from services.cluster.leases import Lease, parse_lease
from services.cluster.shards import fence_key, lease_key, shard_of, shard_tag
from services.market.market_board import WatchlistRows
from services.market.trade_columns import TradeColumns
from services.market.views import SymbolInfo, SyncState, TradeView
from services.redis_connection import riding_cluster_down, sync_client
from services.redis_scripts import NodeScript
from services.store import FeedStatus, SymbolSnapshot

log = logging.getLogger(__name__)

PREFIX = "tapescope:"
SYMBOL_RE = re.compile(r"^[A-Z0-9_]{2,32}$")
BLOCK_TRADES = 16_384
_ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException, OSError)
T = TypeVar("T")

_SNAPSHOT_SCRIPT = """
local seq = redis.call('HGET', KEYS[1], 'seq') or ''
local beat = redis.call('GET', KEYS[2]) or ''
local lease = redis.call('GET', KEYS[3]) or ''
if seq == '' or seq == ARGV[1] then return {seq, beat, lease} end
return {seq, beat, lease, redis.call('HGET', KEYS[1], 'rec')}
"""

# One call writes a round's symbols of one shard. KEYS: the shard's lease, fence and
# heartbeat, then (record, trade stream) per symbol. ARGV: owner, epoch ('' = unfenced),
# ttl_ms, heartbeat, then per symbol: 'update_id|seq|trim min id|last trade id|n' (trim
# and last trade '' = none; n new blocks), the record, then n (entry id, block) pairs
# (one packed head a symbol: every argument costs the writer's client a packing step).
# Every write is
# checked (the lease and fence once, all of them in this one atomic step; the update id
# per symbol). Returns per symbol the stream's length before the write, or -1 (BACKWARDS:
# a stored update id above this one) or -2 (FENCED: not this writer's lease at that epoch,
# or a higher epoch wrote), then the lease and fence read.
_WRITE_SCRIPT = """
local owner, epoch, ttl = ARGV[1], ARGV[2], ARGV[3]
local fenced, lease, fence = false, '', 0
if epoch ~= '' then
  lease = redis.call('GET', KEYS[1]) or ''
  fence = tonumber(redis.call('GET', KEYS[2]) or '0')
  local mine = owner .. '|' .. epoch .. '|'
  fenced = string.sub(lease, 1, #mine) ~= mine or tonumber(epoch) < fence
end
local out, a, written = {}, 5, false
for k = 4, #KEYS, 2 do
  local sym, trades = KEYS[k], KEYS[k + 1]
  local id, seq, trim, last, n = string.match(ARGV[a], '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$')
  local uid, blocks = tonumber(id), tonumber(n)
  local stored = tonumber(redis.call('HGET', sym, 'update_id') or '0')
  if fenced then
    out[#out + 1] = -2
  elseif epoch ~= '' and uid > 0 and stored > uid then
    out[#out + 1] = -1
  else
    if epoch ~= '' and tonumber(epoch) > fence then
      redis.call('SET', KEYS[2], epoch)
      fence = tonumber(epoch)
    end
    out[#out + 1] = redis.call('XLEN', trades)
    for i = a + 2, a + 2 * blocks, 2 do
      redis.call('XADD', trades, ARGV[i], 'd', ARGV[i + 1])
    end
    if trim ~= '' then redis.call('XTRIM', trades, 'MINID', trim) end
    redis.call('PEXPIRE', trades, ttl)
    redis.call('HSET', sym, 'seq', seq, 'rec', ARGV[a + 1], 'epoch', epoch, 'owner', owner)
    if epoch == '' or uid > stored then redis.call('HSET', sym, 'update_id', id) end
    if last ~= '' then redis.call('HSET', sym, 'last_trade', last) end
    redis.call('PEXPIRE', sym, ttl)
    written = true
  end
  a = a + 2 + 2 * blocks
end
if written then redis.call('SET', KEYS[3], ARGV[4], 'PX', ttl) end
out[#out + 1] = lease
out[#out + 1] = tostring(fence)
return out
"""


# KEYS: shard heartbeat, lease, fence. ARGV: owner, epoch ('' = unfenced), heartbeat,
# ttl_ms. The status round's heartbeat of a shard, fenced as a write is: a worker that
# lost the shard (paused past its lease) must not re-beat it over its new holder's.
_BEAT_SCRIPT = """
local epoch = ARGV[2]
if epoch ~= '' then
  local lease = redis.call('GET', KEYS[2])
  local mine = ARGV[1] .. '|' .. epoch .. '|'
  local fence = tonumber(redis.call('GET', KEYS[3]) or '0')
  if not lease or string.sub(lease, 1, #mine) ~= mine or tonumber(epoch) < fence then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
return 1
"""

# KEYS: boards, their publication times, dropped. ARGV: stale before (s), now (µs), ttl_ms.
# Removes the boards published before ARGV[1]; returns {HGETALL boards, dropped}.
_BOARDS_SCRIPT = """
local stale = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1])
if #stale > 0 then
  redis.call('HDEL', KEYS[1], unpack(stale))
  redis.call('ZREM', KEYS[2], unpack(stale))
  redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
end
return {redis.call('HGETALL', KEYS[1]), redis.call('GET', KEYS[3]) or ''}
"""
CLUSTER_RETRIES = 1
"""How many times a command is sent again after the cluster's layout was read again (a
promoted replica is found on the first): a call blocks at most about two socket timeouts on
a silent node, and rides out CLUSTERDOWN for at most ``CLUSTER_DOWN_WAIT_S``
(``services.redis_connection``); the node's backoff (``Availability``) spaces the next
attempts."""
STATUS_KEY = f"{PREFIX}status"
SYMBOLS_KEY = f"{PREFIX}symbols"
REQUESTS_KEY = f"{PREFIX}requests"
_UNREAD = object()
"""A read that failed (``RedisStore._call``'s fallback)."""

_FENCED = -2
BOARDS_KEY = f"{PREFIX}{{watchlist}}:boards"
BOARD_TIMES_KEY = f"{PREFIX}{{watchlist}}:at"
BOARDS_DROPPED_KEY = f"{PREFIX}{{watchlist}}:dropped"
WORKER_STATUS_KEY = f"{PREFIX}{{workers}}:status"


def sym_key(symbol: str, tag: str | None = None) -> str:
    """The symbol's record (hash-tagged with its shard; ``tag``: its ``shard_tag``, when
    the caller has it)."""
    return f"{PREFIX}sym:{tag or shard_tag(shard_of(symbol))}:{symbol}"


def trades_key(symbol: str, generation: str, tag: str | None = None) -> str:
    """One generation of the symbol's trade stream (same slot as its record)."""
    return f"{PREFIX}trades:{tag or shard_tag(shard_of(symbol))}:{symbol}:{generation}"


def beat_key(shard: int) -> str:
    """The heartbeat of the worker writing ``shard``."""
    return f"{PREFIX}writer:{shard_tag(shard)}"


def _marked_stale(snapshot: SymbolSnapshot, reason: str) -> SymbolSnapshot:
    """``snapshot`` with its book STALE for ``reason`` (unless it is already)."""
    if snapshot.book.sync_state is SyncState.STALE:
        return snapshot
    book = replace(snapshot.book, sync_state=SyncState.STALE, resync_reason=reason)
    return replace(snapshot, book=book)


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
    blocks: deque[tuple[int, int]] = field(default_factory=deque)  # (number, trades)
    retained: int = 0  # trades in ``blocks``
    written: bool = False
    published_at: float = 0.0
    epoch: int = 0
    first_trade_id: int | None = None


@dataclass(slots=True)
class _PendingWrite:
    """One symbol's part of its shard's write script call (``keys``: record and trade
    stream; ``args``: the packed head — update id, seq, trim, last trade, blocks — the
    record and the new blocks), prepared, and what its stream state becomes when Redis
    accepts it (``added`` blocks appended, the ``dropped`` oldest ones trimmed)."""

    symbol: str
    shard: int
    epoch: str
    state: _StreamState
    keys: tuple[str, str]
    args: list[bytes | str]
    block: int
    added: list[tuple[int, int]]
    dropped: int
    retained: int
    newest: int | None
    oldest: int | None


@dataclass(slots=True)
class _NodeUnreachable:
    """A write whose node could not be reached (the write may or may not have landed:
    the symbol's stream starts a new generation on its next write)."""

    error: BaseException


class TradeWindow(TradeColumns):
    """A reader's copy of one symbol's trade window, rebuilt from stream blocks (appended
    into spare capacity: views handed out earlier are never written again)."""

    __slots__ = ("generation", "last_block")

    def __init__(self, generation: str) -> None:
        super().__init__(spare_ratio=1.0, min_spare=1024)
        self.generation = generation
        self.last_block = 0


@dataclass(slots=True)
class _Cached:
    """A reader's last read of a symbol: as published, and as handed out (liveness
    applied)."""

    seq: str
    snapshot: SymbolSnapshot
    shown: SymbolSnapshot
    writer: str
    checked_at: float
    owner: tuple[str, float] | None = None


class RedisStore:
    """MarketStore over Redis. One instance is either the writer (the worker's feed) or a
    reader (a web process); both sides are thread-safe.

    ttl_s: lifetime of per-symbol state, status and heartbeat without a refresh.
    stale_after_s: a heartbeat older than this means no live writer.
    poll_s: readers reuse what they read for this long (callbacks of one refresh share it).
    max_catchup_blocks: a reader further behind than this reloads the retained tail.
    writer_id: the writer's name in records, heartbeats and (sharded) its lease token
        (default: pid and a random suffix).
    board_cache_s: readers reuse a merged watchlist this long (workers publish their
        boards every second; decoding and merging 1,500 rows a worker costs milliseconds).
    handover_grace_s: for this long after a shard was taken, a record its previous holder
        wrote just before is shown as it is (a planned hand-over), not STALE.

    ``writes`` counts the symbol writes sent (in script calls Redis ran, accepted or
    refused); ``refused`` the refused ones by reason.
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
        writer_id: str | None = None,
        board_cache_s: float = 0.5,
        handover_grace_s: float = 1.0,
    ) -> None:
        self.url = url
        self._redis = sync_client(url, socket_timeout_s, cluster_retries=CLUSTER_RETRIES)
        self._ttl_ms = int(ttl_s * 1000)
        self._stale_after_s = stale_after_s
        self._poll_s = poll_s
        self._max_catchup = max_catchup_blocks
        self._snapshot_script = NodeScript(self._redis, _SNAPSHOT_SCRIPT)
        self._write_script = NodeScript(self._redis, _WRITE_SCRIPT)
        self._beat_script = NodeScript(self._redis, _BEAT_SCRIPT)
        self._boards_script = NodeScript(self._redis, _BOARDS_SCRIPT)
        self._board_rows: dict[str, StampedRow] = {}
        self._board_stamp = 0
        self._board_cache_s = board_cache_s
        self._handover_grace_s = handover_grace_s
        self._merged_board: tuple[float, WatchlistRows] = (-board_cache_s, WatchlistRows())
        self._leases: Callable[[str], Lease | None] | None = None
        self.refused: dict[str, int] = {"FENCED": 0, "BACKWARDS": 0}
        self.availability = Availability()
        # On a cluster a status round touching a node that is down (its keys' TTLs)
        # backs off the rounds only, not every book's writes.
        clustered = isinstance(self._redis, RedisCluster)
        self._status_round = Availability() if clustered else self.availability
        self._nodes: dict[str, Availability] = {}
        self.writer_id = writer_id or f"{os.getpid()}-{secrets.token_hex(4)}"
        self._seq_base = time.time_ns() // 1000
        self._generations = 0
        self._streams: dict[str, _StreamState] = {}
        self._write_lock = threading.Lock()
        self.writes = 0
        self._candles = codec.CandleRows()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._cache: dict[str, _Cached] = {}
        self._unread: dict[str, str] = {}
        self._windows: dict[str, TradeWindow] = {}
        self._status_cache: tuple[float, FeedStatus | None] = (0.0, None)
        self._symbols_cache: tuple[float, list[SymbolInfo]] = (0.0, [])
        self._requests_cache: dict[str, float] = {}

    # -- writer ---------------------------------------------------------------------------

    def publish(self, snapshot: SymbolSnapshot) -> None:
        """Store a symbol's snapshot and append its new trades to the symbol's stream."""
        self.publish_many([snapshot])

    def publish_many(self, snapshots: Sequence[SymbolSnapshot]) -> None:
        """Store several symbols' snapshots in one pipeline: one round trip per Redis node
        instead of one per symbol, and one fenced script call per shard for the symbols
        of that shard (a worker streaming the whole market publishes hundreds of symbols
        a round over 64 shards). Every write is still checked (lease and fence, update
        id), so one refused write leaves the others; a call Redis answered with an error
        (e.g. a script not yet loaded on a promoted replica) is made again alone."""
        for snapshot in snapshots:
            if not valid_symbol(snapshot.symbol):
                raise ValueError(f"invalid symbol {snapshot.symbol!r}")
        if not snapshots or not self.availability.ready():
            return
        with self._write_lock:
            writes = [
                w
                for s in snapshots
                if self._node_availability(sym_key(s.symbol)).ready()
                and (w := self._prepare_write(s)) is not None
            ]
            if not writes:
                return
            try:
                groups = self._shard_calls(writes)
                calls = [call for call, _ in groups]
                replies = self._pipelined(self._write_script, calls)
                unreached = self._settle_replies(groups, replies)
            except _ERRORS as exc:
                self._streams = {s: _StreamState() for s in self._streams}
                self.availability.failed(exc)
                return
            self.writes += len(writes)
        if not unreached:
            self.availability.succeeded()

    def _shard_calls(
        self, writes: list[_PendingWrite]
    ) -> list[tuple[tuple[list[str], list[bytes | str]], list[_PendingWrite]]]:
        """The writes grouped into one script call per shard (and lease epoch): its keys
        and arguments, and the writes it carries in order."""
        grouped: dict[tuple[int, str], list[_PendingWrite]] = {}
        for write in writes:
            grouped.setdefault((write.shard, write.epoch), []).append(write)
        heartbeat = f"{self.writer_id}|{time.time()!r}"
        ttl = str(self._ttl_ms)
        calls = []
        for (shard, epoch), members in grouped.items():
            keys = [lease_key(shard), fence_key(shard), beat_key(shard)]
            args: list[bytes | str] = [self.writer_id, epoch, ttl, heartbeat]
            for write in members:
                keys += write.keys
                args += write.args
            calls.append(((keys, args), members))
        return calls

    def _settle_replies(
        self,
        groups: list[tuple[tuple[list[str], list[bytes | str]], list[_PendingWrite]]],
        replies: list[object],
    ) -> bool:
        """Settle every write with its part of its shard's reply; whether a node could not
        be reached (its writes' symbols start new stream generations)."""
        unreached = False
        for (_, writes), reply in zip(groups, replies, strict=True):
            if isinstance(reply, _NodeUnreachable):
                for write in writes:
                    self._streams[write.symbol] = _StreamState()
                unreached = True
            elif isinstance(reply, Exception):
                raise reply
            else:
                assert isinstance(reply, list | tuple) and len(reply) == len(writes) + 2
                lease, fence = reply[-2:]
                for write, result in zip(writes, reply, strict=False):
                    self._settle_write(write, int(result), lease, fence)
        return unreached

    def _pipelined(
        self, script: Script, calls: Sequence[tuple[list[str], list[bytes | str]]]
    ) -> list[object]:
        """``script`` for every (keys, args) call, one pipeline per Redis node (a
        cluster's own pipeline refuses scripts): the replies in order, and
        ``_NodeUnreachable`` for every call of a node that could not be reached. A call
        Redis answered with an error (a MOVED slot, a script not yet loaded on a promoted
        replica) is run again alone, through the client's routing, once every node's
        pipeline has run (an error then raises). Any other error comes back as its
        exception.

        These pipelines go to a node's own client, past the cluster client's routing,
        which is what re-reads the cluster's layout after a connection error: an
        unreachable node (a killed master) makes it read again here, or every later
        round would go on sending its slots to the dead node, never to the promoted
        replica. The other nodes' writes stand; the unreachable node's availability
        backs off (``_node_availability``)."""
        client = self._redis
        groups: dict[str, tuple[redis.Redis, list[int]]] = {}
        if isinstance(client, RedisCluster):
            for index, (keys, _) in enumerate(calls):
                node = client.nodes_manager.get_node_from_slot(client.keyslot(keys[0]))
                groups.setdefault(node.name, (client.get_redis_connection(node), []))
                groups[node.name][1].append(index)
        else:
            groups[""] = (client, list(range(len(calls))))
        replies: list[object] = [None] * len(calls)
        for name, (connection, indices) in groups.items():
            availability = self._nodes.setdefault(name, Availability()) if name else None
            pipe = connection.pipeline(transaction=False)
            for index in indices:
                keys, args = calls[index]
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            try:
                answers = pipe.execute(raise_on_error=False)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                if isinstance(client, RedisCluster):
                    with contextlib.suppress(*_ERRORS):
                        client.nodes_manager.initialize(last_failed_node_name=name)
                (availability or self.availability).failed(exc)
                answers = [_NodeUnreachable(exc)] * len(indices)
            else:
                if availability is not None:
                    availability.succeeded()
            for index, reply in zip(indices, answers, strict=True):
                replies[index] = reply
        for index, reply in enumerate(replies):
            if isinstance(reply, redis.ResponseError):
                keys, args = calls[index]
                replies[index] = script(keys=keys, args=args)
        return replies

    def fence_with(self, leases: Callable[[str], Lease | None]) -> None:
        """Fence every write with ``leases(symbol)``: the writer's lease on the symbol's
        shard, or None when it does not hold it (nothing is written then)."""
        self._leases = leases

    def _prepare_write(self, snapshot: SymbolSnapshot) -> _PendingWrite | None:
        """The write script's keys and arguments for ``snapshot`` (None when the symbol's
        shard is not this writer's): its new trade blocks, record and fencing lease. A
        symbol's stream starts a new generation here when its trades went backwards or
        gained older ones."""
        symbol = snapshot.symbol
        lease = None
        if self._leases is not None:
            lease = self._leases(symbol)
            if lease is None:
                return None
        state = self._streams.get(symbol)
        if state is None:
            state = self._streams[symbol] = _StreamState()
        if lease is not None and state.epoch != lease.epoch:
            # A new claim of the shard: others may have written since, start over.
            state = self._streams[symbol] = _StreamState(epoch=lease.epoch)
        trades = snapshot.trades
        ids = trades.trade_id
        newest = int(ids[-1]) if len(trades) else None
        oldest = int(ids[0]) if len(trades) else None
        if (
            not state.generation
            or (
                newest is not None
                and state.last_trade_id is not None
                and newest < state.last_trade_id
            )
            or (
                # older trades merged in (a REST warm-up) after the first publication
                oldest is not None
                and state.first_trade_id is not None
                and oldest < state.first_trade_id
            )
        ):
            self._generations += 1
            state.generation = f"{self.writer_id}.{self._generations}"
            state.block, state.last_trade_id, state.written = 0, None, False
            state.first_trade_id = None
            state.blocks.clear()
            state.retained = 0
        start = 0
        if state.last_trade_id is not None:
            start = int(np.searchsorted(ids, state.last_trade_id, side="right"))
        block = state.block
        entries: list[bytes | str] = []
        added: list[tuple[int, int]] = []
        for lo in range(start, len(trades), BLOCK_TRADES):
            hi = min(lo + BLOCK_TRADES, len(trades))
            block += 1
            entries += [f"{block}-0", codec.encode_trades(trades, lo, hi)]
            added.append((block, hi - lo))
        # The oldest blocks no longer needed for the window are dropped (counted from the
        # oldest, so a stream of many small blocks costs what is dropped, not its length).
        retained = state.retained + sum(count for _, count in added)
        dropped, first = 0, None
        for number, count in itertools.chain(state.blocks, added):
            if retained - count < len(trades):
                first = number
                break
            retained -= count
            dropped += 1
        pointer = codec.TradePointer(state.generation, block, len(trades))
        seq = self._seq_base + snapshot.seq
        record = codec.encode_record(snapshot, pointer, self.writer_id, seq, self._candles)
        shard = shard_of(symbol)
        tag = shard_tag(shard)
        keys = (sym_key(symbol, tag), trades_key(symbol, state.generation, tag))
        trim = "" if first is None else f"{first}-0"
        last = "" if newest is None else newest
        head = f"{snapshot.book.last_update_id}|{seq}|{trim}|{last}|{len(added)}"
        args: list[bytes | str] = [head, record, *entries]
        epoch = "" if lease is None else str(lease.epoch)
        return _PendingWrite(
            symbol, shard, epoch, state, keys, args, block, added, dropped, retained, newest, oldest
        )

    def _settle_write(
        self, write: _PendingWrite, length: int, lease: object, fence: object
    ) -> None:
        """Take the write script's answer for one symbol (its stream's length before the
        write, or -1/-2 when refused, and the shard's lease and fence as read): count and
        log a refusal, else move the symbol's stream state on to what was written."""
        if length < 0:
            result = "FENCED" if length == _FENCED else "BACKWARDS"
            self.refused[result] += 1
            log.warning(
                "write refused (%s): %s at update id %s, epoch %s (lease %s, fence %s)",
                result,
                write.symbol,
                str(write.args[0]).partition("|")[0],
                write.epoch or "-",
                *[(x.decode() if isinstance(x, bytes) else x) for x in (lease, fence)],
            )
            return
        state = write.state
        if state.written and length == 0:
            state.generation = ""
        state.block, state.written, state.retained = write.block, True, write.retained
        state.blocks.extend(write.added)
        for _ in range(write.dropped):
            state.blocks.popleft()
        state.published_at = time.time()
        if write.newest is not None:
            state.last_trade_id = write.newest
        if state.first_trade_id is None:
            state.first_trade_id = write.oldest

    def publish_status(self, status: FeedStatus) -> None:
        """Store the feed status, the writer's heartbeat on the shards it has not written
        lately, and keep recent symbols alive (those not written for a third of their
        TTL: a write renews its own keys and beats its shard, so a worker publishing
        hundreds of symbols does not renew each one every round)."""
        now = time.time()
        ttl_s = self._ttl_ms / 1000
        recent: list[tuple[str, str, float, int, str]] = []  # and shard, lease epoch
        for s, st in list(self._streams.items()):
            if not st.generation or now - st.published_at >= 10 * ttl_s:
                continue
            if (epoch := self._epoch_of(s)) is not None:
                recent.append((s, st.generation, st.published_at, shard_of(s), epoch))
        # A write beats its shard itself (in the fenced script); beating here a shard
        # written within the last moments could overwrite a new holder's beat with this
        # worker's just after a planned hand-over, before it learns the shard is gone.
        stale_s = self._stale_after_s
        written = {shard for _, _, at, shard, _ in recent if now - at < stale_s / 2}
        beats = {shard: epoch for _, _, _, shard, epoch in recent if shard not in written}
        lapsing = [(s, gen) for s, gen, at, _, _ in recent if now - at >= ttl_s / 3]
        heartbeat = f"{self.writer_id}|{now!r}"
        beat_calls = [
            (
                [beat_key(shard), lease_key(shard), fence_key(shard)],
                [self.writer_id, epoch, heartbeat, str(self._ttl_ms)],
            )
            for shard, epoch in sorted(beats.items())
        ]
        data = codec.encode_status(status)

        def write() -> None:
            pipe = self._redis.pipeline(transaction=False)
            pipe.set(f"{PREFIX}status", data, px=self._ttl_ms)
            pipe.hset(WORKER_STATUS_KEY, self.writer_id, data)
            pipe.pexpire(WORKER_STATUS_KEY, self._ttl_ms)
            pipe.pexpire(f"{PREFIX}symbols", self._ttl_ms)
            for symbol, generation in lapsing:
                pipe.pexpire(sym_key(symbol), self._ttl_ms)
                pipe.pexpire(trades_key(symbol, generation), self._ttl_ms)
            pipe.execute()
            self._pipelined(self._beat_script, beat_calls)

        self._call(write, None, self._status_round)

    def _epoch_of(self, symbol: str) -> str | None:
        """The fencing epoch of this writer's lease on ``symbol``'s shard: '' when its
        writes are not fenced, None when it holds no lease on it (nothing to beat)."""
        if self._leases is None:
            return ""
        lease = self._leases(symbol)
        return None if lease is None else str(lease.epoch)

    def publish_symbols(self, infos: list[SymbolInfo]) -> None:
        infos = sorted(infos, key=lambda info: info.symbol)
        data = codec.encode_symbols(infos)
        self._call(
            lambda: self._redis.set(SYMBOLS_KEY, data, px=self._ttl_ms),
            None,
            self._node_availability(SYMBOLS_KEY),
        )

    # -- reader ---------------------------------------------------------------------------

    def snapshot(self, symbol: str) -> SymbolSnapshot | None:
        """The latest snapshot of ``symbol``; ``None`` when there is none, or when the
        Redis node serving it cannot be read and nothing was read before (``unavailable``
        then says why). Its book is STALE when no live writer stands behind it, or when
        the last read book is all there is (its node unreachable, e.g. a killed master
        whose replica is not promoted yet)."""
        if not valid_symbol(symbol):
            return None
        with self._symbol_lock(symbol):
            cached = self._cache.get(symbol)
            now = time.monotonic()
            if cached is not None and now - cached.checked_at < self._poll_s:
                return cached.shown
            availability = self._node_availability(sym_key(symbol))
            read = self._call(
                lambda: self._read_snapshot(symbol, cached, now), _UNREAD, availability
            )
            if read is not _UNREAD:
                self._unread.pop(symbol, None)
                return read
            reason = f"Redis store unavailable ({availability.error})"
            if cached is None:
                self._unread[symbol] = f"{reason}; retrying"
                return None
            return _marked_stale(cached.shown, reason)

    def unavailable(self, symbol: str | None = None) -> str | None:
        """Why the store cannot be read now, None when it can: with ``symbol``, its book
        (its last ``snapshot`` read failed with nothing read before, or the Redis node
        serving its slot failed a read and is in backoff: down, or a killed master whose
        replica is not promoted yet); without, the symbol list. Readers show a book in
        this state as unavailable, never as absent: a ``snapshot`` of None followed by
        this call agree, even when the node comes back in between."""
        if symbol is not None and (reason := self._unread.get(symbol)) is not None:
            return reason
        key = SYMBOLS_KEY if symbol is None else sym_key(symbol)
        availability = self._node_availability(key)
        if not availability.down:
            return None
        return f"Redis store unavailable ({availability.error}); retrying"

    def published_symbols(self) -> list[str]:
        """The symbols that have a snapshot in Redis, sorted (on a Redis Cluster those of
        every reachable master; empty when Redis is down)."""
        client = self._redis
        if not isinstance(client, RedisCluster):
            return sorted(self._call(lambda: self._scan_symbols(client), []))
        symbols: list[str] = []
        for node in client.get_primaries():
            connection = client.get_redis_connection(node)
            symbols += self._node_call(node.name, lambda c=connection: self._scan_symbols(c), [])
        return sorted(symbols)

    @staticmethod
    def _scan_symbols(client: redis.Redis) -> list[str]:
        return [key.decode().rpartition(":")[2] for key in client.scan_iter(match=f"{PREFIX}sym:*")]

    def owner(self, symbol: str) -> tuple[str, float] | None:
        """Which worker holds ``symbol``'s shard and since when (wall s), as last read
        (``snapshot`` reads it); None when no worker holds a lease on it."""
        cached = self._cache.get(symbol)
        return None if cached is None else cached.owner

    def written(self, symbol: str) -> tuple[int, str] | None:
        """The stored book's update id and the worker that wrote it last; None when there
        is none or Redis is down."""

        def read() -> tuple[int, str] | None:
            update_id, owner = self._redis.hmget(sym_key(symbol), "update_id", "owner")
            if update_id is None or owner is None:
                return None
            return int(update_id), owner.decode()

        if not valid_symbol(symbol):
            return None
        return self._call(read, None, self._node_availability(sym_key(symbol)))

    def stored_trades(self, symbol: str) -> TradeView | None:
        """The trade window the store holds for ``symbol`` (a new owner of its shard
        continues from it), None when there is none or Redis is down."""
        snapshot = self.snapshot(symbol)
        return None if snapshot is None or not len(snapshot.trades) else snapshot.trades

    def _read_snapshot(
        self, symbol: str, cached: _Cached | None, now: float
    ) -> SymbolSnapshot | None:
        shard = shard_of(symbol)
        keys = [sym_key(symbol), beat_key(shard), lease_key(shard)]
        reply = self._snapshot_script(keys=keys, args=[cached.seq if cached else ""])
        seq, beat = reply[0].decode(), reply[1].decode()
        if not seq:
            self._cache.pop(symbol, None)
            self._windows.pop(symbol, None)
            return None
        if len(reply) == 4:
            record = codec.decode_record(reply[3])
            trades = self._read_trades(symbol, record.trades, record.snapshot.trades.kind)
            fresh = replace(record.snapshot, trades=trades)
            cached = _Cached(seq, fresh, fresh, record.writer, now)
        assert cached is not None
        lease = parse_lease(shard, reply[2] or None)
        cached.owner = None if lease is None else (lease.token, lease.since_ms / 1000)
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
        elif cached.owner is not None and cached.owner[0] != cached.writer:
            if self._handed_over_just_now(cached):
                return snapshot
            reason = f"shard taken over by worker {cached.owner[0]}"
        elif writer != cached.writer:
            reason = "published by a previous ingest worker"
        elif time.time() - float(beat_at) > self._stale_after_s:
            reason = f"ingest worker silent for {time.time() - float(beat_at):.0f} s"
        else:
            return snapshot
        return _marked_stale(snapshot, reason)

    def _handed_over_just_now(self, cached: _Cached) -> bool:
        """A planned hand-over (make-before-break): the shard was taken less than
        ``handover_grace_s`` ago, and this record was written by its previous holder less
        than that before the take — the book was LIVE then and the new holder, synced
        already, writes within a round. Shown as it is rather than STALE for that moment.
        A crashed or paused holder's last record is older than its lease by then."""
        assert cached.owner is not None
        since = cached.owner[1]
        grace = self._handover_grace_s
        return time.time() - since < grace and cached.snapshot.published_at >= since - grace

    def _read_trades(self, symbol: str, pointer: codec.TradePointer, kind: str) -> TradeView:
        key = trades_key(symbol, pointer.generation)
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
        availability = self._node_availability(STATUS_KEY)
        if (availability.down or stale_cache) and not self._refresh_status(availability):
            return self._store_down(availability)
        _, status = self._status_cache
        if status is not None and time.time() - status.published_at > self._stale_after_s:
            age = time.time() - status.published_at
            return replace(
                status,
                connection_state="STALE",
                detail=f"no status from the ingest worker for {age:.0f} s",
            )
        return status

    def _refresh_status(self, availability: Availability) -> bool:
        def read() -> bool:
            data = self._redis.get(STATUS_KEY)
            self._status_cache = (
                time.monotonic(),
                None if data is None else codec.decode_status(data),
            )
            return True

        return bool(self._call(read, False, availability))

    def _store_down(self, availability: Availability) -> FeedStatus:
        """What readers see while Redis is unreachable; ``published_at`` is the time of the
        last status actually read (0 when none), so it never passes for a fresh one."""
        _, last = self._status_cache
        return FeedStatus(
            connection_state="STORE_DOWN",
            detail=f"Redis store unavailable ({availability.error}); retrying",
            published_at=0.0 if last is None else last.published_at,
        )

    def worker_statuses(self) -> dict[str, FeedStatus]:
        """Each ingest worker's latest status by writer id, for those heard from within the
        state's lifetime (older ones are removed); empty when Redis is down."""

        def read() -> dict[str, FeedStatus]:
            now = time.time()
            statuses, gone = {}, []
            for writer, data in self._redis.hgetall(WORKER_STATUS_KEY).items():
                status = codec.decode_status(data)
                if now - status.published_at > self._ttl_ms / 1000:
                    gone.append(writer)
                else:
                    statuses[writer.decode()] = status
            if gone:
                self._redis.hdel(WORKER_STATUS_KEY, *gone)
            return dict(sorted(statuses.items()))

        return self._call(read, {}, self._node_availability(WORKER_STATUS_KEY))

    def symbols(self) -> list[SymbolInfo]:
        """The tradable symbols the worker published (the last known list while Redis is
        down). A list is reused for 2 s; none published yet is asked again at each call, so
        a web worker started before the ingest worker does not refuse every symbol for 2 s."""
        checked_at, infos = self._symbols_cache
        if infos and time.monotonic() - checked_at < 2.0:
            return list(infos)

        def read() -> list[SymbolInfo]:
            data = self._redis.get(SYMBOLS_KEY)
            fresh = [] if data is None else codec.decode_symbols(data)
            if fresh:
                self._symbols_cache = (time.monotonic(), fresh)
            return fresh

        return list(self._call(read, infos, self._node_availability(SYMBOLS_KEY)))

    def request_symbol(self, symbol: str) -> None:
        """Ask the worker to stream ``symbol``; invalid names are ignored."""
        if not valid_symbol(symbol):
            log.warning("ignoring request for invalid symbol %r", symbol)
            return
        self._call(
            lambda: self._redis.hset(REQUESTS_KEY, symbol, repr(time.time())),
            None,
            self._node_availability(REQUESTS_KEY),
        )

    def requested_symbols(self) -> dict[str, float]:
        """Symbols asked for in the last day, with the time of the latest request (the
        last known requests while Redis is down)."""

        def read() -> dict[str, float]:
            raw = self._redis.hgetall(REQUESTS_KEY)
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
                self._redis.hdel(REQUESTS_KEY, *expired)
            self._requests_cache = requests
            return requests

        return dict(self._call(read, self._requests_cache, self._node_availability(REQUESTS_KEY)))

    def publish_watchlist(self, board: WatchlistRows) -> None:
        """Store this worker's market board: with fenced (sharded) writes, the book columns
        only of the symbols whose shard it holds; versions stamped with the publication
        time (``services.cluster.boards``)."""
        now = time.time()
        stamp = max(self._board_stamp + 1, time.time_ns() // 1000)
        leases = self._leases
        owns = (lambda _: True) if leases is None else (lambda s: leases(s) is not None)
        stamped = stamp_rows(self._board_rows, board, owns, stamp)
        rows = tuple(s.row for s in stamped.values())
        version = max((row.version for row in rows), default=0)
        data = encode_board(PublishedBoard(now, WatchlistRows(rows, version)))

        def write() -> None:
            pipe = self._redis.pipeline(transaction=False)
            pipe.hset(BOARDS_KEY, self.writer_id, data)
            pipe.zadd(BOARD_TIMES_KEY, {self.writer_id: now})
            pipe.pexpire(BOARDS_KEY, self._ttl_ms)
            pipe.pexpire(BOARD_TIMES_KEY, self._ttl_ms)
            pipe.execute()
            self._board_rows, self._board_stamp = stamped, stamp

        self._call(write, None, self._node_availability(BOARDS_KEY))

    def watchlist(self) -> WatchlistRows:
        """The market board merged from every worker's published within ``stale_after_s``
        (empty when there is none or Redis is down); older boards are removed. A merged
        board is reused for ``board_cache_s``."""
        read_at, merged = self._merged_board
        if time.monotonic() - read_at < self._board_cache_s:
            return merged

        def read() -> WatchlistRows:
            now = time.time()
            keys = [BOARDS_KEY, BOARD_TIMES_KEY, BOARDS_DROPPED_KEY]
            args = [repr(now - self._stale_after_s), str(time.time_ns() // 1000), self._ttl_ms]
            fields, dropped = self._boards_script(keys=keys, args=args)
            boards = [decode_board(data) for data in fields[1::2]]
            fresh = merge_boards(boards, now, self._stale_after_s, int(dropped or 0))
            self._merged_board = (time.monotonic(), fresh)
            return fresh

        return self._call(read, WatchlistRows(), self._node_availability(BOARDS_KEY))

    def health(self) -> dict[str, object]:
        """The store as this process reaches it, for ``/healthz``.

        ``mode``: ``redis`` or ``redis-cluster``. ``state``: ``ok`` when every master
        answers and the cluster reports every slot served; ``failing_over`` when a
        master does not answer or the cluster reports slots whose master is suspected
        or known to have failed (``cluster_slots_pfail`` + ``cluster_slots_fail`` of
        ``CLUSTER INFO``: a killed master until its replica is promoted), while others
        answer; ``down`` when none answers. ``unreachable``: each master that did not
        answer, with the error; ``cluster_state`` and ``slots_failing`` as a reachable
        node reports them."""
        client = self._redis
        if not isinstance(client, RedisCluster):
            up = self._call(client.ping, False)
            return {"mode": "redis", "state": "ok" if up else "down"} | (
                {} if up else {"unreachable": {self.url: self.availability.error}}
            )
        unreachable: dict[str, str] = {}
        info: dict[str, object] = {}
        for node in client.get_primaries():
            availability = self._nodes.setdefault(node.name, Availability())
            connection = client.get_redis_connection(node)
            if not self._node_call(node.name, connection.ping, False):
                unreachable[node.name] = availability.error
            elif not info:
                info = self._call(lambda c=connection: c.cluster("info"), {}, availability)
        failing = int(info.get("cluster_slots_pfail", 0)) + int(info.get("cluster_slots_fail", 0))
        if not info:
            state = "down"
        elif unreachable or failing or info.get("cluster_state") != "ok":
            state = "failing_over"
        else:
            state = "ok"
        return {
            "mode": "redis-cluster",
            "state": state,
            "cluster_state": info.get("cluster_state"),
            "slots_failing": failing,
            "unreachable": unreachable,
        }

    # -- plumbing -------------------------------------------------------------------------

    def _node_call(self, node: str, fn: Callable[[], T], fallback: T) -> T:
        """``_call`` on one cluster node's own client, past the cluster client's routing:
        when the node fails, the cluster's layout is read again as that routing would
        (its slots go to its promoted replica once there is one)."""
        availability = self._nodes.setdefault(node, Availability())
        ready = availability.ready()
        result = self._call(fn, fallback, availability)
        if ready and availability.down:
            assert isinstance(self._redis, RedisCluster)
            with contextlib.suppress(*_ERRORS):
                self._redis.nodes_manager.initialize(last_failed_node_name=node)
        return result

    def _symbol_lock(self, symbol: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(symbol, threading.Lock())

    def _node_availability(self, key: str) -> Availability:
        """On a Redis Cluster, the availability of the node serving ``key``'s slot, so
        that one node down (a killed master until its replica is promoted) leaves the
        other nodes' books read and written, not every book blank for the failover; on a
        single Redis, the store's."""
        client = self._redis
        if not isinstance(client, RedisCluster):
            return self.availability
        try:
            node = client.nodes_manager.get_node_from_slot(client.keyslot(key))
        except _ERRORS:
            return self.availability
        return self._nodes.setdefault(node.name, Availability())

    def _call(
        self, fn: Callable[[], T], fallback: T, availability: Availability | None = None
    ) -> T:
        """``fn()``, or ``fallback`` when Redis (``availability``: the store's unless
        given) is in backoff or fails."""
        availability = availability or self.availability
        if not availability.ready():
            return fallback
        try:
            result = riding_cluster_down(fn)
        except _ERRORS as exc:
            availability.failed(exc)
            return fallback
        availability.succeeded()
        return result

    def close(self) -> None:
        self._redis.close()
