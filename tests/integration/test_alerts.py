"""Alerts end to end on real parts: the recording replayed through the local exchange
into the real feed with an AlertTap, webhooks to real HTTP servers on loopback, rules and
events reopened from their files (and from a real redis-server) as after a restart."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from services.alerts.delivery import Dispatcher, Retry
from services.alerts.events import FileEventLog
from services.alerts.rule_store import FileRuleStore
from services.alerts.rules import validate
from services.alerts.tap import AlertTap
from services.alerts.webhook_policy import WebhookPolicy
from services.replay.exchange import LocalExchange
from tests.integration.test_feed_replay import RecordingTap, _until, running_feed
from tests.recorded_trades import recorded_trades, trade_view

SYMBOLS = {"BTCUSDT", "ETHUSDT", "DOTUSDT"}
LOOPBACK = WebhookPolicy(("127.0.0.1",))
FAST_RETRY = Retry(attempts=4, backoff_s=0.05, backoff_cap_s=0.2, timeout_s=1.0)


class Hook:
    """A real HTTP server on loopback that answers ``fail_first`` requests with 500 (or
    never, with ``hang``), then 200, and keeps every body with its arrival time."""

    def __init__(self, fail_first: int = 0, hang: bool = False) -> None:
        self.bodies: list[dict] = []
        self.arrivals: list[float] = []
        self.requests = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.requests += 1
                if hang:
                    time.sleep(3)
                    return
                status = 500 if hook.requests <= fail_first else 200
                if status == 200:
                    hook.bodies.append(body)
                    hook.arrivals.append(time.perf_counter())
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _rule(**payload):
    return validate(payload, SYMBOLS, check_url=LOOPBACK.check)


def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _plain_crossings(prices: list[float], level: float) -> int:
    """Crossings either way (re-arm at once): a plain scan of consecutive prices."""
    return sum(1 for a, b in pairwise(prices) if a < level <= b or a > level >= b)


@pytest.mark.timeout(90)
async def test_replayed_recording_fires_exactly_the_expected_events_across_reconnects(
    recordings, tmp_path
):
    recorded = recorded_trades(recordings["spot_2021"])
    btc_prices = [t.price for t in recorded["BTCUSDT"]]
    level = float(np.median(btc_prices))
    hook = Hook()
    rules = FileRuleStore(tmp_path)
    big = _rule(kind="large_trade", symbol="BTCUSDT", params={"min_notional": 5000},
                webhook=hook.url)  # fmt: skip
    sells = _rule(kind="large_trade", symbol="*", params={"min_notional": 3000, "side": "sell"})
    cross = _rule(kind="price", symbol="BTCUSDT", params={"level": level, "direction": "any"})
    for rule in (big, sells, cross):
        rules.put(rule)
    events = FileEventLog(tmp_path)
    tap = AlertTap(rules, Dispatcher(events, LOOPBACK, FAST_RETRY)).start()
    seen = RecordingTap()
    try:
        async with (
            LocalExchange(recordings["spot_2021"], speed=12, loop=False) as exchange,
            running_feed(exchange, taps=[seen, tap]) as (_feed, _store),
        ):
            last_ids = {s: recorded[s][-1].trade_id for s in SYMBOLS}
            for _ in range(2):  # forced reconnects while trades flow
                await _until(lambda: len(seen.trade_ids.get("BTCUSDT", ())) > 300, 20, "trades")
                await asyncio.sleep(1.5)
                assert exchange.faults.drop_connections() > 0
            await _until(
                lambda: all(seen.trade_ids.get(s, [0])[-1] == last_ids[s] for s in SYMBOLS),
                60,
                "every trade of the recording",
            )
        tap.dispatcher.drain()
        _wait(lambda: len(hook.bodies) == len([e for e in events.since(0, 10_000)
                                               if e.rule_id == big.id]))  # fmt: skip
    finally:
        tap.stop()
        hook.close()
    fired = events.since(0, 10_000)[::-1]
    for symbol in SYMBOLS:  # the tap got each trade once, none missed across reconnects
        ids = seen.trade_ids[symbol]
        assert ids == list(range(ids[0], last_ids[symbol] + 1))
    for rule in (big, sells):
        for symbol in SYMBOLS:
            first = seen.trade_ids[symbol][0]
            want = [
                t.trade_id
                for t in recorded[symbol]
                if t.trade_id >= first
                and t.notional >= rule.params["min_notional"]
                and (rule.params["side"] is None or not t.taker_buy)
                and (rule.symbol in ("*", symbol))
            ]
            got = [
                e.details["trade_id"] for e in fired if e.rule_id == rule.id and e.symbol == symbol
            ]
            assert got == want, (rule.symbol, symbol)
    assert [e for e in fired if e.rule_id == big.id]
    delivered = sorted(hook.bodies, key=lambda b: b["id"])
    assert [b["details"]["trade_id"] for b in delivered] == [
        e.details["trade_id"] for e in fired if e.rule_id == big.id
    ]
    assert set(delivered[0]) == {"id", "rule_id", "kind", "symbol", "time_ms", "details"}
    assert set(delivered[0]["details"]) == {"trade_id", "price", "qty", "notional", "side"}
    assert all(e.delivery["webhook"]["status"] == "sent" for e in fired if e.rule_id == big.id)
    first = seen.trade_ids["BTCUSDT"][0]
    prices = [t.price for t in recorded["BTCUSDT"] if t.trade_id >= first]
    crossings = [e for e in fired if e.rule_id == cross.id]
    assert len(crossings) == _plain_crossings(prices, level) > 1
    assert [e.details["direction"] for e in crossings][:2] in (["up", "down"], ["down", "up"])


def test_webhooks_retry_on_500_and_a_dead_endpoint_delays_no_one(tmp_path):
    flaky, dead, good = Hook(fail_first=2), Hook(hang=True), Hook()
    events = FileEventLog(tmp_path)
    dispatcher = Dispatcher(events, LOOPBACK, FAST_RETRY).start()
    rules = [
        _rule(kind="large_trade", symbol="*", params={"min_notional": 1}, webhook=hook.url)
        for hook in (dead, flaky, good)
    ]
    from services.alerts.firing import Firing

    details = {"trade_id": 7, "price": 1.0, "qty": 2.0, "notional": 2.0, "side": "buy"}
    try:
        started = time.perf_counter()
        dispatcher.submit([Firing(rule, "BTCUSDT", 1000, details) for rule in rules])
        _wait(lambda: good.bodies, 2.0)
        assert good.arrivals[0] - started < 0.5  # not held behind the dead endpoint
        _wait(lambda: flaky.bodies, 3.0)
        assert flaky.requests == 3

        def outcomes():
            return {e.rule_id: e.delivery["webhook"] for e in events.since()}

        _wait(lambda: outcomes()[rules[1].id]["status"] != "pending")
        by_rule = outcomes()
        assert by_rule[rules[0].id]["status"] == "pending"  # the dead one is still being tried
        assert by_rule[rules[1].id] == {**by_rule[rules[1].id], "status": "sent", "attempts": 3}
        assert by_rule[rules[2].id]["status"] == "sent"
        assert good.bodies[0]["details"] == details
    finally:
        dispatcher.stop(timeout_s=0.2)
        for hook in (flaky, dead, good):
            hook.close()


def test_a_webhook_that_keeps_failing_is_given_up_and_says_so(tmp_path):
    down = Hook(fail_first=99)
    events = FileEventLog(tmp_path)
    dispatcher = Dispatcher(events, LOOPBACK, FAST_RETRY).start()
    from services.alerts.firing import Firing

    rule = _rule(kind="large_trade", symbol="*", params={"min_notional": 1}, webhook=down.url)
    try:
        dispatcher.submit([Firing(rule, "BTCUSDT", 1000, {"trade_id": 1})])
        _wait(
            lambda: events.since() and events.since()[0].delivery["webhook"]["status"] == "failed"
        )
        outcome = FileEventLog(tmp_path).since()[0].delivery["webhook"]
        assert outcome["attempts"] == 4 and outcome["http_status"] == 500 and down.requests == 4
    finally:
        dispatcher.stop()
        down.close()


def _replay_through_tap(tap: AlertTap, recorded, symbol: str) -> None:
    """Every trade of ``symbol`` handed to the tap one at a time, as the feed does live."""
    for trade in recorded[symbol]:
        tap.on_trades(symbol, trade_view(symbol, [trade]))


def _restart_survival(recordings, open_stores) -> None:
    recorded = recorded_trades(recordings["spot_2021"])
    rules, events = open_stores()
    rule = _rule(kind="large_trade", symbol="ETHUSDT", params={"min_notional": 4000})
    rules.put(rule)
    tap = AlertTap(rules, Dispatcher(events)).start()
    _replay_through_tap(tap, recorded, "ETHUSDT")
    _wait(
        lambda: len(events.since(0, 1000)) == sum(t.notional >= 4000 for t in recorded["ETHUSDT"])
    )
    before = [e.to_json() for e in events.since(0, 1000)]
    tap.stop()
    rules, events = open_stores()  # a restarted process
    assert rules.all() == [rule]
    assert [e.to_json() for e in events.since(0, 1000)] == before
    tap = AlertTap(rules, Dispatcher(events)).start()
    _replay_through_tap(tap, recorded, "ETHUSDT")  # the warm-up hands old trades over again
    tap.dispatcher.drain()
    time.sleep(0.1)
    assert [e.to_json() for e in events.since(0, 1000)] == before
    tap.stop()


def test_rules_and_events_survive_a_restart_in_files(recordings, tmp_path: Path):
    def open_stores():
        return FileRuleStore(tmp_path), FileEventLog(tmp_path)

    _restart_survival(recordings, open_stores)


@pytest.mark.redis
def test_rules_and_events_survive_a_restart_in_redis(recordings):
    import redis

    from services.alerts.redis_backend import RedisEventLog, RedisRuleStore
    from tests.redis_server import RedisServer

    with RedisServer() as server:
        redis.Redis.from_url(server.url).flushdb()

        def open_stores():
            return RedisRuleStore(server.url), RedisEventLog(server.url)

        _restart_survival(recordings, open_stores)
        # a web worker writes through its own connection; the ingest worker's tap reloads
        web_rules = RedisRuleStore(server.url)
        tap = AlertTap(RedisRuleStore(server.url), Dispatcher(RedisEventLog(server.url)))
        tap.refresh()
        added = _rule(kind="large_trade", symbol="*", params={"min_notional": 1})
        web_rules.put(added)
        assert tap.refresh() and added.id in tap.index.rules
        web_rules.delete(added.id)
        assert tap.refresh() and added.id not in tap.index.rules


@pytest.mark.redis
def test_a_shard_handed_over_between_workers_fires_each_event_exactly_once(recordings):
    """Worker A fires on BTCUSDT's trades, then the shard moves to worker B (running since
    before A fired, so its own memory knows none of A's events) whose warm-up hands it the
    last 40 trades again: Redis holds exactly the plain scan's events, once each."""
    import redis

    from services.alerts.redis_backend import RedisEventLog, RedisRuleStore
    from tests.redis_server import RedisServer

    recorded = recorded_trades(recordings["spot_2021"])["BTCUSDT"]
    threshold = sorted(t.notional for t in recorded)[len(recorded) * 4 // 5]
    expected = [t.trade_id for t in recorded if t.notional >= threshold]
    with RedisServer() as server:
        redis.Redis.from_url(server.url).flushdb()
        rule = _rule(kind="large_trade", symbol="BTCUSDT", params={"min_notional": threshold})
        RedisRuleStore(server.url).put(rule)
        workers = [
            AlertTap(RedisRuleStore(server.url), Dispatcher(RedisEventLog(server.url))).start()
            for _ in range(2)
        ]
        a, b = workers
        cut = len(recorded) // 2
        for trade in recorded[:cut]:
            a.on_trades("BTCUSDT", trade_view("BTCUSDT", [trade]))
        a.dispatcher.drain()
        for trade in recorded[cut - 40 :]:  # the new owner's warm-up overlaps
            b.on_trades("BTCUSDT", trade_view("BTCUSDT", [trade]))
        b.dispatcher.drain()
        events = RedisEventLog(server.url)
        _wait(lambda: len(events.since(0, 10_000)) >= len(expected))
        time.sleep(0.2)
        fired = sorted(e.details["trade_id"] for e in events.since(0, 10_000))
        for worker in workers:
            worker.stop()
        assert fired == expected
        assert any(t.trade_id in expected for t in recorded[cut - 40 : cut])  # overlap mattered
        assert events.fired_trade_ids()[(rule.id, "BTCUSDT")] == expected[-1]
