"""Where the USD-M perpetual twins come from (``--perp-twin``): live, Binance USD-M; with a
replayed spot source, a second local exchange replaying ``perp_recording`` at the same
speed, loop and time base, its clock moved to the spot exchange's (the bundled spot and
USD-M BTCUSDT recordings of 2024-08-08 cover the same minutes, so
``--recording <spot 2024> --perp-twin`` shows both offline, moment for moment; looping, each
pass restarts its own recording, so later passes drift by the difference of their spans)."""

from __future__ import annotations

import logging
from dataclasses import replace

from app.config import Settings
from app.market_source import MarketSource, feed_config
from services.binance.endpoints import custom, preset
from services.market.perp_twin import PerpTwin

log = logging.getLogger(__name__)


def twin_source(settings: Settings, source: MarketSource) -> MarketSource:
    """The usdm market source beside the spot ``source`` (started when it is a replay)."""
    if source.source != "REPLAY":
        return MarketSource(endpoints=preset("usdm"), source="LIVE")
    from services.replay.exchange import LocalExchange

    exchange = LocalExchange(
        [settings.perp_recording], speed=settings.speed, loop=settings.loop,
        time_base=settings.replay_time,
    )  # fmt: skip
    exchange.start_in_thread()
    catch_up(exchange, source.exchange)
    return MarketSource(
        endpoints=custom(exchange.ws_url, exchange.rest_url, market=exchange.market),
        source="REPLAY",
        recording=settings.perp_recording.name,
        exchange=exchange,
    )


def catch_up(twin: object, spot: object | None) -> None:
    """Move the twin exchange's replay clock to the spot one's (it started a few seconds
    later, so it plays that gap at once): both then replay the same moments of the day."""
    player, speed = getattr(twin, "player", None), getattr(twin, "speed", None)
    if spot is None or player is None or speed is None:
        return
    behind_ms = spot.clock_ms() - twin.clock_ms()  # type: ignore[attr-defined]
    if behind_ms > 0:
        player.clock.shift(-behind_ms / 1000 / speed)


def start_perp_twin(
    settings: Settings, source: MarketSource, twin: PerpTwin | None
) -> MarketSource | None:
    """Start ``twin``'s feed beside the spot ``source``; returns its source (to close), or
    None when there is no twin or the main source is not spot (no twin to pair with)."""
    if twin is None:
        return None
    if source.endpoints.market != "spot":
        log.warning("--perp-twin pairs spot symbols with USD-M ones; the source is not spot")
        return None
    usdm = twin_source(settings, source)
    if usdm.endpoints.market != "usdm":
        usdm.close()
        raise ValueError(f"{settings.perp_recording} is not a USD-M recording")
    twin.start(replace(feed_config(settings, usdm), symbols=()))
    return usdm
