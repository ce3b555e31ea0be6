"""A worker's share of the market: the feed streams exactly the symbols of the shards its
coordinator holds, and follows every change: shards gained are synced, lost ones released
``keep_s`` later (meanwhile their books stay synced but nothing is written for them, so a
shard that returns to the same worker is LIVE at once, without a resync). Shards another
worker offers in a planned rebalance (``ShardCoordinator.adopting``) are streamed and
synced before they are taken: the coordinator takes one only once every book of it is
LIVE here (``ready``), so the hand-over needs no resync on the readers' side.

Run ``ShardedIngest.run()`` beside ``Feed.run()`` (feed configured with ``follow=True``) in
the same event loop. The coordinator's blocking Redis calls run in a thread. Stopping the
task does not release the shards (a crash must not either): a clean stop calls
``coordinator.leave()`` so the others take over at once instead of after the lease.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection
from dataclasses import dataclass

from services.cluster.coordinator import ShardChanges, ShardCoordinator
from services.cluster.leases import Lease
from services.cluster.shards import shard_of
from services.market.feed import Feed

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ShardedShare:
    """What the worker streams now: held shards, their symbols, and since when (wall s)
    each held shard is this worker's."""

    shards: tuple[int, ...]
    symbols: tuple[str, ...]
    since: dict[int, float]


def share_of(symbols: Collection[str], held: Collection[int], shards: int) -> tuple[str, ...]:
    """The symbols (sorted) whose shard is in ``held``."""
    return tuple(sorted(s for s in symbols if shard_of(s, shards) in held))


class ShardedIngest:
    """Keeps ``feed`` on the symbols of the shards ``coordinator`` holds.

    universe: the symbols to share (empty: every TRADING symbol of the source).
    tick_s: how often leases are renewed and the share re-read (a few times per lease).
    keep_s: a lost shard's symbols stay streamed (not written) this long, so a shard that
        returns is not resynced from scratch (default: two leases).
    """

    def __init__(
        self,
        feed: Feed,
        coordinator: ShardCoordinator,
        universe: Collection[str] = (),
        tick_s: float = 1.0,
        keep_s: float | None = None,
    ) -> None:
        self.feed = feed
        self.coordinator = coordinator
        self.universe = {s.upper() for s in universe}
        self.tick_s = tick_s
        self.share = ShardedShare((), (), {})
        self._held: dict[int, Lease] = {}
        self._previous: set[int] = set()
        self._lost_at: dict[int, float] = {}
        self.keep_s = 2 * coordinator.leases.lease_ms / 1000 if keep_s is None else keep_s
        self._followed: tuple[str, ...] | None = None
        self._adopting: set[int] = set()
        coordinator.ready = self.ready

    async def run(self) -> None:
        """Tick the coordinator and follow its shards until cancelled. Leases are renewed
        in their own task (in a thread), so a slow follow (paced unsubscriptions, a
        reconnect) never lets them expire."""
        ticking = asyncio.create_task(self._tick_forever())
        shards = self.coordinator.leases.shards
        try:
            while True:
                if ticking.done():
                    ticking.result()  # a failed ticker fails the worker
                held = self._held
                candidates = self.universe or set(self.feed.trading_symbols())
                symbols = share_of(candidates, held.keys(), shards)
                self.share = ShardedShare(
                    tuple(sorted(held)),
                    symbols,
                    {s: lease.since_ms / 1000 for s, lease in held.items()},
                )
                kept = self._kept(held.keys(), time.monotonic())
                followed = share_of(candidates, held.keys() | kept | self._adopting, shards)
                if candidates and followed != self._followed:
                    await self.feed.follow(followed)
                    self._followed = followed
                await asyncio.sleep(self.tick_s / 4)
        finally:
            ticking.cancel()

    async def _tick_forever(self) -> None:
        while True:
            changes, held, adopting = await asyncio.to_thread(self._tick)
            self._held, self._adopting = held, adopting
            if changes.gained or changes.lost:
                log.info(
                    "shards gained %s, lost %s (fair share %d, holding %d)",
                    [(s, held[s].epoch) for s in changes.gained if s in held],
                    list(changes.lost),
                    changes.fair_share,
                    len(held),
                )
            await asyncio.sleep(self.tick_s)

    def _kept(self, held: Collection[int], now: float) -> set[int]:
        """Shards lost less than ``keep_s`` ago: their books stay synced (nothing is
        written for them), so a shard that comes back is LIVE at once, without a resync."""
        for shard in self._previous - set(held):
            self._lost_at[shard] = now
        for shard in held:
            self._lost_at.pop(shard, None)
        self._previous = set(held)
        for shard, at in list(self._lost_at.items()):
            if now - at > self.keep_s:
                del self._lost_at[shard]
        return set(self._lost_at)

    def _tick(self) -> tuple[ShardChanges, dict[int, Lease], set[int]]:
        """One coordinator tick and copies of the held leases and the adopted shards
        (taken in the same thread)."""
        changes = self.coordinator.tick()
        return changes, dict(self.coordinator.held), set(self.coordinator.adopting)

    def ready(self, shard: int) -> bool:
        """Whether every book of ``shard`` is streamed and LIVE here: worth offering in a
        hand-over, and safe to take over with no resync on the readers' side (called
        from the coordinator's thread)."""
        shards = self.coordinator.leases.shards
        candidates = self.universe or set(self.feed.trading_symbols())
        if not candidates:  # the symbols not loaded yet: which books the shard has is unknown
            return False
        return all(self.feed.is_live(s) for s in candidates if shard_of(s, shards) == shard)

    def since(self, symbol: str) -> float | None:
        """Since when (wall s) this worker owns ``symbol``'s shard (None: not its)."""
        return self.share.since.get(shard_of(symbol, self.coordinator.leases.shards))
