"""Choosing the store: in-process memory by default, Redis when ``REDIS_URL`` is set."""

from __future__ import annotations

from app.config import Settings
from services.store import MarketStore, MemoryStore


def make_store(settings: Settings) -> MarketStore:
    """The store these settings ask for."""
    if settings.redis_url:
        from services.redis_store import RedisStore

        return RedisStore(settings.redis_url)
    return MemoryStore()
