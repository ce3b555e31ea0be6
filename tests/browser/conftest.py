"""Browser-test fixtures: the real pipeline on loopback — the local exchange replaying the
bundled 2021 three-symbol recording in real time, the feed syncing BTCUSDT and ETHUSDT from
it (DOTUSDT is left for the UI to request on demand) and the in-process store."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest

from app import market_source
from app.config import Settings
from services.market.feed import Feed
from services.store import MemoryStore
from tests.conftest import SPOT_2021


@pytest.fixture(autouse=True)
def _chromedriver_installed() -> None:
    if shutil.which("chromedriver") is None:
        pytest.fail("chromedriver is missing: `make test` installs Debian's chromium-driver")


@pytest.fixture(scope="module")
def replay_store() -> Iterator[tuple[MemoryStore, Feed]]:
    """A MemoryStore filled by the real feed from the local exchange (REPLAY, looping)."""
    settings = Settings(
        source="replay",
        recording=SPOT_2021,
        speed="1",
        loop=True,
        symbols=("BTCUSDT", "ETHUSDT"),
        publish_interval_s=0.2,
        history=False,  # never resume from a developer's data/history
    )
    source = market_source.resolve(settings)
    store = MemoryStore()
    feed = Feed(market_source.feed_config(settings, source), store)
    feed.start_in_thread()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        snapshots = [store.snapshot(s) for s in ("BTCUSDT", "ETHUSDT")]
        if all(s is not None and s.book.is_live and len(s.trades) for s in snapshots):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the feed did not sync BTCUSDT and ETHUSDT from the replay")
    yield store, feed
    feed.stop()
    source.close()
