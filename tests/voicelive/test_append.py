"""The pre-encoded audio append goes through the real SDK ``send`` unchanged."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError
from azure.ai.voicelive.aio import VoiceLiveConnection

from assistant.voicelive.append import APPEND, audio_append


class _Socket:
    """The aiohttp websocket under the SDK's connection: records the text it is given."""

    def __init__(self, *, fail: bool = False) -> None:
        self.texts: list[str] = []
        self.fail = fail

    async def send_str(self, data: str) -> None:
        if self.fail:
            msg = "Cannot write to closing transport"
            raise RuntimeError(msg)
        self.texts.append(data)


def _connection(socket: _Socket) -> VoiceLiveConnection:
    return VoiceLiveConnection(client_session=Any, ws=socket)  # type: ignore[arg-type]


async def test_the_sdk_sends_the_append_as_built() -> None:
    socket = _Socket()
    pcm = bytes(range(256)) * 19
    event = audio_append(pcm)
    await _connection(socket).send(event)
    assert socket.texts == [event.as_dict()]
    sent = json.loads(socket.texts[0])
    assert sent == {"type": APPEND, "audio": base64.b64encode(pcm).decode()}
    # The text is what the SDK's own encoding of the same fields would carry.
    assert sent == json.loads(json.dumps({"type": APPEND, "audio": sent["audio"]}))


def test_the_append_reads_as_a_mapping() -> None:
    event = audio_append(b"\x01\x02\x03\x04")
    assert dict(event) == {"type": APPEND, "audio": "AQIDBA=="}
    assert event.get("type") == APPEND


async def test_a_failed_send_is_the_sdks_connection_error() -> None:
    with pytest.raises(VoiceLiveConnectionError):
        await _connection(_Socket(fail=True)).send(audio_append(b"\x00\x00"))
