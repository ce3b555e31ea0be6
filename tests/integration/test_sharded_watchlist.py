"""The watchlist of sharded workers against a real redis-server: two workers each publish
the whole board (every symbol LIVE in their own streams, as during a hand-over's
``keep_s``), fenced with their shard leases; a web process sees every symbol's book
columns from the worker holding its shard, follows an owner change, and drops a silent
worker's columns."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from services.cluster.leases import Lease, ShardLeases
from services.cluster.shards import shard_of
from services.market.market_board import WatchlistRow, WatchlistRows
from services.redis_store import RedisStore
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis
SYMBOLS = [f"S{i}USDT" for i in range(24)]


@pytest.fixture
def url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


def _board(spread: float, last: float) -> WatchlistRows:
    """Every symbol with book columns; ``spread`` tells which worker's board it is. A row's
    version moves with its content, as ``MarketBoard`` hands it out."""
    version = int(last * 1000 + spread * 10)
    rows = tuple(
        WatchlistRow(
            s,
            s[:-4],
            "USDT",
            last=last,
            spread_bps=spread,
            liquidity=50.0,
            sync_state="LIVE",
            version=version,
        )
        for s in SYMBOLS
    )
    return WatchlistRows(rows, version)


class Worker:
    """A worker's store fenced with the leases it claimed."""

    def __init__(self, url: str, token: str, client: redis.Redis) -> None:
        self.leases = ShardLeases(client, token, lease_ms=10_000)
        self.held: dict[int, Lease] = {}
        self.store = RedisStore(url, writer_id=token)
        self.store.fence_with(lambda symbol: self.held.get(shard_of(symbol)))

    def claim(self, shards: set[int]) -> None:
        for shard in shards:
            lease = self.leases.claim(shard)
            assert lease is not None
            self.held[shard] = lease

    def release(self, shard: int) -> None:
        assert self.leases.release(self.held.pop(shard))


def test_each_symbols_book_columns_come_from_its_owner(url: str) -> None:
    client = redis.Redis.from_url(url)
    a, b = Worker(url, "a", client), Worker(url, "b", client)
    shards = sorted({shard_of(s) for s in SYMBOLS})
    a.claim(set(shards[::2]))
    b.claim(set(shards[1::2]))
    reader = RedisStore(url, stale_after_s=1.0, board_cache_s=0)
    a.store.publish_watchlist(_board(1.0, 100.0))
    b.store.publish_watchlist(_board(2.0, 100.0))
    board = reader.watchlist()
    assert [r.symbol for r in board.rows] == sorted(SYMBOLS)
    for row in board.rows:
        owner = 1.0 if shard_of(row.symbol) in a.held else 2.0
        assert row.spread_bps == owner and row.sync_state == "LIVE", row.symbol
    seen = board.version

    # A shard moves from b to a: its symbols' columns follow, and the change is announced.
    moved = shards[1]
    b.release(moved)
    a.claim({moved})
    b.store.publish_watchlist(_board(2.0, 100.0))
    a.store.publish_watchlist(_board(1.0, 100.0))
    board = reader.watchlist()
    changed = {r.symbol for r in board.since(seen)}
    in_moved = {s for s in SYMBOLS if shard_of(s) == moved}
    assert in_moved and in_moved <= changed
    assert all(r.spread_bps == 1.0 for r in board.rows if r.symbol in in_moved)
    seen = board.version

    # b goes silent: its board is dropped, its symbols show no book columns and are sent.
    time.sleep(1.2)
    a.store.publish_watchlist(_board(1.0, 101.0))
    board = reader.watchlist()
    assert len(board.rows) == len(SYMBOLS)
    for row in board.rows:
        assert row.last == 101.0
        expected = 1.0 if shard_of(row.symbol) in a.held else None
        assert row.spread_bps == expected, row.symbol
    assert {r.symbol for r in board.since(seen)} == set(SYMBOLS)
    assert client.hkeys("tapescope:{watchlist}:boards") == [b"a"]
