"""Browser-test fixtures: a store fed from the bundled 2021 three-symbol recording."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from services.store import MemoryStore
from tests.browser.recorded_feed import RecordedFeed
from tests.conftest import SPOT_2021

if shutil.which("chromedriver") is None:
    pytest.skip("chromedriver is not installed", allow_module_level=True)


@pytest.fixture
def replay_store() -> Iterator[tuple[MemoryStore, RecordedFeed]]:
    """A MemoryStore that a RecordedFeed republishes into every 0.2 s while the test runs."""
    store = MemoryStore()
    feed = RecordedFeed(store, SPOT_2021, messages_per_step=40, interval_s=0.2)
    for _ in range(20):
        feed.step()
    feed.start()
    yield store, feed
    feed.stop()
