"""Lua scripts run on the node that holds their keys, loaded there lazily.

redis-py's ``register_script`` answers a NOSCRIPT with ``SCRIPT LOAD`` on every master of a
Redis Cluster. While one master is down (SIGKILLed, before its replica is promoted) that load
fails, so a process that starts during a failover, and has loaded nothing yet, could run its
scripts on no node at all, the live masters included. ``NodeScript`` sends EVALSHA, routed by
the script's first key like any other command. On NOSCRIPT it sends the script's text with
EVAL to that same node, which runs it and caches it. A node lacks the script when it
restarted, when its cache was flushed, when it is a replica just promoted (script caches are
not replicated), or when this process has not used it there yet. The client follows the MOVED
that comes after a promotion, so a script is loaded on the new master on its first call there.
No other node is involved.

A blocking call is answered, not refused, when it is made while every master refuses
commands mid-failover (``riding_cluster_down``, bounded).

``node_script(client, text)``: the script for a blocking ``redis.Redis`` or ``RedisCluster``
client; ``AsyncNodeScript`` is the same for their asyncio twins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio
import redis.asyncio.cluster
from redis.commands.core import AsyncScript, Script
from redis.exceptions import NoScriptError

from services.redis_connection import riding_cluster_down

Arg = str | bytes | int | float


class NodeScript(Script):
    """A script run with EVALSHA, or with EVAL on the node that answered NOSCRIPT. Still a
    redis-py ``Script`` (its ``sha`` serves pipelined EVALSHA calls). ``loads`` counts the
    EVALs this process has sent, one per node that lacked the script when it was called."""

    def __init__(self, client: Any, text: str) -> None:
        super().__init__(client, text)
        self.text = text
        self.loads = 0

    def __call__(
        self,
        keys: Sequence[Arg] | None = None,
        args: Sequence[Arg] | None = None,
        client: Any = None,
    ) -> Any:
        target, call = _call(self, keys, args, client)
        return riding_cluster_down(lambda: self._run(target, call))

    def _run(self, target: Any, call: list[Arg]) -> Any:
        try:
            return target.evalsha(self.sha, *call)
        except NoScriptError:
            self.loads += 1
            return target.eval(self.text, *call)


class AsyncNodeScript(AsyncScript):
    """``NodeScript`` for an asyncio client."""

    def __init__(self, client: Any, text: str) -> None:
        super().__init__(client, text)
        self.text = text
        self.loads = 0

    async def __call__(
        self,
        keys: Sequence[Arg] | None = None,
        args: Sequence[Arg] | None = None,
        client: Any = None,
    ) -> Any:
        target, call = _call(self, keys, args, client)
        try:
            return await target.evalsha(self.sha, *call)
        except NoScriptError:
            self.loads += 1
            return await target.eval(self.text, *call)


def _call(
    script: Script | AsyncScript,
    keys: Sequence[Arg] | None,
    args: Sequence[Arg] | None,
    client: Any,
) -> tuple[Any, list[Arg]]:
    """The client a script call goes to and its EVALSHA/EVAL arguments after the script:
    the key count, the keys, the other arguments."""
    keys = list(keys or ())
    target = script.registered_client if client is None else client
    return target, [len(keys), *keys, *(args or ())]


def node_script(client: Any, text: str) -> NodeScript | AsyncNodeScript:
    """``text`` as a script of ``client`` (blocking or asyncio, single Redis or cluster)."""
    if isinstance(client, redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster):
        return AsyncNodeScript(client, text)
    return NodeScript(client, text)
