"""``python -m app [run]``: the dashboard with its feed in one process.

Binance live when it can be reached, else (``--source auto``, the default) the bundled
recording replayed through the local exchange. See ``app.config`` for every flag.
"""

from __future__ import annotations

import logging
import sys

from app import config, market_source
from app.server import create_app
from app.stores import make_store
from services.market.feed import Feed, FeedConfig


def feed_config(settings: config.Settings, source: market_source.MarketSource) -> FeedConfig:
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
    )


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = config.parse(argv)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    source = market_source.resolve(settings)
    store = make_store(settings)
    feed = Feed(feed_config(settings, source), store)
    feed.start_in_thread()
    dash_app = create_app(
        store,
        refresh_ms=settings.refresh_ms,
        slow_refresh_ms=settings.slow_refresh_ms,
        debug=settings.debug,
    )
    where = f"http://{settings.host}:{settings.port}/"
    label = f"{source.source} {source.recording} ({source.recording_date})".strip()
    print(f"Tapescope on {where} — {label if source.source == 'REPLAY' else 'LIVE'}", flush=True)
    try:
        dash_app.run(host=settings.host, port=settings.port, debug=settings.debug)
    finally:
        feed.stop()
        source.close()
    return 0
