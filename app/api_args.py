"""What every JSON endpoint shares: ``ApiError`` (an error answered as JSON with an HTTP
status), the query-argument parsers that raise it with a 400 naming the parameter, and
``json_ready`` for bodies holding numpy values. ``app.api`` and the modules it hands
requests to (``app.history_api``) both use them, so they live below both."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from flask import Blueprint, Response, jsonify, request


class ApiError(Exception):
    """An error answered as JSON with an HTTP status."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": message, **extra}


def api_blueprint(name: str, import_name: str) -> Blueprint:
    """A blueprint whose ``ApiError``s are answered as their JSON body and status."""
    api = Blueprint(name, import_name)

    @api.errorhandler(ApiError)
    def api_error(error: ApiError) -> tuple[Response, int]:
        return jsonify(error.body), error.status

    return api


def json_ready(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null, numpy scalars and arrays plain."""
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biu" or (value.dtype.kind == "f" and np.isfinite(value).all()):
            return value.tolist()  # nothing to replace: skip the walk over every element
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """The request's integer argument ``name`` (``default`` when absent), within
    ``low``..``high``."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, f"{name} must be an integer", parameter=name) from exc
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low} and {high}", parameter=name)
    return value


def positive_arg(name: str, default: str = "") -> float:
    """The request's finite positive number argument ``name`` (``default`` when absent;
    none by default: then it is required)."""
    try:
        value = float(request.args.get(name, default))
    except ValueError as exc:
        raise ApiError(400, f"{name} must be a number", parameter=name) from exc
    if not (math.isfinite(value) and value > 0):
        raise ApiError(400, f"{name} must be positive", parameter=name)
    return value
