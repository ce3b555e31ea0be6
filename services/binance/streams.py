"""Binance stream names and combined-stream URLs (no I/O).

A stream name is ``<lowercase symbol>@<kind>[@<speed>]``, e.g. ``btcusdt@depth@100ms``. A
combined-stream URL is ``{base}/stream?streams=<name>/<name>/...``; each frame on it
arrives wrapped as ``{"stream": <name>, "data": <payload>}``, which is the only way to tell
which symbol a partial-depth payload belongs to. Tapescope uses combined streams only.
"""

from __future__ import annotations

from collections.abc import Iterable

KLINE_INTERVALS = (
    "1s",
    "1m",
    "3m",
    "5m",
    "15m",
    "30m",
    "1h",
    "2h",
    "4h",
    "6h",
    "8h",
    "12h",
    "1d",
    "3d",
    "1w",
    "1M",
)
PARTIAL_DEPTH_LEVELS = (5, 10, 20)
DEPTH_SPEEDS_MS = (100, 250, 500)
"""Update speeds a depth stream can ask for; spot offers 100 (default 1000), USD-M offers
100, 250 (default) and 500."""

ALL_MINI_TICKERS = "!miniTicker@arr"


def _symbol(symbol: str) -> str:
    name = symbol.strip().lower()
    if not name:
        raise ValueError("empty symbol")
    return name


def _speed(speed_ms: int | None) -> str:
    if speed_ms is None:
        return ""
    if speed_ms not in DEPTH_SPEEDS_MS:
        raise ValueError(f"depth speed must be one of {DEPTH_SPEEDS_MS} ms, not {speed_ms}")
    return f"@{speed_ms}ms"


def diff_depth(symbol: str, speed_ms: int | None = 100) -> str:
    """Diff depth stream: ``btcusdt@depth@100ms``, or ``btcusdt@depth`` (venue default)."""
    return f"{_symbol(symbol)}@depth{_speed(speed_ms)}"


def partial_depth(symbol: str, levels: int = 20, speed_ms: int | None = 100) -> str:
    """Top-N book stream: ``btcusdt@depth20@100ms`` (levels 5, 10 or 20)."""
    if levels not in PARTIAL_DEPTH_LEVELS:
        raise ValueError(f"partial depth levels must be one of {PARTIAL_DEPTH_LEVELS}")
    return f"{_symbol(symbol)}@depth{levels}{_speed(speed_ms)}"


def trade(symbol: str) -> str:
    """Every fill: ``btcusdt@trade``."""
    return f"{_symbol(symbol)}@trade"


def agg_trade(symbol: str) -> str:
    """Fills aggregated per taker order and price: ``btcusdt@aggTrade``."""
    return f"{_symbol(symbol)}@aggTrade"


def kline(symbol: str, interval: str = "1m") -> str:
    """Candles of one interval: ``btcusdt@kline_1m``."""
    if interval not in KLINE_INTERVALS:
        raise ValueError(f"kline interval must be one of {', '.join(KLINE_INTERVALS)}")
    return f"{_symbol(symbol)}@kline_{interval}"


def mini_ticker(symbol: str) -> str:
    """Rolling 24 h OHLC and volume: ``btcusdt@miniTicker``."""
    return f"{_symbol(symbol)}@miniTicker"


def ticker(symbol: str) -> str:
    """Rolling 24 h statistics with best bid/ask: ``btcusdt@ticker``."""
    return f"{_symbol(symbol)}@ticker"


def book_ticker(symbol: str) -> str:
    """Best bid/ask on every change: ``btcusdt@bookTicker``."""
    return f"{_symbol(symbol)}@bookTicker"


def combined_url(ws_url: str, streams: Iterable[str]) -> str:
    """Combined-stream URL of ``streams`` on ``ws_url`` (base plus route, no path).

    With no streams the URL is the bare ``/stream`` endpoint, to be filled by SUBSCRIBE.
    """
    names = "/".join(streams)
    base = ws_url.rstrip("/") + "/stream"
    return f"{base}?streams={names}" if names else base
