"""Rules and events in Redis (``REDIS_URL``), so web workers write rules that the ingest
worker reads, and every worker serves the events the ingest worker fired.

Keys: ``tapescope:{alerts}:rules`` (hash id → rule JSON), ``tapescope:{alerts}:rules_version``
(incremented on each write), ``tapescope:{alerts}:event_seq`` (last event id),
``tapescope:{alerts}:events`` (hash id → event JSON) and ``tapescope:{alerts}:event_ids``
(sorted set of ids, trimmed to ``MAX_EVENTS``), ``tapescope:{alerts}:fired`` (hash
``rule_id|symbol`` → the newest trade id an event was fired on),
``tapescope:{alerts}:claim:<rule_id>|<symbol>|t<trade id>`` or ``...|u<update id>|<event>|<price>``
(an event stored; expire after a day), ``tapescope:{alerts}:episodes`` (hash
``rule_id|symbol`` → an imbalance episode's state, ``_MARK_EPISODE``). The
``{alerts}`` hash
tag keeps them in one slot of a Redis Cluster, so the transactions and the claim script
work there too (the client is cluster-aware).
"""

from __future__ import annotations

import json
from typing import Any

import redis
import redis.cluster

from services.alerts.events import (
    MAX_EVENTS,
    TIME_MS_FLOOR,
    AlertEvent,
    select,
)
from services.alerts.firing import Firing
from services.alerts.rules import Rule, from_json
from services.redis_connection import sync_client
from services.redis_scripts import NodeScript

PREFIX = "tapescope:{alerts}:"
RULES = PREFIX + "rules"
RULES_VERSION = PREFIX + "rules_version"
EVENT_SEQ = PREFIX + "event_seq"
EVENTS = PREFIX + "events"
EVENT_IDS = PREFIX + "event_ids"
FIRED = PREFIX + "fired"
CLAIMS = PREFIX + "claim:"
EPISODES = PREFIX + "episodes"

CLAIM_TTL_S = 24 * 3600

_CLAIM = """
if #KEYS == 3 then
  if not redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[3]) then return 0 end
  local trade_id = tonumber(ARGV[2])
  if trade_id >= 0 and trade_id > tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1') then
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  end
end
return redis.call('INCR', KEYS[2])
"""
"""Claim an event id for a firing, atomically, or 0 when a worker already stored that event
(a shard handed over: the new owner's warm-up hands it trades again, and both owners
evaluate the same messages for a while). Each event is claimed on a key of its own
(``claim_key``, kept ``CLAIM_TTL_S``, far longer than any hand-over):

- a firing on a trade: (rule, symbol, trade id); the (rule, symbol)'s high-water mark of
  trade ids is raised too (``fired_trade_ids``: a restarted tap's memory);
- a book firing (wall, imbalance): (rule, symbol, ``update_id`` — the final ``u`` of the
  diff it was decided on, Binance's, the same on every worker —, and for a wall its event
  and price: one diff can make two walls appear);
- neither (a move on a ticker): no claim, always an id.

A single high-water mark per (rule, symbol) is not enough to decide: the old owner's
dispatcher may still hold events of diffs *before* the ones the new owner already claimed,
and a mark would refuse them (seen in the two-worker test: the old owner stored 173 of its
2,116 firings; ~1,090 of those refused no other worker had fired); nor is one claim per diff: the
two owners' views differ (the new one took the walls it found as they were), so on one diff
each may fire an event the other does not."""


_MARK_EPISODE = """
local mark = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if math.abs(mark) < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
return 0
"""
"""An imbalance episode's state per (rule, symbol) in ``EPISODES``: the update id it fired
at (open), or minus the update id it was seen ended at; the newest update id wins, so a
lagging worker's older word changes nothing. A worker taking the symbol over adopts an open
episode (``Imbalance.adopt``) instead of firing it again at another update id."""


def claim_key(firing_field: str, message: str) -> str:
    """The key claiming (rule, symbol) ``firing_field``'s event on ``message``."""
    return f"{CLAIMS}{firing_field}|{message}"


def connect(url: str) -> redis.Redis | redis.cluster.RedisCluster:
    return sync_client(url, socket_timeout_s=2.0)


class RedisRuleStore:
    """``RuleStore`` on Redis."""

    def __init__(self, url: str) -> None:
        self._redis = connect(url)

    def all(self) -> list[Rule]:
        return [from_json(json.loads(raw)) for raw in self._redis.hvals(RULES)]

    def get(self, rule_id: str) -> Rule | None:
        raw = self._redis.hget(RULES, rule_id)
        return None if raw is None else from_json(json.loads(raw))

    def put(self, rule: Rule) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(RULES, rule.id, json.dumps(rule.to_json()))
        pipe.incr(RULES_VERSION)
        pipe.execute()

    def delete(self, rule_id: str) -> bool:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hdel(RULES, rule_id)
        pipe.incr(RULES_VERSION)
        removed, _ = pipe.execute()
        return bool(removed)

    def version(self) -> int:
        return int(self._redis.get(RULES_VERSION) or 0)


class RedisEventLog:
    """``EventLog`` on Redis (ids from one counter shared by every process). Exactly once
    across workers: an event is stored only by the worker that claims it (``_CLAIM``, one
    atomic script, run by the dispatcher's thread, never the feed's) — on a trade by its
    trade id, a wall or imbalance by the update id of its diff — so a worker taking over a
    shard never stores again an event the previous owner stored, whatever its own memory
    says."""

    def __init__(self, url: str, max_events: int = MAX_EVENTS) -> None:
        self._redis = connect(url)
        self._max = max_events
        self._claim = NodeScript(self._redis, _CLAIM)
        self._mark_episode = NodeScript(self._redis, _MARK_EPISODE)

    def append(self, firing: Firing) -> AlertEvent | None:
        """The stored event, or None when another worker already fired this rule on this
        trade or this book update (a shard handed over: the new owner's warm-up hands it
        trades again, and both owners evaluate the same diffs for a while; ``_CLAIM``)."""
        trade_id = firing.details.get("trade_id")
        update_id = firing.details.get("update_id")
        field = f"{firing.rule.id}|{firing.symbol}"
        keys = [FIRED, EVENT_SEQ]
        args = [field, -1, CLAIM_TTL_S]
        if isinstance(trade_id, int):
            keys.append(claim_key(field, f"t{trade_id}"))
            args[1] = trade_id
        elif isinstance(update_id, int):
            if firing.rule.kind == "imbalance":
                self._mark_episode(keys=[EPISODES], args=[field, update_id, update_id])
            details = firing.details
            event = f"u{update_id}|{details.get('event', '')}|{details.get('price', '')!r}"
            keys.append(claim_key(field, event))
        event_id = int(self._claim(keys=keys, args=args))
        if event_id == 0:
            return None
        event = AlertEvent.of(event_id, firing)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(EVENTS, str(event.id), json.dumps(event.to_json()))
        pipe.zadd(EVENT_IDS, {str(event.id): event.id})
        pipe.zrange(EVENT_IDS, 0, -self._max - 1)
        pipe.zremrangebyrank(EVENT_IDS, 0, -self._max - 1)
        dropped = pipe.execute()[2]
        if dropped:
            self._redis.hdel(EVENTS, *dropped)
        return event

    def end_episode(self, rule: Rule, symbol: str, update_id: int) -> None:
        """``rule``'s imbalance on ``symbol`` was seen back inside its threshold at
        ``update_id`` (``_MARK_EPISODE``)."""
        field = f"{rule.id}|{symbol}"
        self._mark_episode(keys=[EPISODES], args=[field, update_id, -update_id])

    def open_episodes(self, symbol: str) -> set[str]:
        """The ids of the imbalance rules whose episode on ``symbol`` fired and is open."""
        opened = set()
        for field, mark in self._redis.hgetall(EPISODES).items():
            rule_id, _, of = field.decode().partition("|")
            if of == symbol and int(mark) > 0:
                opened.add(rule_id)
        return opened

    def record_delivery(self, event_id: int, delivery: dict[str, Any]) -> None:
        raw = self._redis.hget(EVENTS, str(event_id))
        if raw is None:
            return
        data = json.loads(raw)
        data["delivery"] = delivery
        self._redis.hset(EVENTS, str(event_id), json.dumps(data))

    def _events(self, ids: list[bytes]) -> list[AlertEvent]:
        if not ids:
            return []
        raws = self._redis.hmget(EVENTS, ids)
        return [AlertEvent.from_json(json.loads(raw)) for raw in raws if raw is not None]

    def since(self, since: int = 0, limit: int = 200) -> list[AlertEvent]:
        if since >= TIME_MS_FLOOR:
            return select(self._events(self._redis.zrange(EVENT_IDS, 0, -1)), since, limit)
        ids = self._redis.zrangebyscore(EVENT_IDS, f"({since}", "+inf")
        return select(self._events(ids[-limit:]), since, limit)

    def fired_trade_ids(self) -> dict[tuple[str, str], int]:
        """Per (rule, symbol): the high-water marks every worker raised (they outlive the
        events trimmed away). Every stored event on a trade raised its mark (``_CLAIM``),
        so the marks alone cover the events: they are not read back."""
        fired: dict[tuple[str, str], int] = {}
        for field, trade_id in self._redis.hgetall(FIRED).items():
            rule_id, _, symbol = field.decode().partition("|")
            fired[(rule_id, symbol)] = int(trade_id)
        return fired

    def oldest_id(self) -> int | None:
        first = self._redis.zrange(EVENT_IDS, 0, 0)
        return int(first[0]) if first else None
