"""Alert rules: the six kinds, their parameters (documented once, here, and shown in the
page's help) and validation of what the page or the JSON API sends.

A rule as the API speaks it::

    {"id": "a1b2c3", "kind": "large_trade", "symbol": "BTCUSDT" | "*",
     "params": {"min_notional": 100000.0, "side": null}, "enabled": true,
     "cooldown_s": 0, "webhook": "https://…" | null, "sound": false, "note": ""}

``cooldown_s`` is counted in market time (the exchange's timestamps), so a replay fires
as the live market would. Every kind re-arms only after its condition has cleared.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

ANY_SYMBOL = "*"
REQUIRED = object()


class RuleError(ValueError):
    """A rule that cannot be accepted; ``field`` names the offending field (``params.level``)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a kind: its default (``REQUIRED``: none), what it accepts, and the
    help text the page shows."""

    default: Any
    check: Callable[[str, Any], Any]
    doc: str


def _number(low: float | None = None, high: float | None = None, positive: bool = False):
    def check(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RuleError(name, "must be a number")
        value = float(value)
        if not math.isfinite(value):
            raise RuleError(name, "must be finite")
        if positive and value <= 0:
            raise RuleError(name, "must be positive")
        if low is not None and value < low:
            raise RuleError(name, f"must be at least {low:g}")
        if high is not None and value > high:
            raise RuleError(name, f"must be at most {high:g}")
        return value

    return check


def _choice(*options: Any):
    def check(name: str, value: Any) -> Any:
        if value not in options:
            shown = ", ".join("null" if o is None else str(o) for o in options)
            raise RuleError(name, f"must be one of {shown}")
        return value

    return check


PARAMS: dict[str, dict[str, Param]] = {
    "price": {
        "level": Param(REQUIRED, _number(positive=True), "price level in quote currency"),
        "direction": Param(
            "any", _choice("up", "down", "any"), "crossing upwards, downwards or either way"
        ),
        "rearm_bps": Param(
            0.0,
            _number(low=0.0, high=10_000.0),
            "after firing, price must go back this many bps beyond the level to re-arm",
        ),
    },
    "large_trade": {
        "min_notional": Param(
            REQUIRED, _number(positive=True), "one aggTrade's price × qty (quote) at or above this"
        ),
        "side": Param(None, _choice("buy", "sell", None), "taker side; null for both"),
    },
    "wall": {
        "min_notional": Param(
            REQUIRED, _number(positive=True), "resting price × qty at one price at or above this"
        ),
        "band_bps": Param(50.0, _number(positive=True, high=10_000.0), "within ± bps of mid"),
        "event": Param(
            "any", _choice("appear", "pulled", "any"), "fire when a wall appears, is pulled"
        ),
        "pulled_fraction": Param(
            0.5,
            _number(low=0.0, high=1.0),
            "a wall leaving the book is pulled when more than this fraction of its fall "
            "(from its peak) was not traded at its price",
        ),
    },
    "imbalance": {
        "band_bps": Param(25.0, _number(positive=True, high=10_000.0), "book within ± bps of mid"),
        "threshold": Param(
            REQUIRED, _number(positive=True, high=1.0), "|bid − ask| / (bid + ask) notional ≥ this"
        ),
        "side": Param("any", _choice("bid", "ask", "any"), "which side must dominate"),
        "hold_s": Param(5.0, _number(low=0.0, high=3600.0), "for at least this many seconds"),
    },
    "flow": {
        "window_s": Param(60.0, _number(positive=True, high=3600.0), "rolling window"),
        "threshold": Param(
            REQUIRED, _number(positive=True), "|CVD change| (taker buy − sell notional) ≥ this"
        ),
        "direction": Param("any", _choice("up", "down", "any"), "buying, selling or either"),
        "min_trade_notional": Param(
            0.0, _number(low=0.0), "trade-size filter: only trades with notional ≥ this count"
        ),
    },
    "move": {
        "pct": Param(REQUIRED, _number(positive=True, high=1000.0), "|price change| ≥ this %"),
        "window_s": Param(
            60.0,
            _number(positive=True, high=86_400.0),
            "change of the last trade against the price window_s earlier (60: the 1-minute "
            "change; 86400: the 24 h change once the feed has held a day of trades)",
        ),
        "direction": Param("any", _choice("up", "down", "any"), "rise, fall or either"),
    },
}
KINDS = tuple(PARAMS)
ANY_SYMBOL_KINDS = ("large_trade", "move")
MAX_NOTE = 500
MAX_COOLDOWN_S = 7 * 86_400


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule (see the module docstring for the JSON shape)."""

    id: str
    kind: str
    symbol: str
    params: dict[str, Any] = field(default_factory=dict)
    enabled: bool = True
    cooldown_s: float = 0.0
    webhook: str | None = None
    sound: bool = False
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def new_rule_id() -> str:
    return secrets.token_hex(6)


def _params(kind: str, raw: Any) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise RuleError("params", "must be an object")
    specs = PARAMS[kind]
    unknown = sorted(set(raw) - set(specs))
    if unknown:
        raise RuleError(f"params.{unknown[0]}", f"unknown parameter for {kind}")
    out: dict[str, Any] = {}
    for name, spec in specs.items():
        if name in raw:
            out[name] = spec.check(f"params.{name}", raw[name])
        elif spec.default is REQUIRED:
            raise RuleError(f"params.{name}", "is required")
        else:
            out[name] = spec.default
    return out


def _webhook(value: Any, check_url: Callable[[str], None] | None) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RuleError("webhook", "must be an http(s) URL or null")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RuleError("webhook", "must be an http or https URL")
    if check_url is not None:
        try:
            check_url(value)
        except ValueError as exc:
            raise RuleError("webhook", str(exc)) from None
    return value


def validate(
    payload: Any,
    symbols: Collection[str],
    *,
    base: Rule | None = None,
    check_url: Callable[[str], None] | None = None,
) -> Rule:
    """The rule ``payload`` describes (``base`` updated by it for a PATCH), or
    ``RuleError`` naming the first bad field. ``symbols`` are the tradable symbols;
    ``check_url`` rejects webhook targets the server may not call (``ValueError``)."""
    if not isinstance(payload, Mapping):
        raise RuleError("body", "must be a JSON object")
    allowed = {"kind", "symbol", "params", "enabled", "cooldown_s", "webhook", "sound", "note"}
    unknown = sorted(set(payload) - allowed - {"id"})
    if unknown:
        raise RuleError(unknown[0], "unknown field")
    merged: dict[str, Any] = base.to_json() if base is not None else {}
    if base is not None and "kind" in payload and payload["kind"] != base.kind:
        merged["params"] = {}
    merged.update({k: v for k, v in payload.items() if k != "id"})
    kind = merged.get("kind")
    if kind not in PARAMS:
        raise RuleError("kind", f"must be one of {', '.join(KINDS)}")
    symbol = merged.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise RuleError("symbol", "is required")
    symbol = symbol.upper()
    if symbol in (ANY_SYMBOL, "ANY"):
        if kind not in ANY_SYMBOL_KINDS:
            raise RuleError("symbol", f"'*' (any symbol) is only for {', '.join(ANY_SYMBOL_KINDS)}")
        symbol = ANY_SYMBOL
    elif symbol not in symbols:
        raise RuleError("symbol", f"unknown symbol {symbol}")
    params = _params(kind, merged.get("params"))
    enabled = merged.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RuleError("enabled", "must be true or false")
    sound = merged.get("sound", False)
    if not isinstance(sound, bool):
        raise RuleError("sound", "must be true or false")
    cooldown = _number(low=0.0, high=MAX_COOLDOWN_S)("cooldown_s", merged.get("cooldown_s", 0))
    note = merged.get("note", "") or ""
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise RuleError("note", f"must be text of at most {MAX_NOTE} characters")
    rule = Rule(
        id=base.id if base is not None else new_rule_id(),
        kind=kind,
        symbol=symbol,
        params=params,
        enabled=enabled,
        cooldown_s=cooldown,
        webhook=_webhook(merged.get("webhook"), check_url),
        sound=sound,
        note=note,
    )
    return rule


def from_json(data: Mapping[str, Any]) -> Rule:
    """A stored rule (already validated when it was written)."""
    return Rule(
        id=str(data["id"]),
        kind=str(data["kind"]),
        symbol=str(data["symbol"]),
        params=dict(data.get("params") or {}),
        enabled=bool(data.get("enabled", True)),
        cooldown_s=float(data.get("cooldown_s", 0.0)),
        webhook=data.get("webhook"),
        sound=bool(data.get("sound", False)),
        note=str(data.get("note", "")),
    )


def help_text() -> dict[str, dict[str, str]]:
    """Per kind, each parameter's help (with its default) for the page."""
    return {
        kind: {
            name: spec.doc + ("" if spec.default is REQUIRED else f" (default {spec.default})")
            for name, spec in specs.items()
        }
        for kind, specs in PARAMS.items()
    }
