"""``Poller``: one daemon thread calling one step again and again until stopped — the loop
the push side's book relay, alert relay, Redis reader and stalled-client reaper share. A
``nudge`` runs the next step at once instead of after the interval (a source that can say
when it changed needs no short interval)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Poller:
    """Calls ``step`` in a daemon thread named ``name``, waiting ``interval_s`` after each
    call (0: none, for a step that blocks itself). A step raising one of ``errors`` is
    counted in ``failures``, logged once per run of failures, and retried after
    ``retry_s`` (default ``interval_s``)."""

    def __init__(
        self,
        name: str,
        step: Callable[[], object],
        interval_s: float,
        *,
        retry_s: float | None = None,
        errors: tuple[type[BaseException], ...] = (Exception,),
    ) -> None:
        self.name = name
        self.step = step
        self.interval_s = interval_s
        self.retry_s = interval_s if retry_s is None else retry_s
        self.errors = errors
        self.failures = 0
        self._stop = threading.Event()
        self._nudged = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the thread (once; later calls do nothing)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """End the loop after the current step."""
        self._stop.set()
        self._nudged.set()

    def nudge(self) -> None:
        """Run the next step now (or right after the current one); never waits."""
        self._nudged.set()

    def _run(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                self.step()
            except self.errors:
                self.failures += 1
                if not failing:
                    log.warning("%s: step failed; retrying", self.name, exc_info=True)
                failing = True
                wait = self.retry_s
            else:
                failing = False
                wait = self.interval_s
            self._nudged.wait(wait)
            self._nudged.clear()
            if self._stop.is_set():
                return
