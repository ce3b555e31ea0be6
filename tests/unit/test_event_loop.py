"""The market processes' event loop: uvloop's when installed, asyncio's otherwise or when
``TAPESCOPE_EVENT_LOOP=asyncio``; either runs the same coroutine to the same result."""

from __future__ import annotations

import asyncio
import sys

import pytest

from services import event_loop


async def _echo_over_loopback() -> tuple[str, bytes]:
    """A real TCP round trip on the running loop; the loop's class name and the echo."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping\n")
        await writer.drain()
        echoed = await reader.readline()
        writer.close()
        await writer.wait_closed()
    return type(asyncio.get_running_loop()).__module__, echoed


def test_uvloop_where_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvloop")
    monkeypatch.delenv(event_loop.ENV, raising=False)
    module, echoed = event_loop.run(_echo_over_loopback())
    assert module.startswith("uvloop") and echoed == b"ping\n"
    loop = event_loop.new_event_loop()
    try:
        assert type(loop).__module__.startswith("uvloop")
    finally:
        loop.close()


def test_asyncio_when_turned_off_or_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.ENV, "asyncio")
    module, echoed = event_loop.run(_echo_over_loopback())
    assert module.startswith("asyncio") and echoed == b"ping\n"
    monkeypatch.delenv(event_loop.ENV)
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop raises ImportError
    assert event_loop.loop_factory() is asyncio.new_event_loop
    module, echoed = event_loop.run(_echo_over_loopback())
    assert module.startswith("asyncio") and echoed == b"ping\n"
