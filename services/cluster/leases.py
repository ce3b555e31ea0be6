"""Shard leases with fencing epochs, as server-side scripts on the shard's own keys (one
hash tag, so one slot in a Redis Cluster).

- ``claim``: when nobody holds the shard, take the next epoch — one more than both the
  claim counter and the highest epoch that ever wrote (the fence), so an epoch counter lost
  in a failover cannot hand out an old epoch again — and set the lease
  ``token|epoch|since_ms`` with a TTL.
- ``renew`` / ``release``: only with the lease's exact value (token and epoch).
- ``offer`` / ``take`` (a planned hand-over, make-before-break): the holder offers the
  shard (the offer carries its lease value); a worker that has meanwhile synced the shard's
  books takes it in one step — only if the offer and the lease still hold that value —
  with the next epoch (above the counter and the fence, as a claim), so the old holder's
  later writes are refused by the fence as after any take-over.

The fenced write itself is the Redis store's write script (``services.redis_store``,
``RedisStore.fence_with``): in one step it refuses a write unless the writer holds the
shard's lease at that epoch and no higher epoch has written (``FENCED``), refuses a book
update id below the stored one (``BACKWARDS``), and raises the fence.

Redis warns that a failover can lose a lease (replication is asynchronous), so a lease
alone does not guarantee one writer; the epoch check in the write does (Kleppmann, "How
to do distributed locking", 2016).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from services.cluster.shards import (
    DEFAULT_SHARDS,
    OFFERS_KEY,
    epoch_key,
    fence_key,
    lease_key,
    offer_key,
)
from services.redis_scripts import NodeScript

_NEXT_EPOCH = """
local epoch = redis.call('INCR', KEYS[2])
local fence = tonumber(redis.call('GET', KEYS[3]) or '0')
if epoch <= fence then
  epoch = fence + 1
  redis.call('SET', KEYS[2], epoch)
end
"""
"""Lua: the shard's next fencing epoch (``KEYS[2]`` the counter, ``KEYS[3]`` the highest epoch
the store has accepted), never at or below one already written with, into ``epoch``."""

_CLAIM = (
    """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
"""
    + _NEXT_EPOCH
    + """redis.call('SET', KEYS[1], ARGV[1] .. '|' .. epoch .. '|' .. ARGV[3], 'PX', ARGV[2])
return epoch
"""
)

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_OFFER = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
"""

_TAKE = (
    """
local offered = redis.call('GET', KEYS[4])
if not offered or offered ~= ARGV[1] or redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return false
end
"""
    + _NEXT_EPOCH
    + """redis.call('SET', KEYS[1], ARGV[2] .. '|' .. epoch .. '|' .. ARGV[4], 'PX', ARGV[3])
redis.call('DEL', KEYS[4])
return epoch
"""
)

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class Lease:
    """A held shard: its epoch, the holder's token and since when (epoch ms)."""

    shard: int
    token: str
    epoch: int
    since_ms: int

    @property
    def value(self) -> str:
        """The lease key's value."""
        return lease_value(self.token, self.epoch, self.since_ms)


@dataclass(frozen=True, slots=True)
class Owner:
    """Who holds a shard, as anyone can read it."""

    shard: int
    token: str
    epoch: int
    since_ms: int


def lease_value(token: str, epoch: int, since_ms: int) -> str:
    """A lease key's value (``parse_lease`` reads it back)."""
    return f"{token}|{epoch}|{since_ms}"


def parse_lease(shard: int, value: bytes | str | None) -> Owner | None:
    """The owner in a lease value, None when there is none or it is malformed."""
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else value
    parts = text.split("|")
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return Owner(shard, parts[0], int(parts[1]), int(parts[2]))


class ShardLeases:
    """Lease operations of one worker (``token``) on a blocking redis-py client, single
    Redis or Redis Cluster alike."""

    def __init__(
        self,
        client: object,
        token: str,
        lease_ms: int = 6000,
        shards: int = DEFAULT_SHARDS,
    ) -> None:
        self.client = client
        self.token = token
        self.lease_ms = lease_ms
        self.shards = shards
        self._claim = NodeScript(client, _CLAIM)
        self._renew = NodeScript(client, _RENEW)
        self._release = NodeScript(client, _RELEASE)
        self._offer = NodeScript(client, _OFFER)
        self._take = NodeScript(client, _TAKE)

    def claim(self, shard: int) -> Lease | None:
        """Take ``shard`` if nobody holds it; the lease, or None."""
        since_ms = int(time.time() * 1000)
        keys = [lease_key(shard), epoch_key(shard), fence_key(shard)]
        epoch = self._claim(keys=keys, args=[self.token, self.lease_ms, since_ms])
        if epoch is None:
            return None
        return Lease(shard, self.token, int(epoch), since_ms)

    def renew(self, lease: Lease) -> bool:
        """Extend ``lease``; False when it is no longer ours (expired, taken over)."""
        return bool(self._renew(keys=[lease_key(lease.shard)], args=[lease.value, self.lease_ms]))

    def release(self, lease: Lease) -> bool:
        """Give ``lease`` up (only if still ours)."""
        return bool(self._release(keys=[lease_key(lease.shard)], args=[lease.value]))

    def offer(self, lease: Lease, ttl_ms: int) -> bool:
        """Offer ``lease``'s shard for a planned hand-over (only if still ours); it stays
        ours, renewed and written, until someone takes it or the offer lapses."""
        keys = [lease_key(lease.shard), offer_key(lease.shard)]
        if not self._offer(keys=keys, args=[lease.value, ttl_ms]):
            return False
        self.client.zadd(OFFERS_KEY, {str(lease.shard): time.time()})  # type: ignore[attr-defined]
        return True

    def offers(self, max_age_s: float) -> list[Owner]:
        """Shards offered within ``max_age_s`` and by whom (as offered; ``take`` checks)."""
        client = self.client
        now = time.time()
        client.zremrangebyscore(OFFERS_KEY, 0, now - 10 * max_age_s)  # type: ignore[attr-defined]
        found: list[Owner] = []
        for member in client.zrangebyscore(OFFERS_KEY, now - max_age_s, "+inf"):  # type: ignore[attr-defined]
            shard = int(member)
            owner = parse_lease(shard, client.get(offer_key(shard)))  # type: ignore[attr-defined]
            if owner is not None and owner.token != self.token:
                found.append(owner)
        return found

    def take(self, offered: Owner) -> Lease | None:
        """Take an offered shard (its books synced here first); the new lease, or None
        when the offer no longer stands (withdrawn, lapsed, the lease moved)."""
        shard = offered.shard
        since_ms = int(time.time() * 1000)
        value = lease_value(offered.token, offered.epoch, offered.since_ms)
        keys = [lease_key(shard), epoch_key(shard), fence_key(shard), offer_key(shard)]
        epoch = self._take(keys=keys, args=[value, self.token, self.lease_ms, since_ms])
        if epoch is None:
            return None
        self.client.zrem(OFFERS_KEY, str(shard))  # type: ignore[attr-defined]
        return Lease(shard, self.token, int(epoch), since_ms)

    def owner(self, shard: int) -> Owner | None:
        """The shard's current holder."""
        return parse_lease(shard, self.client.get(lease_key(shard)))  # type: ignore[attr-defined]
