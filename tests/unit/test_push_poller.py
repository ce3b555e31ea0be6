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


def test_a_nudge_runs_the_next_step_at_once_instead_of_after_the_interval() -> None:
    calls: list[float] = []
    ran = threading.Semaphore(0)

    def step() -> None:
        calls.append(len(calls))
        ran.release()

    poller = Poller("test-nudged", step, 60.0)
    poller.start()
    assert ran.acquire(timeout=5)  # the first step runs at start
    poller.nudge()
    assert ran.acquire(timeout=5), "a nudge does not wait for the 60 s interval"
    poller.stop()
    assert len(calls) == 2
