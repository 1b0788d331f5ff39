"""What a call sends its browser: control messages, assistant audio, state changes.

The Voice Live session's sink (``SessionSink`` in assistant/voicelive/sink.py). Each message
also goes where it is observed: the idle watch, the history, the monitors' fan-out. Assistant
audio is paced by the browser's acknowledgements (:class:`AudioSendWindow`).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from django.conf import settings

from assistant import metrics, protocol
from assistant.calls.outbound import AckOutOfRange, AudioSendWindow, BacklogFull
from assistant.calls.ports import CallTransport
from assistant.calls.supervisor import CallSupervisor
from assistant.codes import Ending, ErrorCode, State
from assistant.history.live import SessionHistory
from assistant.protocol import ASSISTANT_AUDIO
from assistant.telemetry.call_trace import CallTrace
from assistant.voicelive.session import VoiceLiveSession
from assistant.voicelive.turn_timing import TurnTiming

logger = logging.getLogger(__name__)

AUDIO_OUT_FRAMES = metrics.AUDIO_FRAMES.labels(direction="out")
AUDIO_OUT_BYTES = metrics.AUDIO_BYTES.labels(direction="out")


class OutputOwner(Protocol):
    """The call whose output this is."""

    voice: VoiceLiveSession | None
    history: SessionHistory | None
    trace: CallTrace | None
    supervisor: CallSupervisor | None
    state: State
    ended: bool

    async def end(self, ending: Ending, *, error: protocol.Error | None = None) -> None:
        """End the call."""


class CallOutput:
    """A call's frames to the browser (and to whatever observes it).

    Args:
        call: the call.
        transport: the browser's socket.
    """

    def __init__(self, call: OutputOwner, transport: CallTransport) -> None:
        self._call = call
        self._transport = transport
        self.window = AudioSendWindow(
            window_bytes=settings.VOICE_AUDIO_SEND_WINDOW_BYTES,
            backlog_bytes=settings.VOICE_AUDIO_SEND_BACKLOG_BYTES,
        )

    async def send_message(self, message: protocol.ServerMessage) -> None:
        """Send a control message to the browser (and copy it to monitors)."""
        call = self._call
        if call.ended and not isinstance(message, protocol.Error):
            return
        text = protocol.encode(message)
        await self._transport.send_text(text)
        supervisor = call.supervisor
        if supervisor is not None:
            supervisor.idle.observe(message, call.voice.audio_out_bytes if call.voice else 0)
        if call.history is not None:
            call.history.outgoing(message)
        if call.trace is not None:
            call.trace.outgoing(message.type, message)
        fanout = supervisor.fanout if supervisor else None
        if fanout is not None:
            fanout.publish_text(text)

    async def clear_playback(self) -> None:
        """Tell the browser to drop the assistant audio it has not played yet.

        The browser drops what it holds; what it has not even received yet is dropped here.
        """
        if not self._call.ended:
            self.window.clear()
        await self.send_message(protocol.PlaybackClear())

    async def send_audio(self, pcm: bytes) -> None:
        """Send assistant audio to the browser (and copy it to monitors that listen)."""
        if self._call.ended:
            return
        try:
            if not self.window.offer(pcm):
                return  # held until the browser acknowledges what it has
        except BacklogFull:
            metrics.AUDIO_DROPPED.labels(reason="client_backlog").inc()
            logger.warning("voice call: the browser fell too far behind")
            await self._call.end(Ending.CLIENT_TOO_SLOW)
            return
        await self._send_audio_now(pcm)

    async def audio_acked(self, received: int) -> bool:
        """Apply the browser's ack: send the held audio that now fits. False if invalid."""
        try:
            released = self.window.ack(received)
        except AckOutOfRange:
            return False
        for pcm in released:
            await self._send_audio_now(pcm)
        return True

    async def _send_audio_now(self, pcm: bytes) -> None:
        await self._transport.send_bytes(pcm)
        AUDIO_OUT_FRAMES.inc()
        AUDIO_OUT_BYTES.inc(len(pcm))
        supervisor = self._call.supervisor
        fanout = supervisor.fanout if supervisor else None
        if fanout is not None:
            fanout.publish_audio(ASSISTANT_AUDIO, pcm)

    async def set_state(self, state: State) -> None:
        """Show a state change in the browser."""
        self._call.state = state
        await self.send_message(protocol.StateChanged(state=state))

    async def upstream_lost(self, code: ErrorCode) -> None:
        """Voice Live ended under us: say so, and close."""
        await self._call.end(Ending.UPSTREAM_LOST, error=protocol.error(code))

    def response_usage(self, response_id: str, usage: Any) -> None:
        """A reply ended with the upstream's usage: into the call's history."""
        if self._call.history is not None:
            self._call.history.response_usage(response_id, usage)
        if self._call.trace is not None:
            self._call.trace.usage(response_id, usage)

    def turn_timed(self, timing: TurnTiming) -> None:
        """A turn is over: its timings into the turn histograms, the history and the trace."""
        voice = self._call.voice
        profile = str(voice.config.profile_id) if voice is not None else ""
        attributes = timing.attributes()
        metrics.observe_turn(profile, attributes)
        if self._call.history is not None:
            self._call.history.turn_timed(timing)
        if self._call.trace is not None:
            self._call.trace.add_attributes(timing.response_id, attributes)
