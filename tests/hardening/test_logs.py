"""One line per event with its fields; a storm of one fault becomes a periodic summary."""

from __future__ import annotations

import logging

import pytest

from services.logs import EventLog, event_line, parse_line


def test_event_line_fields_round_trip() -> None:
    line = event_line("reconnect", conn=1, reason="closed by server: code 1001", lag=0.12345)
    assert line == 'event=reconnect conn=1 reason="closed by server: code 1001" lag=0.1235'
    assert parse_line(line) == {
        "event": "reconnect",
        "conn": "1",
        "reason": "closed by server: code 1001",
        "lag": "0.1235",
    }
    assert parse_line(event_line("x", empty="", quote='say "hi"')) == {
        "event": "x",
        "empty": "",
        "quote": 'say "hi"',
    }


def test_a_fault_storm_is_summarised(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    events = EventLog(logging.getLogger("storm"), period_s=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="storm"):
        for _ in range(1000):
            events.fault("gap", symbol="BTCUSDT")
            now[0] += 0.005
        events.event("reconnected", conn=1)
        now[0] = 10.5
        events.flush()
        events.fault("gap", symbol="ETHUSDT")
        events.flush(force=True)
    lines = [parse_line(r.getMessage()) for r in caplog.records]
    assert [line["event"] for line in lines] == ["gap", "reconnected", "fault_summary", "gap"]
    assert lines[2]["count"] == "999" and lines[2]["fault"] == "gap"
    assert lines[2]["summary"] == "999× gap in the last 10 s"
    assert events.faults == {"gap": 1001}


def test_faults_counted_in_bulk_write_one_line_and_a_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    events = EventLog(logging.getLogger("bulk"), period_s=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="bulk"):
        events.fault("malformed_frame", times=500, total=500)
        events.fault("malformed_frame", times=20, total=520)
        now[0] = 10.5
        events.flush()
    lines = [parse_line(r.getMessage()) for r in caplog.records]
    assert [line["event"] for line in lines] == ["malformed_frame", "fault_summary"]
    assert lines[0]["total"] == "500" and lines[1]["count"] == "519"
    assert events.faults == {"malformed_frame": 520}
