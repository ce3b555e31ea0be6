"""Who may use the server: basic auth over the page, the API and every stream when the
server binds anything but loopback. Every route is guarded, ``/healthz`` and Dash's own
``/_dash-layout`` included (dash-auth's public-route list would open the latter).

Users come from ``auth_users`` (``TAPESCOPE_AUTH_USERS``, ``user:password`` pairs separated
by commas) and ``auth_users_file`` (one pair per line, ``#`` comments). Without users a
non-loopback server refuses to start unless ``--no-auth`` is given (then it warns)."""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

import dash

from app.config import Settings

log = logging.getLogger(__name__)


class AuthRequired(ValueError):
    """A non-loopback bind without users and without ``--no-auth``."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _pairs(lines: list[str]) -> dict[str, str]:
    users = {}
    for raw in lines:
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        user, sep, password = entry.partition(":")
        if not sep or not user or not password:
            raise ValueError(f"auth user entry {user or entry!r} must be user:password")
        users[user] = password
    return users


def users(settings: Settings) -> dict[str, str]:
    """The configured users (empty when none)."""
    found = _pairs(settings.auth_users.split(","))
    if settings.auth_users_file:
        found |= _pairs(Path(settings.auth_users_file).read_text(encoding="utf-8").splitlines())
    return found


def check(settings: Settings) -> dict[str, str]:
    """The configured users; raises ``AuthRequired`` for a non-loopback ``host`` with
    neither users nor ``no_auth`` (and warns when ``no_auth`` lets it through)."""
    known = users(settings)
    if not known and not is_loopback(settings.host):
        if not settings.no_auth:
            raise AuthRequired(
                f"binding {settings.host} exposes the page, the API and alert webhooks: set "
                "users (TAPESCOPE_AUTH_USERS or --auth-users-file) or pass --no-auth"
            )
        log.warning("serving %s without authentication (--no-auth)", settings.host)
    return known


def protect(app: dash.Dash, settings: Settings) -> bool:
    """Put basic auth in front of every route of ``app`` when users are configured; True
    when it did. Raises as ``check`` does."""
    known = check(settings)
    if not known:
        return False
    import dash_auth

    dash_auth.BasicAuth(app, known)
    return True
