"""Scratch arrays: per thread, per slot, grown on demand."""

from __future__ import annotations

import threading

import numpy as np

from services.analytics.scratch import scratch


def test_slots_are_reused_grown_and_kept_apart():
    a = scratch("test.a", 10, np.float64)
    assert a.shape == (10,) and a.dtype == np.float64
    assert np.shares_memory(a, scratch("test.a", 5, np.float64))
    assert not np.shares_memory(a, scratch("test.b", 10, np.float64))
    assert not np.shares_memory(a, scratch("test.a", 10, np.int32))
    bigger = scratch("test.a", 1000, np.float64)
    assert bigger.shape == (1000,)


def test_threads_get_their_own_arrays():
    mine = scratch("test.thread", 100, np.float64)
    theirs: list[np.ndarray] = []
    worker = threading.Thread(target=lambda: theirs.append(scratch("test.thread", 100, np.float64)))
    worker.start()
    worker.join()
    assert not np.shares_memory(mine, theirs[0])
