"""Status bar: REPLAY unmistakable, stale snapshots never shown live, levels by health."""

from __future__ import annotations

from components.status_bar import STALE_AFTER_S, create_status_bar, status_items


def levels(items):
    return {item.label: (item.value, item.level) for item in items}


def test_live_and_healthy():
    items = levels(
        status_items(
            source="LIVE",
            connection_state="CONNECTED",
            messages_per_s=40.0,
            event_lag_ms=80.0,
            sync_state="LIVE",
            update_age_s=0.4,
        )
    )
    assert items["source"] == ("LIVE", "ok")
    assert items["book"] == ("LIVE", "ok")
    assert items["lag"] == ("80 ms", "ok")
    assert items["updated"] == ("0.4 s ago", "ok")


def test_replay_names_the_recording_date_in_amber():
    items = levels(
        status_items(
            source="REPLAY",
            recording_date="2021-04-04T20:03:11Z",
            sync_state="LIVE",
            update_age_s=0.1,
            connection_state="CONNECTED",
        )
    )
    assert items["source"] == ("REPLAY · recorded 2021-04-04 20:03:11 UTC", "warn")


def test_old_snapshot_is_stale_not_live():
    items = levels(
        status_items(
            source="LIVE",
            connection_state="CONNECTED",
            sync_state="LIVE",
            update_age_s=STALE_AFTER_S + 1,
            event_lag_ms=9_000.0,
            reconnects=2,
        )
    )
    assert items["book"] == ("STALE", "bad")
    assert items["updated"][1] == "bad"
    assert items["lag"][1] == "bad"
    assert items["reconnects"] == ("2", "warn")


def test_not_in_sync_and_no_feed():
    items = levels(
        status_items(
            source="LIVE", connection_state="RECONNECTING", sync_state="RESYNCING", update_age_s=0.2
        )
    )
    assert items["book"] == ("RESYNCING", "warn")
    assert items["connection"][1] == "bad"
    assert levels(status_items(source=None)) == {"feed": ("not started", "bad")}
    spans = create_status_bar(status_items(source=None))
    assert spans[0].className == "status-item status-bad"


def test_the_owning_worker_and_since_when_are_shown() -> None:
    items = status_items(
        source="LIVE",
        connection_state="CONNECTED",
        sync_state="LIVE",
        update_age_s=0.1,
        owner=("4242-ab12cd34", 1_700_000_000.0),
    )
    worker = next(item for item in items if item.label == "worker")
    assert worker.value == "4242-ab12cd34 since 22:13:20 UTC"
    assert "worker" not in {i.label for i in status_items(source="LIVE", sync_state="LIVE")}
