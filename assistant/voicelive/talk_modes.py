"""Turn-taking modes, the greeting and the idle check-in as Voice Live requests (pure, no I/O).

Push-to-talk is ``turn_detection: null``: the service never ends a turn by itself, the client
commits the input buffer and asks for the response. A fixed greeting is a ``response.create``
with a ``pre_generated_assistant_message`` (the service speaks that text as it is, in the
session's voice); "let the model greet" and the check-in are a ``response.create`` with
``additional_instructions``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from assistant.voicelive.config import SessionConfig
from assistant.voicelive.personalize import personalize
from assistant.voicelive.upstream import pre_generated_reply

VOICE_ACTIVITY = "voice_activity"
PUSH_TO_TALK = "push_to_talk"
TURN_MODES = frozenset({VOICE_ACTIVITY, PUSH_TO_TALK})

GREETING_NONE = "none"
GREETING_FIXED = "fixed"
GREETING_MODEL = "model"

MODEL_GREETING_INSTRUCTIONS = (
    "The session has just started and the user has not said anything yet. Greet the user "
    "warmly in one short sentence and offer your help."
)
CHECK_IN_INSTRUCTIONS = (
    "The user has been silent for a while. In one short sentence, in the language of the "
    "conversation so far, ask whether they are still there."
)
# Fewer bytes than this since the press (0.2 s of 24 kHz PCM16) is no turn: Voice Live refuses
# a commit under 100 ms, and a shorter tap is a slip of the finger.
MIN_TURN_BYTES = 9_600


def push_to_talk(config: SessionConfig) -> bool:
    """True when the user ends turns by releasing a button."""
    return config.turn_mode == PUSH_TO_TALK


def carry_over(current: SessionConfig, reloaded: SessionConfig) -> SessionConfig:
    """A reloaded profile keeps what belongs to the session rather than to the profile.

    The user's first name, and the turn mode the user switched to while switching is allowed.
    """
    turn_mode = reloaded.turn_mode
    if reloaded.allow_turn_mode_switch and current.allow_turn_mode_switch:
        turn_mode = current.turn_mode
    return replace(reloaded, first_name=current.first_name, turn_mode=turn_mode)


def greeting_request(config: SessionConfig) -> dict[str, Any] | None:
    """The ``response.create`` keyword arguments of the profile's greeting; None: no greeting."""
    if config.greeting_mode == GREETING_FIXED:
        text = personalize(config.greeting_text, config.first_name).strip()
        if not text:
            return None
        return {"response": pre_generated_reply(text)}
    if config.greeting_mode == GREETING_MODEL:
        return {"additional_instructions": MODEL_GREETING_INSTRUCTIONS}
    return None


def check_in_request() -> dict[str, Any]:
    """The ``response.create`` keyword arguments of the idle check-in."""
    return {"additional_instructions": CHECK_IN_INSTRUCTIONS}
