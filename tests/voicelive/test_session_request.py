"""Profile -> session.update mapping (pure)."""

from __future__ import annotations

import dataclasses

from assistant.voicelive.config import SessionConfig
from assistant.voicelive.session_request import session_request_build

BASE = SessionConfig(
    profile_id=1,
    profile_name="P",
    instructions="Be kind.",
    model="gpt-realtime",
    voice="en-US-Ava:DragonHDLatestNeural",
    temperature=0.7,
    max_response_output_tokens=None,
    turn_detection="server_vad",
    vad_threshold=0.4,
    vad_prefix_padding_ms=200,
    vad_silence_duration_ms=600,
    interrupt_response=True,
    remove_filler_words=False,
    input_transcription_model="azure-speech",
    input_transcription_language="en-US",
    noise_suppression=True,
    echo_cancellation=True,
)


def test_every_profile_field_reaches_the_session() -> None:
    session = session_request_build(BASE)
    assert session == {
        "modalities": ["text", "audio"],
        "instructions": "Be kind.",
        "voice": {
            "type": "azure-standard",
            "name": "en-US-Ava:DragonHDLatestNeural",
            "temperature": 0.8,
        },
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "input_audio_sampling_rate": 24000,
        "turn_detection": {
            "type": "server_vad",
            "threshold": 0.4,
            "prefix_padding_ms": 200,
            "silence_duration_ms": 600,
            "create_response": True,
            "interrupt_response": True,
        },
        "input_audio_transcription": {"model": "azure-speech", "language": "en-US"},
        "input_audio_noise_reduction": {"type": "azure_deep_noise_suppression"},
        "input_audio_echo_cancellation": {"type": "server_echo_cancellation"},
        "temperature": 0.7,
        "max_response_output_tokens": "inf",
        "tools": [],
        "tool_choice": "none",
    }


def test_switched_off_features_are_explicit_nulls() -> None:
    config = dataclasses.replace(
        BASE,
        input_transcription_model="",
        noise_suppression=False,
        echo_cancellation=False,
        max_response_output_tokens=300,
    )
    session = session_request_build(config)
    assert session["input_audio_transcription"] is None
    assert session["input_audio_noise_reduction"] is None
    assert session["input_audio_echo_cancellation"] is None
    assert session["max_response_output_tokens"] == 300


def test_semantic_vad_and_openai_voice() -> None:
    config = dataclasses.replace(
        BASE, turn_detection="azure_semantic_vad", remove_filler_words=True, voice="shimmer"
    )
    session = session_request_build(config)
    assert session["voice"] == {"type": "openai", "name": "shimmer"}
    assert session["turn_detection"]["type"] == "azure_semantic_vad"
    assert session["turn_detection"]["remove_filler_words"] is True


def test_standard_azure_voice_has_no_temperature() -> None:
    session = session_request_build(dataclasses.replace(BASE, voice="en-GB-SoniaNeural"))
    assert session["voice"] == {"type": "azure-standard", "name": "en-GB-SoniaNeural"}


def test_with_backchannels_this_service_decides_barge_in_not_the_upstream() -> None:
    config = dataclasses.replace(BASE, backchannels=True)
    detection = session_request_build(config)["turn_detection"]
    assert detection["interrupt_response"] is False
    assert detection["create_response"] is True
    # Without a transcript there is nothing to decide from: the upstream barges in as before.
    untranscribed = dataclasses.replace(config, input_transcription_model="")
    assert session_request_build(untranscribed)["turn_detection"]["interrupt_response"] is True
