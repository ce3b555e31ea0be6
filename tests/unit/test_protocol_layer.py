"""services/binance is the protocol layer: it imports nothing above it (the market state,
the replay exchange, analytics, the store, the app), so its facts — exchangeInfo's symbol
rules among them — live in it and the arrows only point down."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from services.binance.symbol_rules import SymbolInfo, decimals, decode_exchange_info
from services.market import views

PROTOCOL = Path(__file__).resolve().parents[2] / "services" / "binance"
ABOVE = ("services.market", "services.replay", "services.analytics", "services.store", "app")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("path", sorted(PROTOCOL.glob("*.py")), ids=lambda p: p.name)
def test_protocol_modules_import_nothing_above_them(path):
    above = {m for m in imported_modules(path) if m.startswith(ABOVE)}
    assert above == set(), f"{path.name} imports {sorted(above)}"


def test_symbol_info_is_one_type_for_every_layer():
    assert views.SymbolInfo is SymbolInfo


def test_exchange_info_rules_and_decimals():
    body = (
        b'{"symbols":[{"symbol":"DOTUSDT","status":"TRADING","baseAsset":"DOT",'
        b'"quoteAsset":"USDT","filters":[{"filterType":"PRICE_FILTER","tickSize":"0.00010000"},'
        b'{"filterType":"LOT_SIZE","stepSize":"0.01000000"}]},{"symbol":"X"}]}'
    )
    dot, bare = decode_exchange_info(body)
    assert (dot.tick_size, dot.price_decimals, dot.step_size, dot.qty_decimals) == (
        0.0001,
        4,
        0.01,
        2,
    )
    assert (bare.tick_size, bare.price_decimals, bare.qty_decimals) == (0.01, 2, 5)
    assert [decimals(s) for s in ("0.01000000", "1.0", "1", "0.5")] == [2, 0, 0, 1]


def test_the_protocol_layer_has_no_import_circle():
    """One connection's lifecycle (ws_connection) knows nothing of the client that keeps the
    subscriptions across connections (ws_client); no module of the layer imports back."""
    graph = {
        path.stem: {
            m.rsplit(".", 1)[-1]
            for m in imported_modules(path)
            if m.startswith("services.binance.")
        }
        for path in PROTOCOL.glob("*.py")
    }
    assert "ws_client" not in graph["ws_connection"]

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})):
                return True
        return False

    assert [m for m in graph if reaches(m, m, set())] == []
