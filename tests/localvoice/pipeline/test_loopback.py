"""The ``--echo`` stage set, in process: appends come back byte-exact, replies are text."""

from __future__ import annotations

from typing import Any

import pytest

from localvoice.pipeline.loopback import echo_pipeline
from localvoice.protocol.errors import ProtocolError
from localvoice.protocol.voices import VoiceMap
from localvoice.server.session import Session


@pytest.fixture
async def echo():
    pipeline = echo_pipeline()
    sent: list[dict[str, Any]] = []

    async def send(event: dict[str, Any]) -> None:
        sent.append(event)

    session = Session(send, pipeline, VoiceMap(["joe"], "joe", {}), "gpt-realtime")
    yield session, sent
    session.close()
    pipeline.shutdown()


async def test_append_comes_back_as_the_same_base64_text(echo):
    """No decoding: even text that is not canonical base64 is returned as it came."""
    session, sent = echo
    for audio in ("AAECAw==", "not base64 at all"):
        await session.handlers["input_audio_buffer.append"]({"audio": audio})
    deltas = [e for e in sent if e["type"] == "response.audio.delta"]
    assert [d["delta"] for d in deltas] == ["AAECAw==", "not base64 at all"]
    assert deltas[0]["response_id"] == deltas[1]["response_id"]
    assert [e["type"] for e in sent] == ["response.audio.delta"] * 2


async def test_nothing_to_commit_and_text_replies(echo):
    session, sent = echo
    with pytest.raises(ProtocolError) as info:
        await session.handlers["input_audio_buffer.commit"]({})
    assert info.value.code == "input_audio_buffer_commit_empty"
    await session.handlers["response.create"]({"response": {"modalities": ["audio", "text"]}})
    await session._active.task  # type: ignore[union-attr]
    done = [e for e in sent if e["type"] == "response.done"][-1]["response"]
    assert done["modalities"] == ["text"]
    assert done["output"][0]["content"] == [{"type": "text", "text": ""}]
    pre = {"type": "message", "role": "assistant", "content": [{"type": "text", "text": "Hi."}]}
    await session.handlers["response.create"](
        {"response": {"pre_generated_assistant_message": pre}}
    )
    await session._active.task  # type: ignore[union-attr]
    done = [e for e in sent if e["type"] == "response.done"][-1]["response"]
    assert done["output"][0]["content"] == [{"type": "text", "text": "Hi."}]
    assert "response.audio.delta" not in [e["type"] for e in sent]


def test_healthz_shows_no_models():
    pipeline = echo_pipeline()
    assert pipeline.describe() == {}
    assert pipeline.tts.voices == ["joe"]
    pipeline.shutdown()
