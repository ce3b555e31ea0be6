"""The event loop the long-running market processes run on (the ingest worker, the feed of
``python -m app run``, the local exchange): uvloop's where it is installed, asyncio's own
loop otherwise.

uvloop (libuv under a Cython loop) schedules callbacks and reads sockets for less CPU than
asyncio's selector loop: the WebSocket client's frame path measured ≈ 1.4–1.6× less CPU a
frame on it (``bench/bench_ws_frames.py``, paced at 3,000 frames/s), and a worker streaming
the whole market spends most of its core there. It is a pinned dependency on Linux only
(requirements.txt); on any platform without it, or with ``TAPESCOPE_EVENT_LOOP=asyncio`` in
the environment (to compare, or to rule the loop out), asyncio's loop is used and
everything works the same.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

ENV = "TAPESCOPE_EVENT_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """What makes a new event loop here: ``uvloop.new_event_loop`` when uvloop is
    importable and not turned off by ``TAPESCOPE_EVENT_LOOP=asyncio``, else
    ``asyncio.new_event_loop``."""
    if os.environ.get(ENV, "").strip().lower() == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop of ``loop_factory``'s kind (for a loop run in a thread)."""
    return loop_factory()()


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on a loop of ``loop_factory``'s kind."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
