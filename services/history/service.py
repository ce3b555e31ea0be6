"""The history service of an ingesting process: writer, feed tap, REST backfill and the
maintenance thread (the book's minute pyramid extended and compaction every
``compact_every_s``, retention every ``retention_every_s``), started and stopped together.

    history = HistoryService(HistoryConfig(root), endpoints, market="spot").start()
    feed = Feed(config, store, taps=(history.recorder,))
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from services.binance.backoff import Backoff
from services.binance.endpoints import Endpoints
from services.binance.rate_limit import BINANCE_WEIGHT_LIMIT
from services.history.backfill import TradeBackfill
from services.history.book_grid import GridConfig
from services.history.book_pyramid import extend_all
from services.history.compaction import compact
from services.history.recorder import HistoryRecorder
from services.history.retention import apply_retention
from services.history.writer import HistoryWriter

log = logging.getLogger(__name__)

GB = 1_000_000_000
BACKFILL_SHARE = 0.7


@dataclass(frozen=True, slots=True)
class HistoryConfig:
    """root: the history directory. max_days / max_gb: retention (None: unbounded).
    flush_interval_s: how often buffered rows become segments (what a kill -9 can lose).
    compact_every_s / retention_every_s: maintenance periods. backfill_weight: the IP's REST
    weight per minute up to which the backfill may send requests (Binance reports the IP's
    total; default ``BACKFILL_SHARE`` of the limit, below the feed's 80 %, so a backfill only
    uses what the feed leaves and never holds the feed back). grid: band and bucket of the
    recorded book."""

    root: Path
    max_days: float | None = 30.0
    max_gb: float | None = 5.0
    flush_interval_s: float = 1.0
    compact_every_s: float = 60.0
    retention_every_s: float = 600.0
    backfill_weight: int | None = None
    grid: GridConfig = field(default_factory=GridConfig)


class HistoryService:
    """Records one feed's market into the history under ``config.root``; ``clock_ms``: the
    market's clock (a replay's exchange clock; default this machine's, see
    ``HistoryRecorder``)."""

    def __init__(
        self,
        config: HistoryConfig,
        endpoints: Endpoints,
        market: str,
        *,
        ticks: dict[str, float] | None = None,
        backoff: Backoff | None = None,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.config = config
        self.writer = HistoryWriter(
            config.root, flush_interval_s=config.flush_interval_s, grid=config.grid
        )
        weight = config.backfill_weight or int(
            BINANCE_WEIGHT_LIMIT.get(market, 6000) * BACKFILL_SHARE
        )
        self.backfill = TradeBackfill(
            self.writer, endpoints, market, weight_per_minute=weight,
            backoff=backoff,
        )  # fmt: skip
        self.recorder = HistoryRecorder(
            self.writer,
            market,
            ticks=ticks,
            on_new_symbol=self.backfill.request_klines,
            clock_ms=clock_ms,
        )
        self.writer.on_hole = self.backfill.request_hole
        self._stop = threading.Event()
        self._maintenance: threading.Thread | None = None

    def start(self) -> HistoryService:
        self.config.root.mkdir(parents=True, exist_ok=True)
        self.writer.start()
        self.backfill.start()
        self._maintenance = threading.Thread(
            target=self._maintain, name="tapescope-history-maintenance", daemon=True
        )
        self._maintenance.start()
        return self

    def stop(self) -> None:
        """Finish the backfill's current job, write everything buffered, stop threads."""
        self._stop.set()
        self.backfill.stop()
        self.writer.stop()
        if self._maintenance is not None:
            self._maintenance.join(10.0)

    def _maintain(self) -> None:
        cfg = self.config
        last_retention = 0.0
        while not self._stop.wait(cfg.compact_every_s):
            try:
                extend_all(cfg.root)
                compact(cfg.root)
                if time.monotonic() - last_retention >= cfg.retention_every_s:
                    last_retention = time.monotonic()
                    max_bytes = int(cfg.max_gb * GB) if cfg.max_gb is not None else None
                    apply_retention(cfg.root, None, cfg.max_days, max_bytes)
            except Exception:
                log.exception("history maintenance failed (retried next period)")
