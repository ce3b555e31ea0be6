"""``Poller``: the shared step loop of the push side's relays, reader and reaper."""

from __future__ import annotations

import threading

from services.push.poller import Poller


def test_a_failing_step_is_counted_retried_and_the_loop_stops_when_asked() -> None:
    calls: list[int] = []
    recovered = threading.Event()

    def step() -> None:
        calls.append(len(calls))
        if len(calls) <= 3:
            raise ConnectionError("down")
        recovered.set()

    poller = Poller("test-poller", step, 0.0, retry_s=0.01, errors=(ConnectionError,))
    poller.start()
    poller.start()  # idempotent: still one thread
    assert recovered.wait(5), "the step is retried after a failure"
    poller.stop()
    assert poller.failures == 3
    assert sum(t.name == "test-poller" for t in threading.enumerate()) <= 1
