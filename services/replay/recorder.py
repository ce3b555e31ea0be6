"""Recording a live session in the replay format, so an incident can be replayed.

Every WebSocket frame the client reads is written verbatim (``src":"ws"``) with its
receive time; for each symbol a REST depth snapshot is fetched after its first diff has
arrived (so the diff stream already buffers, as the live client does) and again after any
reconnect, and written verbatim with its URL (``"src":"rest"``). The result replays through
the local exchange and passes ``python -m app check`` like the bundled recordings.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from services.binance import streams as names
from services.binance.endpoints import Endpoints
from services.binance.messages import DepthUpdate
from services.binance.rest_client import BinanceRestClient
from services.binance.ws_client import (
    BinanceWebSocketClient,
    ConnectionEvent,
    LifecycleKind,
    Received,
)
from services.replay.recording import RecordingWriter

SNAPSHOT_LIMIT = 1000


@dataclass(slots=True)
class RecordingSummary:
    """What a recording session wrote: frames, snapshots and bytes, per symbol snapshots."""

    path: Path
    frames: int = 0
    snapshots: int = 0
    bytes: int = 0
    reconnects: int = 0
    snapshots_by_symbol: dict[str, int] = field(default_factory=dict)


def recorded_streams(symbol: str) -> tuple[str, ...]:
    """The streams recorded for a symbol: diff depth, trades (both kinds), bookTicker and
    1 m klines."""
    return (
        names.diff_depth(symbol, 100),
        names.trade(symbol),
        names.agg_trade(symbol),
        names.book_ticker(symbol),
        names.kline(symbol, "1m"),
    )


async def record(
    endpoints: Endpoints,
    symbols: list[str],
    seconds: float,
    out: Path,
    *,
    idle_timeout_s: float = 30.0,
) -> RecordingSummary:
    """Record ``symbols`` from ``endpoints`` for ``seconds`` into ``out`` (gzip JSON lines)."""
    summary = RecordingSummary(out)
    wanted = {s.upper() for s in symbols}
    need_snapshot = set(wanted)
    with RecordingWriter(out) as writer:

        def on_raw(raw: bytes, received_at: float) -> None:
            writer.write(int(received_at * 1e9), "ws", raw)
            summary.frames += 1
            summary.bytes += len(raw)

        client = BinanceWebSocketClient(endpoints, idle_timeout_s=idle_timeout_s, on_raw=on_raw)
        rest = BinanceRestClient(endpoints)
        await client.subscribe([s for symbol in wanted for s in recorded_streams(symbol)])
        pending: set[asyncio.Task[None]] = set()

        async def snapshot(symbol: str) -> None:
            raw = await rest.depth_snapshot_raw(symbol, SNAPSHOT_LIMIT)
            url = (
                f"{endpoints.rest_base}{endpoints.rest_prefix}/depth"
                f"?symbol={symbol}&limit={SNAPSHOT_LIMIT}"
            )
            writer.write(time.time_ns(), "rest", raw, url)
            summary.snapshots += 1
            summary.snapshots_by_symbol[symbol] = summary.snapshots_by_symbol.get(symbol, 0) + 1

        async def listen() -> None:
            async for item in client.listen_with_reconnect():
                if isinstance(item, ConnectionEvent):
                    if item.kind in (LifecycleKind.RECONNECTED, LifecycleKind.DROPPED):
                        summary.reconnects += 1
                        need_snapshot.update(wanted)
                    continue
                assert isinstance(item, Received)
                event = item.frame.event
                if isinstance(event, DepthUpdate) and event.s in need_snapshot:
                    need_snapshot.discard(event.s)
                    task = asyncio.create_task(snapshot(event.s))
                    pending.add(task)
                    task.add_done_callback(pending.discard)

        try:
            async with client:
                listener = asyncio.create_task(listen())
                await asyncio.sleep(seconds)
                listener.cancel()
                if pending:
                    await asyncio.wait(pending, timeout=10)
        finally:
            await rest.close()
    return summary
