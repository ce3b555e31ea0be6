"""``python -m app run`` starts its market side (source, history, alert tap, feed) on a
thread beside the web server (``app.market_start``): a replay's feed comes up and publishes,
the history records it, and ``stop`` stops all of it; a start that fails is reported once
(the process then ends) and what had started is stopped too. Real local exchange on
loopback, real feed, real Parquet files."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from app.alerting import make_alerts
from app.config import Settings
from app.market_start import MarketStart
from services.history.reader import HistoryReader
from services.market.perp_twin import PerpTwin
from services.push.service import PushService
from services.replay.recording import SPOT_2021
from services.store import MemoryStore

SYMBOL = "BTCUSDT"


def _settings(tmp_path: Path, **changes) -> Settings:
    return Settings(
        source="replay",
        recording=SPOT_2021,
        speed="max",
        symbols=(SYMBOL,),
        history_dir=tmp_path / "history",
        alerts_dir=tmp_path / "alerts",
        exchange_port=0,
        **changes,
    )


def _threads(prefix: str, before: set[threading.Thread]) -> list[threading.Thread]:
    """The live threads named ``prefix…`` started since ``before`` (other tests of the same
    session may leave their own daemon exchanges running)."""
    return [
        t
        for t in threading.enumerate()
        if t.name.startswith(prefix) and t.is_alive() and t not in before
    ]


def _until(check, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_market_side_starts_beside_the_server_and_stops(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    store = MemoryStore()
    failures: list[bool] = []
    before = set(threading.enumerate())
    market = MarketStart(
        settings, store, make_alerts(settings), PushService.embedded(store), None,
        lambda: failures.append(True),
    ).start()  # fmt: skip
    try:
        _until(lambda: store.snapshot(SYMBOL) is not None)
        assert market.label.startswith("REPLAY ") and not market.failed and not failures
        _until(lambda: bool(HistoryReader(settings.history_dir).symbols()))
    finally:
        market.stop()
    assert not _threads("tapescope-feed", before)
    assert not _threads("tapescope-exchange", before)
    assert not _threads("tapescope-market-start", before)


def test_a_failed_start_is_reported_once_and_what_started_is_stopped(tmp_path: Path) -> None:
    # A spot recording as the perpetual twin's: the source, history, tap and feed have
    # started when the twin refuses it.
    settings = _settings(tmp_path, perp_twin=True, perp_recording=SPOT_2021, history=False)
    store = MemoryStore()
    failures: list[bool] = []
    before = set(threading.enumerate())
    market = MarketStart(
        settings, store, make_alerts(settings), PushService.embedded(store), PerpTwin(),
        lambda: failures.append(True),
    ).start()  # fmt: skip
    try:
        _until(lambda: bool(failures))
        assert market.failed and failures == [True] and market.label == ""
    finally:
        market.stop()
    assert not _threads("tapescope-feed", before)
    assert not _threads("tapescope-exchange", before)
