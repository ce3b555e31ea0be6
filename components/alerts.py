"""The alerts section of the page: the rule editor with each kind's parameter help, the
rules list, the events list (newest first), the toast and the sound/notification
switches. Pure: builds components from rule and event dictionaries (the API's shapes)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import dcc, html

from components.panel import create_panel

KIND_LABELS = {
    "price": "Price crosses",
    "large_trade": "Large trade",
    "wall": "Wall appears / pulled",
    "imbalance": "Book imbalance",
    "flow": "CVD flow",
    "move": "Price move",
}
SOUND_TONES_HZ = {
    "price": 880,
    "large_trade": 660,
    "wall": 440,
    "imbalance": 550,
    "flow": 330,
    "move": 990,
}
"""Each kind's tone (the browser plays it with Web Audio, ``assets/alerts.js``)."""

_DETAIL_ORDER = ("event", "side", "direction", "price", "level", "qty", "notional")


def utc_time(time_ms: int) -> str:
    """Exchange time as UTC ISO 8601 with milliseconds."""
    moment = datetime.fromtimestamp(time_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 100 else f"{value:,.6g}"
    return str(value)


def describe_params(kind: str, params: dict[str, Any]) -> str:
    """One line for a rule's parameters, e.g. ``min_notional 100,000.00 · side buy``."""
    return " · ".join(f"{k} {_number(v)}" for k, v in params.items() if v is not None) or kind


def describe_event(event: dict[str, Any]) -> str:
    """One line saying what happened, with its numbers, e.g.
    ``BTCUSDT large trade: buy 1.5 @ 58,001.03 = 87,001.55 (trade 665076801)``."""
    d = event["details"]
    kind, symbol = event["kind"], event["symbol"]
    if kind == "large_trade":
        what = (
            f"{d['side']} {_number(d['qty'])} @ {_number(d['price'])} = "
            f"{_number(d['notional'])} (trade {d['trade_id']})"
        )
    elif kind == "price":
        what = f"crossed {d['direction']} {_number(d['level'])} at {_number(d['price'])}"
    elif kind == "wall":
        what = f"{d['side']} wall {d['event']} at {_number(d['price'])}: {_number(d['notional'])}"
    else:
        shown = [k for k in (*_DETAIL_ORDER, *sorted(d)) if k in d]
        what = ", ".join(f"{k} {_number(d[k])}" for k in dict.fromkeys(shown))
    return f"{symbol} {KIND_LABELS.get(kind, kind).lower()}: {what}"


def _delivery(event: dict[str, Any]) -> str:
    webhook = (event.get("delivery") or {}).get("webhook")
    if not webhook:
        return ""
    return f"webhook {webhook['status']} ({webhook.get('attempts', 0)} tries)"


def create_event_rows(events: list[dict[str, Any]]) -> list[html.Li]:
    """The events list, newest first (as given); each row's id carries its symbol and time
    so a click can jump the views there."""
    if not events:
        return [html.Li("No alerts fired yet.", className="alert-event empty")]
    return [
        html.Li(
            [
                html.Span(utc_time(e["time_ms"]), className="alert-time"),
                html.Span(describe_event(e), className="alert-what"),
                html.Span(_delivery(e), className="alert-delivery"),
            ],
            className=f"alert-event kind-{e['kind']}",
            id={"type": "alert-event", "id": e["id"], "symbol": e["symbol"], "time": e["time_ms"]},
            title="Show this moment: its symbol, over the heatmap range that reaches it",
        )
        for e in events
    ]


def create_rule_rows(rules: list[dict[str, Any]]) -> html.Table | html.Div:
    """The rules list with enable/disable and delete buttons per rule."""
    if not rules:
        return html.Div("No alert rules yet.", className="alert-rules empty")
    rows = []
    for r in rules:
        extras = [name for name in ("sound", "webhook") if r[name]]
        rows.append(
            html.Tr(
                [
                    html.Td(KIND_LABELS[r["kind"]]),
                    html.Td(r["symbol"]),
                    html.Td(describe_params(r["kind"], r["params"])),
                    html.Td(", ".join(extras) + (f" — {r['note']}" if r["note"] else "")),
                    html.Td(
                        [
                            dbc.Button(
                                "disable" if r["enabled"] else "enable",
                                id={"type": "alert-toggle", "id": r["id"]},
                                size="sm",
                                color="secondary",
                                outline=True,
                            ),
                            dbc.Button(
                                "delete",
                                id={"type": "alert-delete", "id": r["id"]},
                                size="sm",
                                color="danger",
                                outline=True,
                            ),
                        ]
                    ),
                ],
                className="alert-rule" + ("" if r["enabled"] else " disabled"),
            )
        )
    return html.Table(html.Tbody(rows), className="table table-sm alert-rules")


def create_kind_help(kind: str, params_help: dict[str, dict[str, str]]) -> html.Ul:
    """Each parameter of ``kind`` with its meaning and default."""
    return html.Ul(
        [html.Li([html.Code(name), f": {doc}"]) for name, doc in params_help[kind].items()],
        className="alert-help",
    )


def create_toast(toast_id: str) -> dbc.Toast:
    return dbc.Toast(
        id=toast_id,
        header="Alert",
        is_open=False,
        dismissable=True,
        duration=8000,
        icon="warning",
        className="alert-toast",
        style={"position": "fixed", "top": 12, "right": 12, "width": 380, "zIndex": 2000},
    )


def create_alerts_section(ids: dict[str, str], params_help: dict[str, dict[str, str]]) -> dbc.Card:
    """The alerts panel; ``ids`` names every element the callbacks use (see
    ``app.callbacks.alerts.IDS``)."""
    kinds = [{"label": label, "value": kind} for kind, label in KIND_LABELS.items()]
    form = dbc.Row(
        [
            dbc.Col(
                dcc.Dropdown(id=ids["kind"], options=kinds, value="large_trade", clearable=False),
                md=2,
            ),
            dbc.Col(
                dbc.Input(id=ids["symbol"], placeholder="symbol or * (current)", size="sm"), md=1
            ),
            dbc.Col(
                dbc.Input(
                    id=ids["threshold"], type="number", placeholder="level / notional", size="sm"
                ),
                md=2,
            ),
            dbc.Col(
                dcc.Dropdown(
                    id=ids["option"],
                    placeholder="side / direction",
                    options=["buy", "sell", "up", "down", "any"],
                ),
                md=1,
            ),
            dbc.Col(
                dbc.Input(
                    id=ids["params"], placeholder='other params, JSON: {"band_bps": 25}', size="sm"
                ),
                md=2,
            ),
            dbc.Col(
                dbc.Input(id=ids["webhook"], placeholder="webhook URL (optional)", size="sm"), md=2
            ),
            dbc.Col(dbc.Checkbox(id=ids["sound"], label="sound", value=False), md=1),
            dbc.Col(dbc.Button("Add alert", id=ids["create"], size="sm", color="primary"), md=1),
        ],
        className="g-1 alert-form",
    )
    switches = html.Div(
        [
            dbc.Checkbox(id=ids["sound_on"], label="play sounds", value=True),
            dbc.Button("Allow browser notifications", id=ids["notify"], size="sm", color="link"),
        ],
        className="alert-switches",
    )
    body = html.Div(
        [
            form,
            html.Div(id=ids["message"], className="alert-message"),
            html.Div(create_kind_help("large_trade", params_help), id=ids["help"]),
            dbc.Row(
                [
                    dbc.Col([html.H6("Rules"), html.Div(id=ids["rules"])], lg=6),
                    dbc.Col(
                        [html.H6("Events"), html.Ul(id=ids["events"], className="alert-events")],
                        lg=6,
                    ),
                ]
            ),
        ]
    )
    return create_panel(
        "Alerts",
        body,
        switches,
        panel_id="alerts-panel",
        definition="Rules are evaluated by the server on every trade and book change, "
        "whether or not a page is open; events are kept with their webhook outcome.",
    )
