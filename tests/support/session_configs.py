"""A call's SessionConfig for unit tests: plain server-VAD defaults, any field changed by name."""

from __future__ import annotations

import dataclasses
from typing import Any

from assistant.voicelive.config import SessionConfig

_DEFAULT = SessionConfig(
    profile_id=1,
    profile_name="Unit",
    instructions="Be brief.",
    model="gpt-realtime",
    voice="alloy",
    temperature=0.8,
    max_response_output_tokens=None,
    turn_detection="server_vad",
    vad_threshold=0.5,
    vad_prefix_padding_ms=300,
    vad_silence_duration_ms=500,
    interrupt_response=True,
    remove_filler_words=False,
    input_transcription_model="",
    input_transcription_language="",
    noise_suppression=False,
    echo_cancellation=False,
)


def session_config(**changes: Any) -> SessionConfig:
    """The defaults above with ``changes`` applied (``dataclasses.replace``)."""
    return dataclasses.replace(_DEFAULT, **changes)
