"""Alerts: what evaluating rules adds to the feed's per-message time, and how long a
triggering message takes to become a webhook request.

1. Per-message cost. The 2021 three-symbol recording's WebSocket frames (aggTrade,
   depth@100ms, kline_1m; its REST snapshots make the books LIVE), decoded once, are handed
   to a fresh ``Feed`` frame by frame (``Feed._on_frame``: book sync, trade log, taps) in
   one process, in these variants: no tap; a tap that does nothing (the feed's tap seam
   builds a trade view per trade); the ``AlertTap`` as the ingest process runs it, on its
   own ``AlertThread`` (the feed's thread only queues what concerns a rule), with 1,000
   rules over 200 symbols (5 per symbol: large_trade, price, wall, imbalance, flow — the
   three recorded symbols among them), the same 1,000 rules all on 200 *other* symbols,
   and the first 1,000 split into their book kinds (wall, imbalance) and their trade kinds
   (large_trade, price, flow); then the same 1,000 rules evaluated *on the feed's thread*
   (an ``AlertTap`` handed to the feed directly: the previous design), and behind a tap
   without ``on_levels`` (the whole band read after every diff). Metrics: CPU time of the
   feed's thread over the whole pass (``time.thread_time``: on a shared, loaded machine
   wall time mostly measures the other processes) ÷ frames (µs per message), median of the
   runs; "added" = variant − no tap, which includes the feed's tap seam; also the same
   difference between each variant's fastest run and the fastest run without a tap (the
   runs least disturbed by the other processes). For the alert
   thread variants also the CPU the rest of the process spent in the pass, including the
   wait for the alert thread to handle its queue (``time.process_time`` − the feed's
   thread), per message: the work moved off the feed's thread, not removed.
2. Latency. Trades of a symbol of their own handed to the feed one at a time (every 5 ms)
   with a large_trade rule whose webhook is a real HTTP server on loopback, through the
   ``AlertThread``; latency = the server receiving the POST − the frame entering
   ``Feed._on_frame`` (so it includes the queue to the alert thread, evaluation, the
   dispatcher's queue, the event log's append and the request). p50 and p95 over the
   trades, alone, and "busy": with 10 recorded frames between two trades and the 1,000
   rules on the recorded symbols (the alert thread busy with the book kinds); and busy with
   the rules evaluated on the feed's thread (the previous design), for comparison.

Run: ``.venv/bin/python bench/bench_alerts.py [--runs N] [--trades N]``. Ends with one
JSON line.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson

from services.alerts.alert_thread import AlertThread
from services.alerts.delivery import Dispatcher
from services.alerts.events import FileEventLog
from services.alerts.rules import Rule, new_rule_id
from services.alerts.tap import AlertTap
from services.alerts.webhook_policy import WebhookPolicy
from services.binance.endpoints import custom
from services.binance.messages import decode_depth_snapshot, decode_frame
from services.binance.ws_client import Received
from services.market.feed import Feed, FeedConfig
from services.market.views import SymbolInfo
from services.replay.recording import SPOT_2021, read_recording
from services.store import MemoryStore

RECORDED = ("BTCUSDT", "DOTUSDT", "ETHUSDT")
N_SYMBOLS = 200
RULES_PER_SYMBOL = 5
BOOK_KINDS = ("wall", "imbalance")


def recorded_messages() -> list[tuple[str, object]]:
    """("ws", Received) and ("rest", (symbol, DepthSnapshot)) in recorded order."""
    out: list[tuple[str, object]] = []
    for message in read_recording(SPOT_2021):
        if message.src == "ws":
            out.append(("ws", Received(decode_frame(message.raw), message.ts_ns / 1e9, 1)))
        elif "/depth" in message.url:
            symbol, _ = message.rest_target()
            out.append(("rest", (symbol, decode_depth_snapshot(message.raw))))
    return out


def rules_for(symbols: list[str]) -> list[Rule]:
    """Five rules per symbol, with thresholds the recording rarely reaches."""
    rules = []
    for i, symbol in enumerate(symbols):
        params = [
            ("large_trade", {"min_notional": 50_000.0 + i, "side": None}),
            ("price", {"level": 1_000_000.0 + i, "direction": "any", "rearm_bps": 0.0}),
            ("wall", {"min_notional": 5e6, "band_bps": 50.0, "event": "any",
                      "pulled_fraction": 0.5}),
            ("imbalance", {"band_bps": 25.0, "threshold": 0.95, "side": "any", "hold_s": 5.0}),
            ("flow", {"window_s": 60.0, "threshold": 5e6, "direction": "any",
                      "min_trade_notional": 0.0}),
        ]  # fmt: skip
        rules += [Rule(new_rule_id(), kind, symbol, p) for kind, p in params]
    return rules


class NoTap:
    """A tap that does nothing: what the feed's tap seam itself costs."""

    def on_trades(self, symbol: str, trades: object) -> None:
        return

    def on_book(self, symbol: str, book: object) -> None:
        return

    def on_candle(self, symbol: str, candle: object) -> None:
        return


class WithoutLevels:
    """An ``AlertTap`` seen through the plain ``FeedTap`` seam (no ``on_levels``)."""

    def __init__(self, tap: AlertTap) -> None:
        self.on_trades = tap.on_trades
        self.on_book = tap.on_book
        self.on_candle = tap.on_candle


def new_feed(taps: list) -> Feed:
    config = FeedConfig(endpoints=custom("ws://127.0.0.1:9", "http://127.0.0.1:9"))
    feed = Feed(config, MemoryStore(), taps=taps)
    feed._infos = {s: SymbolInfo(s) for s in RECORDED}
    for symbol in RECORDED:
        feed._add_symbol(symbol, on_demand=False)
    return feed


class HeldRules:
    """The rules held in memory (a ``RuleStore`` that never changes): the file store
    rewrites its whole file per rule put, which made the setup of 1,000 rules dominate the
    bench's time, not its figures."""

    def __init__(self, rules: list[Rule]) -> None:
        self._rules = {r.id: r for r in rules}

    def all(self) -> list[Rule]:
        return list(self._rules.values())

    def get(self, rule_id: str) -> Rule | None:
        return self._rules.get(rule_id)

    def version(self) -> int:
        return 1


def make_tap(rules: list[Rule], directory: Path, policy: WebhookPolicy | None = None):
    return AlertTap(HeldRules(rules), Dispatcher(FileEventLog(directory), policy)).start()


def one_pass(messages: list[tuple[str, object]], taps: list) -> tuple[float, float]:
    """CPU µs per WebSocket frame over the whole recording: of this (the feed's) thread,
    and of the rest of the process (an ``AlertThread`` among the taps is waited for)."""
    feed = new_feed(taps)
    frames = 0
    started, process_started = time.thread_time(), time.process_time()
    for kind, item in messages:
        if kind == "ws":
            feed._on_frame(item)  # type: ignore[arg-type]
            frames += 1
        else:
            symbol, snapshot = item  # type: ignore[misc]
            feed._symbols[symbol].book.on_snapshot(snapshot)
            feed._tap_book(symbol, feed._symbols[symbol])
    elapsed = time.thread_time() - started
    for tap in taps:
        if isinstance(tap, AlertThread):
            assert tap.drain() and tap.errors == 0
    rest = time.process_time() - process_started - elapsed
    assert feed.counters.tap_errors == 0
    return elapsed / frames * 1e6, rest / frames * 1e6


ON_FEED_THREAD = "1000 rules, on the feed's thread"
WHOLE_BAND = "  the same, whole band read per diff"


def cost(runs: int) -> dict[str, float]:
    messages = recorded_messages()
    others = [f"S{i:03d}USDT" for i in range(N_SYMBOLS)]
    with_recorded = rules_for(list(RECORDED) + others[: N_SYMBOLS - len(RECORDED)])
    with_others = rules_for(others)
    assert len(with_recorded) == len(with_others) == N_SYMBOLS * RULES_PER_SYMBOL
    variants = {"no tap": None, "a tap doing nothing": [],
                "1000 rules on other symbols": with_others,
                "1000 rules (5 on each recorded symbol)": with_recorded,
                "  their book kinds only": [r for r in with_recorded if r.kind in BOOK_KINDS],
                "  their trade kinds only": [r for r in with_recorded if r.kind not in BOOK_KINDS],
                ON_FEED_THREAD: with_recorded,
                WHOLE_BAND: with_recorded}  # fmt: skip
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, rules in variants.items():
            if rules is None:
                results[name].append(one_pass(messages, []))
                continue
            if not rules:
                results[name].append(one_pass(messages, [NoTap()]))
                continue
            with tempfile.TemporaryDirectory() as tmp:
                tap = make_tap(rules, Path(tmp))
                seen = {ON_FEED_THREAD: tap, WHOLE_BAND: WithoutLevels(tap)}.get(name)
                seen = seen or AlertThread(tap).start()
                results[name].append(one_pass(messages, [seen]))
                if isinstance(seen, AlertThread):
                    seen.stop()  # and its tap
                else:
                    tap.stop()
    feed_thread = {n: statistics.median(v[0] for v in values) for n, values in results.items()}
    rest = {n: statistics.median(v[1] for v in values) for n, values in results.items()}
    base, rest_base = feed_thread["no tap"], rest["no tap"]
    frames = sum(1 for kind, _ in messages if kind == "ws")
    print(f"\nPer-message cost: {frames} recorded frames, median of {runs} runs")
    fastest = {n: min(v[0] for v in values) for n, values in results.items()}
    print(f"    {'variant':<40} {'feed µs/msg':>11} {'added µs':>9} {'other threads µs':>17}"
          f" {'added, fastest runs':>20}")  # fmt: skip
    for name, value in feed_thread.items():
        print(f"    {name:<40} {value:>11.2f} {value - base:>9.2f} {rest[name] - rest_base:>17.2f}"
              f" {fastest[name] - fastest['no tap']:>20.2f}")  # fmt: skip
    headline = "1000 rules (5 on each recorded symbol)"
    return {
        "feed_us_per_msg": base,
        "seam_us_per_msg": feed_thread["a tap doing nothing"] - base,
        "added_us_per_msg_1000_rules": feed_thread[headline] - base,
        "added_us_per_msg_1000_rules_fastest_runs": fastest[headline] - fastest["no tap"],
        "alert_thread_us_per_msg_1000_rules": rest[headline] - rest_base,
        "added_us_per_msg_rules_elsewhere": feed_thread["1000 rules on other symbols"] - base,
        "added_us_per_msg_book_kinds": feed_thread["  their book kinds only"] - base,
        "added_us_per_msg_trade_kinds": feed_thread["  their trade kinds only"] - base,
        "added_us_per_msg_on_feed_thread": feed_thread[ON_FEED_THREAD] - base,
        "added_us_per_msg_whole_band_per_diff": feed_thread[WHOLE_BAND] - base,
    }


class _Hook:
    def __init__(self) -> None:
        self.arrivals: dict[int, float] = {}
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.arrivals[orjson.loads(body)["details"]["trade_id"]] = time.perf_counter()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


TIMED = "TIMEDUSDT"
BUSY_FRAMES_PER_TRADE = 10


def latency(n_trades: int, busy: bool, on_feed_thread: bool = False) -> dict[str, float]:
    """Message → webhook received (ms) for ``n_trades`` trades of a symbol of their own, one
    every 5 ms; ``busy``: between two of them the feed also takes 10 recorded frames
    (~2,000 frames/s) with the 1,000 rules on the recorded symbols, so the alert thread is
    busy with the book kinds and the feed's thread with the frames. ``on_feed_thread``: the
    tap handed to the feed directly (the previous design), for comparison."""
    hook = _Hook()
    rule = Rule(new_rule_id(), "large_trade", TIMED, {"min_notional": 1.0, "side": None},
                webhook=hook.url)  # fmt: skip
    others = [f"S{i:03d}USDT" for i in range(N_SYMBOLS)]
    rules = [rule, *rules_for(list(RECORDED) + others[: N_SYMBOLS - 4])] if busy else [rule]
    frames = iter(recorded_messages() if busy else ())
    with tempfile.TemporaryDirectory() as tmp:
        tap = make_tap(rules, Path(tmp), WebhookPolicy(("127.0.0.1",)))
        off_feed = tap if on_feed_thread else AlertThread(tap).start()
        feed = new_feed([off_feed])
        feed._infos[TIMED] = SymbolInfo(TIMED)
        feed._add_symbol(TIMED, on_demand=False)
        entered: dict[int, float] = {}
        for trade_id in range(1, n_trades + 1):
            for kind, item in itertools.islice(frames, BUSY_FRAMES_PER_TRADE):
                if kind == "ws":
                    feed._on_frame(item)  # type: ignore[arg-type]
                else:
                    symbol, snapshot = item  # type: ignore[misc]
                    feed._symbols[symbol].book.on_snapshot(snapshot)
                    feed._tap_book(symbol, feed._symbols[symbol])
            fields = {"e": "aggTrade", "E": trade_id, "s": TIMED, "a": trade_id,
                      "p": "58000", "q": "0.5", "f": trade_id, "l": trade_id, "T": trade_id,
                      "m": False}  # fmt: skip
            raw = orjson.dumps({"stream": f"{TIMED.lower()}@aggTrade", "data": fields})
            item = Received(decode_frame(raw), time.time(), 1)
            entered[trade_id] = time.perf_counter()
            feed._on_frame(item)
            time.sleep(0.005)
        deadline = time.monotonic() + 10
        while len(hook.arrivals) < n_trades and time.monotonic() < deadline:
            time.sleep(0.01)
        off_feed.stop()
    hook.server.shutdown()
    waits = sorted((hook.arrivals[i] - entered[i]) * 1000 for i in hook.arrivals)
    p50 = statistics.median(waits)
    p95 = waits[int(0.95 * (len(waits) - 1))]
    label = "with the recording and 1,000 rules alongside" if busy else "alone"
    label += ", evaluated on the feed's thread" if on_feed_thread else ""
    print(f"\nMessage → webhook received on loopback, {label}: {len(waits)}/{n_trades} trades")
    print(f"    p50 {p50:.2f} ms   p95 {p95:.2f} ms   max {waits[-1]:.2f} ms")
    suffix = ("_busy" if busy else "") + ("_on_feed_thread" if on_feed_thread else "")
    return {f"webhook_p50_ms{suffix}": p50, f"webhook_p95_ms{suffix}": p95,
            f"webhooks_delivered{suffix}": len(waits)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--trades", type=int, default=300)
    args = parser.parse_args()
    figures = {"bench": "alerts", **cost(args.runs), **latency(args.trades, busy=False),
               **latency(args.trades, busy=True),
               **latency(args.trades, busy=True, on_feed_thread=True)}  # fmt: skip
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
