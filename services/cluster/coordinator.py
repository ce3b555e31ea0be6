"""How the workers share the shards: each holds about an equal part, renews it, gives up
what is above its share when a worker joins, and takes over what a dead worker left.

Every ``tick`` (call it a few times per lease):

1. the worker's heartbeat goes into ``tapescope:workers`` (a sorted set by time); workers
   seen within one lease are alive, and the fair share is ceil(shards / alive);
2. every held lease is renewed; one that cannot be (expired: the worker was paused or cut
   off; taken over) is lost — and so is one not renewed for a whole lease while Redis
   could not be reached;
3. above the fair share, the highest shards are offered (make-before-break) when their
   books are ``ready`` (all LIVE) here: the worker keeps renewing and writing them until a
   worker below its share takes them, or releases them once an offer has stood
   ``handover_s`` (10 leases) untaken (break-before-make, as a fallback); a shard not
   ready here is released at once (nothing LIVE to hand over);
4. below it, free shards are claimed, starting at a place that depends on the worker so
   that workers starting together do not race for the same shards; then offered shards
   are adopted: while ``ready(shard)`` is False the worker syncs the shard's books without
   writing them (``adopting``, followed by ``ShardedIngest``), and once it is True it takes
   the shard in one step (``ShardLeases.take``: the next epoch; the old holder's later
   writes are fenced). Readers see the old holder's LIVE books until the new holder's
   first write, so a planned rebalance shows no resync gap.

Losing a shard stops nothing by itself: the writer still sends its writes, and the fenced
write refuses them (the Redis store's write script, ``RedisStore.fence_with``).
"""

from __future__ import annotations

import contextlib
import math
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import redis

from services.cluster.leases import Lease, ShardLeases
from services.cluster.shards import PREFIX

WORKERS_KEY = f"{PREFIX}workers"
HANDOVER_LEASES = 10  # an offer stands this many leases before the fallback release
_ERRORS = (redis.RedisError, OSError)


@dataclass(frozen=True, slots=True)
class ShardChanges:
    """Shards gained and lost in one tick, and the fair share then."""

    gained: tuple[int, ...] = ()
    lost: tuple[int, ...] = ()
    fair_share: int = 0


def fair_share(shards: int, workers: int) -> int:
    """Shards each worker should hold: ceil(shards / workers) (all of them when alone)."""
    return math.ceil(shards / max(1, workers))


def claim_order(token: str, shards: int) -> list[int]:
    """All shards, starting at a place derived from the worker's token."""
    start = zlib.crc32(token.encode()) % shards
    return [(start + i) % shards for i in range(shards)]


class ShardCoordinator:
    """The shards one worker holds, kept by ``tick``."""

    def __init__(
        self,
        leases: ShardLeases,
        clock: Callable[[], float] = time.time,
        ready: Callable[[int], bool] = lambda shard: True,
        handover_s: float | None = None,
    ) -> None:
        self.leases = leases
        self.held: dict[int, Lease] = {}
        self._renewed_at: dict[int, float] = {}
        self._clock = clock
        self.fair_share = leases.shards
        self.ready = ready
        # Long enough for a joiner to sync dozens of offered books under the host's shared
        # REST budget (tens of seconds when a take-over or a cold start used the minute up):
        # releasing an offer earlier does not make the joiner ready sooner, it only moves
        # the shard with a resync gap on the readers' side.
        lease_s = leases.lease_ms / 1000
        self.handover_s = HANDOVER_LEASES * lease_s if handover_s is None else handover_s
        self.adopting: set[int] = set()
        self._offered_at: dict[int, float] = {}

    @property
    def token(self) -> str:
        return self.leases.token

    def _alive_workers(self, now: float) -> int:
        client = self.leases.client
        lease_s = self.leases.lease_ms / 1000
        client.zadd(WORKERS_KEY, {self.token: now})  # type: ignore[attr-defined]
        client.zremrangebyscore(WORKERS_KEY, 0, now - 10 * lease_s)  # type: ignore[attr-defined]
        return int(client.zcount(WORKERS_KEY, now - lease_s, "+inf"))  # type: ignore[attr-defined]

    def tick(self) -> ShardChanges:
        """Heartbeat, renew, rebalance and claim (see the module docstring)."""
        now = self._clock()
        lost: list[int] = []
        gained: list[int] = []
        try:
            share = fair_share(self.leases.shards, self._alive_workers(now))
        except _ERRORS:
            return ShardChanges((), tuple(self._expire_unrenewed(now)), self.fair_share)
        self.fair_share = share
        for shard, lease in list(self.held.items()):
            try:
                ok = self.leases.renew(lease)
            except _ERRORS:
                continue
            if ok:
                self._renewed_at[shard] = now
            else:
                self._drop(shard)
                lost.append(shard)
        lost.extend(self._expire_unrenewed(now))
        lost.extend(self._hand_over_excess(share, now))
        for shard in claim_order(self.token, self.leases.shards):
            if len(self.held) >= share:
                break
            if shard in self.held:
                continue
            try:
                lease = self.leases.claim(shard)
            except _ERRORS:
                break
            if lease is not None:
                self.held[shard] = lease
                self._renewed_at[shard] = now
                gained.append(shard)
        gained.extend(self._adopt_offers(share, now))
        return ShardChanges(tuple(gained), tuple(sorted(lost)), share)

    def _hand_over_excess(self, share: int, now: float) -> list[int]:
        """Offer the shards above ``share`` whose books are ``ready`` here; release those
        that are not (nothing LIVE to hand over, e.g. at a cold start: the joiner need not
        wait for this worker's syncs) and those offered ``handover_s`` ago and still
        untaken. Returns the shards released."""
        excess = sorted(self.held, reverse=True)[: max(0, len(self.held) - share)]
        for shard in [s for s in self._offered_at if s not in excess]:
            del self._offered_at[shard]  # back within the share (its offer lapses)
        released: list[int] = []
        for shard in excess:
            offered_at = self._offered_at.get(shard)
            if offered_at is None and self.ready(shard):
                ttl_ms = int(self.handover_s * 1000)
                with contextlib.suppress(*_ERRORS):
                    if self.leases.offer(self.held[shard], ttl_ms):
                        self._offered_at[shard] = now
                continue
            if offered_at is not None and now - offered_at < self.handover_s:
                continue
            with contextlib.suppress(*_ERRORS):
                self.leases.release(self.held[shard])
            self._drop(shard)
            released.append(shard)
        return released

    def _adopt_offers(self, share: int, now: float) -> list[int]:
        """Below ``share``: take the offered shards that are ``ready`` here, and adopt
        (sync without writing) the others, up to the share. Returns the shards taken."""
        room = share - len(self.held)
        adopting: set[int] = set()
        taken: list[int] = []
        if room > 0:
            try:
                offers = self.leases.offers(self.handover_s)
            except _ERRORS:
                offers = []
            for offered in sorted(offers, key=lambda o: o.shard):
                if room <= 0:
                    break
                if offered.shard in self.held:
                    continue
                room -= 1
                lease = None
                if self.ready(offered.shard):
                    with contextlib.suppress(*_ERRORS):
                        lease = self.leases.take(offered)
                if lease is None:
                    adopting.add(offered.shard)
                    continue
                self.held[offered.shard] = lease
                self._renewed_at[offered.shard] = now
                taken.append(offered.shard)
        self.adopting = adopting
        return taken

    def _expire_unrenewed(self, now: float) -> list[int]:
        lease_s = self.leases.lease_ms / 1000
        stale = [s for s, at in self._renewed_at.items() if now - at >= lease_s]
        for shard in stale:
            self._drop(shard)
        return stale

    def _drop(self, shard: int) -> None:
        self.held.pop(shard, None)
        self._renewed_at.pop(shard, None)
        self._offered_at.pop(shard, None)

    def leave(self) -> None:
        """Release every held shard and the heartbeat (a clean stop)."""
        for lease in list(self.held.values()):
            with contextlib.suppress(*_ERRORS):
                self.leases.release(lease)
        self.held.clear()
        self._renewed_at.clear()
        with contextlib.suppress(*_ERRORS):
            self.leases.client.zrem(WORKERS_KEY, self.token)  # type: ignore[attr-defined]
