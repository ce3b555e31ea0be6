"""Symbol picker: URL paths, close matches for unknown symbols, dropdown options."""

from __future__ import annotations

from dash import dcc

from components.symbol_picker import (
    close_matches,
    create_symbol_picker,
    create_unknown_symbol_message,
    symbol_from_path,
)


def test_paths_and_matches():
    assert symbol_from_path("/ethusdt") == "ETHUSDT"
    assert symbol_from_path("/") == symbol_from_path(None) == ""
    assert close_matches("BTCUSTD", ["BTCUSDT", "ETHUSDT", "BTCUSDC"])[0] == "BTCUSDT"


def test_unknown_message_links_matches():
    message = create_unknown_symbol_message("BTCUSTD", ["BTCUSDT"])
    links = [c for c in message.children if isinstance(c, dcc.Link)]
    assert [link.href for link in links] == ["/BTCUSDT"]
    assert "No close match" in str(create_unknown_symbol_message("ZZZ", []).children)


def test_dropdown_is_searchable():
    dropdown = create_symbol_picker(["BTCUSDT", "ETHUSDT"], "BTCUSDT", "symbol-dropdown")
    assert dropdown.searchable and dropdown.value == "BTCUSDT"
    assert [o["value"] for o in dropdown.options] == ["BTCUSDT", "ETHUSDT"]
