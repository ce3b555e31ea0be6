"""Alert rules: validation names the bad field; defaults fill in; PATCH keeps the id."""

from __future__ import annotations

import pytest

from services.alerts.rules import KINDS, PARAMS, RuleError, help_text, validate
from services.alerts.webhook_policy import WebhookPolicy

SYMBOLS = {"BTCUSDT", "ETHUSDT"}


def _field(payload, **kw) -> str:
    with pytest.raises(RuleError) as err:
        validate(payload, SYMBOLS, **kw)
    return err.value.field


def test_a_large_trade_rule_takes_defaults_and_an_id():
    rule = validate(
        {"kind": "large_trade", "symbol": "btcusdt", "params": {"min_notional": 1e5}}, SYMBOLS
    )
    assert rule.symbol == "BTCUSDT" and rule.params == {"min_notional": 1e5, "side": None}
    assert rule.enabled and rule.cooldown_s == 0 and rule.webhook is None and not rule.sound
    assert len(rule.id) == 12


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"kind": "nope", "symbol": "BTCUSDT"}, "kind"),
        ({"kind": "price", "symbol": "XXXUSDT", "params": {"level": 1}}, "symbol"),
        ({"kind": "price", "symbol": "*", "params": {"level": 1}}, "symbol"),
        ({"kind": "price", "symbol": "BTCUSDT"}, "params.level"),
        ({"kind": "price", "symbol": "BTCUSDT", "params": {"level": -5}}, "params.level"),
        ({"kind": "price", "symbol": "BTCUSDT", "params": {"level": "x"}}, "params.level"),
        (
            {"kind": "price", "symbol": "BTCUSDT", "params": {"level": 5, "direction": "left"}},
            "params.direction",
        ),
        (
            {"kind": "large_trade", "symbol": "*", "params": {"min_notional": -1}},
            "params.min_notional",
        ),
        (
            {"kind": "large_trade", "symbol": "*", "params": {"min_notional": 1, "side": "x"}},
            "params.side",
        ),
        ({"kind": "large_trade", "symbol": "*", "params": {"min_notional": 1, "z": 1}}, "params.z"),
        (
            {
                "kind": "large_trade",
                "symbol": "*",
                "params": {"min_notional": 1},
                "webhook": "ftp://h/",
            },
            "webhook",
        ),
        (
            {"kind": "large_trade", "symbol": "*", "params": {"min_notional": 1}, "cooldown_s": -1},
            "cooldown_s",
        ),
        (
            {"kind": "large_trade", "symbol": "*", "params": {"min_notional": 1}, "enabled": 1},
            "enabled",
        ),
        (
            {"kind": "large_trade", "symbol": "*", "params": {"min_notional": 1}, "colour": 1},
            "colour",
        ),
        ([], "body"),
    ],
)
def test_bad_rules_name_the_field(payload, field):
    assert _field(payload) == field


def test_webhooks_to_private_addresses_need_the_allow_list():
    payload = {
        "kind": "large_trade",
        "symbol": "*",
        "params": {"min_notional": 1},
        "webhook": "http://127.0.0.1:9/hook",
    }
    for host in ("127.0.0.1", "10.1.2.3", "169.254.169.254", "[::1]", "192.168.0.7"):
        payload["webhook"] = f"http://{host}:9/hook"
        assert _field(payload, check_url=WebhookPolicy().check) == "webhook"
    listed = WebhookPolicy(("127.0.0.1",))
    assert validate(
        {**payload, "webhook": "http://127.0.0.1:9/hook"}, SYMBOLS, check_url=listed.check
    ).webhook
    only = WebhookPolicy(("hooks.example.org",))
    payload["webhook"] = "http://1.1.1.1/hook"
    assert _field(payload, check_url=only.check) == "webhook"
    assert WebhookPolicy(("10.0.0.0/8",)).check("http://10.9.9.9/") is None


def test_patch_keeps_the_id_and_revalidates():
    rule = validate({"kind": "price", "symbol": "BTCUSDT", "params": {"level": 5}}, SYMBOLS)
    edited = validate({"enabled": False, "params": {"level": 6}}, SYMBOLS, base=rule)
    assert edited.id == rule.id and not edited.enabled and edited.params["level"] == 6
    with pytest.raises(RuleError) as err:
        validate({"kind": "wall"}, SYMBOLS, base=rule)
    assert err.value.field == "params.min_notional"


def test_every_kind_is_documented_for_the_page():
    docs = help_text()
    assert set(docs) == set(KINDS) == {"price", "large_trade", "wall", "imbalance", "flow", "move"}
    for kind, specs in PARAMS.items():
        assert set(docs[kind]) == set(specs)
