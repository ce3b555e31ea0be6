"""Alerts on the page: create rules (also from a click on the depth chart or the
heatmap), enable, disable and delete them, list events newest first, and announce new ones
with a toast, a per-kind sound and a browser notification (``assets/alerts.js``).

The page reads and writes the same rule store and event log as ``/api/alerts``; rules are
evaluated by the feed's ``AlertTap``, never by these callbacks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import dash
from dash import ALL, ClientsideFunction, Input, Output, State, ctx, dcc, html, no_update

from app import ids
from app.alerting import Alerts
from app.callbacks.derived import market_now_ms
from app.callbacks.symbol import trading_symbols
from components.alerts import (
    SOUND_TONES_HZ,
    create_alerts_section,
    create_event_rows,
    create_kind_help,
    create_rule_rows,
    create_toast,
    describe_event,
)
from components.heatmap import TIME_RANGES_MS
from services.alerts.rules import RuleError, help_text, validate
from services.store import MarketStore

IDS = {
    name: f"alerts-{name.replace('_', '-')}"
    for name in (
        "kind", "symbol", "threshold", "option", "params", "webhook", "sound", "create",
        "message", "help", "rules", "events", "sound_on", "notify", "toast", "interval",
        "last_id", "drawn_id", "fresh", "rules_version", "jump", "nudge",
    )
}  # fmt: skip
EVENTS_SHOWN = 50
POLL_MS = 1000
PUSHED_POLL_MS = 15_000
"""The event list's poll while ``/ws/alerts/`` is open (``assets/alerts.js``): each pushed
event asks for a read at once (``alerts-nudge``), so the poll is only a safety net; back to
``POLL_MS`` when the socket drops."""
THRESHOLD_PARAM = {
    "price": "level",
    "large_trade": "min_notional",
    "wall": "min_notional",
    "imbalance": "threshold",
    "flow": "threshold",
    "move": "pct",
}
OPTION_PARAM = {
    "price": "direction",
    "large_trade": "side",
    "flow": "direction",
    "move": "direction",
    "imbalance": "side",
}


def form_payload(
    kind: str,
    symbol: str | None,
    threshold: float | None,
    option: str | None,
    extra: str | None,
    webhook: str | None,
    sound: bool,
) -> dict[str, Any]:
    """The rule the form describes, in the API's shape (validated by the caller)."""
    params: dict[str, Any] = {}
    if extra and extra.strip():
        try:
            params = json.loads(extra)
        except ValueError:
            raise RuleError("params", "other params must be a JSON object") from None
        if not isinstance(params, dict):
            raise RuleError("params", "other params must be a JSON object")
    if threshold is not None:
        params[THRESHOLD_PARAM[kind]] = threshold
    if option and kind in OPTION_PARAM:
        params[OPTION_PARAM[kind]] = option
    return {
        "kind": kind,
        "symbol": symbol,
        "params": params,
        "webhook": webhook or None,
        "sound": bool(sound),
    }


def moment_range(time_ms: int, now_ms: int) -> str | None:
    """The shortest heatmap range (which ends now) that still shows ``time_ms``, with a
    tenth of it to spare; None when the moment is older than the longest range."""
    age = now_ms - time_ms
    for name, span in TIME_RANGES_MS.items():
        if age <= span * 0.9:
            return name
    return None


def with_alerts(layout: Callable[[], html.Div], alerts: Alerts) -> Callable[[], html.Div]:
    """The page layout with the alerts section, its toast, poll and stores added."""
    params_help = help_text()

    def page() -> html.Div:
        newest = alerts.events.since(0, 1)
        return html.Div(
            [
                layout(),
                html.Div(create_alerts_section(IDS, params_help), className="app-alerts"),
                dcc.Interval(id=IDS["interval"], interval=POLL_MS),
                dcc.Store(id=IDS["nudge"], data=None),
                html.Div(
                    id="alerts-push-config",
                    hidden=True,
                    **{"data-poll-ms": POLL_MS, "data-pushed-poll-ms": PUSHED_POLL_MS},
                ),
                dcc.Store(id=IDS["last_id"], data=newest[0].id if newest else 0),
                dcc.Store(id=IDS["drawn_id"], data=None),
                dcc.Store(id=IDS["jump"], data=None),
                dcc.Store(id=IDS["fresh"], data=[]),
                dcc.Store(id=IDS["rules_version"], data=0),
                html.Div(id="alerts-clientside-sink", hidden=True),
                create_toast(IDS["toast"]),
            ]
        )

    return page


def register(app: dash.Dash, store: MarketStore, alerts: Alerts) -> None:
    """Wrap the app's layout with the alerts section and register its callbacks."""
    app.validation_layout = None  # taken from the first layout set; take it from this one
    app.layout = with_alerts(app.layout, alerts)
    params_help = help_text()

    @app.callback(Output(IDS["help"], "children"), Input(IDS["kind"], "value"))
    def show_help(kind: str) -> html.Ul:
        return create_kind_help(kind or "large_trade", params_help)

    @app.callback(
        Output(IDS["message"], "children"),
        Output(IDS["rules_version"], "data", allow_duplicate=True),
        Input(IDS["create"], "n_clicks"),
        State(IDS["kind"], "value"),
        State(IDS["symbol"], "value"),
        State(IDS["threshold"], "value"),
        State(IDS["option"], "value"),
        State(IDS["params"], "value"),
        State(IDS["webhook"], "value"),
        State(IDS["sound"], "value"),
        State(ids.SYMBOL_DROPDOWN, "value"),
        State(IDS["rules_version"], "data"),
        prevent_initial_call=True,
    )
    def create(_n, kind, symbol, threshold, option, extra, webhook, sound, shown, version):
        try:
            payload = form_payload(kind, symbol or shown, threshold, option, extra, webhook, sound)
            rule = validate(payload, set(trading_symbols(store)), check_url=alerts.policy.check)
        except RuleError as exc:
            return html.Span(str(exc), className="text-danger"), no_update
        alerts.rules.put(rule)
        return f"Alert {rule.id} added.", (version or 0) + 1

    @app.callback(
        Output(IDS["rules_version"], "data", allow_duplicate=True),
        Input({"type": "alert-toggle", "id": ALL}, "n_clicks"),
        Input({"type": "alert-delete", "id": ALL}, "n_clicks"),
        State(IDS["rules_version"], "data"),
        prevent_initial_call=True,
    )
    def change(_toggles, _deletes, version):
        clicked = ctx.triggered_id
        if not isinstance(clicked, dict) or not ctx.triggered[0]["value"]:
            return no_update
        rule = alerts.rules.get(clicked["id"])
        if rule is None:
            return (version or 0) + 1
        if clicked["type"] == "alert-delete":
            alerts.rules.delete(rule.id)
        else:
            edited = validate({"enabled": not rule.enabled}, {rule.symbol}, base=rule)
            alerts.rules.put(edited)
        return (version or 0) + 1

    @app.callback(Output(IDS["rules"], "children"), Input(IDS["rules_version"], "data"))
    def show_rules(_version):
        rules = sorted(alerts.rules.all(), key=lambda r: (r.symbol, r.kind, r.id))
        return create_rule_rows([r.to_json() for r in rules])

    @app.callback(
        Output(IDS["events"], "children"),
        Output(IDS["drawn_id"], "data"),
        Output(IDS["last_id"], "data"),
        Output(IDS["fresh"], "data"),
        Output(IDS["toast"], "is_open"),
        Output(IDS["toast"], "header"),
        Output(IDS["toast"], "children"),
        Input(IDS["interval"], "n_intervals"),
        Input(IDS["nudge"], "data"),
        State(IDS["last_id"], "data"),
        State(IDS["drawn_id"], "data"),
    )
    def poll(_n, _nudge, last_id, drawn_id):
        """Redraw the event list only when it changed (the log only grows), so a row the
        user is about to click is not replaced under the pointer every second. A tick with
        no new event reads only the newest one (the full list may reach the archive)."""
        newest = alerts.events.since(0, 1)
        newest_id = newest[0].id if newest else 0
        if newest_id == drawn_id and newest_id <= (last_id or 0):
            return (no_update,) * 7
        events = [e.to_json() for e in alerts.events.since(0, EVENTS_SHOWN)]
        newest_id = events[0]["id"] if events else 0  # one may have arrived meanwhile
        fresh = [
            {**e, "text": describe_event(e), "tone_hz": SOUND_TONES_HZ[e["kind"]]}
            for e in events
            if e["id"] > (last_id or 0)
        ]
        if drawn_id == newest_id:
            rows, drawn = no_update, no_update
        else:
            rows, drawn = create_event_rows(events), newest_id
        if not fresh:
            return rows, drawn, no_update, no_update, no_update, no_update, no_update
        top = fresh[0]
        more = f" (+{len(fresh) - 1} more)" if len(fresh) > 1 else ""
        header = f"{top['symbol']} {top['kind'].replace('_', ' ')}{more}"
        return rows, drawn, top["id"], fresh, True, header, top["text"]

    register_jump(app, store)

    @app.callback(
        Output(IDS["kind"], "value"),
        Output(IDS["threshold"], "value"),
        Output(IDS["option"], "value"),
        Input(ids.DEPTH_CHART, "clickData"),
        Input(ids.HEATMAP_CHART, "clickData"),
        prevent_initial_call=True,
    )
    def price_from_chart_click(depth_click, heatmap_click):
        """A click on the depth chart (price on x) or the heatmap (price on y) starts a
        price alert at that price."""
        on_depth = ctx.triggered_id == ids.DEPTH_CHART
        click = depth_click if on_depth else heatmap_click
        points = (click or {}).get("points") or []
        price = points[0].get("x" if on_depth else "y") if points else None
        if not isinstance(price, int | float):
            return no_update, no_update, no_update
        return "price", round(float(price), 8), "any"

    app.clientside_callback(
        ClientsideFunction(namespace="alerts", function_name="announce"),
        Output("alerts-clientside-sink", "children"),
        Input(IDS["fresh"], "data"),
        State(IDS["sound_on"], "value"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction(namespace="alerts", function_name="askPermission"),
        Output(IDS["notify"], "children"),
        Input(IDS["notify"], "n_clicks"),
        prevent_initial_call=True,
    )


def register_jump(app: dash.Dash, store: MarketStore) -> None:
    """A click on an event shows its symbol over the heatmap range that reaches it. The
    click is taken in the browser (``assets/alerts.js``: it survives the list's redraw),
    which sets the URL's path and ``IDS["jump"]``."""

    @app.callback(
        Output(ids.HEATMAP_RANGE, "value", allow_duplicate=True),
        Input(IDS["jump"], "data"),
        prevent_initial_call=True,
    )
    def range_for_event(jump):
        """The shortest heatmap range that reaches the clicked event, on its market's clock
        (a replay's is the recording's)."""
        if not jump:
            return no_update
        snapshot = store.snapshot(jump["symbol"])
        now_ms = market_now_ms(snapshot) if snapshot else int(time.time() * 1000)
        return moment_range(int(jump["time"]), max(now_ms, int(jump["time"]))) or no_update
