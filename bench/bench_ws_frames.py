"""WebSocket client cost per frame: receiving the recording's real frames over loopback and
decoding them (``decode_frame``) with each client library in turn.

A server in its own process (so its CPU is not counted) sends the real combined-stream
frames of the 2021 three-symbol recording as unmasked text frames, either as fast as the
client reads them (``flood``) or paced at ``--rate`` frames a second in 10 ms batches
(``paced``: a worker's real situation, where each read finds a few frames). The client reads
``--frames`` of them and decodes each. Figures (median of ``--repeats``):
cpu_us_per_frame (this process's CPU time / frames: receiving, parsing, decoding),
frames_per_s (frames / wall time; in the paced mode this is the rate the server kept),
core_pct_at_rate (cpu_us_per_frame × rate / 10⁴: the share of one core the client needs at
``--rate`` frames a second). ``decode only`` is ``decode_frame`` on the same bytes without any
network: the floor every client shares.

Clients: ``websockets`` (asyncio ``connect``, ``recv(decode=False)``), ``aiohttp``
(``ClientSession.ws_connect(decode_text=False)``, its compiled reader) and, when importable,
``picows`` (a Cython client; not a dependency of the project).

Run: ``.venv/bin/python bench/bench_ws_frames.py [--frames 60000] [--rate 3000]``. Ends with
one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gzip
import hashlib
import json
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.binance.messages import decode_frame  # noqa: E402
from services.replay.recording import SPOT_2021  # noqa: E402
from tests.redis_server import free_port  # noqa: E402

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def recorded_frames(path: Path = SPOT_2021) -> list[bytes]:
    """The exact bytes of every WebSocket message of a recording, in order."""
    frames = []
    with gzip.open(path, "rb") as lines:
        for line in lines:
            if line.startswith(b'{"ts":') and b'"src":"ws"' in line[:60]:
                text = line.rstrip(b"\n")
                frames.append(text[text.index(b',"msg":') + 7 : -1])
    return frames


def _text_frame(payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


async def _serve_one(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, wire: list[bytes], rate: float
) -> None:
    request = await reader.readuntil(b"\r\n\r\n")
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    blob = b"".join(wire)
    sender = asyncio.get_running_loop().create_task(_send(writer, wire, blob, rate))
    with contextlib.suppress(ConnectionError):
        await reader.read(1)  # the client's close frame: stop, answer it, hang up
    sender.cancel()
    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
        await sender
    with contextlib.suppress(ConnectionError):
        writer.write(b"\x88\x02\x03\xe8")
        await writer.drain()
    writer.close()


async def _send(writer: asyncio.StreamWriter, wire: list[bytes], blob: bytes, rate: float) -> None:
    with contextlib.suppress(ConnectionError):
        if rate <= 0:
            while True:
                writer.write(blob)
                await writer.drain()
        batch = max(1, int(rate / 100))
        at, started = 0, time.monotonic()
        sent = 0
        while True:
            chunk = wire[at : at + batch]
            if len(chunk) < batch:
                chunk += wire[: batch - len(chunk)]
            at = (at + batch) % len(wire)
            writer.write(b"".join(chunk))
            await writer.drain()
            sent += batch
            await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))


def serve(port: int, rate: float) -> None:
    """Run the frame server (in its own process) until killed."""
    wire = [_text_frame(frame) for frame in recorded_frames()]

    async def main() -> None:
        server = await asyncio.start_server(
            lambda r, w: _serve_one(r, w, wire, rate), "127.0.0.1", port
        )
        async with server:
            await server.serve_forever()

    asyncio.run(main())


async def read_websockets(url: str, count: int) -> dict:
    from websockets.asyncio.client import connect

    async with connect(url, compression=None, max_size=2**24, proxy=None) as ws:
        decode_frame(await ws.recv(decode=False))
        clock = _Clock()
        for _ in range(count):
            decode_frame(await ws.recv(decode=False))
        return clock.stop(count)


async def read_aiohttp(url: str, count: int) -> dict:
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, decode_text=False, max_msg_size=2**24) as ws,
    ):
        decode_frame((await ws.receive()).data)
        clock = _Clock()
        for _ in range(count):
            message = await ws.receive()
            decode_frame(message.data)
        return clock.stop(count)


async def read_picows(url: str, count: int) -> dict:
    import picows

    done: asyncio.Future[dict] = asyncio.get_running_loop().create_future()

    class Listener(picows.WSListener):
        seen = -1
        clock: _Clock

        def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
            decode_frame(frame.get_payload_as_bytes())
            self.seen += 1
            if self.seen == 0:
                self.clock = _Clock()
            elif self.seen == count and not done.done():
                done.set_result(self.clock.stop(count))

    transport, _ = await picows.ws_connect(Listener, url)
    result = await done
    transport.send_close()
    transport.disconnect()
    return result


class _Clock:
    """CPU and wall time from its creation (the first frame read) to ``stop``."""

    def __init__(self) -> None:
        self.cpu, self.wall = time.process_time(), time.perf_counter()

    def stop(self, count: int) -> dict:
        cpu, wall = time.process_time() - self.cpu, time.perf_counter() - self.wall
        return {"cpu_us_per_frame": cpu / count * 1e6, "frames_per_s": count / wall}


def _measure(read: Callable[[str, int], Awaitable[dict]], url: str, count: int) -> dict:
    return asyncio.run(asyncio.wait_for(read(url, count), 120))


def _decode_only(count: int) -> dict:
    frames = recorded_frames()
    cpu0 = time.process_time()
    for i in range(count):
        decode_frame(frames[i % len(frames)])
    cpu = time.process_time() - cpu0
    return {"cpu_us_per_frame": cpu / count * 1e6, "frames_per_s": count / cpu}


def _clients() -> dict[str, Callable[[str, int], Awaitable[dict]]]:
    clients = {"websockets": read_websockets, "aiohttp": read_aiohttp}
    with contextlib.suppress(ImportError):
        import picows  # noqa: F401

        clients["picows"] = read_picows
    return clients


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=60_000)
    parser.add_argument("--rate", type=float, default=3000.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-rate", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.serve_rate)
        return
    results: dict[str, dict[str, float]] = {}
    paced_frames = max(1000, int(args.rate * 8))
    for mode, rate, count in (("flood", 0.0, args.frames), ("paced", args.rate, paced_frames)):
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(port), "--serve-rate", str(rate)],
            cwd=ROOT,
        )
        try:
            time.sleep(1.5)
            for name, read in _clients().items():
                runs = [_measure(read, f"ws://127.0.0.1:{port}/stream", count)]
                runs += [
                    _measure(read, f"ws://127.0.0.1:{port}/stream", count)
                    for _ in range(args.repeats - 1)
                ]
                results[f"{mode}_{name}"] = {
                    key: statistics.median(run[key] for run in runs) for key in runs[0]
                }
        finally:
            server.kill()
            server.wait(timeout=10)
    results["decode_only"] = _decode_only(args.frames)
    print(f"real frames of {SPOT_2021.name}, loopback, server in its own process")
    print(f"{'mode / client':<22} {'CPU us/frame':>13} {'frames/s':>10} {'core % at rate':>15}")
    for name, r in results.items():
        at_rate = r["cpu_us_per_frame"] * args.rate / 1e4
        cpu_us = r["cpu_us_per_frame"]
        print(f"{name:<22} {cpu_us:>13.1f} {r['frames_per_s']:>10.0f} {at_rate:>15.1f}")
    base = results["paced_websockets"]["cpu_us_per_frame"]
    for name in _clients():
        if name != "websockets":
            ratio = base / results[f"paced_{name}"]["cpu_us_per_frame"]
            print(f"paced: {name} uses {ratio:.2f}x less CPU a frame than websockets")
    print(
        json.dumps(
            {
                f"{name}_{key}": round(value, 2)
                for name, r in results.items()
                for key, value in r.items()
            }
            | {"rate_frames_per_s": args.rate}
        )
    )


if __name__ == "__main__":
    main()
