"""Whole-frame decoders: one per stream kind, cached by stream name while there is room."""

from __future__ import annotations

from services.binance import messages
from services.binance.messages import DepthUpdate, decode_frame


def test_frames_of_every_stream_of_a_whole_market_share_one_decoder_per_kind(monkeypatch):
    """8,000 symbols' depth streams decode to their own events with one frame decoder for
    the kind, built once; past the name cache's room a frame still decodes, building none."""

    monkeypatch.setattr(messages, "_FRAME_DECODERS", {})
    monkeypatch.setattr(messages, "_KIND_FRAME_DECODERS", {})
    monkeypatch.setattr(messages, "_MAX_FRAME_DECODERS", 6000)
    built = []
    decoder_class = messages.msgspec.json.Decoder

    def counting_decoder(*args, **kwargs):
        built.append(args)
        return decoder_class(*args, **kwargs)

    monkeypatch.setattr(messages.msgspec.json, "Decoder", counting_decoder)
    for index in range(8000):
        symbol = f"S{index}USDT"
        raw = (
            f'{{"stream":"{symbol.lower()}@depth@100ms","data":{{"e":"depthUpdate","E":1,'
            f'"s":"{symbol}","U":{index},"u":{index + 1},"b":[["1.5","2"]],"a":[]}}}}'
        ).encode()
        event = decode_frame(raw).event
        assert isinstance(event, DepthUpdate) and event.s == symbol and event.u == index + 1
        assert event.b == [(1.5, 2.0)]
    assert len(built) == 1 and len(messages._FRAME_DECODERS) == 6000
