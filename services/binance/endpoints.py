"""Where Binance market data lives: WebSocket and REST base URLs per venue (no I/O).

An ``Endpoints`` value names one venue's public market-data entry points:

- ``spot``: ``wss://stream.binance.com:9443`` + ``https://api.binance.com``.
- ``spot-data``: the market-data-only mirror ``wss://data-stream.binance.vision`` +
  ``https://data-api.binance.vision`` (no ``historicalTrades`` there).
- ``us``: Binance.US, a different exchange (own symbols, own liquidity):
  ``wss://stream.binance.us:9443`` + ``https://api.binance.us``.
- ``usdm``: USD-M futures after the 2026 base-URL split: diff/partial depth and
  ``bookTicker`` on ``wss://fstream.binance.com/public``, trades, klines and tickers on
  ``wss://fstream.binance.com/market``; REST ``https://fapi.binance.com`` (``/fapi/v1``).
- ``custom(...)``: any WebSocket and REST base, e.g. the local replay exchange on loopback.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from services.binance.messages import stream_kind


class Market(enum.StrEnum):
    """The product family, which fixes REST paths, weights and stream limits."""

    SPOT = "spot"
    USDM = "usdm"


USDM_PUBLIC_KINDS = frozenset({"depth", "depth5", "depth10", "depth20", "bookTicker"})
"""USD-M stream kinds served on ``/public`` (high-frequency book data); all others on
``/market``."""


@dataclass(frozen=True, slots=True)
class Endpoints:
    """One venue's public market-data entry points.

    ws_base: WebSocket base without path (``wss://host:port``); combined-stream URLs are
        ``{ws_base}{route}/stream?streams=...``.
    rest_base: REST base without path (``https://host``).
    market: SPOT (``/api/v3``) or USDM (``/fapi/v1``).
    split_routes: streams go to ``/public`` or ``/market`` by kind (USD-M since 2026-03).
    max_streams_per_connection: streams one connection may carry (spot 1024; USD-M: 200
        assumed, the documented figure is disputed).
    """

    name: str
    ws_base: str
    rest_base: str
    market: Market = Market.SPOT
    split_routes: bool = False
    max_streams_per_connection: int = 1024

    @property
    def rest_prefix(self) -> str:
        """Path prefix of the market-data REST endpoints."""
        return "/fapi/v1" if self.market is Market.USDM else "/api/v3"

    def route(self, stream: str) -> str:
        """The path a stream is served on: ``/public``, ``/market`` or ``''`` (no split)."""
        if not self.split_routes:
            return ""
        return "/public" if stream_kind(stream) in USDM_PUBLIC_KINDS else "/market"

    def ws_url(self, route: str = "") -> str:
        """WebSocket base URL of one route, without the ``/stream`` path."""
        return self.ws_base.rstrip("/") + route


PRESETS: dict[str, Endpoints] = {
    "spot": Endpoints("spot", "wss://stream.binance.com:9443", "https://api.binance.com"),
    "spot-data": Endpoints(
        "spot-data", "wss://data-stream.binance.vision", "https://data-api.binance.vision"
    ),
    "us": Endpoints("us", "wss://stream.binance.us:9443", "https://api.binance.us"),
    "usdm": Endpoints(
        "usdm",
        "wss://fstream.binance.com",
        "https://fapi.binance.com",
        market=Market.USDM,
        split_routes=True,
        max_streams_per_connection=200,
    ),
}


def preset(name: str) -> Endpoints:
    """The named preset; raises ``KeyError`` listing the known names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None


def custom(
    ws_base: str,
    rest_base: str,
    market: Market | str = Market.SPOT,
    *,
    split_routes: bool = False,
    max_streams_per_connection: int | None = None,
) -> Endpoints:
    """Endpoints at any base URLs (a loopback exchange, a proxy, a regional host).

    ``split_routes`` routes USD-M streams to ``/public`` and ``/market`` as on the real
    venue; leave it off for servers that serve every stream at the root.
    """
    market = Market(market)
    limit = max_streams_per_connection or (200 if market is Market.USDM else 1024)
    return Endpoints(
        "custom",
        ws_base,
        rest_base,
        market=market,
        split_routes=split_routes,
        max_streams_per_connection=limit,
    )
