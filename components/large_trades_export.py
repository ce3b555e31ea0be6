"""CSV export of large trades: the file's rows, its name and the export button.

Text cells that a spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``,
``@``, tab or carriage return) are prefixed with a single quote; numbers stay numeric.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import dash_bootstrap_components as dbc
from dash import dcc, html

CSV_COLUMNS: tuple[str, ...] = (
    "time_utc",
    "symbol",
    "trade_id",
    "price",
    "qty",
    "quote_qty",
    "side",
    "tier",
    "threshold",
)
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class LargeTradeRow:
    """One large trade: time (epoch ms), aggTrade id, price, base qty, taker side (+1 buy,
    -1 sell), tier (1 = lowest threshold reached) and the threshold it crossed (quote)."""

    time_ms: int
    trade_id: int
    price: float
    qty: float
    side: float
    tier: int
    threshold: float


def neutralise_cell(value: object) -> object:
    """A text cell made safe for spreadsheets; numbers (and other non-text) unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def iso_time_ms(time_ms: int) -> str:
    """ISO 8601 UTC with milliseconds and ``Z`` (``2021-04-04T20:03:11.315Z``)."""
    moment = datetime.fromtimestamp(time_ms / 1000.0, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time_ms % 1000:03d}Z"


def large_trades_csv(symbol: str, rows: Iterable[LargeTradeRow]) -> str:
    """The CSV text (header + one line per trade, in the order given)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        cells = (
            iso_time_ms(row.time_ms),
            symbol,
            row.trade_id,
            row.price,
            row.qty,
            round(row.price * row.qty, 8),
            "taker buy" if row.side > 0 else "taker sell",
            row.tier,
            row.threshold,
        )
        writer.writerow([neutralise_cell(cell) for cell in cells])
    return buffer.getvalue()


def export_filename(symbol: str, now: datetime) -> str:
    """``large_trades_<SYMBOL>_<YYYYmmddTHHMMSSZ>.csv``."""
    return f"large_trades_{symbol}_{now.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}.csv"


def create_export_controls(button_id: str, download_id: str) -> html.Div:
    """The export button and its download target."""
    return html.Div(
        [
            dbc.Button(
                "Export large trades (CSV)",
                id=button_id,
                size="sm",
                color="warning",
                outline=True,
            ),
            dcc.Download(id=download_id),
        ],
        className="export-controls",
    )
