"""Profile -> session.update mapping (pure)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from azure.ai.voicelive.models import (
    AzureSemanticDetection,
    AzureSemanticDetectionEn,
    AzureSemanticDetectionMultilingual,
    AzureSemanticVad,
    AzureSemanticVadEn,
    AzureSemanticVadMultilingual,
    RequestSession,
    ServerVad,
)

from assistant.voicelive.session_request import (
    session_request_build,
    transcription_build,
    turn_detection_build,
)
from tests.support.session_configs import session_config

BASE = session_config(
    profile_name="P",
    instructions="Be kind.",
    voice="en-US-Ava:DragonHDLatestNeural",
    temperature=0.7,
    vad_threshold=0.4,
    vad_prefix_padding_ms=200,
    vad_silence_duration_ms=600,
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
            "auto_truncate": False,
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


# --- Turn detection: every type, every field, as the SDK's models serialise them -------------

SEMANTIC = dataclasses.replace(
    BASE,
    vad_speech_duration_ms=120,
    remove_filler_words=True,
    vad_languages=("en", "fr"),
    auto_truncate=True,
    interrupt_response=False,
)
COMMON = {
    "threshold": 0.4,
    "prefix_padding_ms": 200,
    "silence_duration_ms": 600,
    "create_response": True,
    "interrupt_response": False,
    "auto_truncate": True,
}


@pytest.mark.parametrize(
    ("kind", "expected", "sdk_class"),
    [
        ("server_vad", {}, ServerVad),
        (
            "azure_semantic_vad",
            {"speech_duration_ms": 120, "remove_filler_words": True, "languages": ["en", "fr"]},
            AzureSemanticVad,
        ),
        (
            "azure_semantic_vad_en",
            {"speech_duration_ms": 120, "remove_filler_words": True},
            AzureSemanticVadEn,
        ),
        (
            "azure_semantic_vad_multilingual",
            {"speech_duration_ms": 120, "remove_filler_words": True, "languages": ["en", "fr"]},
            AzureSemanticVadMultilingual,
        ),
    ],
)
def test_each_detection_type_carries_its_own_fields(
    kind: str, expected: dict[str, Any], sdk_class: type
) -> None:
    """Server VAD has no speech duration, filler words nor languages; the _en type no languages."""
    detection = turn_detection_build(dataclasses.replace(SEMANTIC, turn_detection=kind))
    assert detection == {"type": kind, **COMMON, **expected}
    # What the SDK reads back (as it reads session.updated) is the type's own model.
    parsed = RequestSession({"turn_detection": detection}).turn_detection
    assert type(parsed) is sdk_class


@pytest.mark.parametrize(
    ("model", "sdk_class"),
    [
        ("semantic_detection_v1", AzureSemanticDetection),
        ("semantic_detection_v1_en", AzureSemanticDetectionEn),
        ("semantic_detection_v1_multilingual", AzureSemanticDetectionMultilingual),
    ],
)
@pytest.mark.parametrize("kind", ["server_vad", "azure_semantic_vad_multilingual"])
def test_end_of_utterance_detection(model: str, sdk_class: type, kind: str) -> None:
    config = dataclasses.replace(
        SEMANTIC,
        turn_detection=kind,
        eou_model=model,
        eou_threshold_level="high",
        eou_timeout_ms=1500,
    )
    detection = turn_detection_build(config)
    assert detection is not None
    assert detection["end_of_utterance_detection"] == {
        "model": model,
        "threshold_level": "high",
        "timeout_ms": 1500,
    }
    parsed = RequestSession({"turn_detection": detection}).turn_detection
    assert type(parsed.end_of_utterance_detection) is sdk_class


def test_voice_live_defaults_are_left_out() -> None:
    """An empty speech duration, timeout or language list is absent: Voice Live's default."""
    config = dataclasses.replace(
        BASE,
        turn_detection="azure_semantic_vad",
        eou_model="semantic_detection_v1",
        eou_threshold_level="",
    )
    detection = turn_detection_build(config)
    assert detection is not None
    assert "speech_duration_ms" not in detection
    assert "languages" not in detection
    assert detection["end_of_utterance_detection"] == {
        "model": "semantic_detection_v1",
        "threshold_level": "default",
    }


def test_live_update_turns_end_of_utterance_detection_off() -> None:
    """session.update changes only what it carries: "off" is an explicit null, not an absence."""
    before = dataclasses.replace(BASE, eou_model="semantic_detection_v1_en")
    after = dataclasses.replace(before, eou_model="off")
    assert session_request_build(before)["turn_detection"]["end_of_utterance_detection"]
    session = session_request_build(after)
    assert "end_of_utterance_detection" in session["turn_detection"]
    assert session["turn_detection"]["end_of_utterance_detection"] is None


@pytest.mark.parametrize("kind", ["server_vad", "azure_semantic_vad"])
def test_voice_lives_default_end_of_utterance_detection_is_no_field(kind: str) -> None:
    """What profiles sent before the setting existed: Voice Live decides (null would disable)."""
    detection = turn_detection_build(dataclasses.replace(BASE, turn_detection=kind))
    assert detection is not None
    assert "end_of_utterance_detection" not in detection


def test_push_to_talk_has_no_turn_detection_whatever_the_settings() -> None:
    config = dataclasses.replace(
        SEMANTIC, turn_mode="push_to_talk", eou_model="semantic_detection_v1"
    )
    assert turn_detection_build(config) is None
    assert session_request_build(config)["turn_detection"] is None


# --- Transcription: model, language, phrase list ---------------------------------------------


def test_transcription_carries_language_and_phrase_list() -> None:
    config = dataclasses.replace(
        BASE, input_transcription_language="en,fr", phrase_list=("Contoso", "Rehaan Jessie")
    )
    assert transcription_build(config) == {
        "model": "azure-speech",
        "language": "en,fr",
        "phrase_list": ["Contoso", "Rehaan Jessie"],
    }


def test_transcription_without_language_or_phrases() -> None:
    config = dataclasses.replace(BASE, input_transcription_language="", phrase_list=())
    assert transcription_build(config) == {"model": "azure-speech"}
    assert transcription_build(dataclasses.replace(config, input_transcription_model="")) is None


def test_with_backchannels_this_service_decides_barge_in_not_the_upstream() -> None:
    config = dataclasses.replace(BASE, backchannels=True)
    detection = session_request_build(config)["turn_detection"]
    assert detection["interrupt_response"] is False
    assert detection["create_response"] is True
    # Without a transcript there is nothing to decide from: the upstream barges in as before.
    untranscribed = dataclasses.replace(config, input_transcription_model="")
    assert session_request_build(untranscribed)["turn_detection"]["interrupt_response"] is True
