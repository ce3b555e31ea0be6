"""Watchlist pure parts: filtering, grid rows, full loads versus row transactions,
favourites, and the click event's reading."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.callbacks.watchlist import clicked_symbol
from components.watchlist import (
    ALL_QUOTES,
    COLUMNS,
    FAVOURITE_MARK,
    WatchlistFilter,
    create_watchlist,
    grid_row,
    quote_options,
    toggle_favourite,
    watchlist_update,
)
from services.market.market_board import WatchlistRow, WatchlistRows

BOARD = WatchlistRows(
    (
        WatchlistRow("BTCUSDT", "BTC", "USDT", last=58000.0, version=3),
        WatchlistRow("ETHBTC", "ETH", "BTC", last=0.035, version=1),
        WatchlistRow("ETHUSDT", "ETH", "USDT", last=2065.0, version=5),
    ),
    version=5,
)


def test_filter_by_text_quote_and_favourites() -> None:
    rows = BOARD.rows
    assert [r.symbol for r in rows if WatchlistFilter("eth").keeps(r, ())] == [
        "ETHBTC",
        "ETHUSDT",
    ]
    assert [r.symbol for r in rows if WatchlistFilter(quote="BTC").keeps(r, ())] == ["ETHBTC"]
    only = WatchlistFilter(favourites_only=True)
    assert [r.symbol for r in rows if only.keeps(r, {"ETHUSDT"})] == ["ETHUSDT"]


def test_first_load_sends_every_kept_row_then_only_changes_as_a_transaction() -> None:
    view = WatchlistFilter(quote="USDT")
    first = watchlist_update(BOARD, view, {"BTCUSDT"}, {"BTCUSDT": 2}, None, full=False)
    assert [r["symbol"] for r in first.row_data] == ["BTCUSDT", "ETHUSDT"]
    assert first.row_data[0]["favourite"] == FAVOURITE_MARK and first.row_data[0]["decimals"] == 2
    assert first.transaction is None and first.seen == {"version": 5, "count": 2}
    nothing = watchlist_update(BOARD, view, set(), {}, first.seen, full=False)
    assert nothing.row_data is None and nothing.transaction is None
    later = WatchlistRows(
        (BOARD.rows[0], BOARD.rows[1], WatchlistRow("ETHUSDT", "ETH", "USDT", 2070.0, version=6)),
        version=6,
    )
    delta = watchlist_update(later, view, set(), {}, first.seen, full=False)
    assert delta.row_data is None
    assert [r["symbol"] for r in delta.transaction["update"]] == ["ETHUSDT"]
    listed = WatchlistRows((*later.rows, WatchlistRow("SOLUSDT", "SOL", "USDT", version=7)), 7)
    reload = watchlist_update(listed, view, set(), {}, delta.seen, full=False)
    assert len(reload.row_data) == 3  # a new listing reloads the grid
    assert watchlist_update(later, view, set(), {}, delta.seen, full=True).row_data


@given(
    versions=st.lists(st.integers(0, 50), min_size=1, max_size=20),
    seen_version=st.integers(0, 50),
)
def test_a_transaction_carries_exactly_the_rows_changed_since(versions, seen_version) -> None:
    rows = tuple(
        WatchlistRow(f"S{i}USDT", f"S{i}", "USDT", version=v) for i, v in enumerate(versions)
    )
    board = WatchlistRows(rows, max(versions))
    seen = {"version": seen_version, "count": len(rows)}
    update = watchlist_update(board, WatchlistFilter(), set(), {}, seen, full=False)
    changed = {r.symbol for r in rows if r.version > seen_version}
    sent = {r["symbol"] for r in (update.transaction or {}).get("update", [])}
    assert sent == changed and update.row_data is None


def test_grid_rows_carry_every_column_field() -> None:
    row = grid_row(BOARD.rows[0], set(), 2)
    assert {c["field"] for c in COLUMNS} <= set(row)


def test_favourites_toggle_and_quote_choices() -> None:
    assert toggle_favourite(None, "BTCUSDT") == ["BTCUSDT"]
    assert toggle_favourite(["BTCUSDT", "ETHUSDT"], "BTCUSDT") == ["ETHUSDT"]
    assert [o["value"] for o in quote_options(["USDT", "BTC", "USDT", ""])] == [
        ALL_QUOTES,
        "BTC",
        "USDT",
    ]


def test_clicks_name_the_row_and_whether_the_star_was_hit() -> None:
    assert clicked_symbol(None) == (None, False)
    assert clicked_symbol({"rowId": "BTCUSDT", "colId": "symbol"}) == ("BTCUSDT", False)
    assert clicked_symbol({"rowId": "BTCUSDT", "colId": "favourite"}) == ("BTCUSDT", True)
    assert clicked_symbol({"colId": "symbol"}) == (None, False)


def test_the_panel_holds_the_filters_and_a_grid_keyed_by_symbol() -> None:
    panel = create_watchlist("p", "g", "t", "q", "f", ["USDT"])
    grid = panel.children[1]
    assert grid.id == "g" and grid.getRowId == "params.data.symbol"
    assert panel.is_open is False and panel.backdrop is False
