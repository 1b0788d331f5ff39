"""The pre-encoded audio append goes through the real SDK ``send`` unchanged."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError
from azure.ai.voicelive.aio import VoiceLiveConnection

from assistant.voicelive.audio_json import APPEND, audio_append, split_audio_delta


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


_PCM = bytes(range(256)) * 19
_B64 = base64.b64encode(_PCM).decode()
_DELTA = {
    "type": "response.audio.delta",
    "event_id": "event_1",
    "response_id": "resp_1",
    "item_id": "item_1",
    "output_index": 0,
    "content_index": 0,
    "delta": _B64,
}


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(_DELTA),
        json.dumps(_DELTA, separators=(",", ":")),
        json.dumps({"delta": _B64, **_DELTA}),
        json.dumps(_DELTA, indent=2),
        json.dumps({**_DELTA, "delta": ""}),
    ],
)
def test_an_audio_delta_is_split_as_json_would_read_it(text: str) -> None:
    split = split_audio_delta(text.encode())
    assert split is not None
    fields, delta = split
    whole = json.loads(text)
    assert delta == whole.pop("delta").encode()
    assert {k: v for k, v in fields.items() if k != "delta"} == whole


@pytest.mark.parametrize(
    "text",
    [
        # Other events, with or without a "delta".
        json.dumps({"type": "response.audio_transcript.delta", "delta": "Hello"}),
        json.dumps({"type": "session.updated", "session": {"id": "s"}}),
        # Escapes inside the delta (e.g. an encoder writing "/" as "\/").
        json.dumps(_DELTA).replace("/", "\\/"),
        # A "delta" that might not be the event's own.
        json.dumps({"type": "response.audio.delta", "x": {"delta": "AAAA"}, "delta": _B64}),
        json.dumps({"type": "response.audio.delta", "x": ["delta"], "delta": _B64}),
        json.dumps({"type": "response.audio.delta", "note": "{", "delta": _B64}),
        # Not a string, or twice (json.loads keeps the last).
        json.dumps({"type": "response.audio.delta", "delta": 5}),
        '{"type": "response.audio.delta", "delta": "AAAA", "delta": "BBBB"}',
    ],
)
def test_anything_else_is_left_to_the_full_parse(text: str) -> None:
    assert split_audio_delta(text.encode()) is None


def test_malformed_json_around_the_delta_raises_like_json() -> None:
    with pytest.raises(json.JSONDecodeError):
        split_audio_delta(b'{"type": "response.audio.delta", "delta": "AAAA", }')
