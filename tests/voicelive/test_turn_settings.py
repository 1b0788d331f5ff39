"""Voice Live's turn-taking rules as the admin and the session request share them (pure)."""

from __future__ import annotations

import pytest

from assistant.voicelive.turn_settings import (
    eou_model_fits,
    language_codes,
    native_audio_model,
    phrase_list_parse,
)


def test_language_codes_are_trimmed_and_empties_dropped() -> None:
    assert language_codes(" en, fr-FR ,,") == ("en", "fr-FR")
    assert language_codes("") == ()


def test_phrase_list_is_one_phrase_a_line() -> None:
    assert phrase_list_parse("  Contoso \n\nRehaan Jessie\r\n") == ("Contoso", "Rehaan Jessie")
    assert phrase_list_parse("") == ()


@pytest.mark.parametrize(
    ("detection", "model", "fits"),
    [
        ("server_vad", "semantic_detection_v1_multilingual", True),
        ("azure_semantic_vad", "semantic_detection_v1_en", True),
        ("azure_semantic_vad_en", "semantic_detection_v1", True),
        ("azure_semantic_vad_en", "semantic_detection_v1_en", True),
        ("azure_semantic_vad_en", "semantic_detection_v1_multilingual", False),
        ("azure_semantic_vad_multilingual", "semantic_detection_v1_multilingual", True),
        ("azure_semantic_vad_multilingual", "semantic_detection_v1", False),
        ("azure_semantic_vad_multilingual", "semantic_detection_v1_en", False),
    ],
)
def test_end_of_utterance_model_fits_the_detector_language(
    detection: str, model: str, fits: bool
) -> None:
    assert eou_model_fits(detection, model) is fits


@pytest.mark.parametrize(
    ("model", "native"),
    [
        ("gpt-realtime", True),
        ("gpt-realtime-mini", True),
        ("gpt-4o-realtime-preview", True),
        ("gpt-4o-mini-realtime-preview", True),
        ("phi4-mm-realtime", True),
        ("gpt-4.1", False),
        ("gpt-4o", False),
        ("phi4-mini", False),
    ],
)
def test_native_audio_models(model: str, native: bool) -> None:
    assert native_audio_model(model) is native
