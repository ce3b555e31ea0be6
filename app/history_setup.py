"""The history of a ``run`` or ``worker`` process: the recording service for the feed's
market (an offline replay's first run has imported its recording before the local exchange
started: ``app.market_source.stored_trades``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from app.config import Settings
from app.market_source import MarketSource, live_endpoints
from services.history.reader import HistoryReader, recent_trade_rows
from services.history.service import HistoryConfig, HistoryService
from services.push.history_archive import HistoryArchive, LiveFeedArchive
from services.store import MarketStore

log = logging.getLogger(__name__)

SEED_S = 3600


def history_config(settings: Settings) -> HistoryConfig:
    """The service's configuration from the settings (0 days / 0 GB: unbounded)."""
    return HistoryConfig(
        root=settings.history_dir,
        max_days=settings.history_days or None,
        max_gb=settings.history_max_gb or None,
    )


def start_history(settings: Settings, source: MarketSource) -> HistoryService | None:
    """Start recording (None with ``--no-history``)."""
    if not settings.history:
        return None
    clock = getattr(source.exchange, "clock_ms", None)  # a replay: its own time, not ours
    return HistoryService(
        history_config(settings), source.endpoints, str(source.endpoints.market), clock_ms=clock
    ).start()


def past_trades(
    settings: Settings, source: MarketSource
) -> Callable[[str], list[tuple[int, int, float, float, bool]]] | None:
    """The feed's seed of each symbol's trade window: the stored aggTrades of the last
    ``SEED_S`` — before now for a LIVE source; for a replay, before its clock (the replay
    resumes right after the newest stored trade, ``services.replay.passes``: mid pass that
    is the same moment; at a pass's end the next pass is a pass shift — a day — later, and
    the window starts with it instead of showing a day's silence inside its CVD)."""
    if not settings.history:
        return None
    reader = HistoryReader(settings.history_dir)
    market = str(source.endpoints.market)
    newest = {s: t for (m, s), (_, t) in reader.newest_trades().items() if m == market}
    clock: Callable[[], int] | None = getattr(source.exchange, "clock_ms", None)

    def seed(symbol: str) -> list[tuple[int, int, float, float, bool]]:
        if source.source == "LIVE":
            since = int(time.time() * 1000) - SEED_S * 1000
        elif symbol in newest:
            since = max(newest[symbol], clock() if clock is not None else 0) - SEED_S * 1000
        else:
            return []
        try:
            return recent_trade_rows(reader, market, symbol, "aggTrade", since)
        except Exception:  # history trouble must never keep the feed from starting
            log.exception("history: cannot seed %s", symbol)
            return []

    return seed


def push_history(settings: Settings, source: MarketSource) -> HistoryArchive | None:
    """Where a push-stream resume (``from_id``) older than the trade window is served from:
    the stored aggTrades, for a LIVE source (a replay's ids restart on every start)."""
    if not settings.history or source.source != "LIVE":
        return None
    return HistoryArchive(HistoryReader(settings.history_dir), str(source.endpoints.market))


def web_push_history(settings: Settings, store: MarketStore) -> LiveFeedArchive | None:
    """A Redis web worker's history for push-stream resumes: the stored aggTrades the ingest
    workers record (``--history-dir`` on the same host or volume), of the configured live
    market, used while the workers' feed is LIVE (``LiveFeedArchive``)."""
    if not settings.history:
        return None
    market = str(live_endpoints(settings).market)
    return LiveFeedArchive(store, HistoryArchive(HistoryReader(settings.history_dir), market))
