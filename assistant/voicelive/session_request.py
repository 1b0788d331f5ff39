"""Build Voice Live ``session.update`` payloads from an assistant profile (pure, no I/O)."""

from __future__ import annotations

import re
from typing import Any

from azure.ai.voicelive.models import (
    AudioInputTranscriptionOptions,
    AzureSemanticDetection,
    AzureSemanticDetectionEn,
    AzureSemanticDetectionMultilingual,
    AzureSemanticVad,
    AzureSemanticVadEn,
    AzureSemanticVadMultilingual,
    EouDetection,
    ServerVad,
    TurnDetection,
)

from assistant.protocol import SAMPLE_RATE
from assistant.voicelive import backchannels
from assistant.voicelive.config import SessionConfig
from assistant.voicelive.personalize import personalize
from assistant.voicelive.turn_settings import (
    EOU_DEFAULT_THRESHOLD_LEVEL,
    EOU_OFF,
    EOU_V1,
    EOU_V1_EN,
    EOU_V1_MULTILINGUAL,
    SEMANTIC_TYPES,
    SEMANTIC_VAD_EN,
    SEMANTIC_VAD_MULTILINGUAL,
)

#: OpenAI voices Voice Live accepts by plain name.
OPENAI_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
)
# Azure standard and HD voices: locale, name, optional ":<model>" suffix, e.g.
# "en-US-AvaNeural", "en-US-Ava:DragonHDLatestNeural", "zh-CN-XiaoxiaoMultilingualNeural".
AZURE_VOICE_RE = re.compile(r"^[a-z]{2,3}-[A-Z]{2,4}(-[A-Za-z]+)?-[A-Za-z0-9]+(:[A-Za-z0-9]+)?$")
_HD_VOICE_RE = re.compile(r":[A-Za-z0-9]*HD[A-Za-z0-9]*$")


def voice_kind(name: str) -> str | None:
    """Classify a voice name: ``"openai"``, ``"azure-standard"`` or None when it is not valid."""
    if name in OPENAI_VOICES:
        return "openai"
    if AZURE_VOICE_RE.fullmatch(name):
        return "azure-standard"
    return None


def voice_build(name: str) -> dict[str, Any]:
    """The voice object for a voice name: OpenAI voices by name, Azure voices as azure-standard.

    HD voices (``...:DragonHDLatestNeural``) get a moderate temperature, as Azure suggests. A
    name the admin form would refuse (stored before validation existed) goes as azure-standard.
    """
    if voice_kind(name) == "openai":
        return {"type": "openai", "name": name}
    voice: dict[str, Any] = {"type": "azure-standard", "name": name}
    if _HD_VOICE_RE.search(name):
        voice["temperature"] = 0.8
    return voice


def end_of_utterance_build(config: SessionConfig) -> EouDetection | None:
    """The profile's end-of-utterance detector as the SDK's model; None: off or Voice Live's."""
    level = config.eou_threshold_level or EOU_DEFAULT_THRESHOLD_LEVEL
    timeout = config.eou_timeout_ms
    if config.eou_model == EOU_V1:
        return AzureSemanticDetection(threshold_level=level, timeout_ms=timeout)
    if config.eou_model == EOU_V1_EN:
        return AzureSemanticDetectionEn(threshold_level=level, timeout_ms=timeout)
    if config.eou_model == EOU_V1_MULTILINGUAL:
        return AzureSemanticDetectionMultilingual(threshold_level=level, timeout_ms=timeout)
    return None


def _detection_model(config: SessionConfig) -> TurnDetection:
    """The SDK's model of the profile's detection type, so a field it lacks fails here."""
    eou = end_of_utterance_build(config)
    kind = config.turn_detection
    # Whether the user's speech stops a reply, decided once for every type. With backchannels
    # on, this service decides what stops a reply (backchannels.py).
    interrupt_response = config.interrupt_response and not backchannels.enabled(config)
    if kind not in SEMANTIC_TYPES:
        return ServerVad(
            threshold=config.vad_threshold,
            prefix_padding_ms=config.vad_prefix_padding_ms,
            silence_duration_ms=config.vad_silence_duration_ms,
            end_of_utterance_detection=eou,
            auto_truncate=config.auto_truncate,
            create_response=True,
            interrupt_response=interrupt_response,
        )
    if kind == SEMANTIC_VAD_EN:
        return AzureSemanticVadEn(
            threshold=config.vad_threshold,
            prefix_padding_ms=config.vad_prefix_padding_ms,
            silence_duration_ms=config.vad_silence_duration_ms,
            end_of_utterance_detection=eou,
            speech_duration_ms=config.vad_speech_duration_ms,
            remove_filler_words=config.remove_filler_words,
            auto_truncate=config.auto_truncate,
            create_response=True,
            interrupt_response=interrupt_response,
        )
    semantic: type[AzureSemanticVad | AzureSemanticVadMultilingual] = AzureSemanticVad
    if kind == SEMANTIC_VAD_MULTILINGUAL:
        semantic = AzureSemanticVadMultilingual
    return semantic(
        threshold=config.vad_threshold,
        prefix_padding_ms=config.vad_prefix_padding_ms,
        silence_duration_ms=config.vad_silence_duration_ms,
        end_of_utterance_detection=eou,
        speech_duration_ms=config.vad_speech_duration_ms,
        remove_filler_words=config.remove_filler_words,
        languages=list(config.vad_languages) or None,
        auto_truncate=config.auto_truncate,
        create_response=True,
        interrupt_response=interrupt_response,
    )


def turn_detection_build(config: SessionConfig) -> dict[str, Any] | None:
    """The turn-detection object for the profile's VAD mode; None (off) for push-to-talk.

    Built with the SDK's models (a field the locked SDK does not know raises ``TypeError``).
    Fields left at Voice Live's default are absent; end-of-utterance detection switched off is
    an explicit null (Voice Live documents null as "disable"; absent is its default), so a live
    update turns it off too.
    """
    if config.turn_mode == "push_to_talk":
        return None
    detection = _detection_model(config).as_dict()
    if config.eou_model == EOU_OFF:
        detection["end_of_utterance_detection"] = None
    return detection


def transcription_build(config: SessionConfig) -> dict[str, Any] | None:
    """The input-transcription object: model, language and phrase list; None when it is off."""
    if not config.input_transcription_model:
        return None
    options = AudioInputTranscriptionOptions(
        model=config.input_transcription_model,
        language=config.input_transcription_language or None,
        phrase_list=list(config.phrase_list) or None,
    )
    return options.as_dict()


def session_request_build(config: SessionConfig) -> dict[str, Any]:
    """The ``session`` object of a ``session.update`` for a profile.

    Switched-off features are sent as explicit nulls so a live update turns them off too
    (``session.update`` only changes the fields present).

    Args:
        config: the profile's detached configuration.

    Returns:
        A JSON-ready mapping, sent verbatim by the SDK.
    """
    return {
        "modalities": ["text", "audio"],
        "instructions": personalize(config.instructions, config.first_name),
        "voice": voice_build(config.voice),
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "input_audio_sampling_rate": SAMPLE_RATE,
        "turn_detection": turn_detection_build(config),
        "input_audio_transcription": transcription_build(config),
        "input_audio_noise_reduction": (
            {"type": "azure_deep_noise_suppression"} if config.noise_suppression else None
        ),
        "input_audio_echo_cancellation": (
            {"type": "server_echo_cancellation"} if config.echo_cancellation else None
        ),
        "temperature": config.temperature,
        "max_response_output_tokens": config.max_response_output_tokens or "inf",
        # Always present, so a live update that removes the last tool removes it upstream too.
        "tools": [dict(tool.definition) for tool in config.tools],
        "tool_choice": "auto" if config.tools else "none",
    }
