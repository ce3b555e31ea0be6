"""A Tapescope process for push-stream tests: the local exchange replaying a recording, the
feed with the push tap, and the dashboard's Flask server (werkzeug, threaded) on a free
loopback port — the same pieces as ``python -m app run``."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from werkzeug.serving import BaseWSGIServer, make_server

from app.alerting import Alerts
from app.server import create_app
from services.binance.backoff import Backoff
from services.binance.endpoints import custom
from services.market.feed import Feed, FeedConfig
from services.push.service import PushLimits, PushService
from services.replay.exchange import LocalExchange
from services.store import MarketStore, MemoryStore
from tests.redis_server import free_port

FAST_BACKOFF = Backoff(initial=0.05, cap=0.5, floor=0.02)


@dataclass
class Served:
    """A running web server: its base ws:// and http:// URLs and its pieces."""

    port: int
    store: MarketStore
    push: PushService
    server: BaseWSGIServer

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def web_server(
    store: MarketStore, push: PushService, ws_origins: str = "", alerts: Alerts | None = None
) -> Iterator[Served]:
    """The dashboard (with its JSON API, push streams and, given ``alerts``, the alerts
    page and ``/ws/alerts/`` relay) served from a thread."""
    port = free_port()
    dash_app = create_app(store, alerts=alerts, push=push, ws_origins=ws_origins)
    server = make_server("127.0.0.1", port, dash_app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="test-web", daemon=True)
    thread.start()
    try:
        yield Served(port, store, push, server)
    finally:
        server.shutdown()
        push.stop()
        thread.join(timeout=10)


def feed_config(exchange: LocalExchange, **options: object) -> FeedConfig:
    return FeedConfig(
        endpoints=custom(exchange.ws_url, exchange.rest_url, market=exchange.market),
        publish_interval_s=0.05,
        idle_timeout_s=1.5,
        confirm_after_s=0.3,
        backoff=FAST_BACKOFF,
        **options,  # type: ignore[arg-type]
    )


@contextlib.contextmanager
def embedded(
    exchange: LocalExchange,
    limits: PushLimits | None = None,
    ws_origins: str = "",
    alerts: Alerts | None = None,
    taps: tuple[object, ...] = (),
) -> Iterator[tuple[Served, Feed]]:
    """Feed (in its thread) + push tap (and ``taps``) + web server, on a running local
    exchange."""
    store = MemoryStore()
    push = PushService.embedded(store, limits=limits)
    feed = Feed(feed_config(exchange), store, taps=[push.tap, *taps])  # type: ignore[list-item]
    feed.start_in_thread()
    try:
        with web_server(store, push, ws_origins, alerts) as served:
            yield served, feed
    finally:
        feed.stop()
