"""Symbol picker: a searchable dropdown of tradable symbols, and the unknown-symbol message."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from dash import dcc, html

DEFAULT_SYMBOL = "BTCUSDT"


def symbol_from_path(pathname: str | None) -> str:
    """The symbol a URL path names (``/ethusdt`` → ``ETHUSDT``); '' for the root."""
    return (pathname or "/").strip("/").split("/", 1)[0].upper()


def close_matches(symbol: str, known: Sequence[str], limit: int = 5) -> list[str]:
    """Known symbols that look like ``symbol`` (difflib), best first."""
    return difflib.get_close_matches(symbol.upper(), list(known), n=limit, cutoff=0.5)


def create_symbol_picker(
    symbols: Sequence[str], value: str | None, dropdown_id: str
) -> dcc.Dropdown:
    """The searchable dropdown (every tradable symbol)."""
    return dcc.Dropdown(
        id=dropdown_id,
        options=[{"label": symbol, "value": symbol} for symbol in symbols],
        value=value,
        searchable=True,
        clearable=False,
        placeholder="Symbol…",
        className="symbol-dropdown",
    )


def create_unknown_symbol_message(symbol: str, matches: Sequence[str]) -> html.Div:
    """'Unknown symbol' with links to the close matches."""
    suggestion: list = ["No close match among the exchange's trading symbols."]
    if matches:
        suggestion = ["Did you mean "]
        for index, match in enumerate(matches):
            if index:
                suggestion.append(", ")
            suggestion.append(dcc.Link(match, href=f"/{match}"))
        suggestion.append("?")
    return html.Div(
        [html.Strong(f"Unknown symbol {symbol!r}. "), *suggestion],
        className="symbol-message symbol-unknown",
    )


def create_unavailable_message(symbol: str, reason: str) -> html.Div:
    """Shown while the store cannot read ``symbol`` (``reason``: e.g. its Redis node failing
    over); the page keeps polling and shows the book as soon as it can be read."""
    return html.Div(
        f"{symbol} is unavailable for now: {reason}.",
        className="symbol-message symbol-unavailable",
    )


def create_waiting_message(symbol: str) -> html.Div:
    """Shown while the feed starts streaming a newly chosen symbol."""
    return html.Div(
        f"Waiting for data: {symbol} has been requested from the feed.",
        className="symbol-message symbol-waiting",
    )
