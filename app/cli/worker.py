"""``python -m app worker``: the ingest worker. It runs the feed alone and publishes to the
Redis store (``REDIS_URL`` or ``--redis-url``) and to the push streams' Redis Streams
(``services.redis_push``), which the web processes (gunicorn with any number of workers)
read. The market source is chosen as for ``run``: Binance live, or the
bundled recording replayed through the local exchange. Like ``run`` it records the history
(``--history-dir``; its files carry this process's writer id) and evaluates the alert rules
that the web workers write to Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from urllib.parse import urlsplit

from app import config, market_source
from app.alerting import make_alerts, start_tap
from app.history_setup import past_trades, start_history
from services.market.feed import Feed
from services.push.tap import StreamTap
from services.redis_push import RedisPushWriter
from services.redis_store import RedisStore

NEEDS_REDIS = (
    "error: the worker publishes to the shared Redis store; set REDIS_URL "
    "(or pass --redis-url redis://127.0.0.1:6379/0)"
)


async def run_feed(feed: Feed) -> None:
    """Run the feed until it ends or SIGTERM/SIGINT arrives."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    assert task is not None
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await feed.run()


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = config.parse(argv, prog="python -m app worker")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not settings.redis_url:
        print(NEEDS_REDIS, file=sys.stderr)
        return 2
    source = market_source.resolve(settings)
    store = RedisStore(settings.redis_url)
    label = f"{source.source} {source.recording}".strip()
    where = urlsplit(settings.redis_url)
    print(f"Tapescope worker: {label} -> Redis {where.hostname}:{where.port}", flush=True)
    history = start_history(settings, source)
    tap = start_tap(make_alerts(settings))
    push = RedisPushWriter(settings.redis_url)
    streams = StreamTap(sinks=(push,))
    feed = Feed(
        market_source.feed_config(settings, source),
        store,
        taps=(history.recorder, tap, streams) if history is not None else (tap, streams),
        shared_weight=market_source.shared_weight(settings),
        past_trades=past_trades(settings, source),
    )
    try:
        asyncio.run(run_feed(feed))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        tap.stop()
        if history is not None:
            history.stop()
        source.close()
        push.close()
        store.close()
    return 0
