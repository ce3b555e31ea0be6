"""Alerts for a process: where rules and events live (the alerts directory in the
embedded mode, Redis with ``REDIS_URL``; events also in the history unless it is off), the
webhook allow-list, and the ``AlertTap`` handed to the feed wherever one is created
(``run``, ``worker``, the WSGI app)."""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings
from services.alerts.alert_thread import AlertThread
from services.alerts.archive import ArchivedEventLog, EventArchive
from services.alerts.delivery import Dispatcher, Retry
from services.alerts.events import EventLog, FileEventLog
from services.alerts.rule_store import FileRuleStore, RuleStore
from services.alerts.tap import AlertTap
from services.alerts.webhook_policy import WebhookPolicy


@dataclass(slots=True)
class Alerts:
    """The rule store, the event log and the webhook policy of one process."""

    rules: RuleStore
    events: EventLog
    policy: WebhookPolicy


def make_alerts(settings: Settings) -> Alerts:
    """Rules and events in Redis when the settings name one, else in ``alerts_dir``."""
    policy = WebhookPolicy(tuple(e.strip() for e in settings.webhook_allow.split(",")))
    if settings.redis_url:
        from services.alerts.redis_backend import RedisEventLog, RedisRuleStore

        alerts = Alerts(
            RedisRuleStore(settings.redis_url), RedisEventLog(settings.redis_url), policy
        )
    else:
        directory = settings.alerts_dir
        alerts = Alerts(FileRuleStore(directory), FileEventLog(directory), policy)
    if settings.history:  # events kept with the history too (services.alerts.archive)
        alerts.events = ArchivedEventLog(alerts.events, EventArchive(settings.history_dir))
    return alerts


def start_tap(alerts: Alerts, retry: Retry | None = None, market: str = "spot") -> AlertThread:
    """A started ``AlertTap`` (its dispatcher and rule watcher running) for a feed of
    ``market``, evaluating on its own thread (``AlertThread``); events kept with the
    history start being written there."""
    if isinstance(alerts.events, ArchivedEventLog):
        alerts.events.archive.start(market)
    tap = AlertTap(alerts.rules, Dispatcher(alerts.events, alerts.policy, retry)).start()
    return AlertThread(tap).start()
