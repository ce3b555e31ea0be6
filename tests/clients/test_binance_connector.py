"""binance-connector (``Spot``, ``SpotWebsocketStreamClient`` with its defaults) against
the local exchange, unchanged but for base URLs.

binance-connector and python-binance both install a top-level ``binance`` package; in one
environment the connector's empty ``binance/__init__.py`` replaces python-binance's (seen:
``from binance import Client`` then fails). So the connector lives in an environment of its
own, built once by this module's fixture from ``requirements-connector.txt`` (cached in the
temp directory), and the session runs there as a subprocess (``connector_session.py``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.clients.conftest import Venue

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements-connector.txt"
SESSION = Path(__file__).with_name("connector_session.py")


@pytest.fixture(scope="module")
def connector_python() -> Path:
    """The Python of an environment holding only binance-connector and its pins."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    home = Path(tempfile.gettempdir()) / f"tapescope-binance-connector-{digest}"
    python = home / "bin" / "python"
    if not (home / "ready").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(home)], check=True)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)],
            capture_output=True,
            text=True,
            check=False,
        )
        if install.returncode:
            pytest.skip(f"cannot build the binance-connector environment: {install.stderr[-500:]}")
        (home / "ready").write_text(digest)
    return python


def test_spot_rest_and_stream_client(spot_venue: Venue, connector_python: Path):
    venue = spot_venue
    run = subprocess.run(
        [str(connector_python), str(SESSION), venue.ws, venue.rest, venue.symbol, venue.trade_kind],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    seen = json.loads(run.stdout.splitlines()[-1])
    start = venue.exchange.recording_start_ms
    assert start - 60_000 <= seen["time"] <= start + 40 * 86_400_000
    assert float(seen["depth"]["bids"][0][0]) < float(seen["depth"]["asks"][0][0])
    assert seen["trades"] == 5 and 0 < seen["agg_trades"] <= 5
    assert seen["klines"] and all(t % 60_000 == 0 for t in seen["klines"])
    assert seen["ui_klines"] == seen["klines"]
    assert seen["avg_price"]["mins"] == 5 and float(seen["avg_price"]["price"]) > 0
    assert seen["ticker_price"]["symbol"] == seen["book_ticker"]["symbol"] == venue.symbol
    assert seen["exchange_info"] == seen["exchange_info_list"] == [venue.symbol]
    assert seen["unknown_symbol"] == [400, -1121]
    messages, cut = seen["messages"], seen["cut"]
    answers = {m["id"]: m for m in messages if "id" in m}
    assert answers[1] == {"result": None, "id": 1} and answers[2] == {"result": None, "id": 2}
    depth_stream = f"{venue.stream_symbol}@depth@1000ms"
    trade_stream = f"{venue.stream_symbol}@{venue.trade_kind}"
    assert answers[3]["result"] == [depth_stream, trade_stream]
    assert answers[5]["result"] == [trade_stream]
    diffs = [m for m in messages[:cut] if m.get("e") == "depthUpdate"]
    assert len(diffs) >= 2  # the 1000 ms diffs, batched from the recorded 100 ms ones
    assert all(b["U"] == a["u"] + 1 for a, b in itertools.pairwise(diffs))
    assert all(m.get("e") != "depthUpdate" for m in messages[cut:])  # unsubscribed
    assert any(m.get("e") == venue.trade_kind for m in messages[cut:])  # still subscribed
