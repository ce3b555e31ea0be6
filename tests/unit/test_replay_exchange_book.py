"""The local exchange's book: exact decimal strings, zero deletes, sorted views on demand."""

from __future__ import annotations

from services.replay.exchange_book import ExchangeBook, is_zero


def test_zero_in_any_formatting():
    assert is_zero("0") and is_zero("0.00000000") and is_zero("0.000")
    assert not is_zero("0.00000001") and not is_zero("10.0")


def test_apply_sets_absolute_quantities_and_deletes_zeros():
    book = ExchangeBook(10, [("100.00", "1.0"), ("99.50", "2.0")], [("101.00", "3.0")])
    book.apply([("100.00", "0.000"), ("99.90", "4.0")], [("100.50", "1.5")], 12)
    assert book.bids == {"99.50": "2.0", "99.90": "4.0"}
    assert book.top_bids(5) == [["99.90", "4.0"], ["99.50", "2.0"]]
    assert book.top_asks(1) == [["100.50", "1.5"]]
    assert book.best() == (("99.90", "4.0"), ("100.50", "1.5"))
    assert book.last_update_id == 12


def test_prices_sort_numerically_not_as_text():
    book = ExchangeBook(1, [("99.5", "1"), ("100.1", "1"), ("9.9", "1")], [])
    assert [p for p, _ in book.top_bids(3)] == ["100.1", "99.5", "9.9"]


def test_diff_to_turns_one_book_into_another():
    start = ExchangeBook(5, [("10", "1"), ("9", "2")], [("11", "1")])
    end = ExchangeBook(9, [("10", "3"), ("8", "1")], [("11", "1"), ("12", "4")])
    bids, asks = end.diff_to(start, "0")
    end.apply(bids, asks, 10)
    assert (end.bids, end.asks) == (start.bids, start.asks)
    assert ("11", "1") not in asks  # unchanged levels are not repeated
