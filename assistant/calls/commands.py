"""What the browser's control messages do to a running call: one handler per message type.

The call validates each message and charges it to the socket's budget first; then
:meth:`CallCommands.dispatch` calls the handler named after its type (``text.send`` ->
``text_send``), as Channels names its handlers.
"""

from __future__ import annotations

from typing import Protocol

from assistant import protocol
from assistant.calls import talk_modes
from assistant.codes import Ending, ErrorCode, State
from assistant.history.live import SessionHistory
from assistant.history.quotas import LiveQuota
from assistant.protocol.dispatch import handlers
from assistant.telemetry.call_trace import CallTrace
from assistant.voicelive.session import VoiceLiveSession

#: The messages that reach a handler here (``audio.ack`` is flow control: the call's own).
COMMAND_TYPES = (
    protocol.Ping.type,
    protocol.SessionStop.type,
    protocol.PlaybackInterrupted.type,
    protocol.PlaybackStarted.type,
    protocol.ResponseCancel.type,
    protocol.TextSend.type,
    protocol.InputPress.type,
    protocol.InputRelease.type,
    protocol.TurnModeSet.type,
    protocol.ToolApproval.type,
)
#: Messages that need no upstream: answered even while the call is connecting.
ALWAYS = frozenset({protocol.Ping.type, protocol.SessionStop.type})


class CommandHost(talk_modes.TalkHost, Protocol):
    """The call the commands act on."""

    voice: VoiceLiveSession | None
    history: SessionHistory | None
    trace: CallTrace | None
    quota: LiveQuota | None
    state: State

    async def end(self, ending: Ending) -> None:
        """End the call."""

    async def answer(self, message: protocol.ServerMessage) -> None:
        """Send ``message`` to the browser alone (not to monitors or the history)."""


class CallCommands:
    """The browser's control messages for one call.

    Args:
        call: the call they act on.
    """

    def __init__(self, call: CommandHost) -> None:
        self._call = call
        self._handlers = handlers(self, COMMAND_TYPES)

    async def dispatch(self, message: protocol.BrowserMessage) -> ErrorCode | None:
        """Apply one message; returns the (non-fatal) error code to tell the browser, if any."""
        call = self._call
        if message.type not in ALWAYS:
            if call.voice is None or call.state in (State.CONNECTING, State.ERROR):
                return ErrorCode.NOT_READY
            refusal = call.quota.refusal(message) if call.quota is not None else None
            if refusal is not None:
                await call.send_message(refusal)  # the close (4402) follows once it is played
                return None
        result: ErrorCode | None = await self._handlers[message.type](message)
        return result

    @property
    def _voice(self) -> VoiceLiveSession:
        voice = self._call.voice
        assert voice is not None  # checked by dispatch
        return voice

    async def ping(self, message: protocol.Ping) -> None:
        """Answer at once: the page measures the round trip."""
        await self._call.answer(protocol.Pong())

    async def session_stop(self, message: protocol.SessionStop) -> None:
        """The user pressed Stop."""
        await self._call.end(Ending.STOPPED)

    async def playback_interrupted(self, message: protocol.PlaybackInterrupted) -> None:
        """The user talked over the reply: the upstream forgets what was not heard."""
        if self._call.history is not None:
            self._call.history.interrupted(message.item_id, message.played_ms)
        if self._call.trace is not None:
            self._call.trace.interrupted(message.item_id, message.played_ms)
        self._voice.playback_heard(message.item_id, message.played_ms)
        await self._voice.truncate(item_id=message.item_id, played_ms=message.played_ms)

    async def playback_started(self, message: protocol.PlaybackStarted) -> None:
        """The page began playing an item: a measurement of the turn, trusted for nothing else."""
        self._voice.playback_began(message.item_id)

    async def response_cancel(self, message: protocol.ResponseCancel) -> None:
        """Stop the reply: the unplayed audio too."""
        await self._call.clear_playback()
        await self._voice.cancel_response()

    async def text_send(self, message: protocol.TextSend) -> None:
        """A typed message, answered as a spoken one would be."""
        if self._call.history is not None:
            self._call.history.typed(message.text)
        if self._call.trace is not None:
            self._call.trace.typed()
        await self._voice.send_text(message.text)

    async def input_press(self, message: protocol.InputPress) -> ErrorCode | None:
        """Push-to-talk: a turn begins (assistant/calls/talk_modes.py)."""
        return await talk_modes.handle(self._call, self._voice, message)

    async def input_release(self, message: protocol.InputRelease) -> ErrorCode | None:
        """Push-to-talk: the turn is over."""
        return await talk_modes.handle(self._call, self._voice, message)

    async def turn_mode_set(self, message: protocol.TurnModeSet) -> ErrorCode | None:
        """Switch between hands-free and push-to-talk."""
        return await talk_modes.handle(self._call, self._voice, message)

    async def tool_approval(self, message: protocol.ToolApproval) -> None:
        """The user's answer to a tool call waiting for approval."""
        # An answer to a call that no longer waits (timed out, cancelled) changes nothing.
        self._voice.tool_calls.answer_approval(message.call_id, message.approved)
