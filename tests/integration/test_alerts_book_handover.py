"""Wall and imbalance events across a sharded hand-over, on a real redis-server: each event
carries the update id ``u`` of the diff it was decided on, and the Redis claim lets exactly
one worker store the events of one (rule, symbol, diff); an imbalance episode the old owner
fired on and still open at the take is adopted by the new owner, not fired again.

Two workers' taps (each a real ``Feed`` with an ``AlertThread``, its own ``RedisEventLog``
and dispatcher) share one Redis. Worker A takes the 2021 recording from its start; worker
B takes over at 40 % with a snapshot of A's book (as its REST snapshot would be) and both
evaluate the same frames until A stops at 60 %."""

from __future__ import annotations

import itertools
import time

import pytest

from services.alerts.alert_thread import AlertThread
from services.alerts.delivery import Dispatcher
from services.alerts.firing import Firing
from services.alerts.redis_backend import RedisEventLog, RedisRuleStore
from services.alerts.tap import AlertTap
from services.binance.messages import DepthSnapshot
from tests.unit.test_alerts_recorded_equivalence import RECORDED, book_rules, messages

pytestmark = pytest.mark.redis


class Claims(RedisEventLog):
    """A worker's event log that remembers each firing it tried to store, and whether the
    claim let it."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.tried: list[tuple[tuple, bool]] = []
        self.ends: list[tuple[str, str, int]] = []

    def end_episode(self, rule, symbol: str, update_id: int) -> None:
        super().end_episode(rule, symbol, update_id)
        self.ends.append((rule.id, symbol, update_id))

    def append(self, firing: Firing):
        event = super().append(firing)
        self.tried.append((key(firing.rule.id, firing.symbol, firing.details), event is not None))
        return event


def key(rule_id: str, symbol: str, details: dict) -> tuple:
    return rule_id, symbol, details["update_id"], details.get("event"), details.get("price")


def test_two_overlapping_workers_store_each_book_event_once():
    import redis

    from bench.bench_alerts import new_feed
    from tests.redis_server import RedisServer

    with RedisServer() as server:
        redis.Redis.from_url(server.url).flushdb()
        store = RedisRuleStore(server.url)
        for symbol in RECORDED:
            for rule in book_rules(
                symbol, [(0.9, 5.0, "any", 0.5)], [(0.2, 5.0, "any", 0.0)], cooldown_s=0.0
            ):
                store.put(rule)
        logs = [Claims(server.url), Claims(server.url)]
        taps = [AlertTap(RedisRuleStore(server.url), Dispatcher(log)).start() for log in logs]
        threads = [AlertThread(tap).start() for tap in taps]
        feed_a, feed_b = new_feed([threads[0]]), new_feed([threads[1]])
        frames = messages()
        start_b, stop_a = len(frames) * 2 // 5, len(frames) * 3 // 5
        for n, (kind, item) in enumerate(frames):
            if n == start_b:
                # B syncs before it takes (make-before-break): A's firings so far are stored
                assert threads[0].drain()
                taps[0].dispatcher.drain()
                time.sleep(0.2)  # the dispatcher's last item, taken off its queue, stored
                for symbol in RECORDED:
                    book = feed_a._symbols[symbol].book
                    snapshot = DepthSnapshot(
                        book.last_update_id, book.book.top_bids(5000), book.book.top_asks(5000)
                    )
                    feed_b._symbols[symbol].book.on_snapshot(snapshot)
                    feed_b._tap_book(symbol, feed_b._symbols[symbol])
            for feed, first, last in ((feed_a, 0, stop_a), (feed_b, start_b, len(frames))):
                if not first <= n < last:
                    continue
                if kind == "ws":
                    feed._on_frame(item)
                elif feed is feed_a:
                    symbol, snapshot = item
                    feed._symbols[symbol].book.on_snapshot(snapshot)
                    feed._tap_book(symbol, feed._symbols[symbol])
        for thread in threads:
            assert thread.drain() and thread.errors == 0
            thread.stop()  # and its dispatcher, once every queued firing is stored
        events = RedisEventLog(server.url).since(0, 10_000)
        stored = [key(e.rule_id, e.symbol, e.details) for e in events]

    a, b = logs[0].tried, logs[1].tried
    assert all(isinstance(k[2], int) for k, _ in a + b)
    assert len(stored) == len(set(stored))  # no event twice
    assert {k for k, ok in a + b if ok} == set(stored)
    both = {k for k, _ in a} & {k for k, _ in b}
    assert len(both) > 100  # the two owners fired the same events on the same diffs
    for mine, theirs in ((a, b), (b, a)):
        stored_by_them = {k for k, ok in theirs if ok}
        # a firing turned away is one the other worker stored; none is lost
        assert {k for k, ok in mine if not ok} <= stored_by_them
        assert all(ok for k, ok in mine if k not in both)
    assert any(not ok for _, ok in a + b)
    assert any(k not in both for k, _ in a) and any(k not in both for k, _ in b)
    ends = logs[0].ends + logs[1].ends
    _imbalance_events_once_per_episode(stored, ends)


def _imbalance_events_once_per_episode(stored: list, ends: list) -> None:
    """Per (rule, symbol), two stored imbalance events have an episode end between them
    (seen by either worker): an episode open at the take is not fired again by the new
    owner, whose own hold would have fired it at another update id."""
    by_rule: dict[tuple, list[int]] = {}
    for rule, symbol, u, event, _ in stored:
        if event is None:
            by_rule.setdefault((rule, symbol), []).append(u)
    end_us: dict[tuple, list[int]] = {}
    for rule, symbol, u in ends:
        end_us.setdefault((rule, symbol), []).append(u)
    assert sum(len(us) for us in by_rule.values()) > 20
    for pair, us in by_rule.items():
        for first, second in itertools.pairwise(sorted(us)):
            between = [u for u in end_us.get(pair, ()) if first < u <= second]
            assert between, f"{pair}: events at {first} and {second} in one episode"
