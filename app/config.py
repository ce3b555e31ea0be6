"""Settings: one place for every knob, read from the environment and the command line.

Environment variables (all optional) use the ``TAPESCOPE_`` prefix, e.g.
``TAPESCOPE_SOURCE=replay``; ``REDIS_URL`` selects the Redis store. Command-line flags of
``python -m app`` override the environment.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

from services.replay.player import TIME_BASES
from services.replay.recording import DEFAULT_REPLAY, USDM_2024


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of a Tapescope process, with its default.

    source: ``auto`` (try Binance briefly, fall back to the bundled replay), ``live`` or
        ``replay``.
    preset: Binance endpoint preset used for live data (``spot``, ``spot-data``, ``us``,
        ``usdm``); ``ws_url``/``rest_url`` override it (point the client anywhere).
    recording/speed/loop: what the local exchange replays, how fast (1 = real time,
        ``max`` = as fast as the client reads) and whether it loops.
    replay_time: ``recording`` (default: a replay shows when things really happened) or
        ``today`` (moved by whole days to today, same time of day; bars stay aligned).
    symbols: symbols streamed from the start (empty: up to 10 of the source's trading
        symbols live, every symbol of the recording in a replay; ``all``: every TRADING
        symbol of the source). max_on_demand_symbols:
        extra symbols the UI may add.
    host/port/debug: the web server (binds 127.0.0.1 unless told otherwise).
    refresh_ms/slow_refresh_ms: browser refresh of fast panels (tape, depth, flow) and slow
        ones (profile, score). publish_interval_s: how often the feed publishes snapshots.
    trade_window: trades kept per symbol. book_levels: levels per side in published views.
    rest_weight_budget: REST request weight the client may use per minute (0: 80 % of
        Binance's limit for the market, 4800 spot); with ``redis_url`` the workers of one
        host share it through a counter in Redis.
    unwatched_depth_ms: diff-depth speed of the spot books nobody watches: 100 or 1000 ms
        (0: 1000 when many symbols are streamed — ``all``, a sharded worker, more than
        50 — else 100; ``FeedConfig.unwatched_depth_ms``). Watched books stream at 100 ms.
    live_probe_timeout_s: how long ``auto`` waits for Binance before replaying.
    redis_url: Redis store for several processes (empty: in-process memory store).
    ws_origins: comma-separated origins (scheme://host[:port], or ``*``) allowed to open
        the push streams (empty: the dashboard's own host only).
    alerts_dir: alert rules and events of the embedded mode (with Redis they live there).
    webhook_allow: hosts, IPs or CIDRs alert webhooks may reach (comma-separated; ``*``:
        any public address; private/loopback/link-local only when listed).
    auth_users / auth_users_file: basic-auth users as ``user:password`` pairs (comma- or
        line-separated); required when ``host`` is not loopback unless ``no_auth``.
    history: record and serve history (``--no-history``: neither). history_dir: where the
        history (trades, recorded book, candles) is kept. history_days / history_max_gb:
        retention by age and by size (0: none).
    perp_twin: stream the USD-M perpetual twin of the shown spot symbol on request (the
        flow chart draws spot and perpetual CVD); in a replay from ``perp_recording``.
    """

    source: str = "auto"
    preset: str = "spot"
    ws_url: str = ""
    rest_url: str = ""
    recording: Path = DEFAULT_REPLAY
    speed: str = "1"
    loop: bool = True
    replay_time: str = "recording"
    symbols: tuple[str, ...] = ()
    max_on_demand_symbols: int = 5
    host: str = "127.0.0.1"
    port: int = 8050
    debug: bool = False
    refresh_ms: int = 500
    slow_refresh_ms: int = 2000
    publish_interval_s: float = 0.25
    trade_window: int = 100_000
    book_levels: int = 5000
    rest_weight_budget: int = 0
    unwatched_depth_ms: int = 0
    live_probe_timeout_s: float = 3.0
    redis_url: str = ""
    exchange_port: int = 0
    ws_origins: str = ""
    alerts_dir: Path = Path(__file__).resolve().parents[1] / "data" / "alerts"
    webhook_allow: str = "*"
    auth_users: str = ""
    auth_users_file: str = ""
    no_auth: bool = False
    history: bool = True
    history_dir: Path = Path("data/history")
    history_days: float = 30.0
    history_max_gb: float = 5.0
    perp_twin: bool = False
    perp_recording: Path = USDM_2024


_SOURCES = ("auto", "live", "replay")


def _parse_bool(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def _coerce(name: str, text: str) -> object:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if kind == "bool":
        return _parse_bool(text)
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "Path":
        return Path(text)
    if kind == "tuple[str, ...]":
        return tuple(s.strip().upper() for s in text.split(",") if s.strip())
    return text


def from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``TAPESCOPE_<NAME>`` variables (and ``REDIS_URL``, ``PORT``)."""
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    for f in fields(Settings):
        key = f"TAPESCOPE_{f.name.upper()}"
        if key in env:
            values[f.name] = _coerce(f.name, env[key])
    if "redis_url" not in values and env.get("REDIS_URL"):
        values["redis_url"] = env["REDIS_URL"]
    if "port" not in values and env.get("PORT"):
        values["port"] = int(env["PORT"])
    settings = Settings(**values)  # type: ignore[arg-type]
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Raise ``ValueError`` with a clear message for settings that cannot work."""
    if settings.source not in _SOURCES:
        raise ValueError(f"source must be one of {', '.join(_SOURCES)}, not {settings.source!r}")
    if settings.replay_time not in TIME_BASES:
        raise ValueError(
            f"replay_time must be one of {', '.join(TIME_BASES)}, not {settings.replay_time!r}"
        )
    if settings.speed != "max":
        try:
            speed = float(settings.speed)
        except ValueError:
            raise ValueError(f"speed must be a number or 'max', not {settings.speed!r}") from None
        if speed <= 0:
            raise ValueError("speed must be positive")
    if not 0 < settings.trade_window <= 5_000_000:
        raise ValueError("trade_window must be between 1 and 5,000,000 trades")
    if not 1 <= settings.book_levels <= 5000:
        raise ValueError("book_levels must be between 1 and 5000")
    if settings.unwatched_depth_ms not in (0, 100, 1000):
        raise ValueError("unwatched_depth_ms must be 0 (auto), 100 or 1000")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line flags shared by ``run`` and ``worker``."""
    parser.add_argument("--source", choices=_SOURCES, help="auto (default), live or replay")
    parser.add_argument("--preset", help="Binance endpoints: spot, spot-data, us, usdm")
    parser.add_argument("--ws-url", help="WebSocket base URL (overrides the preset)")
    parser.add_argument("--rest-url", help="REST base URL (overrides the preset)")
    parser.add_argument("--recording", type=Path, help="recording to replay (.jsonl.gz)")
    parser.add_argument("--speed", help="replay speed: a multiple of real time, or max")
    parser.add_argument("--loop", dest="loop", action="store_true", default=None)
    parser.add_argument("--no-loop", dest="loop", action="store_false")
    parser.add_argument(
        "--replay-time",
        choices=TIME_BASES,
        help="replay times: recording (default, the original UTC times) or today",
    )
    parser.add_argument(
        "--symbols", help="comma-separated symbols to stream from the start, or 'all'"
    )
    parser.add_argument(
        "--unwatched-depth-ms",
        type=int,
        choices=(0, 100, 1000),
        help="diff-depth speed of spot books nobody watches (0: 1000 when many symbols)",
    )
    parser.add_argument("--host", help="address the web server binds (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="web server port (default 8050)")
    parser.add_argument("--debug", action="store_true", default=None, help="Dash debug mode")
    parser.add_argument("--redis-url", help="Redis store URL (several processes)")
    parser.add_argument("--alerts-dir", type=Path, help="alert rules and events (embedded)")
    parser.add_argument("--webhook-allow", help="hosts/IPs/CIDRs webhooks may reach, or *")
    parser.add_argument("--auth-users-file", help="basic-auth users file (user:password lines)")
    parser.add_argument(
        "--no-auth", action="store_true", default=None, help="serve a non-loopback host unguarded"
    )
    parser.add_argument("--no-history", dest="history", action="store_false", default=None)
    parser.add_argument("--history-dir", type=Path, help="history directory (data/history)")
    parser.add_argument("--history-days", type=float, help="keep this many days (0 = all)")
    parser.add_argument("--history-max-gb", type=float, help="history size cap (0 = none)")
    parser.add_argument("--perp-twin", action="store_true", default=None,
                        help="spot vs perpetual CVD: stream the USD-M twin on request")  # fmt: skip
    parser.add_argument("--perp-recording", type=Path, help="USD-M recording of the twin")


def from_args(args: argparse.Namespace, base: Settings | None = None) -> Settings:
    """Settings from parsed flags on top of ``base`` (default: the environment)."""
    settings = from_env() if base is None else base
    updates: dict[str, object] = {}
    for name in (
        *("source", "preset", "ws_url", "rest_url", "recording", "speed", "loop", "replay_time"),
        *("host", "port", "debug", "redis_url", "unwatched_depth_ms"),
        *("alerts_dir", "webhook_allow", "auth_users_file", "no_auth"),
        *("history", "history_dir", "history_days", "history_max_gb"),
        *("perp_twin", "perp_recording"),
    ):
        value = getattr(args, name, None)
        if value is not None:
            updates[name] = value
    if getattr(args, "symbols", None):
        updates["symbols"] = _coerce("symbols", args.symbols)
    settings = replace(settings, **updates)  # type: ignore[arg-type]
    validate(settings)
    return settings


def parse(argv: Sequence[str], prog: str = "python -m app") -> Settings:
    """Settings from the environment and ``argv``."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    add_arguments(parser)
    return from_args(parser.parse_args(list(argv)))
