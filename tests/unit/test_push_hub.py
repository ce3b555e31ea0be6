"""The push hub as pure logic: resumes join the archives, the ring and live trades with no
trade lost or repeated; a full queue cuts its client; prices never show a crossed book."""

from __future__ import annotations

import time

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from services.market.views import SyncState, TradeView
from services.push.archive import between
from services.push.hub import PushHub
from services.push.messages import top_of_book


def _view(ids: list[int], symbol: str = "BTCUSDT") -> TradeView:
    n = len(ids)
    return TradeView(
        symbol=symbol,
        trade_id=np.asarray(ids, dtype=np.int64),
        time_ms=np.arange(n, dtype=np.int64),
        price=np.full(n, 100.0),
        qty=np.full(n, 0.5),
        side=np.ones(n),
    )


class ListArchive:
    """Keeps every trade ever published (what the trade window or history would hold)."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    def trades_between(self, symbol, after_id, before_id):
        return between(_view(self.ids, symbol), after_id, before_id)


def _drain(sub, after_id):
    """What the stream sender would send: trade ids of each message, trimmed above the last."""
    import orjson

    got: list[int] = []
    last = after_id
    while (batch := sub.take(0)) is not None:
        message = batch.encoded(last)
        if message is not None:
            got.extend(t["id"] for t in orjson.loads(message)["trades"])
        last = batch.last_id if last is None else max(last, batch.last_id)
    return got


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 7), min_size=1, max_size=40),
    ring=st.integers(1, 30),
    split=st.integers(0, 40),
    resume_at=st.integers(-1, 200),
)
def test_a_resume_gets_every_trade_after_from_id_once_in_order(sizes, ring, split, resume_at):
    archive = ListArchive()
    hub = PushHub([archive], ring_trades=ring, max_queue=10_000)
    next_id = 0
    batches = []
    for size in sizes:
        batches.append(list(range(next_id, next_id + size)))
        next_id += size
    before, after = batches[:split], batches[split:]
    for ids in before:
        archive.ids.extend(ids)
        hub.publish_trades("BTCUSDT", _view(ids))
    from_id = min(resume_at, next_id)
    sub = hub.subscribe_trades("BTCUSDT", from_id)
    for ids in after:
        archive.ids.extend(ids)
        hub.publish_trades("BTCUSDT", _view(ids))
    assert _drain(sub, from_id) == list(range(from_id + 1, next_id))


def test_live_only_subscription_starts_with_the_next_trade():
    hub = PushHub()
    hub.publish_trades("BTCUSDT", _view([1, 2, 3]))
    sub = hub.subscribe_trades("BTCUSDT")
    hub.publish_trades("BTCUSDT", _view([4, 5]))
    assert _drain(sub, None) == [4, 5]


def test_a_full_queue_cuts_its_client_and_not_the_others():
    hub = PushHub(max_queue=3)
    slow = hub.subscribe_trades("BTCUSDT")
    fast = hub.subscribe_trades("BTCUSDT")
    for i in range(10):
        hub.publish_trades("BTCUSDT", _view([i]))
        assert fast.take(0) is not None
    assert slow.cut_reason is not None and "slow consumer" in slow.cut_reason
    assert slow.take(0) is None
    assert fast.cut_reason is None
    assert hub.stats().cut == 1
    assert hub.stats().subscribers["trades"] == 1


def test_a_stalled_send_is_aborted_by_the_reaper():
    hub = PushHub(stall_s=5.0)
    sub = hub.subscribe_prices("BTCUSDT")
    aborted = []
    sub.abort = lambda: aborted.append(True)
    sub.sending(True)
    assert hub.reap_stalled(sub.sending_since + 1.0) == 0
    assert hub.reap_stalled(sub.sending_since + 5.0) == 1
    assert aborted == [True]
    assert "blocked" in sub.cut_reason
    assert hub.stats().subscribers["prices"] == 0


def test_prices_coalesce_to_the_newest_value():
    hub = PushHub()
    sub = hub.subscribe_prices("BTCUSDT")
    for bid in (1.0, 2.0, 3.0):
        hub.publish_prices(
            top_of_book("BTCUSDT", SyncState.LIVE, (bid, 1.0), (4.0, 1.0), None, None, 0)
        )
    version, message = sub.newer_than(0, 0)
    assert version == 3 and b'"best_bid":3.0' in message
    assert sub.newer_than(version, 0) == (version, None)


@given(
    bid=st.floats(1, 1e6),
    ask=st.floats(1, 1e6),
    state=st.sampled_from(list(SyncState)),
)
def test_prices_never_show_a_crossed_or_unsynced_book(bid, ask, state):
    prices = top_of_book("X", state, (bid, 1.0), (ask, 2.0), 5.0, 7, 0)
    if prices.best_bid is not None:
        assert state is SyncState.LIVE and prices.best_bid < prices.best_ask
    else:
        assert state is not SyncState.LIVE or bid >= ask


def test_a_resume_marks_what_it_replays_and_not_what_is_live():
    hub = PushHub(ring_trades=100)
    for start in range(0, 30, 3):
        hub.publish_trades("BTCUSDT", _view(list(range(start, start + 3))))
    sub = hub.subscribe_trades("BTCUSDT", 10)
    hub.publish_trades("BTCUSDT", _view([30, 31]))
    first, live = sub.take(0), sub.take(0)
    assert first.replay and first.trades.trade_id.tolist() == list(range(11, 30))
    assert not live.replay and live.trades.trade_id.tolist() == [30, 31]


def test_the_alert_relay_publishes_new_logged_events_oldest_first():
    from dataclasses import dataclass

    from services.push.alert_relay import AlertRelay
    from services.push.events import EventHub

    @dataclass
    class Event:
        id: int
        symbol: str

        def to_json(self):
            return {"id": self.id, "symbol": self.symbol}

    class Log:
        def __init__(self):
            self.events = [Event(1, "OLD")]

        def since(self, since=0, limit=200):
            return sorted((e for e in self.events if e.id > since), key=lambda e: -e.id)[:limit]

    log, hub = Log(), EventHub(keep=0)
    relay = AlertRelay(log, hub)
    sub = hub.subscribe()
    assert relay.poll_once() == 0  # starts after what is already logged
    log.events += [Event(2, "BTCUSDT"), Event(3, "ETHUSDT")]
    assert relay.poll_once() == 2
    got = [sub.take(0), sub.take(0)]
    assert [b'"id":2' in m for m in got] == [True, False]
    assert b'"type":"alert"' in got[1] and relay.poll_once() == 0


def test_the_alert_relay_reads_an_in_process_log_on_each_append_not_on_a_timer():
    from dataclasses import dataclass

    from services.push.alert_relay import AlertRelay
    from services.push.events import EventHub

    @dataclass
    class Event:
        id: int

        def to_json(self):
            return {"id": self.id}

    class Log:
        """Like the file log: tells its ``appended`` listeners of each new event."""

        def __init__(self):
            self.events: list[Event] = []
            self.appended: list = []

        def append(self, event_id: int) -> None:
            event = Event(event_id)
            self.events.append(event)
            for listener in self.appended:
                listener(event)

        def since(self, since=0, limit=200):
            return [e for e in self.events if e.id > since][:limit]

    log, hub = Log(), EventHub(keep=0)
    relay = AlertRelay(log, hub, interval_s=0.25, idle_s=60.0)
    assert relay.on_append and len(log.appended) == 1
    sub = hub.subscribe()
    relay.start()
    try:
        deadline = time.monotonic() + 5
        while relay.last_id is None:  # the first read: after what is already logged
            assert time.monotonic() < deadline
            time.sleep(0.01)
        for event_id in (1, 2):
            log.append(event_id)
            assert sub.take(5) == f'{{"id":{event_id},"type":"alert"}}'.encode()
    finally:
        relay.stop()
    assert not AlertRelay(object(), hub).on_append  # e.g. the Redis log: polled
