"""The WSGI application for gunicorn (``gunicorn app:server``).

The Dash app is built when ``app.server`` is first looked up; the feed is started once per
process on the first request, never at import time, so that ``--preload`` (which forks
after import) cannot freeze it, and with it the alert tap. With ``REDIS_URL`` set the web
process only reads the store (and writes alert rules) and the feed runs in
``python -m app worker``. Basic auth guards every route when users are configured
(``app.auth``; gunicorn.conf.py refuses a non-loopback bind without them).
"""

from __future__ import annotations

import os
import threading

from flask import Flask

from app import auth, config, market_source
from app.alerting import make_alerts, start_tap
from app.history_setup import web_push_history
from app.perp_twin_setup import start_perp_twin
from app.server import create_app_for
from app.stores import make_store
from services.market.feed import Feed
from services.market.perp_twin import PerpTwin
from services.push.service import PushService

_lock = threading.Lock()
_started_in: int | None = None


def build_server(settings: config.Settings | None = None) -> Flask:
    """The Flask server of a Dash app whose feed starts on the first request."""
    settings = settings or config.from_env()
    store = make_store(settings)
    alerts = make_alerts(settings)
    if settings.redis_url:
        push = PushService.from_redis(store, settings.redis_url)
        push.use_history(web_push_history(settings, store))
    else:
        push = PushService.embedded(store)
    twin = PerpTwin() if settings.perp_twin and not settings.redis_url else None
    dash_app = create_app_for(settings, store, alerts, push, twin)
    auth.protect(dash_app, settings)
    server: Flask = dash_app.server

    if not settings.redis_url:

        @server.before_request
        def start_feed_once() -> None:
            global _started_in  # noqa: PLW0603 - one feed per process
            if _started_in == os.getpid():
                return
            with _lock:
                if _started_in == os.getpid():
                    return
                source = market_source.resolve(settings)
                feed_settings = market_source.feed_config(settings, source)
                taps = [start_tap(alerts, market=str(source.endpoints.market)), push.tap]
                Feed(feed_settings, store, taps=taps).start_in_thread()
                start_perp_twin(settings, source, twin)
                _started_in = os.getpid()

    return server
