"""``python -m app [run]``: the dashboard with its feed in one process.

Binance live when it can be reached, else (``--source auto``, the default) the bundled
recording replayed through the local exchange. See ``app.config`` for every flag. The feed
hands its messages to the history recorder and the alert tap; a non-loopback ``--host``
needs users for basic auth (``app.auth``) or ``--no-auth``.
"""

from __future__ import annotations

import logging
import sys

from app import auth, config, market_source
from app.alerting import make_alerts, start_tap
from app.history_setup import push_history, start_history
from app.ingest import build_feed
from app.perp_twin_setup import start_perp_twin
from app.server import create_app_for
from app.stores import make_store
from services.market.perp_twin import PerpTwin
from services.push.service import PushService


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        settings = config.parse(argv)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    store = make_store(settings)
    alerts = make_alerts(settings)
    push = PushService.embedded(store)
    twin = PerpTwin() if settings.perp_twin else None
    dash_app = create_app_for(settings, store, alerts, push, twin)
    try:
        auth.protect(dash_app, settings)
    except (auth.AuthRequired, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    source = market_source.resolve(settings, records_history=settings.history)
    history = start_history(settings, source)
    push.use_history(push_history(settings, source))
    tap = start_tap(alerts, market=str(source.endpoints.market))
    feed = build_feed(settings, source, store, history, (tap, push.tap))
    feed.start_in_thread()
    twin_source = start_perp_twin(settings, source, twin)
    where = f"http://{settings.host}:{settings.port}/"
    label = f"{source.source} {source.recording} ({source.recording_date})".strip()
    print(f"Tapescope on {where} — {label if source.source == 'REPLAY' else 'LIVE'}", flush=True)
    try:
        dash_app.run(host=settings.host, port=settings.port, debug=settings.debug)
    finally:
        feed.stop()
        tap.stop()
        if history is not None:
            history.stop()
        source.close()
        if twin is not None and twin_source is not None:
            twin.stop()
            twin_source.close()
    return 0
