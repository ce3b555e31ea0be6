"""Every answer under /api/ is the API's: unknown paths are 404 JSON (never the dashboard
page with 200), methods an endpoint does not serve are 405 JSON naming the allowed ones, and
a parameter is honoured as asked or refused with a 400 that names its limit."""

from __future__ import annotations

import pytest
from flask import Blueprint

from app.api import MAX_BINS
from app.callbacks.derived import PROFILE_MAX_ROWS
from app.server import create_app
from services.store import MemoryStore
from tests.conftest import SPOT_2021
from tests.recorded_feed import RecordedFeed

BASE = "/api/assets/crypto"


@pytest.fixture(scope="module")
def client():
    store = MemoryStore()
    feed = RecordedFeed(store, SPOT_2021, messages_per_step=200)
    for _ in range(20):
        feed.step()
    return create_app(store).server.test_client()


@pytest.mark.parametrize(
    "path",
    [
        "/api/nothing",
        "/api/",
        "/api",
        "/api/assets",
        "/api/assets/crypto",
        "/api/assets/crypto/BTCUSDT",
        "/api/assets/crypto/BTCUSDT/nothing",
        "/api/assets/crypto/BTCUSDT/orderbook/extra",
        "/api/assets/crypto/..%2F..%2Fetc%2Fpasswd/orderbook",
        "/api/assets/crypto/%2E%2E/%2E%2E/orderbook",
        "/api//assets/crypto/BTCUSDT/orderbook",
        "/api/healthz",
        "/api/_dash-layout",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "PROPFIND"])
def test_unknown_api_paths_are_404_json(client, path, method):
    response = client.open(path, method=method)
    assert response.status_code == 404, response.get_data(as_text=True)[:200]
    assert response.is_json
    assert response.get_json()["error"].startswith("no API endpoint at /api")


@pytest.mark.parametrize(
    "path",
    [
        f"{BASE}/BTCUSDT/orderbook",
        f"{BASE}/BTCUSDT/trades",
        f"{BASE}/BTCUSDT/volume-profile",
        f"{BASE}/NOPEUSDT/trade-stats",
        "/healthz",
    ],
)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "TRACE", "FOO"])
def test_other_methods_on_api_routes_are_405_json(client, path, method):
    response = client.open(path, method=method)
    assert response.status_code == 405
    assert response.is_json
    assert response.get_json()["allowed"] == ["GET", "HEAD"]
    assert response.headers["Allow"] == "GET, HEAD"
    assert method in response.get_json()["error"]


def test_api_routes_and_pages_still_answer(client):
    assert client.get(f"{BASE}/BTCUSDT/orderbook?levels=3").status_code == 200
    assert client.head(f"{BASE}/BTCUSDT/trades").status_code == 200
    assert client.get("/healthz").is_json
    page = client.get("/BTCUSDT")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert client.get("/apis").mimetype == "text/html"  # a page path, not under /api/


def test_bins_limit_is_the_profile_row_limit():
    assert MAX_BINS == PROFILE_MAX_ROWS


@pytest.mark.parametrize("bins", [PROFILE_MAX_ROWS + 1, 400, 500])
def test_bins_beyond_the_limit_are_refused_naming_it(client, bins):
    response = client.get(f"{BASE}/BTCUSDT/volume-profile?bins={bins}")
    assert response.status_code == 400
    body = response.get_json()
    assert body["parameter"] == "bins" and str(PROFILE_MAX_ROWS) in body["error"]


@pytest.mark.parametrize("bins", [1, 7, 50, 299, PROFILE_MAX_ROWS])
def test_bins_within_the_limit_are_honoured(client, bins):
    """The answer has exactly ``bins`` rows covering every trade of the window."""
    body = client.get(f"{BASE}/BTCUSDT/volume-profile?bins={bins}").get_json()
    profile = body["profile"]
    assert body["bins"] == bins and body["rows"] == bins == len(profile["price"])
    assert sum(profile["volume"]) == pytest.approx(profile["total_volume"])


def test_api_routes_of_other_blueprints_are_left_to_them():
    """A room registering its own blueprint under /api/ (history, alerts, ...) keeps its
    routes; a method it does not serve is still a 405 JSON."""
    store = MemoryStore()
    app = create_app(store)
    extra = Blueprint("extra_room", __name__)
    extra.add_url_rule("/api/extra/<name>", "extra", lambda name: {"name": name})
    app.server.register_blueprint(extra)
    client = app.server.test_client()
    assert client.get("/api/extra/x").get_json() == {"name": "x"}
    response = client.post("/api/extra/x")
    assert response.status_code == 405 and response.get_json()["allowed"] == ["GET", "HEAD"]
    assert client.get("/api/extra").status_code == 404
