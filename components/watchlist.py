"""The watchlist: every TRADING symbol in one data grid (AG Grid, via dash-ag-grid), with
24 h figures for all and book figures for the streamed ones; filtered by text, quote asset
and favourites; rows identified by symbol so updates travel as row transactions.

Pure: plain rows in, grid rows and components out. Which rows to send and when is decided
by ``watchlist_update`` (the callback only wires it).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from services.analytics.definitions import DEFINITIONS
from services.market.market_board import WatchlistRow, WatchlistRows

ALL_QUOTES = "ALL"
GRID_THEME = (
    "themeQuartz.withParams({backgroundColor: '#222222', foregroundColor: '#dee2e6',"
    " headerBackgroundColor: '#2c2c2c', accentColor: '#3498db', fontSize: 12,"
    " spacing: 4, wrapperBorderRadius: 0})"
)
"""AG Grid's theming API: Quartz in the dashboard's dark palette (Bootstrap Darkly)."""
FAVOURITE_MARK = "★"
NOT_FAVOURITE_MARK = "☆"

_NUMBER = "params.value == null ? '' : "
_PRICE = _NUMBER + "Number(params.value).toFixed(params.data.decimals)"
_COMPACT = _NUMBER + "d3.format('.3~s')(params.value).replace('G', 'B')"


def _fixed(places: int, suffix: str = "") -> dict[str, str]:
    return {"function": f"{_NUMBER}Number(params.value).toFixed({places}) + '{suffix}'"}


COLUMNS: tuple[dict[str, Any], ...] = (
    {
        "field": "favourite",
        "headerName": "",
        "width": 44,
        "pinned": "left",
        "sortable": True,
        "headerTooltip": "Favourite: click the star to keep the symbol on top for this browser.",
        "cellClass": "wl-star",
    },
    {"field": "symbol", "headerName": "Symbol", "width": 118, "pinned": "left"},
    {
        "field": "last",
        "headerName": "Last",
        "width": 104,
        "type": "rightAligned",
        "valueFormatter": {"function": _PRICE},
        "headerTooltip": "Last traded price.",
    },
    {
        "field": "change_pct",
        "headerName": "24h %",
        "width": 84,
        "type": "rightAligned",
        "valueFormatter": _fixed(2, " %"),
        "cellClassRules": {"wl-up": "params.value > 0", "wl-down": "params.value < 0"},
        "headerTooltip": "24 h change: (last − price 24 h ago) / price 24 h ago · 100.",
    },
    {
        "field": "quote_volume",
        "headerName": "Volume",
        "width": 92,
        "type": "rightAligned",
        "sort": "desc",
        "valueFormatter": {"function": _COMPACT},
        "headerTooltip": "24 h traded volume in the quote asset.",
    },
    {
        "field": "high",
        "headerName": "High",
        "width": 100,
        "type": "rightAligned",
        "valueFormatter": {"function": _PRICE},
        "headerTooltip": "Highest trade price of the rolling 24 h.",
    },
    {
        "field": "low",
        "headerName": "Low",
        "width": 100,
        "type": "rightAligned",
        "valueFormatter": {"function": _PRICE},
        "headerTooltip": "Lowest trade price of the rolling 24 h.",
    },
    {
        "field": "spread_bps",
        "headerName": "Spread",
        "width": 84,
        "type": "rightAligned",
        "valueFormatter": _fixed(3, " bp"),
        "headerTooltip": DEFINITIONS["spread_bps"] + " Streamed LIVE books only.",
    },
    {
        "field": "liquidity",
        "headerName": "Liq.",
        "width": 70,
        "type": "rightAligned",
        "valueFormatter": _fixed(0),
        "headerTooltip": DEFINITIONS["liquidity_score"] + " Streamed LIVE books only.",
    },
    {
        "field": "sync_state",
        "headerName": "Book",
        "width": 96,
        "cellClassRules": {"wl-live": "params.value == 'LIVE'"},
        "headerTooltip": "State of the streamed book (empty: its book is not streamed).",
    },
)


@dataclass(frozen=True, slots=True)
class WatchlistFilter:
    """What the analyst narrowed the list to: text in the symbol (case-insensitive), one
    quote asset (``ALL_QUOTES``: any) and favourites only."""

    text: str = ""
    quote: str = ALL_QUOTES
    favourites_only: bool = False

    def keeps(self, row: WatchlistRow, favourites: Collection[str]) -> bool:
        """True when ``row`` passes the filter."""
        if self.text and self.text.strip().upper() not in row.symbol:
            return False
        if self.quote not in (ALL_QUOTES, row.quote):
            return False
        return not self.favourites_only or row.symbol in favourites


def grid_row(row: WatchlistRow, favourites: Collection[str], decimals: int) -> dict[str, Any]:
    """One grid row: the watchlist row's figures, the favourite mark and price decimals."""
    return {
        "symbol": row.symbol,
        "favourite": FAVOURITE_MARK if row.symbol in favourites else NOT_FAVOURITE_MARK,
        "quote": row.quote,
        "last": row.last,
        "change_pct": row.change_pct,
        "quote_volume": row.quote_volume,
        "high": row.high,
        "low": row.low,
        "spread_bps": row.spread_bps,
        "liquidity": row.liquidity,
        "sync_state": row.sync_state,
        "decimals": decimals,
    }


@dataclass(frozen=True, slots=True)
class WatchlistUpdate:
    """What to send to the grid: all rows (``row_data``) or only changed ones
    (``transaction``, AG Grid's ``{"update": [...]}``), or nothing (both None); ``seen``
    is what the browser then holds ({version, count})."""

    row_data: list[dict[str, Any]] | None
    transaction: dict[str, list[dict[str, Any]]] | None
    seen: dict[str, int]


def watchlist_update(
    board: WatchlistRows,
    view: WatchlistFilter,
    favourites: Collection[str],
    decimals: Mapping[str, int],
    seen: Mapping[str, int] | None,
    full: bool,
) -> WatchlistUpdate:
    """The rows to send for ``board`` under ``view``.

    Everything (``row_data``) when ``full`` (a filter or favourite changed, first load),
    when the browser has seen nothing, or when the filtered set's size changed (a symbol
    listed or delisted); otherwise only rows changed after the version the browser holds,
    as a transaction (nothing when none changed).
    """
    kept = [row for row in board.rows if view.keeps(row, favourites)]
    now_seen = {"version": board.version, "count": len(kept)}

    def rows(selected: Iterable[WatchlistRow]) -> list[dict[str, Any]]:
        return [grid_row(r, favourites, decimals.get(r.symbol, 2)) for r in selected]

    if full or not seen or seen.get("count") != len(kept):
        return WatchlistUpdate(rows(kept), None, now_seen)
    changed = [row for row in kept if row.version > seen.get("version", 0)]
    if not changed:
        return WatchlistUpdate(None, None, now_seen)
    return WatchlistUpdate(None, {"update": rows(changed)}, now_seen)


def toggle_favourite(favourites: Sequence[str] | None, symbol: str) -> list[str]:
    """The favourites with ``symbol`` added, or removed when it was one (sorted)."""
    current = set(favourites or ())
    current ^= {symbol}
    return sorted(current)


def quote_options(quotes: Iterable[str]) -> list[dict[str, str]]:
    """Quote-asset choices: any, then each quote asset alphabetically."""
    return [{"label": "All quotes", "value": ALL_QUOTES}] + [
        {"label": q, "value": q} for q in sorted(set(quotes)) if q
    ]


def create_watchlist_toggle(button_id: str) -> dbc.Button:
    """The header button that opens and closes the watchlist panel."""
    return dbc.Button(
        "Watchlist", id=button_id, size="sm", color="secondary", outline=True, n_clicks=0
    )


def create_watchlist(
    panel_id: str,
    grid_id: str,
    text_id: str,
    quote_id: str,
    favourites_only_id: str,
    quotes: Iterable[str],
) -> dbc.Offcanvas:
    """A side panel over the left edge (the page stays usable beside it) holding the
    filters and the grid; closed until the header button opens it."""
    controls = html.Div(
        [
            dcc.Input(
                id=text_id,
                type="search",
                placeholder="Filter symbols",
                debounce=0.3,
                className="wl-text",
            ),
            dcc.Dropdown(
                id=quote_id,
                options=quote_options(quotes),
                value=ALL_QUOTES,
                clearable=False,
                searchable=False,
                className="wl-quote",
            ),
            dbc.Checkbox(id=favourites_only_id, label="Favourites", value=False),
        ],
        className="wl-controls",
    )
    grid = dag.AgGrid(
        id=grid_id,
        columnDefs=list(COLUMNS),
        rowData=[],
        getRowId="params.data.symbol",
        defaultColDef={"sortable": True, "resizable": True, "suppressMovable": True},
        dashGridOptions={
            "animateRows": False,
            "tooltipShowDelay": 300,
            "rowSelection": {"mode": "singleRow", "checkboxes": False},
            "suppressCellFocus": True,
            "theme": {"function": GRID_THEME},
        },
        className="wl-grid",
        style={"height": "calc(100vh - 150px)", "width": "100%"},
    )
    return dbc.Offcanvas(
        [controls, grid],
        id=panel_id,
        title="Watchlist",
        placement="start",
        is_open=False,
        backdrop=False,
        scrollable=True,
        className="wl-panel",
    )
