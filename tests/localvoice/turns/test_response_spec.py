"""``response.create`` merged over the session, and its validation."""

from __future__ import annotations

import pytest

from localvoice.protocol.errors import ProtocolError
from localvoice.protocol.session_config import SessionConfig
from localvoice.protocol.voices import VoiceMap
from localvoice.turns.response_spec import MAX_REPLY_TOKENS, response_spec

VOICES = VoiceMap(["joe", "amy"], "joe", {"alloy": "amy"})


def session() -> SessionConfig:
    one = SessionConfig("gpt-realtime", VOICES)
    one.update({"instructions": "Be brief.", "voice": "alloy", "temperature": 0.6})
    return one


def test_the_session_is_the_default_and_the_event_overrides_it():
    spec = response_spec(session(), VOICES, None, None)
    assert (spec.instructions, spec.voice.local_name, spec.temperature) == ("Be brief.", "amy", 0.6)
    assert spec.modalities == ["text", "audio"]
    assert spec.max_tokens == MAX_REPLY_TOKENS
    assert spec.pre_generated is None
    params = {
        "instructions": "Be kind.",
        "voice": "joe",
        "modalities": ["text"],
        "max_output_tokens": 20,
        "pre_generated_assistant_message": {"content": [{"type": "text", "text": "Hello."}]},
    }
    spec = response_spec(session(), VOICES, params, "Say hi.")
    assert spec.instructions == "Be kind.\nSay hi."
    assert (spec.voice.local_name, spec.modalities, spec.max_tokens) == ("joe", ["text"], 20)
    assert spec.pre_generated == "Hello."
    assert response_spec(session(), VOICES, {"max_output_tokens": 999}, None).max_tokens == 60


def test_a_pipeline_that_cannot_speak_replies_in_text():
    assert response_spec(session(), VOICES, None, None, speaks=False).modalities == ["text"]


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"voice": {"type": "bogus", "name": "x"}}, "invalid_voice", "response.voice"),
        ({"instructions": 3}, "invalid_value", "response.instructions"),
        ({"temperature": "hot"}, "invalid_value", "response.temperature"),
        ({"tools": "nope"}, "invalid_value", "response.tools"),
    ],
)
def test_invalid_fields_are_named(params, code, param):
    with pytest.raises(ProtocolError) as info:
        response_spec(session(), VOICES, params, None)
    assert (info.value.code, info.value.param) == (code, param)
