"""The session configuration a client sends: ``session.update`` merged, validated and echoed.

``turn_detection`` is checked in ``turn_detection.py``, ``input_audio_transcription`` in
``transcription.py``.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from localvoice.protocol.errors import ProtocolError
from localvoice.protocol.events import ErrorCode, new_id
from localvoice.protocol.tools import ToolError, validate_tool_choice, validate_tools
from localvoice.protocol.transcription import validate_transcription
from localvoice.protocol.turn_detection import (
    VAD_DEFAULTS,
    TurnDetection,
    effective,
    validate_turn_detection,
)
from localvoice.protocol.voices import VoiceError, VoiceMap

INPUT_RATES = frozenset({8000, 16000, 24000})
OUTPUT_FORMATS = {"pcm16": 24000, "pcm16_16000hz": 16000, "pcm16_8000hz": 8000}
LEGACY_OUTPUT_FORMATS = {"pcm16-16000hz": "pcm16_16000hz", "pcm16-8000hz": "pcm16_8000hz"}
DEFAULT_INSTRUCTIONS = (
    "You are a friendly voice assistant. Answer in one or two short, plain sentences."
)


# Voice Live's noise suppression types (Azure's deep NS and OpenAI's near/far-field names) and
# echo cancellation type; localvoice runs its own implementation for all of them.
NOISE_REDUCTION_TYPES = frozenset({"azure_deep_noise_suppression", "near_field", "far_field"})
ECHO_CANCELLATION_TYPES = frozenset({"server_echo_cancellation"})


def _number(value: Any, field: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        msg = f"{field} must be a number between {low} and {high}"
        raise ProtocolError(ErrorCode.INVALID_VALUE, msg, field)
    return float(value)


def _typed(value: Any, types: frozenset[str], param: str) -> dict[str, Any] | None:
    """``null`` (off) or ``{"type": one of types, ...}``."""
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") not in types:
        msg = f"{param} must be null or an object with type one of {sorted(types)}"
        raise ProtocolError(ErrorCode.INVALID_VALUE, msg, param + ".type")
    return dict(value)


class SessionConfig:
    """The effective configuration of one session, as echoed in ``session.created/updated``.

    Args:
        model: the ``model`` query parameter.
        voice_map: resolves and validates voices.
        max_seconds: the session limit; 0 means none (``expires_at`` is then 0).
    """

    def __init__(self, model: str, voice_map: VoiceMap, max_seconds: float = 0) -> None:
        self.voice_map = voice_map
        created = int(time.time())
        self.data: dict[str, Any] = {
            "id": new_id("sess"),
            "object": "realtime.session",
            "model": model,
            "modalities": ["text", "audio"],
            "instructions": DEFAULT_INSTRUCTIONS,
            "voice": voice_map.default,
            "input_audio_format": "pcm16",
            "output_audio_format": "pcm16",
            "input_audio_sampling_rate": 24000,
            "turn_detection": {"type": "server_vad", **VAD_DEFAULTS},
            "input_audio_transcription": None,
            "input_audio_noise_reduction": None,
            "input_audio_echo_cancellation": None,
            "tools": [],
            "tool_choice": "auto",
            "temperature": 0.8,
            "max_response_output_tokens": "inf",
            "expires_at": created + int(max_seconds) if max_seconds else 0,
        }

    def as_dict(self) -> dict[str, Any]:
        """A deep copy of the effective session for sending."""
        return copy.deepcopy(self.data)

    def update(self, changes: Any) -> None:
        """Apply a ``session.update`` payload; nothing changes when it is invalid.

        Raises:
            ProtocolError: a field is invalid (the voice gives ``invalid_voice``).
        """
        if not isinstance(changes, dict):
            msg = "session must be an object"
            raise ProtocolError(ErrorCode.INVALID_VALUE, msg, "session")
        new = dict(self.data)
        for key, value in changes.items():
            if key in {"id", "object", "expires_at", "model"}:
                continue  # fixed for the connection, as on the service
            if key == "turn_detection":
                new[key] = validate_turn_detection(value)
            elif key == "input_audio_transcription":
                new[key] = validate_transcription(value)
            elif key == "voice":
                try:
                    self.voice_map.validate(value)
                except VoiceError as exc:
                    raise ProtocolError(ErrorCode.INVALID_VOICE, str(exc), "session.voice") from exc
                new[key] = value
            elif key == "modalities":
                new[key] = validate_modalities(value, "session.modalities")
            elif key == "input_audio_sampling_rate":
                if value not in INPUT_RATES:
                    msg = f"input_audio_sampling_rate must be one of {sorted(INPUT_RATES)}"
                    raise ProtocolError(ErrorCode.INVALID_VALUE, msg, "session." + key)
                new[key] = value
            elif key == "input_audio_format":
                if value != "pcm16":
                    msg = "only pcm16 input audio is supported by localvoice"
                    raise ProtocolError(ErrorCode.UNSUPPORTED, msg, "session." + key)
                new[key] = value
            elif key == "output_audio_format":
                value = LEGACY_OUTPUT_FORMATS.get(value, value)
                if value not in OUTPUT_FORMATS:
                    msg = f"output_audio_format must be one of {sorted(OUTPUT_FORMATS)}"
                    raise ProtocolError(ErrorCode.UNSUPPORTED, msg, "session." + key)
                new[key] = value
            elif key == "instructions":
                if not isinstance(value, str):
                    msg = "instructions must be a string"
                    raise ProtocolError(ErrorCode.INVALID_VALUE, msg, "session.instructions")
                new[key] = value
            elif key == "temperature":
                new[key] = _number(value, "session.temperature", 0.0, 2.0)
            elif key == "input_audio_noise_reduction":
                new[key] = _typed(value, NOISE_REDUCTION_TYPES, "session." + key)
            elif key == "input_audio_echo_cancellation":
                new[key] = _typed(value, ECHO_CANCELLATION_TYPES, "session." + key)
            elif key in {"tools", "tool_choice"}:
                check = validate_tools if key == "tools" else validate_tool_choice
                try:
                    new[key] = check(value, "session." + key)
                except ToolError as exc:
                    raise ProtocolError(exc.code, str(exc), exc.param) from exc
            else:
                new[key] = value  # stored and echoed; not used by the local pipeline
        self.data = new

    @property
    def turn_detection(self) -> TurnDetection | None:
        """The effective VAD settings, or ``None`` when the client commits manually."""
        td = self.data.get("turn_detection")
        return effective(td) if td else None

    @property
    def input_rate(self) -> int:
        """Sample rate of the client's PCM16 input."""
        return int(self.data["input_audio_sampling_rate"])

    @property
    def output_rate(self) -> int:
        """Sample rate of the PCM16 audio deltas."""
        return OUTPUT_FORMATS[self.data["output_audio_format"]]


def validate_modalities(value: Any, param: str) -> list[str]:
    """Check a ``modalities`` list.

    Raises:
        ProtocolError: it is not a non-empty list of known modalities.
    """
    allowed = {"text", "audio", "animation", "avatar"}
    if not isinstance(value, list) or not value or not set(value) <= allowed:
        msg = f"modalities must be a non-empty list drawn from {sorted(allowed)}"
        raise ProtocolError(ErrorCode.INVALID_VALUE, msg, param)
    return list(value)
