"""``python -m app check`` on a real recording with 1,000 hostile frames mixed in: every
book and trade log equals the clean run's, every hostile frame is counted, no traceback."""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli.check import check_recording
from services.replay.recording import SPOT_2021, format_line, read_recording
from services.replay.session import load_session

ROOT = Path(__file__).resolve().parents[2]
FUZZED = 1_000
SAME = (
    "market",
    "status",
    "state",
    "last_update_id",
    "bids_top5",
    "asks_top5",
    "levels",
    "resyncs",
    "gaps",
    "diffs_applied",
    "diffs_dropped",
    "trades",
    "trade_duplicates",
    "trade_gaps",
    "trade_qty_sum",
    "buyer_maker_count",
    "vwap",
)


def _nested(depth: int, rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        return b"[" * depth + b"]" * depth
    return b'{"k":' * depth + b"0" + b"}" * depth


READ_FIELDS = frozenset(["E", "s", "U", "u", "b", "a", "p", "q", "f", "l", "T", "m", "k"])
"""Payload fields the decoder reads (a hostile value in a field it skips would leave a
copy of a real frame, which the check rightly applies or drops as a duplicate)."""


def _replace_field(frame: bytes, rng: random.Random, value: bytes) -> bytes:
    """The frame with the value of one of its payload's read fields swapped for ``value``."""
    body = json.loads(frame)
    key = rng.choice(sorted(READ_FIELDS.intersection(body["data"])))
    body["data"][key] = "@@HOSTILE@@"
    return json.dumps(body, separators=(",", ":")).encode().replace(b'"@@HOSTILE@@"', value)


def hostile_frame(kind: str, real: bytes, rng: random.Random) -> bytes:
    """One hostile frame of ``kind``, derived from the real frame ``real``."""
    if kind == "deep":
        return _replace_field(real, rng, _nested(rng.randint(1_000, 100_000), rng))
    if kind == "deep_envelope":
        return b'{"stream":"btcusdt@depth@100ms","data":' + _nested(50_000, rng) + b"}"
    if kind == "huge_number":
        return _replace_field(real, rng, rng.choice([b"1e999999", b'"1e999999"', b"9" * 400]))
    if kind == "long_string":
        return _replace_field(real, rng, b'"' + b"x" * rng.randint(10_000, 1_000_000) + b'"')
    if kind == "invalid_utf8":  # inside the payload's symbol, a string the decoder reads
        cut = real.index(b'"s":"') + 5 + rng.randint(0, 3)
        return real[:cut] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"]) + real[cut:]
    if kind == "truncated":
        return real[: rng.randint(1, len(real) - 1)]
    if kind == "unknown_event":
        stream = json.loads(real)["stream"].split("@")[0]
        return json.dumps(
            {"stream": f"{stream}@mystery", "data": {"e": "mystery", "E": 1}}
        ).encode()
    if kind == "other_symbol":  # a well-formed frame for a symbol nobody subscribed to
        return real.replace(b'"s":"', b'"s":"NOPE', 1)
    if kind == "ten_megabytes":
        levels = b",".join([b'["1.00000000","1.00000000"]'] * 380_000)
        return (
            b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"NOPEUSDT",'
            b'"U":1,"u":2,"b":[' + levels + b'],"a":[]}}'
        )
    raise ValueError(kind)


KINDS = (
    "deep",
    "deep_envelope",
    "huge_number",
    "long_string",
    "invalid_utf8",
    "truncated",
    "unknown_event",
    "other_symbol",
)


def fuzzed_recording(source: Path, target: Path, seed: int = 12) -> dict[str, int]:
    """Write ``source`` with ``FUZZED`` hostile frames at random places (two of them 10 MB);
    return how many of each kind."""
    rng = random.Random(seed)
    messages = list(read_recording(source))
    frames = [m.raw for m in messages if m.src == "ws"]
    kinds = ["ten_megabytes"] * 2 + [KINDS[i % len(KINDS)] for i in range(FUZZED - 2)]
    at: dict[int, list[str]] = {}
    for kind in kinds:
        at.setdefault(rng.randrange(len(messages) + 1), []).append(kind)
    counts: dict[str, int] = {}
    with gzip.open(target, "wb", compresslevel=1) as fh:
        for index in range(len(messages) + 1):
            for kind in at.get(index, []):
                raw = hostile_frame(kind, rng.choice(frames), rng)
                fh.write(format_line(messages[min(index, len(messages) - 1)].ts_ns, "ws", raw))
                counts[kind] = counts.get(kind, 0) + 1
            if index < len(messages):
                m = messages[index]
                fh.write(format_line(m.ts_ns, m.src, m.raw, m.url))
    return counts


def run_check(path: Path) -> tuple[int, list[dict], str]:
    done = subprocess.run(
        [sys.executable, "-m", "app", "check", str(path)],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("fuzzed") / "fuzzed.jsonl.gz"
    return path, fuzzed_recording(SPOT_2021, path)


@pytest.mark.timeout(180)
def test_check_with_1000_hostile_frames_equals_the_clean_run(fuzzed):
    path, counts = fuzzed
    assert sum(counts.values()) == FUZZED
    clean_code, clean, _ = run_check(SPOT_2021)
    code, fuzzed, stderr = run_check(path)
    assert stderr == b""
    assert code == clean_code == 0
    assert [r["symbol"] for r in fuzzed] == [r["symbol"] for r in clean]
    for got, expected in zip(fuzzed, clean, strict=True):
        assert {k: got[k] for k in SAME} == {k: expected[k] for k in SAME}
    first = fuzzed[0]
    counted = (
        first["malformed_frames"]
        + first["unknown_frames"]
        + first["foreign_frames"]
        - clean[0]["malformed_frames"]
    )
    assert counted == FUZZED
    assert first["unknown_frames"] == counts["unknown_event"]
    assert first["foreign_frames"] >= counts["other_symbol"] + counts["ten_megabytes"]


def test_replay_session_of_the_fuzzed_recording_equals_the_clean_one(fuzzed):
    """The local exchange's own reading of a recording: hostile frames are skipped and
    counted, so they neither decide where a symbol's diffs start (a frame with real-looking
    ids but an undecodable body used to raise RecordingGap) nor reach the exchange's book."""
    path, counts = fuzzed
    clean = load_session([SPOT_2021])
    session = load_session([path])
    assert session.market == clean.market
    assert session.events == clean.events
    assert {s: v.first_diff_ids for s, v in session.symbols.items()} == {
        s: v.first_diff_ids for s, v in clean.symbols.items()
    }
    assert clean.skipped_frames == 0
    # every hostile frame with a recognisable envelope of an applied kind (a truncated one
    # may not even have that; unknown streams are played as recorded)
    assert 0.8 * (FUZZED - counts["unknown_event"]) < session.skipped_frames <= FUZZED


def test_bad_lines_and_a_file_cut_short_are_counted_not_fatal(tmp_path):
    """A recorder's broken line (a frame with a raw newline, a half-written line) or a gzip
    file cut short by a killed recorder cost that line, not the run."""
    messages = [m for m in read_recording(SPOT_2021) if m.line <= 1500]
    whole, path = tmp_path / "whole.jsonl.gz", tmp_path / "broken.jsonl.gz"
    with gzip.open(whole, "wb") as clean_fh, gzip.open(path, "wb") as fh:
        for index, m in enumerate(messages):
            clean_fh.write(format_line(m.ts_ns, m.src, m.raw, m.url))
            fh.write(format_line(m.ts_ns, m.src, m.raw, m.url))
            if index == 100:
                fh.write(b'{"ts":1,"src":"ws","msg":{"stream":"btcusdt@trade",\n')
                fh.write(b'"data":{}}}\n')
    clean = {r["symbol"]: r for r in check_recording(whole)}
    got = {r["symbol"]: r for r in check_recording(path)}
    assert clean and all(r["status"] == "ok" for r in clean.values())
    for symbol, expected in clean.items():
        assert {k: got[symbol][k] for k in SAME} == {k: expected[k] for k in SAME}
        assert got[symbol]["malformed_frames"] == expected["malformed_frames"] + 2
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    results = check_recording(cut)
    assert results and all(r["malformed_frames"] >= 3 for r in results)
