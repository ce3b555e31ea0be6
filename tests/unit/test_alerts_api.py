"""The alerts' JSON API and who may use it: shapes fixed by the issue, 400s naming the
field, persistence through the API, basic auth over page, API and callbacks."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest

from app import auth
from app.alerting import make_alerts
from app.cli import run
from app.config import Settings
from app.server import create_app
from services.alerts.firing import Firing
from services.alerts.rules import validate
from services.store import MemoryStore
from tests.conftest import SPOT_2021
from tests.recorded_feed import RecordedFeed


@pytest.fixture(scope="module")
def store() -> MemoryStore:
    store = MemoryStore()
    feed = RecordedFeed(store, SPOT_2021, messages_per_step=200)
    feed.step()
    return store


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(alerts_dir=tmp_path, webhook_allow="127.0.0.1")


@pytest.fixture
def client(store, settings):
    return create_app(store, alerts=make_alerts(settings)).server.test_client()


LARGE = {"kind": "large_trade", "symbol": "BTCUSDT", "params": {"min_notional": 100000.0}}


def test_post_answers_201_with_the_rule_and_its_id_and_get_lists_it(client):
    response = client.post("/api/alerts", json={**LARGE, "webhook": "http://127.0.0.1:9/h"})
    assert response.status_code == 201
    rule = response.get_json()
    assert rule == {
        "id": rule["id"],
        "kind": "large_trade",
        "symbol": "BTCUSDT",
        "params": {"min_notional": 100000.0, "side": None},
        "enabled": True,
        "cooldown_s": 0.0,
        "webhook": "http://127.0.0.1:9/h",
        "sound": False,
        "note": "",
    }
    listed = client.get("/api/alerts").get_json()
    assert listed["rules"] == [rule]
    assert "min_notional" in listed["params"]["large_trade"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**LARGE, "kind": "spoof"}, "kind"),
        ({**LARGE, "symbol": "NOPEUSDT"}, "symbol"),
        ({**LARGE, "params": {"min_notional": -5}}, "params.min_notional"),
        ({**LARGE, "webhook": "file:///etc/passwd"}, "webhook"),
        ({**LARGE, "webhook": "http://169.254.169.254/latest"}, "webhook"),
        ({"kind": "price", "symbol": "BTCUSDT", "params": {"level": 1, "direction": "x"}},
         "params.direction"),
    ],
)  # fmt: skip
def test_bad_rules_answer_400_naming_the_field(client, payload, field):
    response = client.post("/api/alerts", json=payload)
    assert response.status_code == 400
    body = response.get_json()
    assert body["field"] == field and field in body["error"]


def test_a_body_that_is_not_json_is_a_400(client):
    response = client.post("/api/alerts", data="level=5", content_type="text/plain")
    assert response.status_code == 400 and response.get_json()["field"] == "body"


def test_patch_and_delete_by_id(client):
    rule = client.post("/api/alerts", json=LARGE).get_json()
    patched = client.patch(f"/api/alerts/{rule['id']}", json={"enabled": False, "cooldown_s": 5})
    assert patched.status_code == 200
    assert patched.get_json() == {**rule, "enabled": False, "cooldown_s": 5.0}
    bad = client.patch(f"/api/alerts/{rule['id']}", json={"params": {"min_notional": 0}})
    assert bad.status_code == 400 and bad.get_json()["field"] == "params.min_notional"
    assert client.delete(f"/api/alerts/{rule['id']}").status_code == 204
    assert client.delete(f"/api/alerts/{rule['id']}").status_code == 404
    assert client.patch("/api/alerts/nope", json={}).status_code == 404
    assert client.get("/api/alerts").get_json()["rules"] == []


def test_events_since_an_id_or_a_time_newest_first(store, settings):
    alerts = make_alerts(settings)
    client = create_app(store, alerts=alerts).server.test_client()
    rule = validate(LARGE, {"BTCUSDT"})
    for i in range(3):
        details = {"trade_id": i, "price": 1.0, "qty": 1.0, "notional": 1.0, "side": "buy"}
        alerts.events.append(Firing(rule, "BTCUSDT", 1_617_566_600_000 + i * 1000, details))
    events = client.get("/api/alerts/events").get_json()["events"]
    assert [e["id"] for e in events] == [3, 2, 1]
    assert set(events[0]) >= {"id", "rule_id", "kind", "symbol", "time_ms", "details"}
    assert [e["id"] for e in client.get("/api/alerts/events?since=1").get_json()["events"]] == [
        3,
        2,
    ]
    by_time = client.get("/api/alerts/events?since=1617566601000").get_json()["events"]
    assert [e["id"] for e in by_time] == [3, 2]
    bad = client.get("/api/alerts/events?since=yesterday")
    assert bad.status_code == 400 and bad.get_json()["field"] == "since"
    # a restarted server reads the same rules and events from the alerts directory
    client.post("/api/alerts", json=LARGE)
    again = create_app(store, alerts=make_alerts(settings)).server.test_client()
    assert len(again.get("/api/alerts").get_json()["rules"]) == 1
    assert len(again.get("/api/alerts/events").get_json()["events"]) == 3


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_with_users_every_route_needs_basic_auth(store, settings, tmp_path):
    users = tmp_path / "users"
    users.write_text("# analysts\nana:s3cret\n")
    guarded = replace(settings, host="0.0.0.0", auth_users_file=str(users))
    app = create_app(store, alerts=make_alerts(guarded))
    assert auth.protect(app, guarded)
    client = app.server.test_client()
    for path in ("/", "/api/alerts", "/api/alerts/events", "/_dash-layout",
                 "/api/assets/crypto/BTCUSDT/trades", "/healthz"):  # fmt: skip
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers=_basic("ana", "wrong")).status_code == 401, path
    assert client.post("/api/alerts", json=LARGE).status_code == 401
    assert client.get("/api/alerts", headers=_basic("ana", "s3cret")).status_code == 200
    created = client.post("/api/alerts", json=LARGE, headers=_basic("ana", "s3cret"))
    assert created.status_code == 201
    layout = client.get("/_dash-layout", headers=_basic("ana", "s3cret"))
    assert layout.status_code == 200 and b"alerts-create" in layout.data


def test_a_public_bind_without_users_refuses_to_start_unless_no_auth(tmp_path, capsys, caplog):
    code = run.main(["--host", "0.0.0.0", "--alerts-dir", str(tmp_path), "--source", "replay"])
    assert code == 2 and "--no-auth" in capsys.readouterr().err
    with pytest.raises(auth.AuthRequired):
        auth.check(Settings(host="192.168.1.5"))
    assert auth.check(Settings(host="0.0.0.0", no_auth=True)) == {}
    assert "without authentication" in caplog.text
    assert auth.check(Settings(host="127.0.0.1")) == {}
    assert auth.check(Settings(host="0.0.0.0", auth_users="a:b,c:d")) == {"a": "b", "c": "d"}


def test_an_event_is_shown_over_the_shortest_heatmap_range_that_reaches_it():
    from app.callbacks.alerts import moment_range

    now = 1_700_000_000_000
    assert moment_range(now - 60_000, now) == "5m"
    assert moment_range(now - 5 * 60_000, now) == "15m"  # the 5 m range would end on it
    assert moment_range(now - 3 * 3_600_000, now) == "4h"
    assert moment_range(now - 2 * 86_400_000, now) is None
