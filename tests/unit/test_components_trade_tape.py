"""Trade tape factory: newest-first rows, side colour classes, tiers by quote notional."""

from __future__ import annotations

from components.trade_tape import create_trade_tape, format_time_ms, parse_tiers, trade_tier


def test_rows_in_given_order_with_side_and_tier_classes():
    tape = create_trade_tape(
        time_ms=[1617566682149, 1617566682143, 1617566682000],
        price=[58_000.0, 58_000.0, 58_000.0],
        qty=[0.01, 5.0, 20.0],
        side=[-1.0, 1.0, 1.0],
        tiers_quote=(100_000.0, 250_000.0, 1_000_000.0),
        quote_asset="USDT",
    )
    header, *rows = tape.children
    assert "notional USDT" in header.children
    assert [row.className for row in rows] == [
        "tape-row sell tier-0",
        "tape-row buy tier-2",
        "tape-row buy tier-3",
    ]
    assert rows[0].children.startswith("20:04:42.149")
    assert "58,000.00" in rows[0].children and "580" in rows[0].children
    assert rows[0].children.endswith("sell") and rows[1].children.endswith("buy")


def test_empty_tape_says_so():
    tape = create_trade_tape(time_ms=[], price=[], qty=[], side=[])
    assert tape.children[-1].children == "no trades yet"


def test_tiers_and_time_formatting():
    assert trade_tier(99_999.0, (100_000.0, 250_000.0)) == 0
    assert trade_tier(250_000.0, (250_000.0, 100_000.0)) == 2
    assert parse_tiers("1M, 100k; 250K") == (100_000.0, 250_000.0, 1_000_000.0)
    assert parse_tiers("nonsense") == (100_000.0, 250_000.0, 1_000_000.0)
    assert format_time_ms(0) == "00:00:00.000"
