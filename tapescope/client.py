"""``Client``: the same methods as ``Session``, against a running Tapescope (its JSON API
and push streams), e.g. ``Client("http://127.0.0.1:8050")``.

Each method is one JSON API request whose answer is returned as the API sends it minus the
request's own wall-clock ``time``, so a client's and a session's answers compare equal for
the same snapshot. An error answer raises
``ApiError`` with the API's message.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import websockets


class ApiError(RuntimeError):
    """The running Tapescope answered with an error (status and its JSON body)."""

    def __init__(self, status: int, body: Any) -> None:
        message = body.get("error") if isinstance(body, dict) else body
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.body = body


class Client:
    """A thin async client of a running Tapescope at ``base_url``."""

    def __init__(self, base_url: str = "http://127.0.0.1:8050", timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.ws_url = "ws" + self.base_url.removeprefix("http")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _get(self, path: str, **params: Any) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        query = {k: str(v) for k, v in params.items() if v is not None}
        async with self._session.get(self.base_url + path, params=query) as response:
            body = await response.json(content_type=None)
            if response.status != 200:
                raise ApiError(response.status, body)
        return body

    async def _asset(self, symbol: str, what: str, **params: Any) -> dict[str, Any]:
        body = await self._get(f"/api/assets/crypto/{symbol.upper()}/{what}", **params)
        body.pop("time", None)
        return body

    async def start(self, symbols: Sequence[str] = (), wait_s: float = 30.0) -> list[str]:
        """Ask the running Tapescope to stream ``symbols`` (it subscribes on demand) and wait
        up to ``wait_s`` for their data; returns the symbols it streams."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        for symbol in symbols:
            while True:
                try:
                    await self._asset(symbol, "orderbook", levels=1)
                    break
                except ApiError as exc:
                    if exc.status != 503 or loop.time() > deadline:
                        raise
                    await asyncio.sleep(0.25)
        return sorted((await self.health()).get("books", {}))

    async def stop(self) -> None:
        """Close this client's connections (the running Tapescope goes on)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def order_book(self, symbol: str, levels: int = 10) -> dict[str, Any]:
        return await self._asset(symbol, "orderbook", levels=levels)

    async def trade_stats(
        self, symbol: str, window: str = "1m", *, start: str | int | None = None,
        end: str | int | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        if start is not None or end is not None:
            return await self._asset(symbol, "trade-stats", start=start, end=end)
        return await self._asset(symbol, "trade-stats", window=window)

    async def trade_flow(
        self, symbol: str, window: int | str = 100, *, start: str | int | None = None,
        end: str | int | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        if start is not None or end is not None:
            return await self._asset(symbol, "trade-flow", start=start, end=end)
        if isinstance(window, int):
            return await self._asset(symbol, "trade-flow", trades=window)
        return await self._asset(symbol, "trade-flow", window=window)

    async def large_trades(
        self, symbol: str, threshold: float = 10.0, *, start: str | int | None = None,
        end: str | int | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        return await self._asset(symbol, "large-trades", multiple=threshold, start=start, end=end)

    async def volume_profile(
        self, symbol: str, bins: int = 50, *, start: str | int | None = None,
        end: str | int | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        return await self._asset(symbol, "volume-profile", bins=bins, start=start, end=end)

    async def health(self) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        async with self._session.get(self.base_url + "/healthz") as response:
            return await response.json(content_type=None)

    async def websocket_stats(self) -> dict[str, Any]:
        """The feed's connection state as the running Tapescope reports it (``/healthz``'s
        ``feed``: state, reconnects, messages/s, lag, malformed frames)."""
        return (await self.health()).get("feed") or {}

    async def health_checks(self, interval_s: float = 30.0) -> AsyncIterator[dict[str, Any]]:
        while True:
            yield await self.health()
            await asyncio.sleep(interval_s)

    async def trades(self, symbol: str, from_id: int | None = None) -> AsyncIterator[dict]:
        """Trades from the ``trades`` stream (after ``from_id`` first), resuming after a
        dropped connection from the last id received."""
        last = from_id
        while True:
            query = f"?from_id={last}" if last is not None else ""
            url = f"{self.ws_url}/ws/asset/{symbol.upper()}/trades/{query}"
            try:
                async with websockets.connect(url) as ws:
                    async for raw in ws:
                        for trade in json.loads(raw)["trades"]:
                            last = trade["id"]
                            yield trade
            except websockets.ConnectionClosedError as exc:
                if exc.rcvd is not None and exc.rcvd.code >= 4000:
                    raise ApiError(exc.rcvd.code, exc.rcvd.reason) from exc
                await asyncio.sleep(0.5)
