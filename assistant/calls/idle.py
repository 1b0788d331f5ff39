"""Idle handling: check in once after N quiet seconds, end the session M seconds after that.

"Quiet" means nobody speaking: no user speech (voice activity or push-to-talk), no typing, and
no assistant audio still playing. Microphone frames alone are not activity (the page sends them
all the time). This is the profile's conversational idle handling; the hard idle timeout
(``VOICE_IDLE_TIMEOUT_SECONDS``, no frames at all) is separate and unchanged.

The supervisor's timer calls :func:`idle_step`; the consumer tells the :class:`IdleWatch` what
the user sent and what the browser was sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum
from typing import Protocol

from assistant import protocol
from assistant.codes import Ending, State
from assistant.voicelive.config import SessionConfig
from assistant.voicelive.session import VoiceLiveSession
from assistant.voicelive.talk_modes import check_in_request

# What the user sends that counts as taking part (frames of silence do not).
USER_MESSAGES = (protocol.TextSend, protocol.InputPress, protocol.InputRelease)
# What the server tells the browser that means the user spoke.
USER_SPEECH = (protocol.SpeechStarted, protocol.SpeechStopped, protocol.UserTranscriptDone)
# Server states in which someone is speaking. (Not "processing": a turn that was only noise
# gets no reply and can leave it there.)
BUSY_STATES = frozenset({State.LISTENING, State.ASSISTANT_SPEAKING})
# The timer never sleeps less than this for idle handling.
MIN_SLEEP = 0.25


class IdleAction(Enum):
    """What idle handling does on a tick."""

    NONE = "none"
    CHECK_IN = "check_in"
    END = "end"


class IdleWatch:
    """When the conversation last went quiet, and whether the assistant has checked in since.

    Args:
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._quiet_from = clock()
        self._checked_in_at: float | None = None
        self._audio_started: tuple[float, int] | None = None

    @property
    def checked_in(self) -> bool:
        """True from the check-in until the user next takes part."""
        return self._checked_in_at is not None

    def user_active(self) -> None:
        """The user spoke, pressed or typed: quiet starts again, the check-in is forgotten."""
        self._quiet_from = max(self._quiet_from, self._clock())
        self._checked_in_at = None

    def browser_message(self, message: protocol.BrowserMessage) -> None:
        """A valid message from the browser."""
        if isinstance(message, USER_MESSAGES):
            self.user_active()

    def observe(self, message: protocol.ServerMessage, audio_out_bytes: int) -> None:
        """A message to the browser; ``audio_out_bytes``: assistant audio relayed so far.

        The assistant's audio comes faster than it plays, so the quiet after a reply starts
        when its audio has played: from its first delta, as long as its bytes last.
        """
        now = self._clock()
        if isinstance(message, USER_SPEECH):
            self.user_active()
        elif isinstance(message, protocol.AudioStart):
            self._audio_started = (now, audio_out_bytes)
        elif isinstance(message, protocol.AudioDone | protocol.ResponseDone):
            started, bytes_then = self._audio_started or (now, audio_out_bytes)
            played_until = started + (audio_out_bytes - bytes_then) / protocol.BYTES_PER_SECOND
            self._quiet_from = max(self._quiet_from, now, played_until)
            if isinstance(message, protocol.ResponseDone):
                self._audio_started = None

    def due(self, config: SessionConfig, *, busy: bool) -> IdleAction:
        """What to do now; a check-in is returned once (until the user takes part again)."""
        if config.idle_check_in_seconds <= 0:
            return IdleAction.NONE
        now = self._clock()
        if busy:
            self._quiet_from = max(self._quiet_from, now)
            return IdleAction.NONE
        if self._checked_in_at is None:
            if now - self._quiet_from >= config.idle_check_in_seconds:
                self._checked_in_at = now
                return IdleAction.CHECK_IN
            return IdleAction.NONE
        quiet_from = max(self._quiet_from, self._checked_in_at)
        if now - quiet_from >= config.idle_end_seconds:
            return IdleAction.END
        return IdleAction.NONE

    def sleep_for(self, config: SessionConfig | None, period: float) -> float:
        """How long the timer may sleep: its period, or less when idle handling is due sooner."""
        if config is None or config.idle_check_in_seconds <= 0:
            return period
        now = self._clock()
        if self._checked_in_at is None:
            left = config.idle_check_in_seconds - (now - self._quiet_from)
        else:
            quiet_from = max(self._quiet_from, self._checked_in_at)
            left = config.idle_end_seconds - (now - quiet_from)
        return min(period, max(MIN_SLEEP, left))


class IdleCall(Protocol):
    """The call idle handling acts on."""

    voice: VoiceLiveSession | None
    ended: bool

    async def end(self, ending: Ending) -> None:
        """End the call."""


async def idle_step(watch: IdleWatch, call: IdleCall) -> bool:
    """One tick of idle handling: check in, or end the session. True when it ended it."""
    voice = call.voice
    if voice is None or call.ended or not voice.connected:
        return False
    busy = voice.state in BUSY_STATES or voice.reply_pending
    action = watch.due(voice.config, busy=busy)
    if action is IdleAction.CHECK_IN:
        await voice.respond(check_in_request())
    elif action is IdleAction.END:
        await call.end(Ending.IDLE_ENDED)
        return True
    return False
