"""The REST weight counter shared by every worker on one host, kept in Redis.

Binance counts request weight per IP per minute, and the workers of one host share one
egress IP, so their budgets must add up to one. ``RedisWeightWindow`` keeps a counter per
(host, window) — key ``tapescope:rest-weight:{<host>}:<window index>``, windows aligned to
multiples of ``window_s`` of wall-clock time like Binance's minutes — and admits a request
with one server-side script: add its weight if the total stays within the limit, else add
nothing and say how long until the window ends. The key expires with its window. One key
per call, so it works the same on a single Redis and on a Redis Cluster.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from services.redis_connection import async_client
from services.redis_scripts import node_script

KEY_PREFIX = "tapescope:rest-weight"

_TAKE = """
local used = redis.call('INCRBY', KEYS[1], ARGV[1])
if used > tonumber(ARGV[2]) then
  redis.call('DECRBY', KEYS[1], ARGV[1])
  return -1
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return used
"""


class RedisWeightWindow:
    """A ``SharedWeightWindow`` in Redis for the processes of one host (``host``: the
    egress identity, default the machine's host name)."""

    def __init__(
        self,
        client: object,
        host: str | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self.host = host or socket.gethostname()
        self._wall = wall_clock
        self._script = node_script(client, _TAKE)

    @classmethod
    def from_url(cls, url: str, host: str | None = None) -> RedisWeightWindow:
        """A window on the Redis (or Redis Cluster) at ``url``."""
        return cls(async_client(url, socket_timeout_s=2.0), host)

    def key(self, window_s: float) -> str:
        """The counter's key for the current window."""
        return f"{KEY_PREFIX}:{{{self.host}}}:{int(self._wall() // window_s)}"

    async def take(self, weight: int, limit: int, window_s: float) -> float:
        """0 when ``weight`` was counted within ``limit``; else seconds to the window's end."""
        now = self._wall()
        ttl_ms = int(window_s * 2000)
        used = await self._script(keys=[self.key(window_s)], args=[weight, limit, ttl_ms])
        if int(used) >= 0:
            return 0.0
        return (int(now // window_s) + 1) * window_s - now + 0.01

    async def used(self, window_s: float) -> int:
        """Weight counted in the current window by every process of this host."""
        value = await self._client.get(self.key(window_s))  # type: ignore[attr-defined]
        return int(value or 0)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()  # type: ignore[attr-defined]
