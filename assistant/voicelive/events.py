"""What each Voice Live server event means for the browser: messages, states, barge-in.

:class:`EventRouter` owns the conversation as the user sees it (state, the running reply, the
history carried over a rollover); the session owns the connection and hands it every event.
The router asks the session for what needs the connection through :class:`Upstream`, and
talks to the browser through its :class:`~assistant.voicelive.sink.SessionSink`.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any, Protocol

from azure.ai.voicelive.models import ServerEventType

from assistant import metrics, protocol
from assistant.codes import ErrorCode, State
from assistant.voicelive.config import SessionConfig
from assistant.voicelive.overlaps import Overlaps
from assistant.voicelive.sink import SessionSink
from assistant.voicelive.toolcalls import ToolCalls
from assistant.voicelive.turn_timing import TurnTimer

logger = logging.getLogger(__name__)

#: Upstream error codes that are expected and never shown to the user.
BENIGN_ERROR_CODES = frozenset({"response_cancel_not_active"})
SESSION_EXPIRED = "session_expired"
RESPONSE_ALREADY_ACTIVE = "conversation_already_has_active_response"
# Sent by the service, not modelled by SDK 1.3.1.
RATE_LIMITS_UPDATED = "rate_limits.updated"
#: Every server event type the SDK knows; anything else is counted as ``unknown_event``.
KNOWN_SERVER_EVENTS = frozenset(str(t.value) for t in ServerEventType) | {RATE_LIMITS_UPDATED}
# The audio transcript's done carries ``transcript``, the text reply's ``text``.
_AUDIO_TRANSCRIPT_EVENTS = (
    ServerEventType.RESPONSE_AUDIO_TRANSCRIPT_DELTA,
    ServerEventType.RESPONSE_AUDIO_TRANSCRIPT_DONE,
)
# A refused response.create is asked again at most this often before waiting for a done.
MAX_CREATE_RETRIES = 3
# Assistant audio is PCM16 at 24 kHz: this many bytes a second of playback.
_AUDIO_BYTES_PER_SECOND = 48_000


def upstream_text(value: Any) -> str:
    """A transcript or delta of a server event as text; anything else is counted and dropped.

    The SDK's models do not check field types: a service that sends a number or an object
    must not end the session.
    """
    if isinstance(value, str):
        return value
    if value is not None:
        metrics.UPSTREAM_ERRORS.labels(kind="bad_field").inc()
        logger.warning("voice live sent a %s where text belongs; ignored", type(value).__name__)
    return ""


class Upstream(Protocol):
    """What the router asks of the session that holds the connection."""

    @property
    def connected(self) -> bool:
        """True while there is a connection to send on."""

    @property
    def config(self) -> SessionConfig:
        """The session's current profile configuration."""

    async def send_delete(self, item_id: str) -> None:
        """Send ``conversation.item.delete`` (a backchannel leaves no trace upstream)."""

    async def send_cancel(self) -> None:
        """Send ``response.cancel`` (a failed send is the receive loop's to report)."""

    async def send_create(self) -> None:
        """Send ``response.create``."""

    def begin_rollover(self) -> None:
        """Replace the connection, the conversation carried over."""

    def expect_reply(self) -> None:
        """Arm the reply watchdog: a reply was asked for or has started."""

    def speech_end_time(self, audio_end_ms: int) -> float | None:
        """When the speech ``speech_stopped`` at ``audio_end_ms`` ended reached the service."""

    def reply_settled(self) -> None:
        """Disarm the reply watchdog: no reply is owed any more."""


class EventRouter:
    """Maps one session's server events onto its sink.

    Args:
        sink: the browser side.
        upstream: the session, for what needs the connection.
        history_items: how many transcript items to keep for a rollover.
        tools: the session's function calls (assistant/voicelive/toolcalls.py), if any.
    """

    def __init__(
        self,
        *,
        sink: SessionSink,
        upstream: Upstream,
        history_items: int,
        tools: ToolCalls | None = None,
    ) -> None:
        self._sink = sink
        self._upstream = upstream
        self._tools = tools
        self.state = State.CONNECTING
        #: The reply running upstream, if any.
        self.response_id: str | None = None
        #: What was said, to re-seed a rolled-over connection: (role, text).
        self.history: deque[tuple[str, str]] = deque(maxlen=history_items)
        self.audio_out_bytes = 0
        self._audio_item_id: str | None = None
        # When the current audio item's first bytes went out, and the byte count then: the page
        # plays it for about as long as its audio lasts, often past the reply's done upstream.
        self._audio_item_began = (0.0, 0)
        #: Each turn's timing, from the end of the user's speech (turn_timing.py).
        self.timer = TurnTimer(
            sink.turn_timed, tool_seconds=lambda: tools.tool_seconds if tools else 0.0
        )
        # A speech_stopped held back while its speech might be a backchannel: (item, end).
        self._held_speech_end: tuple[str, float | None] | None = None
        self._reply_owed = False
        self._create_retries = 0  # response.create re-sent after a stale "already active"
        #: Speech over a reply: a backchannel, or a barge-in (overlaps.py).
        self._overlaps = Overlaps(
            sink=sink,
            config=lambda: upstream.config,
            send_delete=upstream.send_delete,
            send_cancel=upstream.send_cancel,
            stop_for_user=self._stop_for_user,
            user_transcript=self._user_transcript_done,
            processing=lambda: self.set_state(State.PROCESSING),
            owe_reply=self._owe_reply,
        )

    async def set_state(self, state: State) -> None:
        """Move to ``state``, telling the sink only of a change."""
        if state != self.state:
            self.state = state
            await self._sink.set_state(state)

    def connection_replaced(self) -> None:
        """A fresh connection carries the conversation on: no reply runs on it."""
        self.response_id = None

    async def handle(self, event: Any) -> None:
        """One server event (anything but audio deltas, see :meth:`on_audio`)."""
        kind = event.type
        send = self._sink.send_message
        if self._overlaps.skipped(event):
            return
        # response.audio.delta never gets here: the receive loop handles it from the raw JSON.
        if kind == ServerEventType.INPUT_AUDIO_BUFFER_SPEECH_STARTED:
            await self._on_speech_started(event)
        elif kind == ServerEventType.INPUT_AUDIO_BUFFER_SPEECH_STOPPED:
            await self._on_speech_stopped(event)
        elif kind == ServerEventType.CONVERSATION_ITEM_INPUT_AUDIO_TRANSCRIPTION_DELTA:
            delta = upstream_text(event.get("delta"))
            await self._on_user_delta(event.item_id, delta)
        elif kind == ServerEventType.CONVERSATION_ITEM_INPUT_AUDIO_TRANSCRIPTION_COMPLETED:
            await self._on_user_transcript(event.item_id, upstream_text(event.get("transcript")))
        elif kind == ServerEventType.CONVERSATION_ITEM_INPUT_AUDIO_TRANSCRIPTION_FAILED:
            await self._overlaps.transcription_failed(event.get("item_id"))
        elif kind == ServerEventType.RESPONSE_CREATED:
            running = self.response_id is not None
            if await self._overlaps.response_created(event.response.id, reply_running=running):
                return  # the upstream's own reply to a deleted backchannel: never heard
            self.response_id = event.response.id
            self._create_retries = 0
            self._upstream.expect_reply()
            if self._tools is not None and self._tools.drop_turn_reply:
                await self._drop_turn_reply()
        elif kind in (
            ServerEventType.RESPONSE_AUDIO_TRANSCRIPT_DELTA,
            ServerEventType.RESPONSE_TEXT_DELTA,
        ):
            await send(
                protocol.AssistantTranscriptDelta(
                    item_id=event.item_id,
                    response_id=event.response_id,
                    delta=upstream_text(event.get("delta")),
                )
            )
        elif kind in (
            ServerEventType.RESPONSE_AUDIO_TRANSCRIPT_DONE,
            ServerEventType.RESPONSE_TEXT_DONE,
        ):
            field = "transcript" if kind in _AUDIO_TRANSCRIPT_EVENTS else "text"
            transcript = upstream_text(event.get(field))
            if transcript.strip():
                self.history.append(("assistant", transcript.strip()))
            await send(
                protocol.AssistantTranscriptDone(
                    item_id=event.item_id, response_id=event.response_id, transcript=transcript
                )
            )
        elif kind == ServerEventType.RESPONSE_AUDIO_DONE:
            await send(protocol.AudioDone(item_id=event.item_id))
        elif kind == ServerEventType.RESPONSE_FUNCTION_CALL_ARGUMENTS_DONE:
            if self._tools is not None:
                self._tools.on_arguments_done(event)
        elif kind == ServerEventType.RESPONSE_OUTPUT_ITEM_DONE:
            if self._tools is not None:
                self._tools.on_output_item_done(event)
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

    async def on_audio(self, pcm: Any, item_id: str | None, response_id: str | None) -> None:
        """One ``response.audio.delta``, decoded by the receive loop straight from the JSON."""
        if not isinstance(pcm, bytes) or not pcm:
            metrics.UPSTREAM_ERRORS.labels(kind="bad_audio").inc()
            return
        if self._overlaps.audio_skipped(response_id):
            return
        if item_id != self._audio_item_id:
            self._audio_item_id = item_id
            self._audio_item_began = (time.monotonic(), self.audio_out_bytes)
            self.timer.audio_began(item_id, response_id)
            await self._sink.send_message(
                protocol.AudioStart(item_id=item_id, response_id=response_id)
            )
        await self.set_state(State.ASSISTANT_SPEAKING)
        self.audio_out_bytes += len(pcm)
        await self._sink.send_audio(pcm)

    async def _on_speech_started(self, event: Any) -> None:
        item_id = event.get("item_id")
        if not await self._overlaps.speech_started(item_id, over_reply=self._over_reply()):
            await self._stop_for_user(item_id)

    async def _stop_for_user(self, item_id: str | None) -> None:
        """Barge-in: the user's turn begins, the reply stops where it was heard."""
        # The browser may still be playing audio of a reply that is already complete upstream,
        # so playback is cleared on every speech start; the player reports what was heard.
        if self._playing():
            self.timer.interrupted()
        await self._sink.clear_playback()
        self._audio_item_began = (0.0, self.audio_out_bytes)  # nothing plays any more
        if self.response_id is not None or self.state == State.ASSISTANT_SPEAKING:
            metrics.BARGE_INS.inc()
        if self.response_id is not None:
            await self._upstream.send_cancel()
        self._audio_item_id = None
        if self._tools is not None:
            await self._tools.on_user_turn()  # barge-in stops a running tool
        await self._sink.send_message(protocol.SpeechStarted(item_id=item_id))
        await self.set_state(State.LISTENING)

    # ------------------------------------------------------------------ speech over a reply

    def _over_reply(self) -> bool:
        """Speech now would be over a reply: running upstream, or still playing on the page."""
        approval = self._tools is not None and self._tools.awaiting_approval  # "yes" answers
        return self._playing() and not approval

    def _playing(self) -> bool:
        """A reply runs upstream, or still plays on the page."""
        return (
            self.response_id is not None
            or self.state == State.ASSISTANT_SPEAKING
            or time.monotonic() < self._playback_ends()
        )

    def typed_turn(self) -> None:
        """The user typed a message: the spoken turn before it is over (cut off if playing)."""
        if self._playing():
            self.timer.interrupted()
        self.timer.finish()

    def _playback_ends(self) -> float:
        """About when the page finishes playing the last audio item (the monotonic clock)."""
        began, bytes_before = self._audio_item_began
        return began + (self.audio_out_bytes - bytes_before) / _AUDIO_BYTES_PER_SECOND

    def reply_asked(self) -> None:
        """The session asked for a reply itself: the next one is wanted."""
        self._overlaps.reply_asked()

    async def close(self) -> None:
        """Stop what runs on a timer (the session is closing); the last turn is timed."""
        self._overlaps.close()
        self.timer.finish()

    async def _on_speech_stopped(self, event: Any) -> None:
        item_id = event.get("item_id")
        audio_end_ms = event.get("audio_end_ms")
        end = (
            self._upstream.speech_end_time(audio_end_ms)
            if isinstance(audio_end_ms, int) and not isinstance(audio_end_ms, bool)
            else None
        )
        if await self._overlaps.speech_stopped(item_id, end):
            # Maybe a backchannel: its turn is timed only if its transcript makes it one.
            self._held_speech_end = (str(item_id or ""), end)
            return
        self._held_speech_end = None
        self.timer.speech_ended(str(item_id or ""), end, running_response=self.response_id)
        await self._sink.send_message(protocol.SpeechStopped(item_id=item_id))
        await self.set_state(State.PROCESSING)

    async def _on_user_delta(self, item_id: str, delta: str) -> None:
        if not await self._overlaps.user_delta(item_id, delta):
            await self._sink.send_message(
                protocol.UserTranscriptDelta(item_id=item_id, delta=delta)
            )

    async def _on_user_transcript(self, item_id: str, transcript: str) -> None:
        if not await self._overlaps.user_transcript(item_id, transcript):
            await self._user_transcript_done(item_id, transcript)

    async def _user_transcript_done(self, item_id: str, transcript: str) -> None:
        held, self._held_speech_end = self._held_speech_end, None
        if held is not None and held[0] == item_id:
            # Speech over a reply that turned out to be a turn of its own (a barge-in).
            self.timer.speech_ended(item_id, held[1], running_response=self.response_id)
        self.timer.transcribed(item_id)
        if transcript.strip():
            self.history.append(("user", transcript.strip()))
        await self._sink.send_message(
            protocol.UserTranscriptDone(item_id=item_id, transcript=transcript)
        )
        if self._tools is not None and self._tools.on_user_transcript(transcript):
            await self._drop_turn_reply()  # a spoken yes / no to an approval

    async def _owe_reply(self) -> None:
        """Ask for the reply to the user's turn: now, or once the running reply is done."""
        if self.response_id is not None:
            self._reply_owed = True
        elif self._upstream.connected:
            await self._upstream.send_create()
            self._upstream.expect_reply()

    async def _drop_turn_reply(self) -> None:
        """Cancel the reply to a spoken yes / no (or, not started yet, the next one)."""
        assert self._tools is not None
        if self.response_id is not None:
            self._tools.drop_turn_reply = False
            await self._upstream.send_cancel()

    async def _on_response_done(self, event: Any) -> None:
        response = event.get("response") or {}
        status = response.get("status", "completed")
        await self._sink.send_message(
            protocol.ResponseDone(response_id=response.get("id"), status=status)
        )
        self._sink.response_usage(str(response.get("id") or ""), response.get("usage"))
        self.response_id = None
        self._audio_item_id = None
        self._upstream.reply_settled()
        if self._tools is not None:
            await self._tools.on_response_done(response)  # runs its calls in their own task
        if self._reply_owed and self._upstream.connected:
            # A reply was refused because another was running (a turn detected at the same
            # moment as a typed message): ask again now that it is over.
            self._reply_owed = False
            await self._upstream.send_create()
            self._upstream.expect_reply()
        if self._tools is not None and self._tools.busy and self.state != State.LISTENING:
            await self.set_state(State.PROCESSING)  # a tool runs; the answer follows
        elif self.state != State.LISTENING:
            await self.set_state(State.READY)

    async def _on_error(self, event: Any) -> None:
        error = event.get("error") or {}
        code = str(error.get("code") or "")
        if code in BENIGN_ERROR_CODES:
            logger.debug("ignored benign voice live error %r", code)
            return
        metrics.UPSTREAM_ERRORS.labels(kind="event").inc()
        if code == SESSION_EXPIRED:
            # The service's session limit: carry on over a fresh connection.
            self._upstream.begin_rollover()
            return
        if code == RESPONSE_ALREADY_ACTIVE:
            if self._overlaps.refusal_expected():
                return  # the upstream refused to start a reply to a deleted backchannel: good
            if (
                self.response_id is None
                and self._upstream.connected
                and self._create_retries < MAX_CREATE_RETRIES
            ):
                # The running response's done came before this refusal (events are in order,
                # so its created came first): it has ended, and nothing would ask again.
                self._create_retries += 1
                await self._upstream.send_create()
                return
            self._reply_owed = True
            return
        if self.response_id is None and not self._reply_owed:
            self._upstream.reply_settled()  # a refused response.create: no reply is coming
        # Upstream-controlled values: %r, so a newline in them cannot start a forged log line.
        logger.warning("voice live error event: type=%r code=%r", error.get("type"), code)
        await self._sink.send_message(protocol.error(ErrorCode.UPSTREAM_ERROR))
