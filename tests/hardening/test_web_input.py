"""Web input: symbols from the URL, the dropdown and the API are checked against the known
symbols before anything reaches the store; parameters are bounded with 4xx JSON errors;
CSV cells cannot become spreadsheet formulas; the server is local and quiet by default."""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import fields

import pytest

from app import config, ids
from app.callbacks.derived import DerivedCache
from app.callbacks.export import render_export
from app.callbacks.symbol import select_symbol
from app.server import create_app
from components.large_trades_export import LargeTradeRow, large_trades_csv
from services.store import MemoryStore, SymbolSnapshot
from tests.conftest import SPOT_2021
from tests.recorded_feed import RecordedFeed

BASE = "/api/assets/crypto"
KNOWN = {"BTCUSDT", "ETHUSDT", "DOTUSDT"}
HOSTILE_SYMBOLS = [
    "..%2F..%2Fetc%2Fpasswd",
    "BTCUSDT%00",
    "btc usdt",
    "BTC*",
    "sym:BTCUSDT",
    "A" * 300,
    "ÉTHUSDT",
    "{{7*7}}",
    "<script>",
    "LUNAUSDT",
]


class WatchedStore(MemoryStore):
    """A memory store that records every symbol the web side asks it about."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []
        self.requested: list[str] = []

    def snapshot(self, symbol: str) -> SymbolSnapshot | None:
        self.asked.append(symbol)
        return super().snapshot(symbol)

    def request_symbol(self, symbol: str) -> None:
        self.requested.append(symbol)
        super().request_symbol(symbol)


@pytest.fixture(scope="module")
def store() -> WatchedStore:
    store = WatchedStore()
    feed = RecordedFeed(store, SPOT_2021, messages_per_step=200)
    for _ in range(20):
        feed.step()
    return store


@pytest.fixture(scope="module")
def client(store: WatchedStore):
    return create_app(store).server.test_client()


def _unknown(asked: list[str]) -> set[str]:
    return set(asked) - KNOWN


@pytest.mark.parametrize("symbol", HOSTILE_SYMBOLS)
@pytest.mark.parametrize("endpoint", ["orderbook", "trades", "trade-stats", "volume-profile"])
def test_api_refuses_unknown_symbols_before_the_store(client, store, symbol, endpoint):
    store.asked.clear()
    store.requested.clear()
    response = client.get(f"{BASE}/{symbol}/{endpoint}")
    assert response.status_code == 404
    if "%2F" in symbol:  # not an API route once decoded: no such endpoint
        assert response.is_json and "no API endpoint" in response.get_json()["error"]
    else:
        assert response.is_json and "unknown symbol" in response.get_json()["error"]
    assert _unknown(store.asked) == set()
    assert store.requested == []


@pytest.mark.parametrize(
    ("endpoint", "query"),
    [
        ("orderbook", "levels=0"),
        ("orderbook", "levels=5001"),
        ("orderbook", "levels=-1"),
        ("orderbook", "levels=abc"),
        ("orderbook", "levels=1e3"),
        ("orderbook", f"levels={10**30}"),
        ("trades", "limit=1001"),
        ("trades", "limit=0"),
        ("trades", "limit=%20"),
        ("volume-profile", "bins=501"),
        ("trade-stats", "window=1y"),
        ("trade-flow", "window=../../x"),
        ("large-trades", "threshold=nan"),
        ("large-trades", "threshold=inf"),
        ("large-trades", "threshold=-5"),
        ("large-trades", "threshold=1e999"),
        ("large-trades", "threshold=abc"),
    ],
)
def test_api_parameters_are_bounded(client, endpoint, query):
    response = client.get(f"{BASE}/BTCUSDT/{endpoint}?{query}")
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] and body.get("parameter")


def test_api_upper_bounds_are_served(client):
    assert client.get(f"{BASE}/BTCUSDT/orderbook?levels=5000").status_code == 200
    assert client.get(f"{BASE}/BTCUSDT/trades?limit=1000").status_code == 200


@pytest.mark.parametrize("path", [f"/{s}" for s in HOSTILE_SYMBOLS] + ["/", None, "/a/b/c"])
def test_url_symbols_reach_the_store_only_when_known(store, path):
    store.asked.clear()
    store.requested.clear()
    select_symbol(store, path, None, ids.URL)
    assert _unknown(store.asked) == set()
    assert set(store.requested) <= KNOWN


@pytest.mark.parametrize("value", HOSTILE_SYMBOLS)
def test_forged_dropdown_values_are_ignored(store, value):
    store.asked.clear()
    store.requested.clear()
    new_path, _ = select_symbol(store, "/ETHUSDT", value, ids.SYMBOL_DROPDOWN)
    assert new_path != f"/{value}"
    assert _unknown(store.asked) == set()
    assert store.requested == ["ETHUSDT"]  # only the symbol still shown (to deepen its book)


def test_export_of_a_forged_symbol_is_nothing(store):
    store.asked.clear()
    assert render_export(store, DerivedCache(), "NOPEUSDT", "1000") is None
    assert render_export(store, DerivedCache(), None, "1000") is None


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1"])
def test_csv_cells_never_start_a_formula(text):
    row = LargeTradeRow(0, 1, 100.0, 2.0, 1.0, 1, 1000.0)
    content = large_trades_csv(text, [row])
    cells = list(csv.reader(io.StringIO(content)))[1]
    assert cells[1] == "'" + text
    assert all(not c.startswith(("=", "+", "@", "\t")) for c in cells)
    assert float(cells[3]) == 100.0


def test_server_is_local_and_quiet_by_default(store):
    assert config.Settings().host == "127.0.0.1"
    assert config.from_env({}).host == "127.0.0.1"
    assert config.parse([]).host == "127.0.0.1"
    assert config.parse([]).debug is False
    assert config.parse(["--debug"]).debug is True
    app = create_app(store)
    assert app.server.debug is False
    assert not app._dev_tools.ui


def test_no_secret_is_needed_or_logged(store, caplog):
    names = [f.name for f in fields(config.Settings)]
    assert not [n for n in names if any(w in n for w in ("secret", "key", "token", "password"))]
    secret = "s3cr3t-value-never-shown"
    env = {"BINANCE_API_KEY": secret, "BINANCE_API_SECRET": secret, "TAPESCOPE_SOURCE": "replay"}
    with caplog.at_level(logging.DEBUG):
        settings = config.from_env(env)
        client = create_app(store).server.test_client()
        assert client.get("/healthz").status_code in (200, 503)
    assert secret not in repr(settings)
    assert secret not in caplog.text
