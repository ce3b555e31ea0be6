"""The local exchange's own input: hostile control messages get an error answer and cost
neither the connection nor the subscriptions (real WebSocket on loopback)."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from services.replay.exchange import LocalExchange
from tests.conftest import SPOT_2021

pytestmark = pytest.mark.timeout(60)


async def _answers(messages: list[str | bytes]) -> list[dict]:
    """Send each message (under 5 per second) on one connection and read its answer; then
    check the connection still lists its subscriptions."""
    answers = []
    async with (
        LocalExchange(SPOT_2021, speed="max") as ex,
        websockets.connect(f"{ex.ws_url}/ws", max_size=None, ping_interval=None) as ws,
    ):
        for message in [*messages, '{"method":"LIST_SUBSCRIPTIONS","id":99}']:
            await ws.send(message)
            await asyncio.sleep(0.25)
            answers.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
    return answers


def test_hostile_control_messages_are_answered_with_errors():
    hostile = [
        '{"method":"SUBSCRIBE","params":[' + "[" * 100_000 + "]" * 100_000 + '],"id":1}',
        '{"a":' * 100_000 + "1" + "}" * 100_000,
        '{"method":"SUBSCRIBE","params":[1e999999],"id":3}',
        b'{"method":"SUBSCRIBE","params":["\xff"],"id":4}',
        '{"method":"LIST_SUBSCRIPTIONS","id":1' + "0" * 5000 + "}",
        '{"method":"SUBSCRIBE","params":["' + "a" * 1_000_000 + '"],"id":6}',
    ]
    answers = asyncio.run(_answers(hostile))
    assert [a["error"]["code"] for a in answers[:-1]] == [3, 3, 3, 3, 3, 2]
    assert answers[-1] == {"result": [], "id": 99}


def test_params_nested_just_under_the_json_depth_limit_are_refused():
    nested = '{"method":"SUBSCRIBE","params":[' + "[" * 1020 + "]" * 1020 + '],"id":5}'
    answers = asyncio.run(_answers([nested]))
    assert answers[0]["error"]["code"] == 2 and answers[-1]["id"] == 99
