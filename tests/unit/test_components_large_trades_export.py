"""CSV export: columns, formats, file name and formula-injection neutralisation."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from components.large_trades_export import (
    CSV_COLUMNS,
    LargeTradeRow,
    export_filename,
    iso_time_ms,
    large_trades_csv,
    neutralise_cell,
)


def test_neutralise_cell():
    for dangerous in ("=SUM(A1)", "+1", "-1+2", "@cmd", "\tx", "\rx"):
        assert neutralise_cell(dangerous) == "'" + dangerous
    assert neutralise_cell("BTCUSDT") == "BTCUSDT"
    assert neutralise_cell(58001.03) == 58001.03
    assert neutralise_cell(7) == 7


def test_csv_rows():
    text = large_trades_csv(
        "BTCUSDT",
        [LargeTradeRow(1617566591315, 665076760, 58001.03, 2.0, -1.0, 2, 100_000.0)],
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert rows[1] == [
        "2021-04-04T20:03:11.315Z",
        "BTCUSDT",
        "665076760",
        "58001.03",
        "2.0",
        "116002.06",
        "taker sell",
        "2",
        "100000.0",
    ]


def test_symbol_cell_is_neutralised_and_file_name():
    text = large_trades_csv("=EVIL", [LargeTradeRow(0, 1, 1.0, 1.0, 1.0, 1, 1.0)])
    assert "'=EVIL" in text
    assert iso_time_ms(1) == "1970-01-01T00:00:00.001Z"
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert export_filename("ETHUSDT", now) == "large_trades_ETHUSDT_20260102T030405Z.csv"
