"""``python -m app [run]``: the dashboard with its feed in one process.

Binance live when it can be reached, else (``--source auto``, the default) the bundled
recording replayed through the local exchange. See ``app.config`` for every flag. The feed
hands its messages to the history recorder and the alert tap; a non-loopback ``--host``
needs users for basic auth (``app.auth``) or ``--no-auth``.
"""

from __future__ import annotations

import _thread
import logging
import sys

from app import auth, config
from app.alerting import make_alerts
from app.market_start import MarketStart
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
    # The source, history, alert tap and feed start beside the server (app.market_start):
    # the page and the history API answer meanwhile; a failed start ends the process.
    market = MarketStart(settings, store, alerts, push, twin, _thread.interrupt_main).start()
    try:
        dash_app.run(host=settings.host, port=settings.port, debug=settings.debug)
    finally:
        market.stop()
    return 1 if market.failed else 0
