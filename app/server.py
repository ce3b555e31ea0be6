"""The Dash application: layout, panel callbacks and the JSON API on one Flask server."""

from __future__ import annotations

from pathlib import Path

import dash

from app import alerts_api, api, history_api, spot_perp_api, streams, views_api
from app.alerting import Alerts
from app.callbacks import alerts as alerts_page
from app.callbacks import (
    depth,
    export,
    flow,
    footprint,
    heatmap,
    liquidity,
    profile,
    status,
    symbol,
    tape,
    view,
    watchlist,
)
from app.callbacks import push as push_page
from app.callbacks.derived import DerivedCache
from app.config import Settings
from app.layout import create_layout
from services.history.book_heatmap import RecordedBook
from services.market.perp_twin import PerpTwin
from services.push.service import PushService
from services.store import MarketStore

ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"


def create_app(
    store: MarketStore,
    *,
    refresh_ms: int = 500,
    slow_refresh_ms: int = 2000,
    debug: bool = False,
    push: PushService | None = None,
    ws_origins: str = "",
    history_dir: Path | None = None,
    alerts: Alerts | None = None,
    perp_twin: PerpTwin | None = None,
) -> dash.Dash:
    """The dashboard reading ``store`` (which the feed fills; the app only reads it).

    The store should hold the symbol list (``publish_symbols``), the feed status and a
    snapshot per streamed symbol; missing pieces are shown as "waiting", never as errors.
    Panels refresh every ``refresh_ms`` (depth, tape, flow, status) and ``slow_refresh_ms``
    (volume profile, liquidity). The JSON API is served under ``/api``; with ``history_dir``
    it also answers past ranges, ``/candles`` and ``/history`` from the history store. With
    ``alerts`` the page gains the alerts section and ``/api/alerts`` is served. The
    push streams of ``push`` are served under ``/ws`` (``app.streams``); the page paints
    from them when ``push`` is given (a service some feed or Redis reader feeds), else it
    polls and ``/ws`` serves a hub nothing feeds. With ``perp_twin`` the flow chart and
    ``/cvd/spot-perp`` show the symbol's USD-M perpetual CVD beside the spot one.
    """
    app = dash.Dash(
        __name__,
        title="Tapescope",
        assets_folder=str(ASSETS_DIR),
        update_title=None,
        suppress_callback_exceptions=False,
    )
    if debug:
        app.enable_dev_tools(debug=True)
    cache = DerivedCache()
    pushed = push is not None
    push = push or PushService.embedded(store)
    app.layout = create_layout(store, refresh_ms, slow_refresh_ms)
    symbol.register(app, store, push.keeper)
    status.register(app, store)
    push_page.register(app, store, refresh_ms, pushed, slow_refresh_ms)
    view.register(app)
    watchlist.register(app, store)
    for panel in (depth, tape, profile, liquidity, export):
        panel.register(app, store, cache)
    flow.register(app, store, cache, perp_twin)
    history = history_api.register(app.server, store, history_dir) if history_dir else None
    recorded = RecordedBook(history.reader) if history else None
    heatmap.register(app, store, cache, recorded)
    footprint.register(app, store, cache, history.reader if history else None)
    app.server.register_blueprint(api.create_api(store, cache, history))
    app.server.register_blueprint(views_api.create_views_api(store, cache, history, recorded))
    app.server.register_blueprint(spot_perp_api.create_spot_perp_api(store, cache, perp_twin))
    if alerts is not None:
        alerts_page.register(app, store, alerts)
        app.server.register_blueprint(alerts_api.create_alerts_api(store, alerts))
    origins = [o.strip() for o in ws_origins.split(",") if o.strip()]
    if alerts is not None:
        push.follow_alerts(alerts.events)
    streams.register(app.server, store, push, origins)
    return app


def create_app_for(
    settings: Settings,
    store: MarketStore,
    alerts: Alerts | None,
    push: PushService,
    perp_twin: PerpTwin | None = None,
) -> dash.Dash:
    """``create_app`` with the refresh, debug, history and push origins of ``settings``
    (``python -m app run`` and the WSGI server build the page the same way)."""
    return create_app(
        store,
        refresh_ms=settings.refresh_ms,
        slow_refresh_ms=settings.slow_refresh_ms,
        debug=settings.debug,
        history_dir=settings.history_dir if settings.history else None,
        alerts=alerts,
        push=push,
        perp_twin=perp_twin,
        ws_origins=settings.ws_origins,
    )
