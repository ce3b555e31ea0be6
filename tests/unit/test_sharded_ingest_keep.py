"""A lost shard's symbols stay streamed for ``keep_s`` (their books stay synced, nothing is
written for them), so a shard that returns to the same worker is not resynced."""

from __future__ import annotations

from types import SimpleNamespace

from services.cluster.sharded_ingest import ShardedIngest
from services.cluster.shards import shard_of


def ingest(keep_s: float = 10.0) -> ShardedIngest:
    coordinator = SimpleNamespace(leases=SimpleNamespace(lease_ms=6000, shards=64))
    return ShardedIngest(feed=None, coordinator=coordinator, keep_s=keep_s)  # type: ignore[arg-type]


def test_a_lost_shard_is_kept_for_keep_s_then_released() -> None:
    share = ingest(keep_s=10.0)
    assert share._kept({1, 2, 3}, now=0.0) == set()
    assert share._kept({1, 2}, now=1.0) == {3}
    assert share._kept({1, 2}, now=10.9) == {3}
    assert share._kept({1, 2}, now=11.1) == set()


def test_a_shard_that_returns_is_held_again_not_kept() -> None:
    share = ingest(keep_s=10.0)
    share._kept({1, 2}, now=0.0)
    assert share._kept({1}, now=1.0) == {2}
    assert share._kept({1, 2}, now=2.0) == set()
    assert share._kept({1}, now=3.0) == {2}  # lost again: a fresh keep period
    assert share._kept({1}, now=12.9) == {2}


def test_the_default_keep_is_two_leases() -> None:
    coordinator = SimpleNamespace(leases=SimpleNamespace(lease_ms=6000, shards=64))
    assert ShardedIngest(feed=None, coordinator=coordinator).keep_s == 12.0  # type: ignore[arg-type]


class _Feed:
    """The feed as ``ShardedIngest.ready`` sees it: the source's symbols (none until they
    are loaded) and which books are LIVE here."""

    def __init__(self, symbols: list[str], live: set[str]) -> None:
        self.symbols, self.live = symbols, live

    def trading_symbols(self) -> list[str]:
        return self.symbols

    def is_live(self, symbol: str) -> bool:
        return symbol in self.live


def test_a_shard_is_ready_only_when_its_books_are_known_and_live_here() -> None:
    """A joiner's coordinator ticks before its feed has loaded the source's symbols: no
    shard is ready then (it took offered shards at once with nothing synced, and readers
    saw their books leave LIVE); afterwards a shard is ready when every book of it is LIVE
    here, and a shard without symbols is."""
    coordinator = SimpleNamespace(leases=SimpleNamespace(lease_ms=6000, shards=64), ready=None)
    feed = _Feed([], set())
    share = ShardedIngest(feed=feed, coordinator=coordinator)  # type: ignore[arg-type]
    assert not any(share.ready(shard) for shard in range(64))
    feed.symbols = ["BTCUSDT", "ETHUSDT"]
    btc, eth = shard_of("BTCUSDT"), shard_of("ETHUSDT")
    empty = next(s for s in range(64) if s not in {btc, eth})
    assert share.ready(empty)
    assert not share.ready(btc)
    feed.live = {"BTCUSDT"}
    assert share.ready(btc) and (eth == btc or not share.ready(eth))
