"""A worker's share of the market: the feed streams exactly the symbols of the shards its
coordinator holds, and follows every change (shards gained are synced, lost ones
released).

Run ``ShardedIngest.run()`` beside ``Feed.run()`` (feed configured with ``follow=True``) in
the same event loop. The coordinator's blocking Redis calls run in a thread. Stopping the
task does not release the shards (a crash must not either): a clean stop calls
``coordinator.leave()`` so the others take over at once instead of after the lease.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass

from services.cluster.coordinator import ShardCoordinator
from services.cluster.shards import shard_of
from services.market.feed import Feed


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
    """

    def __init__(
        self,
        feed: Feed,
        coordinator: ShardCoordinator,
        universe: Collection[str] = (),
        tick_s: float = 1.0,
    ) -> None:
        self.feed = feed
        self.coordinator = coordinator
        self.universe = {s.upper() for s in universe}
        self.tick_s = tick_s
        self.share = ShardedShare((), (), {})

    async def run(self) -> None:
        """Tick the coordinator and follow its shards until cancelled."""
        shards = self.coordinator.leases.shards
        while True:
            await asyncio.to_thread(self.coordinator.tick)
            held = dict(self.coordinator.held)
            candidates = self.universe or set(self.feed.trading_symbols())
            symbols = share_of(candidates, held.keys(), shards)
            self.share = ShardedShare(
                tuple(sorted(held)),
                symbols,
                {s: lease.since_ms / 1000 for s, lease in held.items()},
            )
            if candidates:
                await self.feed.follow(symbols)
            await asyncio.sleep(self.tick_s)

    def since(self, symbol: str) -> float | None:
        """Since when (wall s) this worker owns ``symbol``'s shard (None: not its)."""
        return self.share.since.get(shard_of(symbol, self.coordinator.leases.shards))
