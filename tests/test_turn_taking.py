"""A profile's turn-taking, language and vocabulary rules, each with its stable error code."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from assistant.models import AssistantProfile
from assistant.turn_taking import validate_language_list, validate_phrase_list

pytestmark = pytest.mark.django_db

# A cascaded model: the native-audio ones (gpt-realtime...) take neither EOU nor phrase lists.
CASCADED = {"name": "P", "model": "gpt-4.1"}


def codes_of(profile: AssistantProfile) -> dict[str, list[str]]:
    """The profile's validation error codes, by field; empty when it is valid."""
    try:
        profile.full_clean()
    except ValidationError as exc:
        return {
            field: [error.code or "" for error in errors]
            for field, errors in exc.error_dict.items()
        }
    return {}


def profile(**fields: Any) -> AssistantProfile:
    return AssistantProfile(**{**CASCADED, **fields})


def test_a_profile_as_it_was_before_stays_valid() -> None:
    """Every new field defaults to "as before": existing rows need no change."""
    assert codes_of(AssistantProfile(name="Old")) == {}


def test_everything_at_once_is_valid() -> None:
    full = profile(
        turn_detection="azure_semantic_vad_multilingual",
        vad_speech_duration_ms=120,
        vad_languages="en,fr",
        remove_filler_words=True,
        auto_truncate=True,
        eou_model="semantic_detection_v1_multilingual",
        eou_threshold_level="high",
        eou_timeout_ms=1500,
        input_transcription_language="en,fr",
        phrase_list="Contoso\nRehaan Jessie\n",
    )
    assert codes_of(full) == {}


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"remove_filler_words": True}, "remove_filler_words", "filler_words_need_semantic_vad"),
        (
            {"vad_speech_duration_ms": 100},
            "vad_speech_duration_ms",
            "speech_duration_needs_semantic_vad",
        ),
        ({"vad_languages": "en"}, "vad_languages", "languages_need_semantic_vad"),
        (
            {"turn_detection": "azure_semantic_vad_en", "vad_languages": "en"},
            "vad_languages",
            "languages_need_semantic_vad",
        ),
        (
            {"turn_detection": "azure_semantic_vad", "vad_languages": "en,nl"},
            "vad_languages",
            "language_not_detected",
        ),
        ({"vad_languages": "English"}, "vad_languages", "invalid_language"),
        (
            {"input_transcription_language": "English"},
            "input_transcription_language",
            "invalid_language",
        ),
        (
            {"input_transcription_language": "en,en"},
            "input_transcription_language",
            "duplicate_language",
        ),
        (
            {
                "turn_detection": "azure_semantic_vad_en",
                "eou_model": "semantic_detection_v1_multilingual",
            },
            "eou_model",
            "eou_model_language_mismatch",
        ),
        (
            {
                "turn_detection": "azure_semantic_vad_multilingual",
                "eou_model": "semantic_detection_v1",
            },
            "eou_model",
            "eou_model_language_mismatch",
        ),
        (
            {"eou_model": "semantic_detection_v1", "model": "gpt-realtime"},
            "eou_model",
            "eou_unsupported_model",
        ),
        ({"eou_model": "semantic_detection_v2"}, "eou_model", "invalid_choice"),
        ({"eou_model": "off", "eou_timeout_ms": 900}, "eou_model", "eou_settings_need_model"),
        ({"eou_threshold_level": "low"}, "eou_model", "eou_settings_need_model"),
        ({"eou_threshold_level": "extreme"}, "eou_threshold_level", "invalid_choice"),
        ({"eou_timeout_ms": 50}, "eou_timeout_ms", "min_value"),
        ({"eou_timeout_ms": 60000}, "eou_timeout_ms", "max_value"),
        (
            {"vad_speech_duration_ms": 5000, "turn_detection": "azure_semantic_vad"},
            "vad_speech_duration_ms",
            "max_value",
        ),
        (
            {"phrase_list": "Contoso", "input_transcription_model": "whisper-1"},
            "phrase_list",
            "phrase_list_needs_azure_speech",
        ),
        (
            {"phrase_list": "Contoso", "model": "gpt-realtime-mini"},
            "phrase_list",
            "phrase_list_unsupported_model",
        ),
        ({"phrase_list": "Contoso\n\nFabrikam"}, "phrase_list", "phrase_list_empty_line"),
        ({"phrase_list": "Contoso\ncontoso"}, "phrase_list", "phrase_list_duplicate"),
        ({"phrase_list": "x" * 101}, "phrase_list", "phrase_too_long"),
        (
            {"phrase_list": "\n".join(f"term {n}" for n in range(501))},
            "phrase_list",
            "phrase_list_too_long",
        ),
    ],
)
def test_refused_with_a_stable_code(fields: dict[str, Any], field: str, code: str) -> None:
    assert code in codes_of(profile(**fields)).get(field, [])


@override_settings(AZURE_VOICELIVE_MODEL="gpt-realtime")
def test_a_profile_without_a_model_is_checked_against_the_servers_default() -> None:
    assert codes_of(profile(model="", eou_model="semantic_detection_v1")) == {
        "eou_model": ["eou_unsupported_model"]
    }
    assert codes_of(profile(model="gpt-4.1", eou_model="semantic_detection_v1")) == {}


def test_end_of_utterance_detection_off_or_default_works_with_any_model() -> None:
    for setting in ("", "off"):
        assert codes_of(profile(model="gpt-realtime", eou_model=setting)) == {}


def test_end_of_utterance_detection_works_with_server_vad_too() -> None:
    """Voice Live documents it with either VAD, and the SDK's ServerVad has the field."""
    assert codes_of(profile(eou_model="semantic_detection_v1_multilingual")) == {}


def test_phrase_list_edges() -> None:
    validate_phrase_list("")
    validate_phrase_list("\n  Contoso  \n")  # a trailing newline is no empty entry
    validate_phrase_list("\n".join(f"term {n}" for n in range(500)))
    validate_phrase_list("x" * 100)


def test_every_bad_line_is_named() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_phrase_list("Contoso\n\n" + "y" * 120 + "\nContoso")
    assert [error.code for error in caught.value.error_list] == [
        "phrase_list_empty_line",
        "phrase_too_long",
        "phrase_list_duplicate",
    ]
    assert "Line 2" in str(caught.value.messages[0])


def test_language_lists_accept_spaces_after_commas() -> None:
    validate_language_list("en, fr-FR")
    validate_language_list("")
