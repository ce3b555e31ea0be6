"""The publication budget: which due symbols a round writes (services.market.publication)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from services.market.publication import publication_order, round_cap


def test_round_cap_is_the_budget_times_the_period() -> None:
    assert round_cap(1000, 0.25) == 250
    assert round_cap(1, 0.25) == 1
    assert round_cap(0, 0.25) == 0


def test_everything_due_is_written_while_it_fits() -> None:
    due = {"BTCUSDT": 10.0, "ETHUSDT": None, "DOTUSDT": 3.0}
    assert sorted(publication_order(due, set(), 3)) == sorted(due)
    assert sorted(publication_order(due, set(), 0)) == sorted(due)


def test_over_the_cap_watched_first_then_longest_unpublished() -> None:
    due = {"A": 5.0, "B": None, "C": 1.0, "D": 9.0, "E": 2.0}
    assert publication_order(due, {"D"}, 3) == ["D", "B", "C"]


@given(
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=1, max_value=20),
    st.sets(st.integers(min_value=0, max_value=59), max_size=5),
)
def test_no_due_symbol_waits_longer_than_its_share_of_rounds(
    symbols: int, cap: int, watched_ids: set[int]
) -> None:
    """Every symbol changes every round (the worst case): each is written at least once
    every ceil(unwatched / (cap - watched)) rounds, and a watched one every round, when the
    watched ones leave room for the others."""
    names = [f"S{i}" for i in range(symbols)]
    watched = {f"S{i}" for i in watched_ids if i < symbols}
    if len(watched) >= cap:
        return
    last: dict[str, float | None] = dict.fromkeys(names)
    written: dict[str, list[int]] = {s: [] for s in names}
    others = symbols - len(watched)
    bound = math.ceil(others / (cap - len(watched))) if others else 1
    for now in range(1, 4 * bound + 2):
        chosen = publication_order(last, watched, cap)
        assert len(chosen) == min(cap, symbols)
        assert len(set(chosen)) == len(chosen)
        for symbol in chosen:
            last[symbol] = float(now)
            written[symbol].append(now)
    for symbol, rounds in written.items():
        gaps = [b - a for a, b in zip([0, *rounds], rounds, strict=False)]
        assert max(gaps) <= (1 if symbol in watched else bound), (symbol, rounds)
