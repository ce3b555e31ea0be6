"""A ``from_id`` resume reaches into the history store (real Parquet files written by the
history writer from the bundled recording) when the trade window no longer holds the ids."""

from __future__ import annotations

import pytest

from services.history.reader import HistoryReader
from services.push.archive import between
from services.push.history_archive import HistoryArchive
from services.push.hub import PushHub
from services.replay.recording import SPOT_2021


@pytest.fixture(scope="module")
def archive(history_2021) -> HistoryArchive:
    return HistoryArchive(HistoryReader(history_2021), "spot")


def test_stored_trades_between_two_ids(archive, manifest):
    facts = manifest[SPOT_2021.name]["symbols"]["BTCUSDT"]["aggTrade"]
    first = facts["first_id"]
    view = archive.trades_between("BTCUSDT", first + 9, first + 60)
    assert view.trade_id.tolist() == list(range(first + 10, first + 60))
    assert (view.qty > 0).all() and set(view.side.tolist()) <= {1.0, -1.0}
    assert len(archive.trades_between("NOSUCHUSDT", 0, None)) == 0


class LateWindow:
    """A trade window that starts late: the recording's trades from ``start`` on."""

    def __init__(self, archive: HistoryArchive, start: int) -> None:
        self.all = archive.trades_between("BTCUSDT", start - 1, None)

    def trades_between(self, symbol, after_id, before_id):
        return between(self.all, after_id, before_id)


def test_a_resume_older_than_the_window_is_filled_from_history(archive, manifest):
    facts = manifest[SPOT_2021.name]["symbols"]["BTCUSDT"]["aggTrade"]
    first, last = facts["first_id"], facts["last_id"]
    window_start = first + 500
    hub = PushHub([LateWindow(archive, window_start), archive], ring_trades=10)
    sub = hub.subscribe_trades("BTCUSDT", first - 1)
    got = []
    while (batch := sub.take(0)) is not None:
        got.extend(batch.trades.trade_id.tolist())
    assert got == list(range(first, last + 1))
