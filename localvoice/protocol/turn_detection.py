"""``session.turn_detection``: the four Voice Live types, validated, echoed, made effective.

Fields by type follow the SDK's models (``ServerVad``, ``AzureSemanticVad``/``_En``/
``_Multilingual``): the semantic types add ``speech_duration_ms``, ``remove_filler_words`` and,
except ``_en``, ``languages``; every type may carry ``end_of_utterance_detection``. A field a
type does not have is refused with ``invalid_value`` naming it, rather than silently ignored.

Semantic end of turn is on with a semantic type, or with ``end_of_utterance_detection`` on any
type; ``end_of_utterance_detection: null`` switches it off. docs/localvoice.md gives the rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from localvoice.protocol.errors import ProtocolError
from localvoice.protocol.events import ErrorCode

SEMANTIC_TYPES = frozenset(
    {"azure_semantic_vad", "azure_semantic_vad_en", "azure_semantic_vad_multilingual"}
)
VAD_TYPES = frozenset({"server_vad"}) | SEMANTIC_TYPES
EOU_MODELS = frozenset(
    {"semantic_detection_v1", "semantic_detection_v1_en", "semantic_detection_v1_multilingual"}
)
#: The probability of "complete" the end-of-turn model must reach, by ``threshold_level``.
THRESHOLD_LEVELS = {"low": 0.3, "medium": 0.5, "default": 0.5, "high": 0.7}
DEFAULT_EOU_TIMEOUT_MS = 2000
VAD_DEFAULTS: dict[str, Any] = {
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
    "create_response": True,
    "interrupt_response": True,
    "auto_truncate": False,
}
SEMANTIC_DEFAULTS: dict[str, Any] = {**VAD_DEFAULTS, "remove_filler_words": False}
EOU_DEFAULTS: dict[str, Any] = {"threshold_level": "default", "timeout_ms": DEFAULT_EOU_TIMEOUT_MS}
_SEMANTIC_ONLY = ("speech_duration_ms", "remove_filler_words")
_BOOLEANS = ("create_response", "interrupt_response", "auto_truncate", "remove_filler_words")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
PARAM = "session.turn_detection"


@dataclass(frozen=True, slots=True)
class TurnDetection:
    """Effective server-side turn detection settings.

    Attributes:
        speech_duration_ms: speech needed before a turn starts (0: localvoice's 64 ms).
        semantic: end the turn by the end-of-turn model, not by silence alone.
        eou_threshold: P(complete) the model must reach (from ``threshold_level``).
        eou_timeout_ms: silence after which the turn ends whatever the model says.
        languages: ``languages`` (semantic types), ISO-639-1 codes.
    """

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True
    speech_duration_ms: int = 0
    remove_filler_words: bool = False
    auto_truncate: bool = False
    semantic: bool = False
    eou_threshold: float = THRESHOLD_LEVELS["default"]
    eou_timeout_ms: int = DEFAULT_EOU_TIMEOUT_MS
    languages: tuple[str, ...] = ()


def _invalid(msg: str, field: str) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_VALUE, msg, f"{PARAM}.{field}")


def _number(value: Any, field: str, low: float, high: float, *, integer: bool = False) -> None:
    kinds = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        kind = "an integer" if integer else "a number"
        msg = f"turn_detection.{field} must be {kind} between {low} and {high}"
        raise _invalid(msg, field)


def language_codes(value: Any, param: str) -> tuple[str, ...]:
    """BCP-47 codes (``en``, ``fr-FR``) to their ISO-639-1 part, in order, without repeats.

    Raises:
        ProtocolError: not a list of BCP-47 strings.
    """
    if not isinstance(value, list) or not all(
        isinstance(v, str) and _LANGUAGE.match(v) for v in value
    ):
        msg = f"{param} must be a list of BCP-47 language codes such as 'en-US' or 'fr'"
        raise ProtocolError(ErrorCode.INVALID_VALUE, msg, param)
    return tuple(dict.fromkeys(v.split("-")[0].lower() for v in value))


def _end_of_utterance(value: Any) -> dict[str, Any] | None:
    field = "end_of_utterance_detection"
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("model") not in EOU_MODELS:
        msg = f"turn_detection.{field}.model must be one of {sorted(EOU_MODELS)}"
        raise _invalid(msg, field + ".model")
    merged = {**EOU_DEFAULTS, **value}
    if merged["threshold_level"] not in THRESHOLD_LEVELS:
        msg = f"turn_detection.{field}.threshold_level must be one of {sorted(THRESHOLD_LEVELS)}"
        raise _invalid(msg, field + ".threshold_level")
    _number(merged["timeout_ms"], field + ".timeout_ms", 0, 60_000, integer=True)
    return merged


def validate_turn_detection(value: Any) -> dict[str, Any] | None:
    """The ``turn_detection`` to store and echo: the client's, with the type's defaults filled.

    Raises:
        ProtocolError: ``invalid_value`` with the field's path.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        msg = "turn_detection must be an object or null"
        raise ProtocolError(ErrorCode.INVALID_VALUE, msg, PARAM)
    kind = value.get("type", "server_vad")
    if kind not in VAD_TYPES:
        msg = f"turn_detection.type must be one of {sorted(VAD_TYPES)}"
        raise _invalid(msg, "type")
    semantic = kind in SEMANTIC_TYPES
    for field in _SEMANTIC_ONLY if not semantic else ():
        if field in value:
            msg = f"turn_detection.{field} is not a field of {kind}"
            raise _invalid(msg, field)
    if "languages" in value and kind in {"server_vad", "azure_semantic_vad_en"}:
        msg = f"turn_detection.languages is not a field of {kind}"
        raise _invalid(msg, "languages")
    merged = {**(SEMANTIC_DEFAULTS if semantic else VAD_DEFAULTS), **value, "type": kind}
    _number(merged["threshold"], "threshold", 0.0, 1.0)
    _number(merged["prefix_padding_ms"], "prefix_padding_ms", 0, 5000)
    _number(merged["silence_duration_ms"], "silence_duration_ms", 0, 10000)
    if "speech_duration_ms" in merged:
        _number(merged["speech_duration_ms"], "speech_duration_ms", 0, 10000, integer=True)
    for field in _BOOLEANS:
        if field in merged and not isinstance(merged[field], bool):
            msg = f"turn_detection.{field} must be a boolean"
            raise _invalid(msg, field)
    if "languages" in merged:
        language_codes(merged["languages"], f"{PARAM}.languages")
    if "end_of_utterance_detection" in merged:
        eou = merged["end_of_utterance_detection"]
        merged["end_of_utterance_detection"] = _end_of_utterance(eou)
    return merged


def effective(td: dict[str, Any]) -> TurnDetection:
    """The settings of a stored (validated) ``turn_detection``."""
    semantic = td["type"] in SEMANTIC_TYPES
    eou = td.get("end_of_utterance_detection", {} if semantic else None)
    eou_on = eou is not None
    eou = {**EOU_DEFAULTS, **(eou or {})}
    return TurnDetection(
        threshold=float(td["threshold"]),
        prefix_padding_ms=int(td["prefix_padding_ms"]),
        silence_duration_ms=int(td["silence_duration_ms"]),
        create_response=bool(td.get("create_response", True)),
        interrupt_response=bool(td.get("interrupt_response", True)),
        speech_duration_ms=int(td.get("speech_duration_ms", 0)),
        remove_filler_words=bool(td.get("remove_filler_words", False)),
        auto_truncate=bool(td.get("auto_truncate", False)),
        semantic=eou_on,
        eou_threshold=THRESHOLD_LEVELS[eou["threshold_level"]],
        eou_timeout_ms=int(eou["timeout_ms"]),
        languages=language_codes(td.get("languages", []), f"{PARAM}.languages"),
    )
