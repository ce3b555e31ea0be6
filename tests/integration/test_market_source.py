"""``--source auto``: Binance answering HTTP 451 (geo-block) or not answering at all makes
the run command replay the bundled recording through the local exchange."""

from __future__ import annotations

import asyncio

from aiohttp import web

from app import market_source
from app.config import Settings
from services.binance.endpoints import custom


async def test_geo_block_and_unreachable_fall_back_to_the_replay(unused_tcp_port):
    async def geo_blocked(_: web.Request) -> web.Response:
        body = {"code": 0, "msg": "Service unavailable from a restricted location"}
        return web.json_response(body, status=451)

    app = web.Application()
    app.router.add_get("/api/v3/ping", geo_blocked)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    blocked = f"http://127.0.0.1:{unused_tcp_port}"
    try:
        reason = await asyncio.to_thread(market_source.probe, custom("ws://x", blocked), 2.0)
        assert reason.endswith("is geo-blocked here (HTTP 451)")
        settings = Settings(source="auto", ws_url="ws://127.0.0.1:9", rest_url=blocked)
        source = await asyncio.to_thread(market_source.resolve, settings)
    finally:
        await runner.cleanup()
    try:
        assert source.source == "REPLAY"
        assert source.recording_date == "2021-04-04T20:03:11Z"
        assert source.endpoints.rest_base.startswith("http://127.0.0.1:")
    finally:
        source.close()
    unreachable = custom("ws://127.0.0.1:9", "http://127.0.0.1:9")
    assert "cannot be used" in await asyncio.to_thread(market_source.probe, unreachable, 2.0)
