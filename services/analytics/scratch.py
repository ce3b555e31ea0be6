"""Per-thread scratch arrays for the intermediates of window-sized computations.

A metric over a 100k-trade window needs several 0.4–0.8 MB temporaries. Allocated fresh on
every call, they come back from the kernel as new pages whenever the allocator has
returned the previous ones (glibc trims the top of the heap after large frees), and the
page faults then cost more than the arithmetic. Each thread instead keeps one buffer per
slot and dtype, grown on demand and reused: never shared between threads, never returned
to the caller.

The metrics share the slots (``"a"`` for a function's first temporary of a dtype, ``"b"``
for a second), so one set of buffers serves them all and stays in cache between them.
That is safe because no metric holds a scratch array across a call to another metric.
"""

from __future__ import annotations

import threading

import numpy as np

_LOCAL = threading.local()


def scratch(slot: str, n: int, dtype: type | np.dtype) -> np.ndarray:
    """A length-``n`` array of ``dtype`` owned by the calling thread under ``slot``, with
    undefined contents; it stays valid until the same thread asks for ``slot`` and
    ``dtype`` again, so nothing returned to a caller may view it."""
    buffers: dict[tuple[str, np.dtype], np.ndarray] | None = getattr(_LOCAL, "buffers", None)
    if buffers is None:
        buffers = _LOCAL.buffers = {}
    key = (slot, np.dtype(dtype))
    buf = buffers.get(key)
    if buf is None or buf.shape[0] < n:
        buf = np.empty(max(n, 2 * buf.shape[0] if buf is not None else n), dtype=key[1])
        buffers[key] = buf
    return buf[:n]
