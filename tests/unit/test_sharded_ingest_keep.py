"""A lost shard's symbols stay streamed for ``keep_s`` (their books stay synced, nothing is
written for them), so a shard that returns to the same worker is not resynced."""

from __future__ import annotations

from types import SimpleNamespace

from services.cluster.sharded_ingest import ShardedIngest


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
