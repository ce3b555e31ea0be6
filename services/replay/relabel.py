"""Many-symbol recordings made from a few-symbol one, for soaks and herd tests.

``relabel_recording(source, target, count)`` writes a recording in which each of ``count``
symbols replays one of the source's symbols under a new name: ``BTCUSDT`` becomes
``BTC2USDT``, ``BTC3USDT``, ... (the copy number between base and quote asset). Every place a
symbol is named is renamed consistently — the stream name (``btcusdt@depth@100ms`` →
``btc2usdt@depth@100ms``), the payload's ``"s"`` fields (kline bars included) and the REST
snapshot URL (``symbol=BTCUSDT``) — while ids, prices and times stay as recorded, so the local
exchange serves the copies as independent markets with their own books, ids and trades.
"""

from __future__ import annotations

from pathlib import Path

from services.replay.recording import RecordingWriter, read_recording
from services.replay.session import split_symbol


def relabelled_symbols(originals: list[str], count: int) -> dict[str, str]:
    """``count`` new symbol names → the original each replays (cycling over ``originals``)."""
    if not originals:
        raise ValueError("the source recording names no symbol")
    names: dict[str, str] = {}
    for index in range(count):
        original = originals[index % len(originals)]
        base, quote = split_symbol(original)
        names[f"{base}{index // len(originals) + 2}{quote}"] = original
    return names


def recorded_symbols(source: Path) -> list[str]:
    """The symbols whose streams a recording holds, sorted."""
    symbols: dict[str, None] = {}
    for message in read_recording(source):
        if message.src == "ws" and message.raw.startswith(b'{"stream":"'):
            stream = message.raw[11 : message.raw.index(b'"', 11)].decode()
            symbols.setdefault(stream.split("@", 1)[0].upper(), None)
    return sorted(symbols)


def _rename(raw: bytes, old: str, new: str) -> bytes:
    return raw.replace(
        b'"stream":"%s@' % old.lower().encode(), b'"stream":"%s@' % new.lower().encode()
    ).replace(b'"s":"%s"' % old.encode(), b'"s":"%s"' % new.encode())


def relabel_recording(source: str | Path, target: str | Path, count: int) -> list[str]:
    """Write ``target`` with ``count`` relabelled symbols replaying ``source``'s; returns
    the new symbols, sorted."""
    source = Path(source)
    names = relabelled_symbols(recorded_symbols(source), count)
    copies: dict[str, list[str]] = {}
    for new, original in names.items():
        copies.setdefault(original, []).append(new)
    with RecordingWriter(target) as writer:
        for message in read_recording(source):
            text = message.raw
            owner = next((s for s in copies if _names(text, message.url, s)), None)
            if owner is None:
                continue
            for new in copies[owner]:
                url = message.url.replace(f"symbol={owner}&", f"symbol={new}&")
                writer.write(message.ts_ns, message.src, _rename(text, owner, new), url)
    return sorted(names)


def _names(raw: bytes, url: str, symbol: str) -> bool:
    """True when a recorded message belongs to ``symbol``."""
    if url:
        return f"symbol={symbol}&" in url
    return raw.startswith(b'{"stream":"%s@' % symbol.lower().encode())
