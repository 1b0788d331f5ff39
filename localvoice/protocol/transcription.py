"""``session.input_audio_transcription``: model, language(s) and phrase list, validated.

localvoice transcribes with its own Whisper whatever ``model`` names; it honours ``language``
(one code, or several separated by commas: the speech is in one of them) and ``phrase_list``.
"""

from __future__ import annotations

from typing import Any

from localvoice.protocol.errors import ProtocolError
from localvoice.protocol.events import ErrorCode
from localvoice.protocol.turn_detection import language_codes

PARAM = "session.input_audio_transcription"
MAX_PHRASES = 500
MAX_PHRASE_CHARS = 100


def _invalid(msg: str, field: str) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_VALUE, msg, f"{PARAM}.{field}" if field else PARAM)


def validate_transcription(value: Any) -> dict[str, Any] | None:
    """The ``input_audio_transcription`` to store and echo.

    Raises:
        ProtocolError: ``invalid_value`` with the field's path.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        msg = "input_audio_transcription must be an object or null"
        raise _invalid(msg, "")
    if not isinstance(value.get("model"), str) or not value["model"]:
        msg = "input_audio_transcription.model is required (a string)"
        raise _invalid(msg, "model")
    if "language" in value and value["language"] is not None:
        language = value["language"]
        if not isinstance(language, str):
            msg = "input_audio_transcription.language must be a string"
            raise _invalid(msg, "language")
        language_codes([code.strip() for code in language.split(",")], f"{PARAM}.language")
    phrases = value.get("phrase_list")
    if phrases is not None and (
        not isinstance(phrases, list)
        or len(phrases) > MAX_PHRASES
        or not all(isinstance(p, str) and 0 < len(p) <= MAX_PHRASE_CHARS for p in phrases)
    ):
        msg = (
            f"input_audio_transcription.phrase_list must be a list of at most {MAX_PHRASES} "
            f"non-empty strings of at most {MAX_PHRASE_CHARS} characters"
        )
        raise _invalid(msg, "phrase_list")
    custom = value.get("custom_speech")
    if custom is not None and (
        not isinstance(custom, dict) or not all(isinstance(v, str) for v in custom.values())
    ):
        msg = "input_audio_transcription.custom_speech must be an object of strings"
        raise _invalid(msg, "custom_speech")
    return dict(value)


def stt_languages(session: dict[str, Any]) -> tuple[str, ...]:
    """ISO-639-1 codes to transcribe in (none: English).

    The transcription's ``language``, else the turn detection's ``languages``.
    """
    transcription = session.get("input_audio_transcription") or {}
    language = transcription.get("language")
    if language:
        return language_codes([c.strip() for c in language.split(",")], f"{PARAM}.language")
    turn = session.get("turn_detection") or {}
    return language_codes(turn.get("languages", []), "session.turn_detection.languages")


def stt_phrases(session: dict[str, Any]) -> tuple[str, ...]:
    """The phrase list to bias transcription with."""
    transcription = session.get("input_audio_transcription") or {}
    return tuple(transcription.get("phrase_list") or ())
