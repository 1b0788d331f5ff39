"""``input_audio_transcription``: language(s) and phrase list validated and read."""

from __future__ import annotations

import pytest

from localvoice.protocol.errors import ProtocolError
from localvoice.protocol.transcription import stt_languages, stt_phrases, validate_transcription


def test_language_and_phrase_list_are_kept_and_read():
    value = {"model": "whisper-1", "language": "en-US, fr", "phrase_list": ["Contoso", "Voxtrel"]}
    assert validate_transcription(value) == value
    session = {"input_audio_transcription": value, "turn_detection": None}
    assert stt_languages(session) == ("en", "fr")
    assert stt_phrases(session) == ("Contoso", "Voxtrel")


def test_the_turn_detection_languages_apply_when_transcription_names_none():
    session = {
        "input_audio_transcription": {"model": "whisper-1"},
        "turn_detection": {"type": "azure_semantic_vad", "languages": ["fr-FR"]},
    }
    assert stt_languages(session) == ("fr",)
    assert stt_languages({"input_audio_transcription": None, "turn_detection": None}) == ()


@pytest.mark.parametrize(
    ("value", "param"),
    [
        ("whisper-1", "session.input_audio_transcription"),
        ({"language": "en"}, "session.input_audio_transcription.model"),
        ({"model": "whisper-1", "language": 3}, "session.input_audio_transcription.language"),
        ({"model": "whisper-1", "language": "en,??"}, "session.input_audio_transcription.language"),
        (
            {"model": "whisper-1", "phrase_list": "Contoso"},
            "session.input_audio_transcription.phrase_list",
        ),
        (
            {"model": "whisper-1", "phrase_list": [""]},
            "session.input_audio_transcription.phrase_list",
        ),
        (
            {"model": "whisper-1", "custom_speech": {"a": 1}},
            "session.input_audio_transcription.custom_speech",
        ),
    ],
)
def test_bad_values_are_refused_with_their_path(value, param):
    with pytest.raises(ProtocolError) as info:
        validate_transcription(value)
    assert (info.value.code, info.value.param) == ("invalid_value", param)
