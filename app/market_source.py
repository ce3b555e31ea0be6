"""Where the market data comes from: Binance itself, or the local exchange replaying a
recording. ``auto`` asks Binance briefly and falls back to the replay when it cannot be
reached or is geo-blocked (HTTP 451)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from app.config import Settings
from services.binance.backoff import Backoff
from services.binance.endpoints import Endpoints, custom, preset
from services.binance.rest_client import BinanceHttpError, BinanceRestClient, RestrictedLocation
from services.history.importer import import_recording
from services.history.reader import HistoryReader
from services.history.writer import HistoryWriter
from services.market.feed import FeedConfig

if TYPE_CHECKING:  # the redis client is imported only when a Redis URL is set
    from services.redis_weight import RedisWeightWindow

log = logging.getLogger(__name__)


@dataclass(slots=True)
class MarketSource:
    """Endpoints the feed connects to, and how the status bar names them."""

    endpoints: Endpoints
    source: str
    recording: str = ""
    recording_date: str = ""
    exchange: object | None = None

    def close(self) -> None:
        """Stop the local exchange, if this source started one."""
        if self.exchange is not None:
            self.exchange.stop()  # type: ignore[attr-defined]


def live_endpoints(settings: Settings) -> Endpoints:
    """The Binance endpoints of the settings: the preset, or explicit URLs over it."""
    base = preset(settings.preset)
    if settings.ws_url or settings.rest_url:
        return custom(
            settings.ws_url or base.ws_base,
            settings.rest_url or base.rest_base,
            market=base.market,
        )
    return base


def probe(endpoints: Endpoints, timeout_s: float) -> str:
    """'' when the REST endpoint answers ``ping``, else why not (451 named as such). One
    try through the project's REST client, so errors are classified as everywhere else."""
    return asyncio.run(_ping(endpoints, timeout_s))


async def _ping(endpoints: Endpoints, timeout_s: float) -> str:
    no_wait = Backoff(initial=0.0, cap=0.0, floor=0.0)
    async with BinanceRestClient(
        endpoints, max_attempts=1, timeout_s=timeout_s, backoff=no_wait
    ) as rest:
        try:
            await rest.get("ping", {}, 1)
        except RestrictedLocation:
            return f"{endpoints.rest_base} is geo-blocked here (HTTP 451)"
        except BinanceHttpError as exc:
            return f"{endpoints.rest_base} cannot be used: {exc}"
    return ""


def start_replay(settings: Settings, records_history: bool = False) -> MarketSource:
    """Start the local exchange on the settings' recording in a background thread; a process
    that ``records_history`` into an empty history imports the recording first
    (``stored_trades``)."""
    from services.replay.exchange import LocalExchange

    exchange = LocalExchange(
        [settings.recording],
        speed=settings.speed,
        loop=settings.loop,
        port=settings.exchange_port,
        time_base=settings.replay_time,
        after_trades=stored_trades(settings, import_first=records_history),
    )
    exchange.start_in_thread()
    started = datetime.fromtimestamp(exchange.recording_start_ms / 1000, tz=UTC)
    return MarketSource(
        endpoints=custom(exchange.ws_url, exchange.rest_url, market=exchange.market),
        source="REPLAY",
        recording=settings.recording.name,
        recording_date=started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        exchange=exchange,
    )


def stored_trades(
    settings: Settings, import_first: bool = False
) -> dict[tuple[str, str], tuple[int, int]]:
    """The history's newest aggTrade (id, time) per (market, symbol): a replay resumes
    after them when they are its recording's (``services.replay.passes``). With
    ``import_first`` an empty history first gets the recording imported
    (``import_first_run``), so a fresh clone's dashboard shows a past and its replay goes on
    from the end of it: the first pass again would carry the stored ids, and the tape would
    stand still for a whole pass."""
    if not settings.history:
        return {}
    try:
        reader = HistoryReader(settings.history_dir)
        if import_first and not reader.symbols():
            import_first_run(settings)
        return reader.newest_trades()
    except OSError:
        log.exception(
            "history: cannot read %s; the replay starts at its first pass", settings.history_dir
        )
        return {}


def import_first_run(settings: Settings) -> None:
    """Import the replayed recording into the (empty) history."""
    writer = HistoryWriter(settings.history_dir, flush_interval_s=5.0).start()
    try:
        result = import_recording(settings.recording, writer)
        log.info("history: imported %s (%s)", result.file, result.trades)
    except Exception:
        log.exception("history: importing %s failed", settings.recording)
    finally:
        writer.stop()


def resolve(settings: Settings, records_history: bool = False) -> MarketSource:
    """The market source for ``settings.source`` (``auto`` probes Binance first); a replay
    for a process that ``records_history`` imports its recording into an empty history
    before it starts (``start_replay``)."""
    if settings.source == "replay":
        return start_replay(settings, records_history)
    endpoints = live_endpoints(settings)
    if settings.source == "live":
        return MarketSource(endpoints=endpoints, source="LIVE")
    problem = probe(endpoints, settings.live_probe_timeout_s)
    if not problem:
        return MarketSource(endpoints=endpoints, source="LIVE")
    log.warning("%s: replaying %s instead", problem, settings.recording.name)
    return start_replay(settings, records_history)


def shared_weight(settings: Settings) -> RedisWeightWindow | None:
    """The host's shared REST weight counter when the processes share a Redis."""
    if not settings.redis_url:
        return None
    from services.redis_weight import RedisWeightWindow

    return RedisWeightWindow.from_url(settings.redis_url)


def feed_config(settings: Settings, source: MarketSource) -> FeedConfig:
    """The feed's configuration for these settings and this market source."""
    return FeedConfig(
        endpoints=source.endpoints,
        symbols=settings.symbols,
        source=source.source,
        recording=source.recording,
        recording_date=source.recording_date,
        trade_window=settings.trade_window,
        book_levels=settings.book_levels,
        publish_interval_s=settings.publish_interval_s,
        max_on_demand_symbols=settings.max_on_demand_symbols,
        rest_weight_budget=settings.rest_weight_budget,
        unwatched_depth_ms=settings.unwatched_depth_ms,
        exchange_clock=getattr(source.exchange, "clock_ms", None),
    )
