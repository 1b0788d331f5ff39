"""A profile's turn-taking, language and vocabulary settings: choices, validators, rules.

The rules themselves (which type takes languages, which end-of-utterance model fits which
detector, the phrase-list limits) are Voice Live's, kept in ``assistant/voicelive/turn_settings``
next to the code that sends them; this module words them for the admin, with stable codes.
"""

from __future__ import annotations

from typing import Protocol

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from assistant.voicelive.turn_settings import (
    DETECTION_LANGUAGES,
    EOU_MODELS,
    EOU_OFF,
    EOU_SERVICE_DEFAULT,
    EOU_V1,
    EOU_V1_EN,
    EOU_V1_MULTILINGUAL,
    LANGUAGE_CODE_RE,
    LANGUAGE_TYPES,
    PHRASE_LIST_MAX_PHRASES,
    PHRASE_LIST_TRANSCRIPTION_MODEL,
    PHRASE_MAX_CHARS,
    SEMANTIC_TYPES,
    eou_model_fits,
    language_codes,
    native_audio_model,
)


class EndOfUtteranceModel(models.TextChoices):
    """Voice Live's end-of-utterance detectors, none, or whatever Voice Live does by default."""

    SERVICE_DEFAULT = EOU_SERVICE_DEFAULT, _("Voice Live's default for the detection type")
    OFF = EOU_OFF, _("Off: a pause of the silence duration ends the turn")
    SEMANTIC = EOU_V1, _("Semantic detection (English)")
    SEMANTIC_EN = EOU_V1_EN, _("Semantic detection, optimised for English")
    SEMANTIC_MULTILINGUAL = EOU_V1_MULTILINGUAL, _("Semantic detection (multilingual)")


class EndOfUtteranceThreshold(models.TextChoices):
    """``EouThresholdLevel``: how readily the detector decides the user has finished."""

    DEFAULT = "default", _("Voice Live's default")
    LOW = "low", _("Low: ends turns readily (quicker answers)")
    MEDIUM = "medium", _("Medium")
    HIGH = "high", _("High: waits for a clear ending (fewer cut-offs)")


def validate_language_list(value: str) -> None:
    """Language or locale codes, comma-separated: ``en``, ``en-US``, ``en,fr``."""
    codes = language_codes(value)
    if value.strip() and (not codes or not all(LANGUAGE_CODE_RE.fullmatch(code) for code in codes)):
        raise ValidationError(
            _(
                "Use language or locale codes such as en or en-US, or a comma-separated list "
                "like en,fr."
            ),
            code="invalid_language",
        )
    if len(set(codes)) != len(codes):
        raise ValidationError(
            _("Name each language once."),
            code="duplicate_language",
        )


def validate_phrase_list(value: str) -> None:
    """One phrase a line: none empty, none too long, none twice, not too many."""
    lines = value.strip().splitlines()
    if not lines:
        return
    errors = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        phrase = line.strip()
        if not phrase:
            errors.append(
                ValidationError(
                    _("Line %(line)d is empty: write a phrase on it or remove it."),
                    code="phrase_list_empty_line",
                    params={"line": number},
                )
            )
        elif len(phrase) > PHRASE_MAX_CHARS:
            errors.append(
                ValidationError(
                    _(
                        "Line %(line)d is %(length)d characters long; a phrase is a name or a "
                        "term of at most %(max)d characters."
                    ),
                    code="phrase_too_long",
                    params={"line": number, "length": len(phrase), "max": PHRASE_MAX_CHARS},
                )
            )
        elif phrase.casefold() in seen:
            errors.append(
                ValidationError(
                    _("Line %(line)d repeats “%(phrase)s”."),
                    code="phrase_list_duplicate",
                    params={"line": number, "phrase": phrase},
                )
            )
        seen.add(phrase.casefold())
    count = sum(1 for line in lines if line.strip())
    if count > PHRASE_LIST_MAX_PHRASES:
        errors.append(
            ValidationError(
                _(
                    "%(count)d phrases: Voice Live takes at most %(max)d. Keep the names and "
                    "terms it gets wrong."
                ),
                code="phrase_list_too_long",
                params={"count": count, "max": PHRASE_LIST_MAX_PHRASES},
            )
        )
    if errors:
        raise ValidationError(errors)


class TurnTakingSettings(Protocol):
    """The fields of a profile the rules below read (``AssistantProfile``)."""

    model: str
    turn_detection: str
    remove_filler_words: bool
    vad_speech_duration_ms: int | None
    vad_languages: str
    eou_model: str
    eou_threshold_level: str
    eou_timeout_ms: int | None
    input_transcription_model: str
    phrase_list: str


def _effective_model(profile: TurnTakingSettings) -> str:
    return profile.model or str(settings.AZURE_VOICELIVE_MODEL)


def turn_taking_errors(profile: TurnTakingSettings) -> dict[str, ValidationError]:
    """The cross-field errors of a profile's turn-taking and vocabulary, by field."""
    errors: dict[str, ValidationError] = {}
    semantic = profile.turn_detection in SEMANTIC_TYPES
    if profile.remove_filler_words and not semantic:
        errors["remove_filler_words"] = ValidationError(
            _("Removing filler words needs one of the semantic VAD modes."),
            code="filler_words_need_semantic_vad",
        )
    if profile.vad_speech_duration_ms is not None and not semantic:
        errors["vad_speech_duration_ms"] = ValidationError(
            _("The minimum speech length is a semantic VAD setting: leave it empty here."),
            code="speech_duration_needs_semantic_vad",
        )
    languages = language_codes(profile.vad_languages)
    if languages and profile.turn_detection not in LANGUAGE_TYPES:
        errors["vad_languages"] = ValidationError(
            _(
                "Only “Azure semantic VAD” and “Azure semantic VAD (multilingual)” take "
                "languages; the English one listens for English only."
            ),
            code="languages_need_semantic_vad",
        )
    elif unknown := sorted({code.split("-")[0] for code in languages} - DETECTION_LANGUAGES):
        errors["vad_languages"] = ValidationError(
            _("Voice Live's detector ignores %(codes)s; it knows %(known)s."),
            code="language_not_detected",
            params={"codes": ", ".join(unknown), "known": ", ".join(sorted(DETECTION_LANGUAGES))},
        )
    if profile.eou_model in EOU_MODELS:
        if not eou_model_fits(profile.turn_detection, profile.eou_model):
            errors["eou_model"] = ValidationError(
                _(
                    "This end-of-utterance model and the turn detection are made for different "
                    "languages: pick the English pair or the multilingual pair."
                ),
                code="eou_model_language_mismatch",
            )
        elif native_audio_model(_effective_model(profile)):
            errors["eou_model"] = ValidationError(
                _(
                    "%(model)s does not support end-of-utterance detection: turn it off, or "
                    "choose a model such as gpt-4.1 above."
                ),
                code="eou_unsupported_model",
                params={"model": _effective_model(profile)},
            )
    elif profile.eou_timeout_ms is not None or profile.eou_threshold_level not in (
        "",
        EndOfUtteranceThreshold.DEFAULT,
    ):
        errors["eou_model"] = ValidationError(
            _(
                "The end-of-utterance threshold and timeout apply to a detection model only: "
                "choose one here, or leave them at their defaults."
            ),
            code="eou_settings_need_model",
        )
    if profile.phrase_list.strip():
        if profile.input_transcription_model != PHRASE_LIST_TRANSCRIPTION_MODEL:
            errors["phrase_list"] = ValidationError(
                _("Only the azure-speech transcription model uses a phrase list."),
                code="phrase_list_needs_azure_speech",
            )
        elif native_audio_model(_effective_model(profile)):
            errors["phrase_list"] = ValidationError(
                _(
                    "%(model)s does not support phrase lists: empty it, or choose a model such "
                    "as gpt-4.1 above."
                ),
                code="phrase_list_unsupported_model",
                params={"model": _effective_model(profile)},
            )
    return errors
