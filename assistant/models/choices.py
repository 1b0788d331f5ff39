"""Choices and validators of a profile's fields: voices, turn detection, talk modes, greetings."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from assistant.voicelive.session_request import OPENAI_VOICES, voice_kind

#: A curated list for the admin's suggestions; any valid Azure voice name is accepted too.
CURATED_VOICES = (
    "en-US-Ava:DragonHDLatestNeural",
    "en-US-Andrew:DragonHDLatestNeural",
    "en-US-Emma:DragonHDLatestNeural",
    "en-US-Brian:DragonHDLatestNeural",
    "en-US-AvaMultilingualNeural",
    "en-US-AndrewMultilingualNeural",
    "en-US-JennyNeural",
    "en-GB-SoniaNeural",
    "de-DE-SeraphinaMultilingualNeural",
    "fr-FR-DeniseNeural",
    *OPENAI_VOICES,
)


def validate_voice_name(value: str) -> None:
    """Accept OpenAI voice names and well-formed Azure voice names."""
    if voice_kind(value) is None:
        raise ValidationError(
            _(
                "“%(value)s” is not a voice name Voice Live accepts. Use an OpenAI voice "
                "(e.g. alloy) or an Azure voice such as en-US-Ava:DragonHDLatestNeural."
            ),
            code="invalid_voice",
            params={"value": value},
        )


class TurnDetection(models.TextChoices):
    SERVER_VAD = "server_vad", _("Server VAD (silence based)")
    AZURE_SEMANTIC_VAD = "azure_semantic_vad", _("Azure semantic VAD")
    AZURE_SEMANTIC_VAD_EN = "azure_semantic_vad_en", _("Azure semantic VAD (English)")
    AZURE_SEMANTIC_VAD_MULTILINGUAL = (
        "azure_semantic_vad_multilingual",
        _("Azure semantic VAD (multilingual)"),
    )


class TurnMode(models.TextChoices):
    """Who ends the user's turn: the service's voice activity detection, or the user's button."""

    VOICE_ACTIVITY = "voice_activity", _("Voice activity (hands-free)")
    PUSH_TO_TALK = "push_to_talk", _("Push-to-talk (hold a button or the space bar)")


class GreetingMode(models.TextChoices):
    NONE = "none", _("No greeting: the user speaks first")
    FIXED = "fixed", _("Say the greeting text")
    MODEL = "model", _("Let the model greet")


class TranscriptionModel(models.TextChoices):
    AZURE_SPEECH = "azure-speech", "azure-speech"
    WHISPER_1 = "whisper-1", "whisper-1"
    GPT_4O_TRANSCRIBE = "gpt-4o-transcribe", "gpt-4o-transcribe"
    GPT_4O_MINI_TRANSCRIBE = "gpt-4o-mini-transcribe", "gpt-4o-mini-transcribe"
    MAI_TRANSCRIBE_1 = "mai-transcribe-1", "mai-transcribe-1"
