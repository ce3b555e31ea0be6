"""Alert events kept in the history (real Parquet segments under a history root): written
off the feed's thread, read back by id or time after a restart, past what the event log
still holds, each event in its newest version (its decided webhook delivery)."""

from __future__ import annotations

import time

import polars as pl

from app.alerting import make_alerts, start_tap
from app.config import Settings
from app.server import create_app
from services.alerts.archive import ALERT_EVENTS, COLUMNS, ArchivedEventLog, EventArchive
from services.alerts.events import FileEventLog
from services.alerts.firing import Firing
from services.alerts.rules import validate
from services.store import MemoryStore

T0 = 1_617_566_600_000
LARGE = {"kind": "large_trade", "symbol": "BTCUSDT", "params": {"min_notional": 1.0}}


def firing(rule, symbol: str, i: int) -> Firing:
    details = {"trade_id": i, "price": 1.0 + i, "qty": 1.0, "notional": 1.0 + i, "side": "buy"}
    return Firing(rule, symbol, T0 + i * 1000, details)


def test_events_past_the_logs_memory_are_read_back_from_the_history_after_a_restart(tmp_path):
    symbols = {"BTCUSDT", "ETHUSDT"}
    plain = validate(LARGE, symbols)
    hooked = validate({**LARGE, "symbol": "ETHUSDT", "webhook": "http://127.0.0.1:9/"}, symbols)
    root = tmp_path / "history"
    archive = EventArchive(root, flush_interval_s=0.05).start("spot")
    events = ArchivedEventLog(FileEventLog(tmp_path / "alerts", max_events=3), archive)
    for i in range(1, 9):
        events.append(firing(hooked if i == 2 else plain, "ETHUSDT" if i == 2 else "BTCUSDT", i))
    events.record_delivery(2, {"webhook": {"status": "pending", "attempts": 1}})
    events.record_delivery(2, {"webhook": {"status": "sent", "attempts": 2, "http_status": 200}})
    archive.stop()

    files = sorted(root.glob(f"spot/*/{ALERT_EVENTS}/*/*.parquet"))
    assert {f.parts[-4] for f in files} == symbols
    stored = pl.concat([pl.read_parquet(f) for f in files])
    assert dict(stored.schema) == COLUMNS
    assert sorted(set(stored["id"].to_list())) == list(range(1, 9))
    assert stored.filter(pl.col("id") == 2).height == 2  # fired, then its delivery decided

    # a restart: the log holds the newest 3, the history the rest
    again = ArchivedEventLog(FileEventLog(tmp_path / "alerts", max_events=3), EventArchive(root))
    assert again.oldest_id() == 6
    every = again.since(0, 100)
    assert [e.id for e in every] == list(range(8, 0, -1))
    assert every[-2].delivery == {"webhook": {"status": "sent", "attempts": 2, "http_status": 200}}
    assert every[-1].details["trade_id"] == 1 and every[-1].symbol == "BTCUSDT"
    assert [e.id for e in again.since(4, 100)] == [8, 7, 6, 5]
    assert [e.id for e in again.since(0, 4)] == [8, 7, 6, 5]
    assert [e.id for e in again.since(T0 + 3000, 100)] == [8, 7, 6, 5, 4, 3]
    assert again.since(8, 100) == []


def test_the_api_reaches_past_the_in_memory_log_through_the_history(tmp_path):
    settings = Settings(alerts_dir=tmp_path / "alerts", history_dir=tmp_path / "history")
    alerts = make_alerts(settings)
    assert isinstance(alerts.events, ArchivedEventLog)
    alerts.events.log = FileEventLog(settings.alerts_dir, max_events=2)
    alerts.events.archive.flush_interval_s = 0.05
    tap = start_tap(alerts, market="usdm")
    rule = validate(LARGE, {"BTCUSDT"})
    for i in range(1, 6):
        alerts.events.append(firing(rule, "BTCUSDT", i))
    tap.stop()
    alerts.events.archive.stop()
    assert list((tmp_path / "history" / "usdm" / "BTCUSDT").iterdir())

    restarted = make_alerts(settings)
    restarted.events.log = FileEventLog(settings.alerts_dir, max_events=2)
    client = create_app(MemoryStore(), alerts=restarted).server.test_client()
    got = client.get("/api/alerts/events?since=0").get_json()["events"]
    assert [e["id"] for e in got] == [5, 4, 3, 2, 1]
    by_time = client.get(f"/api/alerts/events?since={T0 + 2000}&limit=3").get_json()["events"]
    assert [e["id"] for e in by_time] == [5, 4, 3]


def test_a_log_holding_every_event_from_the_first_is_not_completed_from_the_history(tmp_path):
    archive = EventArchive(tmp_path / "no-history-here")
    events = ArchivedEventLog(FileEventLog(tmp_path / "alerts"), archive)
    told: list[int] = []
    assert isinstance(events.appended, list)  # the push relay listens to the file log
    events.appended.append(lambda event: told.append(event.id))
    rule = validate(LARGE, {"BTCUSDT"})
    for i in range(1, 4):
        events.append(firing(rule, "BTCUSDT", i))
    assert [e.id for e in events.since(0, 100)] == [3, 2, 1] and told == [1, 2, 3]
    assert not (tmp_path / "no-history-here").exists()


def test_events_are_compacted_and_retained_with_the_rest_of_the_history(tmp_path):
    """Several small segments per hour become one per hour in the history's compaction
    (reads give the same events, in their newest version, by id and by time); the history's
    retention then deletes the oldest hours by age, then by size, oldest first."""
    from services.history.compaction import compact
    from services.history.retention import apply_retention

    rule = validate(LARGE, {"BTCUSDT"})
    hooked = validate({**LARGE, "webhook": "http://127.0.0.1:9/"}, {"BTCUSDT"})
    root = tmp_path / "history"
    archive = EventArchive(root, flush_interval_s=0.02).start("spot")
    events = ArchivedEventLog(FileEventLog(tmp_path / "alerts", max_events=2), archive)
    hour = 3_600_000
    for h in range(3):
        for burst in range(3):
            for i in range(2):
                trade_id = h * 100 + burst * 10 + i
                events.append(
                    Firing(
                        hooked if trade_id == 10 else rule,
                        "BTCUSDT",
                        T0 + h * hour + trade_id,
                        {"trade_id": trade_id},
                    )
                )
            time.sleep(0.1)  # the archive writes what it has: one segment per burst
    events.record_delivery(3, {"webhook": {"status": "sent", "attempts": 1}})
    archive.stop()
    files = lambda: sorted(root.glob(f"spot/BTCUSDT/{ALERT_EVENTS}/*/*.parquet"))  # noqa: E731
    assert len(files()) >= 9

    again = ArchivedEventLog(FileEventLog(tmp_path / "alerts", max_events=2), EventArchive(root))
    before = again.since(0, 100)
    assert [e.id for e in before] == list(range(18, 0, -1))
    report = compact(root)
    assert report.written == 3 and len(files()) == 3  # one per hour
    after = again.since(0, 100)
    assert [e.to_json() for e in after] == [e.to_json() for e in before]
    assert after[-3].delivery == {"webhook": {"status": "sent", "attempts": 1}}
    assert [e.id for e in again.since(12, 100)] == [18, 17, 16, 15, 14, 13]
    assert [e.id for e in again.since(T0 + 2 * hour, 100)] == [18, 17, 16, 15, 14, 13]

    kept = apply_retention(root, T0 + 3 * hour, max_days=2.5 * hour / 86_400_000)
    assert len(kept.deleted) == 1 and len(files()) == 2  # the first hour, by age
    assert [e.id for e in again.since(0, 100)] == list(range(18, 6, -1))
    newest = files()[-1].stat().st_size
    kept = apply_retention(root, T0 + 3 * hour, max_bytes=newest)
    assert len(kept.deleted) == 1 and kept.bytes_kept == newest  # then the oldest, by size
    assert [e.id for e in again.since(0, 100)] == list(range(18, 12, -1))
