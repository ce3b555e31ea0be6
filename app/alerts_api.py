"""The alerts' JSON API (automation drives it; the names are fixed by the issue).

- ``GET /api/alerts`` → ``{"rules": [rule, …], "params": {kind: {param: help}}}``
- ``POST /api/alerts`` (a rule without ``id``) → 201 with the stored rule and its ``id``
- ``PATCH /api/alerts/<id>`` (any fields of a rule) → the updated rule; 404 unknown id
- ``DELETE /api/alerts/<id>`` → 204; 404 unknown id
- ``GET /api/alerts/events?since=<id or ms>&limit=<n>`` → ``{"events": [event, …]}``,
  newest first: events after event id ``since`` (or at/after ``since`` ms since the epoch
  when it is that large), at most ``limit`` (default 200, at most 1000).

Rule and event shapes: ``services.alerts.rules`` and ``services.alerts.events``. A bad rule
answers 400 with ``{"error": "<field>: <problem>", "field": "<field>"}``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from app.alerting import Alerts
from app.callbacks.symbol import trading_symbols
from services.alerts.rules import RuleError, help_text, validate
from services.store import MarketStore

MAX_EVENTS_PER_PAGE = 1000


def _error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": message, **extra}), status


def _body() -> Any:
    body = request.get_json(silent=True)
    if body is None:
        raise RuleError("body", "must be a JSON object (Content-Type: application/json)")
    return body


def _int_arg(name: str, default: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise RuleError(name, "must be an integer") from None
    if not 0 <= value <= high:
        raise RuleError(name, f"must be between 0 and {high}")
    return value


def create_alerts_api(store: MarketStore, alerts: Alerts) -> Blueprint:
    """The blueprint serving ``/api/alerts`` over ``alerts``' rule store and event log."""
    api = Blueprint("alerts_api", __name__, url_prefix="/api/alerts")

    def check(payload: Any, base=None):
        return validate(
            payload, set(trading_symbols(store)), base=base, check_url=alerts.policy.check
        )

    @api.errorhandler(RuleError)
    def bad_rule(exc: RuleError) -> tuple[Response, int]:
        return _error(400, str(exc), field=exc.field)

    @api.get("")
    def list_rules() -> Response:
        rules = sorted(alerts.rules.all(), key=lambda r: (r.symbol, r.kind, r.id))
        return jsonify({"rules": [r.to_json() for r in rules], "params": help_text()})

    @api.post("")
    def create_rule() -> tuple[Response, int, dict[str, str]]:
        rule = check(_body())
        alerts.rules.put(rule)
        return jsonify(rule.to_json()), 201, {"Location": f"/api/alerts/{rule.id}"}

    @api.patch("/<rule_id>")
    def edit_rule(rule_id: str) -> tuple[Response, int]:
        base = alerts.rules.get(rule_id)
        if base is None:
            return _error(404, f"no alert rule {rule_id}", field="id")
        rule = check(_body(), base)
        alerts.rules.put(rule)
        return jsonify(rule.to_json()), 200

    @api.delete("/<rule_id>")
    def delete_rule(rule_id: str) -> tuple[Response | str, int]:
        if not alerts.rules.delete(rule_id):
            return _error(404, f"no alert rule {rule_id}", field="id")
        return "", 204

    @api.get("/events")
    def events() -> Response:
        since = _int_arg("since", 0, 2**62)
        limit = _int_arg("limit", 200, MAX_EVENTS_PER_PAGE)
        return jsonify({"events": [e.to_json() for e in alerts.events.since(since, limit)]})

    return api
