"""Symbols hashed into shards, and the Redis keys of a shard.

A symbol belongs to shard ``crc32(symbol) mod shards`` (stable across processes and
hosts). Every key of a shard carries the shard's hash tag ``{sNNN}``, so in a Redis Cluster
they live in one slot and one server-side script can check the shard's lease and write a
book in one step (a script touching two tags fails with CROSSSLOT).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

DEFAULT_SHARDS = 64
PREFIX = "tapescope:"


def shard_of(symbol: str, shards: int = DEFAULT_SHARDS) -> int:
    """The shard of ``symbol`` (upper-case name) among ``shards``."""
    return zlib.crc32(symbol.upper().encode()) % shards


def shard_tag(shard: int) -> str:
    """The hash tag of a shard's keys, e.g. ``{s017}``."""
    return f"{{s{shard:03d}}}"


def lease_key(shard: int) -> str:
    """Who holds the shard: ``token|epoch|since_ms``, with a TTL."""
    return f"{PREFIX}lease:{shard_tag(shard)}"


def epoch_key(shard: int) -> str:
    """The shard's claim counter (the fencing epoch of the latest claim)."""
    return f"{PREFIX}epoch:{shard_tag(shard)}"


def fence_key(shard: int) -> str:
    """The highest epoch that ever wrote in the shard (survives a lost epoch counter)."""
    return f"{PREFIX}fence:{shard_tag(shard)}"


def offer_key(shard: int) -> str:
    """A planned hand-over: the holder's lease value while it offers the shard to a worker
    below its share (``ShardLeases.offer`` / ``take``), with a TTL."""
    return f"{PREFIX}offer:{shard_tag(shard)}"


OFFERS_KEY = f"{PREFIX}offers"
"""Sorted set shard → time (s) offered: where workers below their share look for offers
(advisory: ``take`` checks the shard's own offer key)."""


def symbols_by_shard(symbols: Iterable[str], shards: int = DEFAULT_SHARDS) -> dict[int, list[str]]:
    """The symbols of each shard that has any, sorted."""
    groups: dict[int, list[str]] = {}
    for symbol in sorted(symbols):
        groups.setdefault(shard_of(symbol, shards), []).append(symbol)
    return groups
