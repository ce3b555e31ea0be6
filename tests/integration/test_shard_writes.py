"""A publication round's fenced writes against a real redis-server: the symbols of one
shard go in one script call, and every write is still checked on its own terms — a book
update id below the stored one refuses that symbol only, a shard whose lease this writer
does not hold at its epoch refuses all of its symbols, other shards are written."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from services.cluster.leases import Lease, ShardLeases
from services.cluster.shards import fence_key, shard_of, symbols_by_shard
from services.redis_store import RedisStore, beat_key
from tests.cluster_worker import book_snapshot
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with RedisServer() as server:
        yield server.url


def _two_shards_of_three() -> tuple[list[str], list[str]]:
    """Three symbols of one shard and two of another."""
    shards = symbols_by_shard([f"S{i}USDT" for i in range(400)])
    (_, a), (_, b) = sorted(shards.items())[:2]
    return a[:3], b[:2]


def test_a_round_refuses_a_backwards_book_and_a_lost_shard_and_writes_the_rest(url) -> None:
    client = redis.Redis.from_url(url)
    client.flushdb()
    same, other = _two_shards_of_three()
    leases = ShardLeases(client, "w1", 5000)
    held: dict[int, Lease] = {}
    for symbol in (same[0], other[0]):
        held[shard_of(symbol)] = leases.claim(shard_of(symbol))
    store = RedisStore(url, writer_id="w1", poll_s=0)
    store.fence_with(lambda symbol: held.get(shard_of(symbol)))
    reader = RedisStore(url, poll_s=0)

    store.publish_many([book_snapshot(s, 100, 1) for s in same + other])
    assert store.writes == 5 and store.refused == {"FENCED": 0, "BACKWARDS": 0}
    assert all(reader.written(s) == (100, "w1") for s in same + other)
    shard = shard_of(same[0])
    assert client.get(fence_key(shard)) == str(held[shard].epoch).encode()
    assert client.get(beat_key(shard)).decode().startswith("w1|")

    # One symbol of the shard goes backwards: refused alone, its neighbours move on.
    round_two = [
        book_snapshot(same[0], 101, 2),
        book_snapshot(same[1], 99, 2),
        book_snapshot(same[2], 101, 2),
    ]
    store.publish_many(round_two + [book_snapshot(s, 101, 2) for s in other])
    assert store.refused == {"FENCED": 0, "BACKWARDS": 1}
    assert [reader.written(s)[0] for s in same] == [101, 100, 101]
    assert [reader.written(s)[0] for s in other] == [101, 101]

    # The other shard is lost (released and claimed by another worker): all its symbols
    # are refused, this shard's are written.
    other_shard = shard_of(other[0])
    assert leases.release(held[other_shard])
    assert ShardLeases(client, "w2", 5000).claim(other_shard) is not None
    store.publish_many([book_snapshot(s, 102, 3) for s in same + other])
    assert store.refused == {"FENCED": 2, "BACKWARDS": 1}
    assert [reader.written(s)[0] for s in same] == [102, 102, 102]
    assert [reader.written(s) for s in other] == [(101, "w1"), (101, "w1")]
    snapshot = reader.snapshot(same[1])
    assert snapshot is not None and snapshot.book.last_update_id == 102
