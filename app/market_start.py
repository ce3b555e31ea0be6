"""The market side of ``python -m app run`` — its source (Binance, or the local exchange
replaying a recording), the history recorder, the alert tap, the feed and the perpetual
twin — started on a thread of its own while the web server comes up.

Nothing the page needs first waits for it: the history API answers past ranges (the last
hour's trades and candles) from the store on disk, and the panels fed by the feed say
"waiting" until the feed publishes. Starting the source is most of the start's time after
the imports — the local exchange loads its recording and, resuming mid-pass, plays it up to
the stored trades; ``--source auto`` first asks Binance — so the server no longer waits for
it. ``on_failure`` is called (from the starting thread) when the start raises; what had
started by then is stopped by ``stop``, as everything else is."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from app import market_source
from app.alerting import Alerts, start_tap
from app.config import Settings
from app.history_setup import push_history, start_history
from app.ingest import build_feed
from app.perp_twin_setup import start_perp_twin
from services.market.perp_twin import PerpTwin
from services.push.service import PushService
from services.store import MarketStore

log = logging.getLogger(__name__)

STOP_WAIT_S = 30.0
"""How long ``stop`` waits for a start still under way (a first run importing the
recording into the history) before stopping what has started."""


class MarketStart:
    """Starts the market side on a thread (``start``) and stops what started (``stop``).

    ``label``: how the console names the source once known (``REPLAY <recording> (<date>)``
    or ``LIVE``); ``failed``: the start raised (logged, and ``on_failure`` called)."""

    def __init__(
        self,
        settings: Settings,
        store: MarketStore,
        alerts: Alerts,
        push: PushService,
        twin: PerpTwin | None,
        on_failure: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.store = store
        self.alerts = alerts
        self.push = push
        self.twin = twin
        self.on_failure = on_failure
        self.failed = False
        self.label = ""
        self._stopping = threading.Event()
        self._started: list[Callable[[], None]] = []  # how to stop each, in start order
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> MarketStart:
        self._thread = threading.Thread(target=self._run, name="tapescope-market-start")
        self._thread.daemon = True
        self._thread.start()
        return self

    def _started_one(self, stop: Callable[[], None]) -> None:
        with self._lock:
            self._started.append(stop)

    def _run(self) -> None:
        settings = self.settings
        try:
            source = market_source.resolve(settings, records_history=settings.history)
            self._started_one(source.close)
            history = start_history(settings, source)
            if history is not None:
                self._started_one(history.stop)
            self.push.use_history(push_history(settings, source))
            tap = start_tap(self.alerts, market=str(source.endpoints.market))
            self._started_one(tap.stop)
            feed = build_feed(settings, source, self.store, history, (tap, self.push.tap))
            feed.start_in_thread()
            self._started_one(feed.stop)
            twin_source = start_perp_twin(settings, source, self.twin)
            if self.twin is not None and twin_source is not None:
                self._started_one(twin_source.close)
                self._started_one(self.twin.stop)
            label = f"{source.source} {source.recording} ({source.recording_date})".strip()
            self.label = label if source.source == "REPLAY" else "LIVE"
            where = f"http://{settings.host}:{settings.port}/"
            print(f"Tapescope on {where} — {self.label}", flush=True)
        except Exception:
            if self._stopping.is_set():
                return  # stopped while starting: what failed was being torn down
            log.exception("the market side could not start")
            self.failed = True
            self.on_failure()

    def stop(self) -> None:
        """Stop what started, the last started first (the feed before its taps' services,
        as before); waits up to ``STOP_WAIT_S`` for a start under way."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_S)
        with self._lock:
            started, self._started = self._started, []
        for stop in reversed(started):
            try:
                stop()
            except Exception:
                log.exception("stopping %s failed", getattr(stop, "__qualname__", stop))
