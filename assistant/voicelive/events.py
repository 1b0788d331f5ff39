"""What each Voice Live server event means for the browser: messages, states, barge-in.

:class:`EventRouter` owns the conversation as the user sees it (state, the running reply, the
history carried over a rollover); the session owns the connection and hands it every event.
The router asks the session for what needs the connection through :class:`Upstream`, and
talks to the browser through its :class:`~assistant.voicelive.sink.SessionSink`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, Protocol

from azure.ai.voicelive.models import ServerEventType

from assistant import metrics, protocol
from assistant.codes import ErrorCode, State
from assistant.voicelive import backchannels
from assistant.voicelive.backchannels import HOLD_AFTER_MS, Verdict, Window
from assistant.voicelive.config import SessionConfig
from assistant.voicelive.sink import SessionSink
from assistant.voicelive.toolcalls import ToolCalls

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
# Users items deleted as backchannels, remembered so their late events are dropped.
_DROPPED_ITEMS_KEPT = 16


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
        self._speech_stopped_at: float | None = None
        self._reply_owed = False
        self._create_retries = 0  # response.create re-sent after a stale "already active"
        #: The user's speech over a reply being decided (backchannels.py), and its timer.
        self._window: Window | None = None
        self._window_timer: asyncio.Task[None] | None = None
        # A backchannel's item was deleted: the reply the upstream may still start for it
        # (queued behind the running one, or at once) is cancelled unheard.
        self._skip_next_reply = False
        self._skipped_response: str | None = None
        self._dropped_items: deque[str] = deque(maxlen=_DROPPED_ITEMS_KEPT)

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
        if self._skipped(event):
            return
        # response.audio.delta never gets here: the receive loop handles it from the raw JSON.
        if kind == ServerEventType.INPUT_AUDIO_BUFFER_SPEECH_STARTED:
            await self._on_speech_started(event)
        elif kind == ServerEventType.INPUT_AUDIO_BUFFER_SPEECH_STOPPED:
            self._speech_stopped_at = time.monotonic()
            await self._on_speech_stopped(event)
        elif kind == ServerEventType.CONVERSATION_ITEM_INPUT_AUDIO_TRANSCRIPTION_DELTA:
            delta = upstream_text(event.get("delta"))
            await self._on_user_delta(event.item_id, delta)
        elif kind == ServerEventType.CONVERSATION_ITEM_INPUT_AUDIO_TRANSCRIPTION_COMPLETED:
            await self._on_user_transcript(event.item_id, upstream_text(event.get("transcript")))
        elif kind == ServerEventType.CONVERSATION_ITEM_INPUT_AUDIO_TRANSCRIPTION_FAILED:
            window = self._window
            if window is not None and window.item_id == event.get("item_id"):
                window.reason = "no_transcript"
                await self._barge_in(window)
        elif kind == ServerEventType.RESPONSE_CREATED:
            if self._skip_next_reply and self.response_id is None:
                # The upstream's own reply to a deleted backchannel: never heard.
                self._skip_next_reply = False
                self._skipped_response = event.response.id
                await self._upstream.send_cancel()
                return
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
        if response_id is not None and response_id == self._skipped_response:
            return
        if item_id != self._audio_item_id:
            self._audio_item_id = item_id
            self._audio_item_began = (time.monotonic(), self.audio_out_bytes)
            await self._sink.send_message(
                protocol.AudioStart(item_id=item_id, response_id=response_id)
            )
        if self._speech_stopped_at is not None:
            metrics.TURN_LATENCY.observe(time.monotonic() - self._speech_stopped_at)
            self._speech_stopped_at = None
        await self.set_state(State.ASSISTANT_SPEAKING)
        self.audio_out_bytes += len(pcm)
        await self._sink.send_audio(pcm)

    async def _on_speech_started(self, event: Any) -> None:
        self._skip_next_reply = False  # a new turn: its reply is wanted
        item_id = event.get("item_id")
        if self._window is not None:
            # More speech before the last was decided: the user is talking, not nodding.
            self._window.reason = "long"
            await self._barge_in(self._window)
        elif self._opens_window(item_id):
            await self._open_window(str(item_id))
            return
        await self._stop_for_user(item_id)

    async def _stop_for_user(self, item_id: str | None) -> None:
        """Barge-in: the user's turn begins, the reply stops where it was heard."""
        # The browser may still be playing audio of a reply that is already complete upstream,
        # so playback is cleared on every speech start; the player reports what was heard.
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

    # ------------------------------------------------------------------ backchannels

    def _opens_window(self, item_id: Any) -> bool:
        """Speech over a reply, with backchannels on: decide before stopping anything."""
        speaking = (
            self.response_id is not None
            or self.state == State.ASSISTANT_SPEAKING
            or time.monotonic() < self._playback_ends()
        )
        approval = self._tools is not None and self._tools.awaiting_approval  # "yes" answers
        return (
            speaking
            and isinstance(item_id, str)
            and not approval
            and backchannels.enabled(self._upstream.config)
        )

    def _playback_ends(self) -> float:
        """About when the page finishes playing the last audio item (the monotonic clock)."""
        began, bytes_before = self._audio_item_began
        return began + (self.audio_out_bytes - bytes_before) / _AUDIO_BYTES_PER_SECOND

    async def _open_window(self, item_id: str) -> None:
        config = self._upstream.config
        window = Window(
            item_id=item_id,
            vocabulary=backchannels.session_vocabulary(config),
            started=time.monotonic(),
            silence_ms=config.vad_silence_duration_ms,
        )
        self._window = window
        await self._sink.send_message(protocol.PlaybackDuck(item_id=item_id))
        self._window_timer = asyncio.create_task(
            self._window_deadlines(window), name="voicelive backchannel window"
        )
        self._window_timer.add_done_callback(_log_failure)

    async def _window_deadlines(self, window: Window) -> None:
        """Pause the page's playback while still undecided, and enforce the window's bounds."""
        await asyncio.sleep(HOLD_AFTER_MS / 1000)
        if self._window is window:
            await self._sink.send_message(protocol.PlaybackHold(item_id=window.item_id))
        while self._window is window:
            now = time.monotonic()
            if window.expired(now) is Verdict.BARGE_IN:
                await self._barge_in(window)
                return
            await asyncio.sleep(max(window.next_deadline() - now, 0.01))

    async def _decide(self, window: Window, verdict: Verdict) -> None:
        if verdict is Verdict.BARGE_IN:
            await self._barge_in(window)
        elif verdict is Verdict.BACKCHANNEL:
            await self._backchannel(window)

    def _close_window(self, window: Window) -> bool:
        """Take ``window`` as decided; False when it already was (no await: decided once)."""
        if self._window is not window:
            return False
        self._window = None
        timer, self._window_timer = self._window_timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        return True

    async def _barge_in(self, window: Window) -> None:
        """Not a backchannel: stop the reply as a barge-in would have, then catch the page up."""
        if not self._close_window(window):
            return
        metrics.OVERLAPS.labels(verdict="barge_in", reason=window.reason or "words").inc()
        await self._stop_for_user(window.item_id)
        for message in window.held:
            if isinstance(message, protocol.ServerMessage):
                await self._sink.send_message(message)
        if window.stopped is not None:
            await self.set_state(State.PROCESSING)
        if window.held_transcript is not None:
            await self._user_transcript_done(window.item_id, window.held_transcript)

    async def _backchannel(self, window: Window) -> None:
        """A backchannel: the reply goes on at full volume; the item leaves the conversation."""
        if not self._close_window(window):
            return
        metrics.OVERLAPS.labels(verdict="backchannel", reason=window.reason or "listed").inc()
        logger.debug("backchannel %r over the reply; it goes on", window.heard[:40])
        await self._sink.send_message(protocol.PlaybackResume(item_id=window.item_id))
        self._dropped_items.append(window.item_id)
        self._skip_next_reply = True
        if self._upstream.connected:
            await self._upstream.send_delete(window.item_id)

    def reply_asked(self) -> None:
        """The session asked for a reply itself: the next one is wanted."""
        self._skip_next_reply = False

    async def close(self) -> None:
        """Stop the decision timer (the session is closing)."""
        if self._window is not None:
            self._close_window(self._window)

    def _skipped(self, event: Any) -> bool:
        """Events of a cancelled backchannel reply, or of a deleted backchannel item."""
        response_id = event.get("response_id")
        if response_id is None:
            response = event.get("response")
            response_id = response.get("id") if hasattr(response, "get") else None
        if response_id is not None and response_id == self._skipped_response:
            if event.type == ServerEventType.RESPONSE_DONE:
                self._skipped_response = None
            return True
        item_id = event.get("item_id")
        return item_id is not None and item_id in self._dropped_items

    async def _on_speech_stopped(self, event: Any) -> None:
        window = self._window
        message = protocol.SpeechStopped(item_id=event.get("item_id"))
        if window is not None and window.item_id == event.get("item_id"):
            window.held.append(message)
            await self._decide(window, window.speech_stopped(time.monotonic()))
            return
        await self._sink.send_message(message)
        await self.set_state(State.PROCESSING)

    async def _on_user_delta(self, item_id: str, delta: str) -> None:
        message = protocol.UserTranscriptDelta(item_id=item_id, delta=delta)
        window = self._window
        if window is not None and window.item_id == item_id:
            window.held.append(message)
            await self._decide(window, window.partial(delta))
            return
        await self._sink.send_message(message)

    async def _on_user_transcript(self, item_id: str, transcript: str) -> None:
        window = self._window
        if window is not None and window.item_id == item_id:
            window.held_transcript = transcript
            await self._decide(window, window.transcript(transcript))
            return
        await self._user_transcript_done(item_id, transcript)

    async def _user_transcript_done(self, item_id: str, transcript: str) -> None:
        if transcript.strip():
            self.history.append(("user", transcript.strip()))
        await self._sink.send_message(
            protocol.UserTranscriptDone(item_id=item_id, transcript=transcript)
        )
        if self._tools is not None and self._tools.on_user_transcript(transcript):
            await self._drop_turn_reply()  # a spoken yes / no to an approval

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
            if self._skip_next_reply:
                # The upstream refused to start a reply to a deleted backchannel: good.
                self._skip_next_reply = False
                return
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


def _log_failure(task: asyncio.Task[None]) -> None:
    """A decision timer that failed: logged, the session goes on (the next event decides)."""
    if not task.cancelled() and task.exception() is not None:
        logger.error("backchannel window failed", exc_info=task.exception())
