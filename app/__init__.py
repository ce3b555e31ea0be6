"""Tapescope's web application. ``app:server`` is the WSGI callable for gunicorn, built on
first access (see ``app.wsgi``)."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "server":
        from app.wsgi import build_server

        server = build_server()
        globals()["server"] = server
        return server
    raise AttributeError(f"module 'app' has no attribute {name!r}")
