"""Tapescope for scripts and notebooks: async functions over an in-process Tapescope
(``start`` streams symbols live or from the bundled replay), and ``Client`` with the same
methods against a running one.

======================================  ==============================================
the seed's task function                here (module function / ``Session`` / ``Client``)
======================================  ==============================================
start_binance_websocket_stream(symbols)  ``await start(symbols, source="live"|"replay")``
stop_binance_websocket()                 ``await stop()``
get_order_book_snapshot(s, levels=10)    ``await order_book(s, levels=10)``
get_trade_stats(s)                       ``await trade_stats(s, window="1m")``
get_trade_flow(s, window=100)            ``await trade_flow(s, window=100)`` (last 100 trades)
get_large_trades(s, threshold=10.0)      ``await large_trades(s, threshold=10.0)``
                                         (qty ≥ threshold × the mean trade size)
get_volume_profile(s)                    ``await volume_profile(s, bins=50)``
get_binance_websocket_stats()            ``await websocket_stats()``
periodic_websocket_health_check()        ``async for h in health_checks(interval_s)``
(health)                                 ``await health()``
(push stream)                            ``async for t in trades(s, from_id=None)``
======================================  ==============================================

``trade_stats``, ``trade_flow`` and ``volume_profile`` also take ``start=``/``end=`` (ISO
8601 UTC or epoch ms): the figures over that stored range, as the JSON API's
``?start=&end=`` gives them (a ``Session(history_dir=...)`` reads the history itself;
``Client`` asks the server).

Importing ``tapescope`` makes the repository's modules importable in this process
(``tapescope._project``); only ``tapescope`` is a top-level package of the distribution.
"""

from __future__ import annotations

from tapescope._project import ensure_importable

ensure_importable()

from tapescope.client import ApiError, Client  # noqa: E402
from tapescope.session import NotStreaming, Session  # noqa: E402

__all__ = [
    "ApiError",
    "Client",
    "NotStreaming",
    "Session",
    "health",
    "health_checks",
    "large_trades",
    "order_book",
    "start",
    "stop",
    "trade_flow",
    "trade_stats",
    "trades",
    "volume_profile",
    "websocket_stats",
]

_default = Session()

start = _default.start
stop = _default.stop
order_book = _default.order_book
trade_stats = _default.trade_stats
trade_flow = _default.trade_flow
large_trades = _default.large_trades
volume_profile = _default.volume_profile
websocket_stats = _default.websocket_stats
health = _default.health
health_checks = _default.health_checks
trades = _default.trades
