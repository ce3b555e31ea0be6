"""The offline local exchange: Binance's public WebSocket and REST protocol on loopback,
playing a recorded session.

One aiohttp application serves both protocols on one port:

* ``ws://HOST:PORT/ws/<stream>`` (raw payloads), a bare ``/ws`` or ``/ws/<id>`` (streams
  come by ``SUBSCRIBE``; ccxt.pro opens ``/ws/0``) and ``/stream?streams=a/b`` (combined);
* USD-M also as on Binance since its route split: ``/public/ws``, ``/public/stream`` carry
  the high-frequency book streams (diff and partial depth, bookTicker), ``/market/ws``,
  ``/market/stream`` every other stream; a stream asked on the wrong route is refused;
* ``http://HOST:PORT/api/v3/...`` (spot recordings) or ``/fapi/v1/...`` (USD-M); unknown
  paths answer Binance's JSON error (404, code -5000);
* ``/tapescope/stats`` — replay position, connections and injected faults (JSON).

Time: the exchange runs on the replay clock (``services.replay.player``): by default the
recording's own time, so event times, klines and ``/api/v3/time`` say when things really
happened.

Diff depth is served at every documented speed (``services.replay.depth_speeds``): the
recorded speed as recorded, coarser ones batched from it.

Derived streams (computed by the exchange, see ``services.replay.derived``):
``s@depth5/10/20[@100ms|@250ms|@500ms|@1000ms]``, ``s@miniTicker``, ``s@ticker``,
``s@kline_<interval>`` when that interval is not recorded (USD-M also
``s_perpetual@continuousKline_<interval>``, the same bars), ``!miniTicker@arr`` (see
``services.replay.market_tickers``) and ``!ticker@arr`` (every second, every symbol that has
traded), ``s@aggTrade`` when only trades
are recorded, ``s@trade`` when only aggTrades are recorded (one trade per aggTrade, id
``f``: the same rows and ids as ``/api/v3/trades`` serves then) and ``s@bookTicker`` when it
is not recorded. A stream the recording cannot feed (a kind the exchange does not derive, a
symbol it does not list) is refused at ``SUBSCRIBE`` (or with HTTP 400 in the URL), never
accepted and left silent.

The exchange is a market, not a tape: each symbol's book is updated as diffs are played, so
a REST depth snapshot taken at any moment has ``lastUpdateId`` = the last ``u`` sent and
bridges the diffs that follow it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiohttp import web

from services.binance.endpoints import USDM_PUBLIC_KINDS
from services.binance.messages import stream_kind
from services.replay.depth_speeds import (
    DepthSpeeds,
    depth_names,
    derived_speeds,
    diff_depth_speed,
)
from services.replay.derived import (
    INTERVAL_MS,
    book_ticker,
    continuous_kline_event,
    kline_event,
    kline_open_time,
    kline_rows,
    partial_depth,
)
from services.replay.faults import Faults
from services.replay.market_tickers import ALL_MINI_TICKERS, PERIOD_TICKS, AllMiniTickers
from services.replay.passes import (
    ResumePoint,
    pass_offsets,
    pass_steps,
    resume_point,
    start_book_id,
)
from services.replay.player import Offsets, Player, first_offset_ms
from services.replay.recording import DEFAULT_REPLAY
from services.replay.rest_api import RestApi, unknown_path_error
from services.replay.session import RecordedSession, ReplayEvent, load_session
from services.replay.stream_connection import (
    MAX_INCOMING_PER_SECOND,
    MAX_STREAMS,
    StreamConnection,
    invalid_streams,
)
from services.replay.symbol_market import SymbolMarket

_PARTIAL = re.compile(r"^depth(5|10|20)(?:@(100|250|500|1000)ms)?$")
PERPETUAL = "_PERPETUAL"  # USD-M continuous contract streams: <pair>_perpetual@continuousKline_1m
ALL_MARKET_TICKERS = {"!ticker@arr": "ticker"}
ROUTES = {"spot": ("",), "usdm": ("", "/public", "/market")}
MARKET_KINDS = frozenset({"depth", "trade", "aggTrade", "kline"})  # what ``play`` applies


def route_problem(route: str, stream: str) -> str | None:
    """Why a USD-M route does not carry a stream (``None``: it does). ``/public`` carries
    the book streams (diff and partial depth, bookTicker), ``/market`` the rest, the legacy
    root everything."""
    if not route:
        return None
    public = stream_kind(stream) in USDM_PUBLIC_KINDS
    if public == (route == "/public"):
        return None
    other = "/market" if public else "/public"
    return f"Invalid request: {stream} is served on {other}, not on {route}"


@dataclass(frozen=True, slots=True)
class DerivedStream:
    """A stream the exchange computes: its symbol, kind (``partial``, ``miniTicker``,
    ``ticker``, ``kline``, ``bookTicker``, ``aggTrade``), argument (levels or interval) and
    period in 100 ms ticks (0: pushed on events, not on the clock)."""

    symbol: str
    kind: str
    argument: str = ""
    period: int = 0


def parse_speed(text: str | float | None) -> float | None:
    """``"max"`` (or ``None``) → ``None``; otherwise a positive number of recording seconds
    per wall second."""
    if text is None or text == "max":
        return None
    speed = float(text)
    if speed <= 0:
        raise ValueError("speed must be positive or 'max'")
    return speed


class LocalExchange:
    """A local Binance (spot or USD-M, as recorded) replaying recordings on loopback.

    ``async with LocalExchange(paths, speed=..., loop=..., port=0) as ex`` starts it;
    ``ex.ws_url`` / ``ex.rest_url`` are the base URLs. ``start_in_thread()`` runs it in a
    background thread for synchronous callers; ``stop()`` ends it.
    """

    def __init__(
        self,
        recordings: Sequence[str | Path] | str | Path | None = None,
        *,
        speed: float | str | None = 1.0,
        loop: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        ping_interval: float = 20.0,
        pong_timeout: float = 60.0,
        queue_size: int = 50_000,
        time_base: str = "recording",
        after_trades: Mapping[tuple[str, str], tuple[int, int]] | None = None,
    ) -> None:
        if recordings is None:
            recordings = [DEFAULT_REPLAY]
        elif isinstance(recordings, str | Path):
            recordings = [recordings]
        self.paths = [Path(p) for p in recordings]
        self.speed = parse_speed(speed)
        self.loop = loop
        self.host = host
        self.port = port
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.queue_size = queue_size
        self.time_base = time_base
        self.after_trades = dict(after_trades or {})
        self.faults = Faults()
        self.session: RecordedSession | None = None
        self.player: Player | None = None
        self.markets: dict[str, SymbolMarket] = {}
        self.connections: set[StreamConnection] = set()
        self.subscribers: dict[str, set[StreamConnection]] = {}
        self.frames_sent_closed = 0
        self._aliases: dict[str, list[str]] = {}
        self._depth_streams: dict[str, list[str]] = {}
        self._batched: dict[str, dict[int, list[str]]] = {}  # symbol → speed → names
        self._batch_source: dict[str, str] = {}  # finest recorded diff stream → symbol
        self._served: set[str] = set()
        self._depth_speeds: dict[str, DepthSpeeds] = {}
        self._derived: dict[str, DerivedStream] = {}
        self._held: list[tuple[str, bytes]] | None = None
        self._listening = asyncio.Event()
        self._ticks = 0
        self._last_book_ticker: dict[str, tuple] = {}
        self._partial_pushed: dict[str, int] = {}  # partial depth stream → last u pushed
        self._all_mini_tickers = AllMiniTickers()
        self._runner: web.AppRunner | None = None
        self._play_task: asyncio.Task | None = None
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self.ws_url = ""
        self.rest_url = ""

    # lifecycle

    async def start(self) -> LocalExchange:
        """Load the recordings, bind the port and start playing."""
        self._listening = asyncio.Event()
        self.session = await asyncio.to_thread(load_session, self.paths)
        self._prepare(self.session)
        point, offsets = self._resume(self.session)
        self.player = Player(
            self.session,
            self,
            self.speed,
            self.loop,
            time_base=self.time_base,
            first_pass=point.pass_n,
            first_offsets=offsets,
        )
        if point.targets:  # mid-pass: the markets reach the stored trades before anyone listens
            await self.player.fast_forward(lambda: self._reached(point.targets), MARKET_KINDS)
        app = web.Application(middlewares=[unknown_path_error])
        for route in ROUTES[self.session.market]:
            app.router.add_get(f"{route}/ws", self._ws_raw)
            app.router.add_get(f"{route}/ws/{{streams:.*}}", self._ws_raw)
            app.router.add_get(f"{route}/stream", self._ws_combined)
        app.router.add_get("/tapescope/stats", self._stats_route)
        RestApi(self).add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]
        self.ws_url = f"ws://{self.host}:{self.port}"
        self.rest_url = f"http://{self.host}:{self.port}"
        self.faults.install(self._drop_all, self._shutdown_all, lambda: list(self.markets))
        self._play_task = asyncio.get_running_loop().create_task(self.player.run())
        return self

    def _resume(self, session: RecordedSession) -> tuple[ResumePoint, Offsets | None]:
        """Where to start: right after ``after_trades`` (newest aggTrade id and time
        already stored, per (market, symbol)) when they are this recording's — that pass's
        offsets, each book's ``lastUpdateId`` set as that pass's seam would have left it
        and the derived aggTrade counter, plus the ids to play silently up to."""
        stored = {s: v for (m, s), v in self.after_trades.items() if m == session.market}
        if not stored:
            return ResumePoint(), None
        base = first_offset_ms(
            self.time_base, session.start_ns // 1_000_000, time.time_ns() // 1_000_000
        )
        point = resume_point(session, base, stored)
        if not point.pass_n:
            return point, pass_offsets(pass_steps(session), base, 0) if point.targets else None
        offsets = pass_offsets(pass_steps(session), base, point.pass_n)
        for symbol, market in self.markets.items():
            book_id = start_book_id(session, symbol, offsets)
            if book_id is not None:
                market.book.last_update_id = book_id
            if market.agg_trades_derived and symbol in offsets.agg_ids:
                market.agg_builder.next_id = offsets.agg_ids[symbol] + 1
        return point, offsets

    def _reached(self, targets: Mapping[str, int]) -> bool:
        return all(self.markets[s].last_agg_id >= agg_id for s, agg_id in targets.items())

    async def close(self) -> None:
        """Stop playing, close every connection (1001) and release the port."""
        self.faults.cancel_periodic()
        if self._play_task is not None:
            self._play_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._play_task
        for conn in list(self.connections):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001, message=b"Exchange closing")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> LocalExchange:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start_in_thread(self, timeout: float = 120.0) -> tuple[str, str]:
        """Run the exchange on its own event loop in a daemon thread; returns
        ``(ws_url, rest_url)`` once it listens (a resume mid-pass first plays the pass up
        to the stored trades: seconds for the bundled 2024 recordings on a loaded machine,
        hence the long default timeout)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._thread_loop = loop
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # reported to the caller below
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.close())
            loop.close()

        self._thread = threading.Thread(target=serve, name="tapescope-exchange", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("local exchange did not start")
        if failure:
            raise failure[0]
        return self.ws_url, self.rest_url

    def stop(self) -> None:
        """End an exchange started with ``start_in_thread``."""
        if self._thread_loop is not None and self._thread is not None:
            self._thread_loop.call_soon_threadsafe(self._thread_loop.stop)
            self._thread.join(timeout=10)
            self._thread = None
            self._thread_loop = None

    # facts

    @property
    def market(self) -> str:
        return self.session.market if self.session else "spot"

    @property
    def recording_start_ms(self) -> int:
        """Recorder time of the recording's first frame (what "REPLAY of <date>" shows)."""
        return self.session.start_ns // 1_000_000 if self.session else 0

    @property
    def replay_of(self) -> str:
        return datetime.fromtimestamp(self.recording_start_ms / 1000, UTC).isoformat()

    def clock_ms(self, wall_s: float | None = None) -> int:
        """The replay clock in ms since the epoch, now or at a ``time.time()`` instant (what
        ``/api/v3/time`` answers and lag is measured against)."""
        if self.player is None:
            return self.recording_start_ms
        return self.player.clock_ms(wall_s)

    @property
    def finished(self) -> asyncio.Event:
        """Set when the last pass has been played (never with ``loop``)."""
        assert self.player is not None
        return self.player.finished

    def stats(self) -> dict:
        """Replay position, connections and fault counts."""
        player = self.player
        return {
            "replay_of": self.replay_of,
            "recording_start_ms": self.recording_start_ms,
            "market": self.market,
            "symbols": sorted(self.markets),
            "speed": "max" if self.speed is None else self.speed,
            "loop": self.loop,
            "passes": player.passes if player else 0,
            "position": player.position if player else 0,
            "events": len(self.session.events) if self.session else 0,
            "time_base": self.time_base,
            "time_offset_ms": player.offsets.time_ms if player else 0,
            "clock_ms": self.clock_ms(),
            "connections": len(self.connections),
            "frames_sent": self.frames_sent_closed + sum(c.frames_sent for c in self.connections),
            "faults": self.faults.stats(),
        }

    async def _stats_route(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats(), dumps=lambda o: orjson.dumps(o).decode())

    # streams

    def _prepare(self, session: RecordedSession) -> None:
        self.markets = {
            symbol: SymbolMarket(start, session.market, session.recorded_kinds(symbol))
            for symbol, start in session.symbols.items()
        }
        recorded = {event.stream for event in session.events}
        finest: dict[str, tuple[int, str]] = {}  # symbol → finest recorded speed, stream
        for stream in recorded:
            speed = diff_depth_speed(stream, session.market)
            if speed is None:
                self._aliases[stream] = [stream]
                continue
            symbol, speed_ms = speed
            names = depth_names(symbol, speed_ms, session.market)
            self._aliases[stream] = [n for n in names if n == stream or n not in recorded]
            self._depth_streams.setdefault(symbol.upper(), []).extend(self._aliases[stream])
            if symbol not in finest or speed_ms < finest[symbol][0]:
                finest[symbol] = (speed_ms, stream)
        for symbol, (speed_ms, stream) in finest.items():
            batched: dict[int, list[str]] = {}
            for speed in derived_speeds(speed_ms, session.market):
                names = [n for n in depth_names(symbol, speed, session.market) if n not in recorded]
                if names:
                    batched[speed] = names
                    self._depth_streams[symbol.upper()].extend(names)
            self._batched[symbol.upper()] = batched
            self._batch_source[stream] = symbol.upper()
            self._depth_speeds[symbol.upper()] = DepthSpeeds()
        self._served = {name for names in self._depth_streams.values() for name in names}
        self._served.update(name for names in self._aliases.values() for name in names)

    def refusal(self, route: str, names: list[str]) -> str | None:
        """Why streams cannot be served on a route (``None``: they all can)."""
        for name in names:
            problem = route_problem(route, name)
            if problem is None and name not in self._served and self.derived_stream(name) is None:
                problem = self._unfed(name)
            if problem is not None:
                return problem
        return None

    def _unfed(self, name: str) -> str:
        """The message refusing a stream this replay cannot feed."""
        symbol, _, kind = name.partition("@")
        listed = ", ".join(s.lower() for s in sorted(self.markets))
        if symbol.upper() not in self.markets:
            return f"Invalid request: {name}: this replay serves only {listed}"
        recorded = ", ".join(sorted(self.session.recorded_kinds(symbol.upper())))  # type: ignore[union-attr]
        return (
            f"Invalid request: {name} cannot be served: the recording has {recorded} for "
            f"{symbol.upper()}, and {kind} is neither recorded nor derivable from them"
        )

    def derived_stream(self, name: str) -> DerivedStream | None:
        """What a stream name means when the exchange computes it (``None``: recorded or
        unknown)."""
        if name == ALL_MINI_TICKERS:
            return DerivedStream("", "miniTicker@arr", "", PERIOD_TICKS)
        if name in self._served or "@" not in name:
            return None
        if name in ALL_MARKET_TICKERS:
            return DerivedStream("", ALL_MARKET_TICKERS[name], "", 10)
        symbol, kind = name.split("@", 1)
        symbol = symbol.upper()
        if (
            self.market == "usdm"
            and symbol.endswith(PERPETUAL)
            and kind.startswith("continuousKline_")
            and symbol.removesuffix(PERPETUAL) in self.markets
            and kind[16:] in INTERVAL_MS
        ):
            return DerivedStream(symbol.removesuffix(PERPETUAL), "continuousKline", kind[16:], 20)
        if symbol not in self.markets:
            return None
        kinds = self.session.recorded_kinds(symbol) if self.session else set()
        if partial := _PARTIAL.match(kind):
            period_ms = int(partial.group(2) or (250 if self.market == "usdm" else 1000))
            return DerivedStream(symbol, "partial", partial.group(1), max(1, period_ms // 100))
        if kind in ("miniTicker", "ticker"):
            return DerivedStream(symbol, kind, "", 10)
        if kind.startswith("kline_") and kind[6:] in INTERVAL_MS:
            return DerivedStream(symbol, "kline", kind[6:], 10 if kind == "kline_1s" else 20)
        if kind == "trade" and "trade" not in kinds and "aggTrade" in kinds:
            return DerivedStream(symbol, "trade")
        if kind in ("bookTicker", "aggTrade") and kind not in kinds:
            return DerivedStream(symbol, kind)
        return None

    def _subscribe(self, conn: StreamConnection, names: list[str]) -> None:
        for name in names:
            self.subscribers.setdefault(name, set()).add(conn)
            if (spec := self.derived_stream(name)) is not None:
                self._derived[name] = spec
        if self.subscribers:
            self._listening.set()

    def _unsubscribe(self, conn: StreamConnection, names: list[str]) -> None:
        for name in names:
            listeners = self.subscribers.get(name)
            if listeners is not None:
                listeners.discard(conn)
                if not listeners:
                    del self.subscribers[name]
                    self._derived.pop(name, None)
        if not self.subscribers:
            self._listening.clear()

    async def _ws_raw(self, request: web.Request) -> web.StreamResponse:
        names = [n for n in request.match_info.get("streams", "").split("/") if n]
        if all("@" not in n and not n.startswith("!") for n in names):
            names = []  # a bare connection (``/ws/0``): streams come by SUBSCRIBE
        return await self._serve_ws(request, names, combined=False)

    async def _ws_combined(self, request: web.Request) -> web.StreamResponse:
        names = [n for n in request.query.get("streams", "").split("/") if n]
        return await self._serve_ws(request, names, combined=True)

    async def _serve_ws(
        self, request: web.Request, names: list[str], combined: bool
    ) -> web.StreamResponse:
        names = list(dict.fromkeys(names))
        route = request.path[: request.path.index("/", 1)] if request.path.count("/") > 1 else ""
        route = route if route in ROUTES[self.market] else ""
        problem = invalid_streams(names)
        if problem is None and len(names) > MAX_STREAMS:
            problem = f"Invalid request: too many streams (max {MAX_STREAMS})"
        if problem is None:
            problem = self.refusal(route, names)
        if problem is not None:
            return web.json_response({"code": -1, "msg": problem}, status=400)
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = StreamConnection(
            request,
            ws,
            combined,
            self._subscribe,
            self._unsubscribe,
            self.queue_size,
            self.ping_interval,
            self.pong_timeout,
            MAX_INCOMING_PER_SECOND[self.market],
            lambda new: self.refusal(route, new),
        )
        self.connections.add(conn)
        conn.streams.update(dict.fromkeys(names))
        self._subscribe(conn, names)
        try:
            await conn.run()
        finally:
            self.connections.discard(conn)
            self.frames_sent_closed += conn.frames_sent
        return ws

    def _drop_all(self) -> int:
        conns = list(self.connections)
        for conn in conns:
            conn.abort()
        return len(conns)

    def _shutdown_all(self, grace: float) -> int:
        event_ms = self._now_ms()
        payload = b'{"e":"serverShutdown","E":%d}' % event_ms
        conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(asyncio.QueueFull):
                conn.queue.put_nowait(conn.frame("!serverShutdown", payload))
            asyncio.get_running_loop().call_later(grace, conn.close_soon, 1001, b"Server shutdown")
        return len(conns)

    def _now_ms(self) -> int:
        return self.clock_ms()

    async def _emit(self, frames: list[tuple[str, bytes]]) -> None:
        """Send payloads to their streams' subscribers, applying armed frame faults (at
        most one fault per emission, so each armed fault hits its own frame)."""
        armed = self.faults.frames
        if not frames:
            pass
        elif armed.malformed:
            armed.malformed -= 1
            self.faults.count("malformed")
            frames = [(name, payload[: len(payload) // 2]) for name, payload in frames]
        elif armed.duplicate:
            armed.duplicate -= 1
            self.faults.count("duplicate")
            frames = frames + frames
        elif armed.reorder and self._held is None:
            armed.reorder -= 1
            self.faults.count("reorder")
            self._held = frames
            return
        if frames and self._held is not None:
            frames, self._held = frames + self._held, None
        wait = self.speed is None
        for name, payload in frames:
            for conn in list(self.subscribers.get(name, ())):
                await conn.send(conn.frame(name, payload), wait)

    def _listened(self, names: list[str]) -> list[str]:
        return [name for name in names if name in self.subscribers]

    # ReplaySink

    async def wait_for_listeners(self) -> None:
        await self._listening.wait()

    async def stalled(self) -> float:
        return await self.faults.wait_stall()

    def last_ids(self, symbol: str) -> tuple[int, int, int]:
        market = self.markets[symbol]
        return market.book.last_update_id, market.last_trade_id, market.last_agg_id

    async def play(self, event: ReplayEvent, data: bytes) -> None:
        """Apply one recorded frame to the market and send it (and what derives from it)."""
        market = self.markets.get(event.symbol)
        frames: list[tuple[str, bytes]] = []
        served = self._aliases.get(event.stream, [event.stream])
        kind = event.kind
        if market is None:
            pass
        elif kind == "depth":
            diff = market.apply_depth(data)
            if self.faults.take_gap(event.symbol):
                served = []
            if event.stream in self._batch_source:
                self._batch_depth(event.symbol, diff)
            frames.extend(self._derived_book_ticker(market))
        elif kind == "trade":
            closed = market.apply_trade(data)
            if closed is not None:
                frames.extend(self._agg_trade_frames(market, closed))
        elif kind == "aggTrade":
            market.apply_agg_trade(data)
            frames.extend(self._derived_trade_frames(market, data))
        elif kind == "kline":
            market.apply_kline(data)
        frames[:0] = [(name, data) for name in self._listened(served)]
        if frames or self._held is not None:
            await self._emit(frames)

    def _batch_depth(self, symbol: str, diff: dict) -> None:
        """Merge a played diff into the batches of the coarser speeds someone listens to."""
        speeds = [
            speed
            for speed, names in self._batched[symbol].items()
            if any(name in self.subscribers for name in names)
        ]
        if speeds:
            self._depth_speeds[symbol].add(diff, speeds)

    def _batched_depth_frames(self, exchange_ms: int, everything: bool = False) -> list:
        """Merged diffs whose period ends now (or all pending ones), for their listeners."""
        frames: list[tuple[str, bytes]] = []
        for symbol, speeds in self._depth_speeds.items():
            for speed, batch in speeds.due(exchange_ms, everything):
                payload = batch.payload(symbol, exchange_ms)
                frames.extend((n, payload) for n in self._listened(self._batched[symbol][speed]))
        return frames

    def _agg_trade_frames(self, market: SymbolMarket, record: object) -> list[tuple[str, bytes]]:
        name = f"{market.symbol.lower()}@aggTrade"
        if name not in self.subscribers:
            return []
        return [(name, orjson.dumps(record.event(market.symbol, record.T)))]  # type: ignore[attr-defined]

    def _derived_trade_frames(self, market: SymbolMarket, data: bytes) -> list:
        """``@trade`` from an aggTrade-only recording: one trade per aggTrade, id ``f`` and
        the aggTrade's whole quantity — the rows ``/api/v3/trades`` serves for it."""
        name = f"{market.symbol.lower()}@trade"
        if name not in self._derived:
            return []
        agg = orjson.loads(data)
        body = {"e": "trade", "E": agg["E"], "s": market.symbol, "t": agg["f"], "p": agg["p"]}
        body |= {"q": agg["q"], "T": agg["T"], "m": agg["m"], "M": True}
        return [(name, orjson.dumps(body))]

    def _derived_book_ticker(self, market: SymbolMarket) -> list[tuple[str, bytes]]:
        name = f"{market.symbol.lower()}@bookTicker"
        spec = self._derived.get(name)
        if spec is None:
            return []
        bid, ask = market.book.best()
        top = (bid, ask)
        if self._last_book_ticker.get(name) == top:
            return []
        self._last_book_ticker[name] = top
        body = book_ticker(
            bid, ask, market.book.last_update_id, self.market, market.symbol, self._exchange_ms()
        )
        return [] if body is None else [(name, orjson.dumps(body))]

    def _exchange_ms(self) -> int:
        """The re-stamped exchange time of the current replay position."""
        if self.player is None or self.session is None:
            return self._now_ms()
        events = self.session.events
        position = min(self.player.position, len(events) - 1)
        return events[position].ts_ns // 1_000_000 + self.player.offsets.time_ms

    async def tick(self, exchange_ms: int) -> None:
        """Every 100 ms of recording time: close derived aggTrades, push periodic streams and
        the diff batches whose period ends (all of them at the end of a pass)."""
        self._ticks += 1
        pass_over = self.player is not None and self.player.position >= len(self.session.events)  # type: ignore[union-attr]
        frames: list[tuple[str, bytes]] = self._batched_depth_frames(exchange_ms, pass_over)
        for market in self.markets.values():
            closed = market.close_agg_trade()
            if closed is not None:
                frames.extend(self._agg_trade_frames(market, closed))
        for name, spec in list(self._derived.items()):
            if spec.period and self._ticks % spec.period == 0:
                body = self._periodic_body(spec, exchange_ms)
                if body is not None:
                    frames.append((name, orjson.dumps(body)))
        if frames or self._held is not None:
            await self._emit(frames)

    def _periodic_body(self, spec: DerivedStream, exchange_ms: int) -> dict | list | None:
        if spec.kind == "miniTicker@arr":
            return self._all_mini_tickers.payload(self.markets, exchange_ms) or None
        if not spec.symbol:  # !ticker@arr: the 24 h tickers of the symbols that have traded
            traded = [m for _, m in sorted(self.markets.items()) if m.stats.count]
            return [m.stats.ticker_event(m.symbol, exchange_ms, m.book) for m in traded] or None
        market = self.markets[spec.symbol]
        if spec.kind == "partial":
            name = f"{spec.symbol.lower()}@depth{spec.argument}@{spec.period}"
            previous = self._partial_pushed.get(name, -1)
            self._partial_pushed[name] = market.book.last_update_id
            return partial_depth(
                market.book, int(spec.argument), self.market, spec.symbol, exchange_ms, previous
            )
        if spec.kind == "miniTicker":
            return market.stats.mini_ticker_event(spec.symbol, exchange_ms)
        if spec.kind == "ticker":
            return market.stats.ticker_event(spec.symbol, exchange_ms, market.book)
        if spec.kind in ("kline", "continuousKline"):
            interval_ms = INTERVAL_MS[spec.argument]
            open_time = kline_open_time(exchange_ms, interval_ms)
            fills = market.fills_since(open_time)
            rows = kline_rows(fills, interval_ms, market.price_places, market.qty_places)
            if not rows:
                return None
            event = kline_event(spec.symbol, spec.argument, rows[-1], exchange_ms)
            return event if spec.kind == "kline" else continuous_kline_event(event)
        return None

    async def seam(self, offsets: Offsets) -> None:
        """Between passes: one derived diff per symbol turning the current book into the
        start book, ids continuing from the last ``u`` sent."""
        assert self.session is not None
        event_ms = self.recording_start_ms + offsets.time_ms
        frames: list[tuple[str, bytes]] = self._batched_depth_frames(event_ms, everything=True)
        for symbol, market in self.markets.items():
            start = self.session.symbols[symbol]
            closed = market.close_agg_trade()
            if closed is not None:
                frames.extend(self._agg_trade_frames(market, closed))
            if start.first_diff_ids is None:
                continue
            zero = "0." + "0" * market.qty_places if market.qty_places else "0"
            bids, asks = market.book.diff_to(start.book, zero)
            last = market.book.last_update_id
            market.book = start.book.copy()
            market.book.last_update_id = last + 1
            body: dict = {"e": "depthUpdate", "E": event_ms}
            if self.market == "usdm":
                body["T"] = event_ms
            body |= {"s": symbol, "U": last + 1, "u": last + 1}
            if self.market == "usdm":
                body["pu"] = last
            body |= {"b": bids, "a": asks}
            payload = orjson.dumps(body)
            frames.extend(
                (name, payload) for name in self._listened(self._depth_streams.get(symbol, []))
            )
        if frames:
            await self._emit(frames)
