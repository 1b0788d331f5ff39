"""How a voice session turns Voice Live server events into browser messages and state.

A mixin of :class:`assistant.voicelive.VoiceLiveSession`, kept apart so the event table reads
on its own: the session owns the connection, this owns what each event means for the user.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from azure.ai.voicelive.models import ServerEventType

from assistant import metrics, protocol
from assistant.codes import ErrorCode, State

if TYPE_CHECKING:
    from azure.ai.voicelive.aio import VoiceLiveConnection

    from assistant.voicelive import SessionSink

logger = logging.getLogger(__name__)

#: Upstream error codes that are expected and never shown to the user.
BENIGN_ERROR_CODES = frozenset({"response_cancel_not_active"})
SESSION_EXPIRED = "session_expired"
RESPONSE_ALREADY_ACTIVE = "conversation_already_has_active_response"
#: Every server event type the SDK knows; anything else is counted as ``unknown_event``.
# Sent by the service, not modelled by SDK 1.3.1.
RATE_LIMITS_UPDATED = "rate_limits.updated"
KNOWN_SERVER_EVENTS = frozenset(str(t.value) for t in ServerEventType) | {RATE_LIMITS_UPDATED}
# The audio transcript's done carries ``transcript``, the text reply's ``text``.
_AUDIO_TRANSCRIPT_EVENTS = (
    ServerEventType.RESPONSE_AUDIO_TRANSCRIPT_DELTA,
    ServerEventType.RESPONSE_AUDIO_TRANSCRIPT_DONE,
)


class ServerEventHandlers:
    """Maps server events onto the sink; the state it reads and writes lives on the session."""

    _sink: SessionSink
    _conn: VoiceLiveConnection | None
    state: State
    _response_id: str | None
    _audio_item_id: str | None
    _speech_stopped_at: float | None
    _history: deque[tuple[str, str]]
    _reply_owed: bool
    _create_retries: int
    audio_out_bytes: int

    async def _set_state(self, state: State) -> None:
        if state != self.state:
            self.state = state
            await self._sink.set_state(state)

    async def _send_safely(self, sending: Any) -> None:
        raise NotImplementedError

    def begin_rollover(self) -> None:
        """Replace the upstream connection (implemented by the session)."""
        raise NotImplementedError

    def _expect_reply(self) -> None:
        """Arm the reply watchdog (implemented by the session)."""
        raise NotImplementedError

    def _reply_settled(self) -> None:
        """Disarm the reply watchdog (implemented by the session)."""
        raise NotImplementedError

    async def _handle(self, event: Any) -> None:  # noqa: C901 - a flat event table reads best
        kind = event.type
        send = self._sink.send_message
        # response.audio.delta never gets here: the receive loop handles it from the raw JSON.
        if kind == ServerEventType.INPUT_AUDIO_BUFFER_SPEECH_STARTED:
            await self._on_speech_started(event)
        elif kind == ServerEventType.INPUT_AUDIO_BUFFER_SPEECH_STOPPED:
            self._speech_stopped_at = time.monotonic()
            await send(protocol.SpeechStopped(item_id=event.get("item_id")))
            await self._set_state(State.PROCESSING)
        elif kind == ServerEventType.CONVERSATION_ITEM_INPUT_AUDIO_TRANSCRIPTION_DELTA:
            await send(protocol.UserTranscriptDelta(item_id=event.item_id, delta=event.delta))
        elif kind == ServerEventType.CONVERSATION_ITEM_INPUT_AUDIO_TRANSCRIPTION_COMPLETED:
            transcript = event.transcript or ""
            if transcript.strip():
                self._history.append(("user", transcript.strip()))
            await send(protocol.UserTranscriptDone(item_id=event.item_id, transcript=transcript))
        elif kind == ServerEventType.RESPONSE_CREATED:
            self._response_id = event.response.id
            self._create_retries = 0
            self._expect_reply()
        elif kind in (
            ServerEventType.RESPONSE_AUDIO_TRANSCRIPT_DELTA,
            ServerEventType.RESPONSE_TEXT_DELTA,
        ):
            await send(
                protocol.AssistantTranscriptDelta(
                    item_id=event.item_id, response_id=event.response_id, delta=event.delta
                )
            )
        elif kind in (
            ServerEventType.RESPONSE_AUDIO_TRANSCRIPT_DONE,
            ServerEventType.RESPONSE_TEXT_DONE,
        ):
            transcript = event.get("transcript") if kind in _AUDIO_TRANSCRIPT_EVENTS else None
            transcript = transcript if transcript is not None else event.get("text", "")
            if transcript.strip():
                self._history.append(("assistant", transcript.strip()))
            await send(
                protocol.AssistantTranscriptDone(
                    item_id=event.item_id, response_id=event.response_id, transcript=transcript
                )
            )
        elif kind == ServerEventType.RESPONSE_AUDIO_DONE:
            await send(protocol.AudioDone(item_id=event.item_id))
        elif kind == ServerEventType.RESPONSE_DONE:
            await self._on_response_done(event)
        elif kind == ServerEventType.ERROR:
            await self._on_error(event)
        elif kind == ServerEventType.SESSION_UPDATED:
            logger.debug("voice live session updated")
        elif kind not in KNOWN_SERVER_EVENTS:
            # Not part of the protocol this SDK knows: count it, ignore it, keep the session.
            metrics.UPSTREAM_ERRORS.labels(kind="unknown_event").inc()
            logger.warning("voice live sent an unknown event type %r; ignored", str(kind)[:64])

    async def _on_audio(self, pcm: Any, item_id: str | None, response_id: str | None) -> None:
        if not isinstance(pcm, bytes) or not pcm:
            metrics.UPSTREAM_ERRORS.labels(kind="bad_audio").inc()
            return
        if item_id != self._audio_item_id:
            self._audio_item_id = item_id
            await self._sink.send_message(
                protocol.AudioStart(item_id=item_id, response_id=response_id)
            )
        if self._speech_stopped_at is not None:
            metrics.TURN_LATENCY.observe(time.monotonic() - self._speech_stopped_at)
            self._speech_stopped_at = None
        await self._set_state(State.ASSISTANT_SPEAKING)
        self.audio_out_bytes += len(pcm)
        await self._sink.send_audio(pcm)

    async def _on_speech_started(self, event: Any) -> None:
        # The browser may still be playing audio of a reply that is already complete upstream,
        # so playback is cleared on every speech start; the player reports what was heard.
        await self._sink.clear_playback()
        if self._response_id is not None or self.state == State.ASSISTANT_SPEAKING:
            metrics.BARGE_INS.inc()
        if self._response_id is not None and self._conn is not None:
            await self._send_safely(self._conn.response.cancel())
        self._audio_item_id = None
        await self._sink.send_message(protocol.SpeechStarted(item_id=event.get("item_id")))
        await self._set_state(State.LISTENING)

    async def _on_response_done(self, event: Any) -> None:
        response = event.get("response") or {}
        status = response.get("status", "completed")
        await self._sink.send_message(
            protocol.ResponseDone(response_id=response.get("id"), status=status)
        )
        self._response_id = None
        self._audio_item_id = None
        self._reply_settled()
        if self._reply_owed and self._conn is not None:
            # A reply was refused because another was running (a turn detected at the same
            # moment as a typed message): ask again now that it is over.
            self._reply_owed = False
            await self._send_safely(self._conn.response.create())
            self._expect_reply()
        if self.state != State.LISTENING:
            await self._set_state(State.READY)

    async def _on_error(self, event: Any) -> None:
        error = event.get("error") or {}
        code = str(error.get("code") or "")
        if code in BENIGN_ERROR_CODES:
            logger.debug("ignored benign voice live error %r", code)
            return
        metrics.UPSTREAM_ERRORS.labels(kind="event").inc()
        if code == SESSION_EXPIRED:
            # The service's session limit: carry on over a fresh connection.
            self.begin_rollover()
            return
        if code == RESPONSE_ALREADY_ACTIVE:
            if self._response_id is None and self._conn is not None and self._create_retries < 3:
                # The running response's done came before this refusal (events are in order,
                # so its created came first): it has ended, and nothing would ask again.
                self._create_retries += 1
                await self._send_safely(self._conn.response.create())
                return
            self._reply_owed = True
            return
        if self._response_id is None and not self._reply_owed:
            self._reply_settled()  # a refused response.create: no reply is coming
        # Upstream-controlled values: %r, so a newline in them cannot start a forged log line.
        logger.warning("voice live error event: type=%r code=%r", error.get("type"), code)
        await self._sink.send_message(protocol.error(ErrorCode.UPSTREAM_ERROR))
