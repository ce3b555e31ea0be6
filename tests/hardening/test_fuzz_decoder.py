"""Fuzzed frames into the decoder: anything a peer sends either decodes to a typed frame or
raises ``MalformedFrame`` — never another exception."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.binance.messages import Frame, MalformedFrame, decode_depth_snapshot, decode_frame

DEPTH = {
    "stream": "btcusdt@depth@100ms",
    "data": {
        "e": "depthUpdate",
        "E": 1617566591307,
        "s": "BTCUSDT",
        "U": 100,
        "u": 102,
        "b": [["58000.01", "1.5"], ["57999.00", "0.000"]],
        "a": [["58001.00", "2.25"]],
    },
}
AGG_TRADE = {
    "stream": "btcusdt@aggTrade",
    "data": {
        "e": "aggTrade",
        "E": 1617566591307,
        "s": "BTCUSDT",
        "a": 665076894,
        "p": "58000.01",
        "q": "0.012",
        "f": 1,
        "l": 2,
        "T": 1617566591306,
        "m": True,
    },
}
KLINE = {
    "stream": "btcusdt@kline_1m",
    "data": {
        "e": "kline",
        "E": 1,
        "s": "BTCUSDT",
        "k": {
            "t": 0,
            "T": 59999,
            "s": "BTCUSDT",
            "i": "1m",
            "o": "1",
            "c": "2",
            "h": "3",
            "l": "0.5",
            "v": "10",
            "n": 3,
            "x": False,
            "q": "20",
            "V": "4",
            "Q": "8",
        },
    },
}
TEMPLATES = (DEPTH, AGG_TRADE, KLINE)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["NaN", "nan", "-inf", "Infinity", "-1", "0", "1e400", "abc", "", "0x10"]),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=12,
)


def _decode(raw: bytes) -> Frame | None:
    """The frame, or None when it is refused as malformed (the only accepted failure)."""
    try:
        return decode_frame(raw)
    except MalformedFrame:
        return None


@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_are_malformed(raw: bytes) -> None:
    _decode(raw)


@given(st.sampled_from(TEMPLATES), st.data())
def test_truncated_frames_are_malformed(template: dict, data: st.DataObject) -> None:
    raw = json.dumps(template).encode()
    cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    assert _decode(raw[:cut]) is None


@given(st.sampled_from(TEMPLATES), st.data(), json_values)
def test_a_field_with_any_value(template: dict, data: st.DataObject, value: object) -> None:
    body = json.loads(json.dumps(template))
    payload = body["data"]
    key = data.draw(st.sampled_from(sorted(payload)))
    payload[key] = value
    _decode(json.dumps(body).encode())


@given(st.sampled_from(TEMPLATES), st.data())
def test_missing_fields_are_malformed(template: dict, data: st.DataObject) -> None:
    body = json.loads(json.dumps(template))
    payload = body["data"]
    key = data.draw(st.sampled_from(sorted(k for k in payload if k not in ("e",))))
    del payload[key]
    assert _decode(json.dumps(body).encode()) is None


@given(st.text(min_size=1, max_size=30), st.text(max_size=30))
def test_unknown_events_and_streams_never_raise(event: str, stream: str) -> None:
    raw = json.dumps({"stream": stream, "data": {"e": event, "E": 1, "s": "NOPEUSDT"}}).encode()
    _decode(raw)
    _decode(json.dumps({"e": event, "E": 1}).encode())


@settings(max_examples=5, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=10_000, max_value=200_000))
def test_huge_level_arrays_decode(levels: int) -> None:
    body = json.loads(json.dumps(DEPTH))
    body["data"]["b"] = [["1.0", "2.0"]] * levels
    frame = _decode(json.dumps(body).encode())
    assert frame is not None
    assert len(frame.event.b) == levels


@pytest.mark.parametrize(
    ("field", "value"),
    [("p", "NaN"), ("p", "Infinity"), ("p", "1e400"), ("p", "-3"), ("p", "0"), ("q", "-1")],
)
def test_out_of_range_prices_and_quantities_are_malformed(field: str, value: str) -> None:
    body = json.loads(json.dumps(AGG_TRADE))
    body["data"][field] = value
    assert _decode(json.dumps(body).encode()) is None


# --- hostile frames: every exception decoding can raise is a MalformedFrame ------------------

DEEP = 100_000


def _nested(depth: int, open_: bytes = b"[", close: bytes = b"]") -> bytes:
    return open_ * depth + close * depth


HOSTILE = {
    "deep array as depth payload": (
        b'{"stream":"btcusdt@depth@100ms","data":' + _nested(DEEP) + b"}"
    ),
    "deep array inside a level": (
        b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT",'
        b'"U":1,"u":2,"b":' + _nested(DEEP) + b',"a":[]}}'
    ),
    "deep object, unknown stream": (
        b'{"stream":"btcusdt@mystery","data":' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}"
    ),
    "deep raw event": b'{"e":"trade","x":' + _nested(DEEP) + b"}",
    "deep control result": b'{"result":' + _nested(DEEP) + b',"id":1}',
    "deep bare array": _nested(DEEP),
    "huge number as event time": (
        b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1e999999,'
        b'"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]}}'
    ),
    "huge number as price string": (
        b'{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":1,'
        b'"p":"1e999999","q":"1","f":1,"l":1,"T":1,"m":true}}'
    ),
    "huge number as control id": b'{"result":null,"id":1e999999}',
    "5,000-digit update id": (
        b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT",'
        b'"U":1' + b"0" * 5000 + b',"u":2,"b":[],"a":[]}}'
    ),
    "invalid UTF-8 in a symbol": (
        b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"\xff\xfe",'
        b'"U":1,"u":2,"b":[],"a":[]}}'
    ),
    "invalid UTF-8 in the stream name": b'{"stream":"btc\xffusdt@depth@100ms","data":{}}',
    "invalid UTF-8 in a raw event": b'{"e":"\xc3\x28","E":1}',
    "10 MB symbol string": (
        b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"'
        + b"A" * 10_000_000
        + b'","t":1,"p":"1","q":"1","T":1,"m":true}}'
    ),
    "10 MB stream name": b'{"stream":"' + b"a" * 10_000_000 + b'","data":{"e":"x"}}',
}


@pytest.mark.parametrize("raw", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_frames_decode_or_are_malformed(raw: bytes) -> None:
    _decode(raw)
    _decode(raw.decode("utf-8", errors="surrogateescape"))  # the same frame as a str


def test_deep_nesting_is_malformed_not_recursion_error() -> None:
    for name in ("deep array as depth payload", "deep raw event", "deep control result"):
        with pytest.raises(MalformedFrame, match="RecursionError"):
            decode_frame(HOSTILE[name])


def test_a_str_frame_with_lone_surrogates_is_malformed() -> None:
    with pytest.raises(MalformedFrame):
        decode_frame('{"e":"trade\udcff","E":1}')


def test_a_10_mb_depth_frame_decodes() -> None:
    levels = b",".join([b'["1.00000000","1.00000000"]'] * 400_000)
    raw = b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT",'
    raw += b'"U":1,"u":2,"b":[' + levels + b'],"a":[]}}'
    assert len(raw) > 10_000_000
    frame = decode_frame(raw)
    assert len(frame.event.b) == 400_000


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from(TEMPLATES),
    st.data(),
    st.integers(min_value=500, max_value=60_000),
    st.sampled_from([(b"[", b"]"), (b'{"k":', b"}")]),
)
def test_deep_nesting_anywhere_is_malformed_or_decodes(
    template: dict, data: st.DataObject, depth: int, brackets: tuple[bytes, bytes]
) -> None:
    """A value nested ``depth`` levels deep replacing any field never raises anything but
    ``MalformedFrame``."""
    body = json.loads(json.dumps(template))
    key = data.draw(st.sampled_from(sorted(body["data"])))
    body["data"][key] = "@@NESTED@@"
    open_, close = brackets
    inner = open_ * depth + (b"1" if open_ != b"[" else b"") + close * depth
    _decode(json.dumps(body).encode().replace(b'"@@NESTED@@"', inner))


def test_depth_snapshot_decoding_is_guarded_too() -> None:
    with pytest.raises(MalformedFrame):
        decode_depth_snapshot(b'{"lastUpdateId":1,"bids":' + _nested(DEEP) + b',"asks":[]}')
    with pytest.raises(MalformedFrame):
        decode_depth_snapshot(b'{"lastUpdateId":1,"bids":[["\xff","1"]],"asks":[]}')


@pytest.mark.parametrize("digits", [20, 400, 4000])
def test_ids_beyond_64_bits_are_malformed(digits: int) -> None:
    """msgspec decodes integers of hundreds of digits; an update id that large would break
    the book's id chain (a false gap), so it fails decoding instead."""
    raw = DEPTH | {"data": DEPTH["data"] | {"U": "@@ID@@"}}
    frame = json.dumps(raw).encode().replace(b'"@@ID@@"', b"9" * digits)
    assert _decode(frame) is None


def test_64_bit_ids_still_decode() -> None:
    raw = json.loads(json.dumps(DEPTH))
    raw["data"]["U"], raw["data"]["u"] = 2**63 - 2, 2**63 - 1
    assert decode_frame(json.dumps(raw).encode()).event.u == 2**63 - 1
