"""Push-to-talk, the turn-mode switch and the greeting: the call's side.

The call hands this module the browser's ``input.press``, ``input.release`` and
``turn_mode.set`` messages and calls :func:`session_ready` once the upstream is configured. What
each means for Voice Live is in ``assistant/voicelive/talk_modes.py``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from assistant import metrics, protocol
from assistant.codes import ErrorCode, State
from assistant.voicelive.config import SessionConfig
from assistant.voicelive.session import VoiceLiveSession
from assistant.voicelive.talk_modes import MIN_TURN_BYTES, greeting_request, push_to_talk

TALK_MODE_MESSAGES = (protocol.InputPress, protocol.InputRelease, protocol.TurnModeSet)


class TalkHost(Protocol):
    """The call, as talk modes need it: its messages to the browser."""

    async def send_message(self, message: protocol.ServerMessage) -> None:
        """Send a control message to the browser."""

    async def clear_playback(self) -> None:
        """Tell the browser to drop the assistant audio it has not played."""


def turn_mode_message(config: SessionConfig) -> protocol.TurnMode:
    """``turn_mode``: how the user's turns end, and whether the page may offer the switch."""
    return protocol.TurnMode(mode=config.turn_mode, can_switch=config.allow_turn_mode_switch)


async def session_ready(host: TalkHost, voice: VoiceLiveSession) -> None:
    """After ``session.ready``: tell the page the turn mode, then greet if the profile says so."""
    await host.send_message(turn_mode_message(voice.config))
    request = greeting_request(voice.config)
    if request is not None:
        await voice.respond(request)


async def handle(
    host: TalkHost,
    voice: VoiceLiveSession,
    message: protocol.InputPress | protocol.InputRelease | protocol.TurnModeSet,
) -> ErrorCode | None:
    """One talk-mode message; returns the (non-fatal) error code to tell the browser, if any."""
    if isinstance(message, protocol.TurnModeSet):
        return await _switch(host, voice, message.mode)
    if not push_to_talk(voice.config):
        return ErrorCode.PUSH_TO_TALK_OFF
    if isinstance(message, protocol.InputPress):
        await _press(host, voice)
        return None
    return await _release(voice)


async def _press(host: TalkHost, voice: VoiceLiveSession) -> None:
    """A new turn: interrupt the assistant as barge-in does, and start from an empty buffer."""
    if voice.state == State.ASSISTANT_SPEAKING:
        metrics.BARGE_INS.inc()
    # Always: the browser may still be playing a reply that is complete upstream.
    await host.clear_playback()
    await voice.cancel_response()
    await voice.clear_input()
    voice.hold_input(True)
    await voice.show_state(State.LISTENING)


async def _release(voice: VoiceLiveSession) -> ErrorCode | None:
    """The turn is over: commit it and ask for the reply, unless (almost) nothing was said."""
    voice.hold_input(False)  # what the page sends after its release tail is no part of a turn
    if voice.turn_bytes < MIN_TURN_BYTES:
        await voice.clear_input()
        await voice.show_state(State.READY)
        return ErrorCode.INPUT_TOO_SHORT
    await voice.show_state(State.PROCESSING)
    await voice.commit_input()
    return None


async def _switch(host: TalkHost, voice: VoiceLiveSession, mode: str) -> ErrorCode | None:
    """Change the turn mode by ``session.update`` (no reconnect: the conversation carries on)."""
    config = voice.config
    if not config.allow_turn_mode_switch:
        return ErrorCode.TURN_MODE_LOCKED
    if mode != config.turn_mode:
        await voice.update_config(replace(config, turn_mode=mode))
        # Audio buffered under the other mode is no turn of the new one.
        await voice.clear_input()
        if voice.state == State.LISTENING:
            await voice.show_state(State.READY)
    await host.send_message(turn_mode_message(voice.config))
    return None
