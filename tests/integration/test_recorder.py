"""The recorder captures a session from a Binance-protocol server (the local exchange on
loopback) in the replay format, and the capture passes the check command."""

from __future__ import annotations

import json

from app.cli import check
from services.binance.endpoints import custom
from services.replay.exchange import LocalExchange
from services.replay.recorder import record
from services.replay.recording import read_recording


async def test_recorded_session_replays_and_checks(recordings, tmp_path, capsys):
    out = tmp_path / "capture.jsonl.gz"
    async with LocalExchange(recordings["spot_2021"], speed=10) as exchange:
        endpoints = custom(exchange.ws_url, exchange.rest_url)
        summary = await record(endpoints, ["BTCUSDT", "ETHUSDT"], 3.0, out)
    assert summary.frames > 100
    assert summary.snapshots_by_symbol == {"BTCUSDT": 1, "ETHUSDT": 1}
    lines = list(read_recording(out))
    assert sum(1 for m in lines if m.src == "rest") == 2
    assert all(json.loads(m.raw) for m in lines[:50])

    assert check.main([str(out)]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["symbol"] for r in results} == {"BTCUSDT", "ETHUSDT"}
    assert all(r["status"] == "ok" and r["diffs_applied"] > 0 for r in results)
    assert all(r["trades"] > 0 for r in results)
