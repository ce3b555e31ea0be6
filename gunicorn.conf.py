"""gunicorn settings read from the working directory (``gunicorn app:server``).

One web worker may embed the feed and keep market state in its own memory. Several workers
would each run their own feed and show different data, so more than one worker needs the
shared Redis store (``REDIS_URL``) and the ingest worker (``python -m app worker``).
"""

from __future__ import annotations

import os
import sys

MULTI_WORKER_NEEDS_REDIS = (
    "Tapescope: {workers} web workers need REDIS_URL. Each worker would otherwise run its own "
    "Binance feed and memory store and serve different data. Either run one worker "
    "(--workers 1 --worker-class gthread --threads 8), or set REDIS_URL and start the "
    "ingest worker with `python -m app worker`."
)


def on_starting(server: object) -> None:
    """Refuse to start several web workers without the shared store, and a non-loopback
    bind without authentication (``app.auth``)."""
    workers = int(server.cfg.workers)  # type: ignore[attr-defined]
    if workers > 1 and not os.environ.get("REDIS_URL"):
        sys.exit(MULTI_WORKER_NEEDS_REDIS.format(workers=workers))
    from dataclasses import replace

    from app import auth, config

    settings = config.from_env()
    for bind in server.cfg.bind:  # type: ignore[attr-defined]
        if not bind.startswith(("unix:", "fd://")):
            try:
                auth.check(replace(settings, host=bind.rsplit(":", 1)[0].strip("[]")))
            except auth.AuthRequired as exc:
                sys.exit(f"Tapescope: {exc}")


def nworkers_changed(server: object, new_value: int, old_value: int | None) -> None:
    """Refuse growing past one worker at run time (TTIN) without the shared store."""
    if old_value is not None and new_value > 1 and not os.environ.get("REDIS_URL"):
        server.log.error(MULTI_WORKER_NEEDS_REDIS.format(workers=new_value))  # type: ignore[attr-defined]
        server.num_workers = 1  # type: ignore[attr-defined]
