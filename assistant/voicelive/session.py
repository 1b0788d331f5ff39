"""One Voice Live connection per browser session, through the real ``azure-ai-voicelive`` SDK.

``VoiceLiveSession`` owns the SDK connection, its single receive task and an audio sender task,
hands server events to its :class:`EventRouter` (what they mean for the browser), and rolls the
connection over before the service's session limit. It imports no Django, so it is testable on
its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from azure.ai.voicelive.aio import ConnectionClosed, VoiceLiveConnection
from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError
from azure.ai.voicelive.models import ServerEvent, ServerEventType

# SIMD base64, ~10x the standard library's speed: every audio frame is encoded or decoded once.
from pybase64 import b64decode

from assistant import metrics
from assistant.codes import ErrorCode, State
from assistant.voicelive.audio_json import split_audio_delta
from assistant.voicelive.config import SessionConfig, UpstreamSettings
from assistant.voicelive.events import EventRouter
from assistant.voicelive.microphone import MicrophoneStream
from assistant.voicelive.session_request import session_request_build
from assistant.voicelive.sink import SessionSink
from assistant.voicelive.talk_modes import push_to_talk
from assistant.voicelive.toolcalls import ToolCalls, ToolExecutor
from assistant.voicelive.turn_timing import speech_end_time
from assistant.voicelive.upstream import (
    CLOSE_TIMEOUT,
    Credential,
    Opened,
    VoiceLiveUnavailable,
    close_credential,
    close_quietly,
    credential_build,
    function_output_item,
    message_item,
    open_connection,
    pre_generated_reply,
)
from assistant.voicelive.usage import typed_seconds
from assistant.voicelive.watchdog import ReplyWatchdog

logger = logging.getLogger(__name__)

#: Told of each upstream connection: (kind, monotonic start, upstream session id, error or None).
ConnectionObserver = Callable[[str, float, str, str | None], None]

# The audio deltas' type as a plain string: compared for every frame.
_AUDIO_DELTA = ServerEventType.RESPONSE_AUDIO_DELTA.value


class VoiceLiveSession:
    """A browser session's conversation with Voice Live.

    Args:
        config: the assistant profile to configure the session with.
        upstream: where Voice Live is and how to authenticate.
        sink: receives browser messages, audio and state changes.
        credential_factory: builds a credential per connection (tests replace it).
        tools: runs the model's function calls (None: calls are answered "not available").
    """

    def __init__(
        self,
        *,
        config: SessionConfig,
        upstream: UpstreamSettings,
        sink: SessionSink,
        credential_factory: Callable[[str], Credential] = credential_build,
        tools: ToolExecutor | None = None,
    ) -> None:
        self.config = config
        self._upstream = upstream
        self._sink = sink
        self._credential_factory = credential_factory
        self._conn: VoiceLiveConnection | None = None
        self._credential: Credential | None = None
        self._receive_task: asyncio.Task[None] | None = None
        self._sender_task: asyncio.Task[None] | None = None
        self._rollover_task: asyncio.Task[None] | None = None
        # Armed while a reply is asked for or running (see expect_reply).
        self._watchdog = ReplyWatchdog(upstream.reply_stall_seconds, self._stalled)
        self._stall_task: asyncio.Task[None] | None = None
        self.microphone = MicrophoneStream(
            connection=lambda: self._conn,
            rolling_over=lambda: self._rolling_over,
            lost=self._lost,
            send_safely=self._send_safely,
        )
        self.microphone.accepting = not push_to_talk(config)
        self._closing = False
        self._rolling_over = False
        self._connected_at = 0.0
        self.upstream_session_id = ""
        #: Told of every connection opened or failed (traces): kind ("connect", "rollover"),
        #: ``time.monotonic()`` when opening began, the upstream session id, the error or None.
        self.connection_observer: ConnectionObserver | None = None
        #: Typed messages sent upstream so far, as quotas count them (assistant/history/usage.py).
        self.typed_seconds = 0.0
        self.tool_calls = ToolCalls(upstream=self, sink=sink, executor=tools)
        self._events = EventRouter(
            sink=sink, upstream=self, history_items=upstream.history_items, tools=self.tool_calls
        )

    @property
    def state(self) -> State:
        """The session's state, as the browser was last told."""
        return self._events.state

    @property
    def audio_out_bytes(self) -> int:
        """Assistant audio relayed to the browser so far."""
        return self._events.audio_out_bytes

    @property
    def reply_pending(self) -> bool:
        """True from asking for a reply until it is done or refused (the watchdog's view)."""
        return self._watchdog.expected

    @property
    def reply_running(self) -> bool:
        """True from ``response.created`` to ``response.done`` of a reply."""
        return self._events.response_id is not None

    @property
    def audio_in_bytes(self) -> int:
        """Microphone audio sent upstream so far."""
        return self.microphone.sent_bytes

    @property
    def turn_bytes(self) -> int:
        """Push-to-talk: microphone audio since the input buffer was cleared or committed."""
        return self.microphone.turn_bytes

    @property
    def connected(self) -> bool:
        """True while there is an upstream connection to send on."""
        return self._conn is not None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect, configure the session from the profile and start relaying.

        Raises:
            VoiceLiveUnavailable: the upstream refused, failed or timed out.
        """
        started = time.monotonic()
        opened = await self._open_connection("connect")
        self._adopt(opened)
        metrics.UPSTREAM_CONNECT_SECONDS.observe(time.monotonic() - started)
        # Empty unless an earlier conversation is continued (carry_over): seeded like a rollover.
        await self._seed(opened.conn)
        self._receive_task = self._spawn(self._receive_loop(opened.conn), "receive")
        self._sender_task = self._spawn(self.microphone.run(), "audio sender")
        await self._events.set_state(State.READY)

    def carry_over(self, items: list[tuple[str, str]]) -> None:
        """Seed the conversation with earlier ``(role, text)`` items, sent on :meth:`start`."""
        self._events.history.extend(items)

    async def _seed(self, conn: VoiceLiveConnection) -> None:
        """Send the conversation so far to a fresh connection (a rollover, a continuation)."""
        for role, text in list(self._events.history):
            await conn.send(message_item(role, text))

    async def _open_connection(self, kind: str) -> Opened:
        started = time.monotonic()
        try:
            opened = await open_connection(
                config=self.config,
                upstream=self._upstream,
                credential_factory=self._credential_factory,
            )
        except VoiceLiveUnavailable as exc:
            self._connection_seen(kind, started, "", exc.code.value)
            raise
        self._connection_seen(kind, started, opened.session_id, None)
        return opened

    def _connection_seen(
        self, kind: str, started: float, upstream_id: str, error: str | None
    ) -> None:
        if self.connection_observer is not None:
            self.connection_observer(kind, started, upstream_id, error)

    def _adopt(self, opened: Opened) -> None:
        """Make a freshly opened connection the session's own (no await: never half done)."""
        self._conn = opened.conn
        self._credential = opened.credential
        self.upstream_session_id = opened.session_id
        self._connected_at = time.monotonic()
        self.microphone.connection_began()  # its audio_end_ms counts from here

    def _spawn(self, work: Coroutine[Any, Any, None], what: str) -> asyncio.Task[None]:
        """Start one of the session's tasks; whatever it raises ends the session, visibly.

        Every task of a session is held on the session, cancelled by :meth:`aclose` and run
        through :meth:`_guarded`, so none can die unseen or leave an unretrieved exception.
        """
        return asyncio.create_task(self._guarded(work, what), name=f"voicelive {what}")

    async def _guarded(self, work: Coroutine[Any, Any, None], what: str) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except VoiceLiveUnavailable as exc:
            # Logged and counted where the connection was opened.
            await self._lost(exc.code)
        except VoiceLiveConnectionError as exc:
            metrics.UPSTREAM_ERRORS.labels(kind="send").inc()
            logger.warning("voice live %s failed (%s)", what, type(exc).__name__)
            await self._lost(ErrorCode.UPSTREAM_LOST)
        except Exception as exc:
            metrics.UPSTREAM_ERRORS.labels(kind="internal").inc()
            logger.error(
                "voice live %s failed unexpectedly (%s)", what, type(exc).__name__, exc_info=exc
            )
            await self._lost(ErrorCode.INTERNAL)

    async def aclose(self) -> None:
        """Stop relaying and close the upstream connection, within a bounded time."""
        self._closing = True
        current = asyncio.current_task()
        self._watchdog.stop()
        tasks = [
            task
            for task in (
                self._receive_task,
                self._sender_task,
                self._rollover_task,
                self._stall_task,
            )
            if task is not None and task is not current and not task.done()
        ]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT)
        await self._events.close()
        await self.tool_calls.aclose()
        if self._conn is not None:
            await close_quietly(self._conn)
            self._conn = None
        await close_credential(self._credential)
        self._credential = None

    # ------------------------------------------------------------------ browser -> upstream

    def append_audio(self, pcm: bytes) -> None:
        """Queue microphone audio for the upstream; never waits (microphone.py)."""
        self.microphone.append(pcm)

    async def cancel_response(self) -> None:
        """Stop the assistant's current reply, if there is one, and a tool it is running."""
        await self.tool_calls.cancel()
        if self._events.response_id is not None:
            await self.send_cancel()

    async def send_cancel(self) -> None:
        """Send ``response.cancel`` (the router decides when)."""
        if self._conn is not None:
            await self._send_safely(self._conn.response.cancel())

    async def send_create(self) -> None:
        """Send ``response.create`` (the router decides when)."""
        if self._conn is not None:
            self._events.reply_asked()
            await self._send_safely(self._conn.response.create())

    async def send_delete(self, item_id: str) -> None:
        """Send ``conversation.item.delete`` (the router decides when: a backchannel)."""
        if self._conn is not None:
            await self._send_safely(self._conn.conversation.item.delete(item_id=item_id))

    async def respond(self, request: dict[str, Any]) -> None:
        """Ask for a reply nobody spoke for (a greeting, a check-in): ``response.create``."""
        if self._conn is not None:
            self._events.reply_asked()
            await self._send_safely(self._conn.response.create(**request))
            self.expect_reply()

    async def commit_input(self) -> None:
        """Push-to-talk released: commit the input buffer and ask for the reply."""
        self._events.timer.speech_ended(
            "", None, running_response=self._events.response_id, push_to_talk=True
        )
        await self.microphone.commit()
        await self.respond({})

    async def show_state(self, state: State) -> None:
        """A state the upstream does not announce (push-to-talk has no speech events)."""
        await self._events.set_state(state)

    def hold_input(self, held: bool) -> None:
        """Push-to-talk: take the user's audio only while the button is held."""
        self.microphone.accepting = held or not push_to_talk(self.config)

    async def clear_input(self) -> None:
        """Drop the microphone audio queued here and buffered upstream (push-to-talk)."""
        await self.microphone.clear()

    async def send_function_output(self, call_id: str, output: str) -> None:
        """Answer a function call (``conversation.item.create``, ``function_call_output``)."""
        if self._conn is not None:
            await self._send_safely(self._conn.send(function_output_item(call_id, output)))

    async def send_spoken(self, text: str) -> None:
        """Ask for a reply that says exactly ``text`` (Voice Live's pre-generated message)."""
        if self._conn is not None:
            self._events.reply_asked()
            request = self._conn.response.create(response=pre_generated_reply(text))
            await self._send_safely(request)

    async def truncate(self, *, item_id: str, played_ms: int) -> None:
        """Cut an assistant item upstream to what the user actually heard."""
        if self._conn is not None:
            await self._send_safely(
                self._conn.conversation.item.truncate(
                    item_id=item_id, audio_end_ms=played_ms, content_index=0
                )
            )

    def speech_end_time(self, audio_end_ms: int) -> float | None:
        """When the speech ``speech_stopped`` at ``audio_end_ms`` ended reached the service.

        ``audio_end_ms`` includes the profile's silence (turn_timing.py): taken off. Under a
        semantic detector the turn may have waited longer than that silence: the end is then
        placed a little late (the latency reads a little short), never early.
        """
        mic = self.microphone
        return speech_end_time(
            audio_end_ms,
            sent_bytes=mic.sent_bytes,
            base_bytes=mic.connection_bytes,
            sent_at=mic.sent_at,
            silence_ms=self.config.vad_silence_duration_ms,
        )

    def playback_began(self, item_id: str) -> None:
        """The page says it began playing ``item_id`` (a measurement, nothing else)."""
        self._events.timer.playback_began(item_id)

    def playback_heard(self, item_id: str, played_ms: int) -> None:
        """The page heard ``played_ms`` of the interrupted ``item_id``."""
        self._events.timer.heard(item_id, played_ms)

    def finish_turn(self) -> None:
        """The call ends: time the last turn now, while its history still records."""
        self._events.timer.finish()

    async def send_text(self, text: str) -> None:
        """Add a typed user message and ask for a reply."""
        if self._conn is None:
            return
        # Counted even when it answers a tool's question: the round it resumes replies too.
        self.typed_seconds += typed_seconds(text)
        self._events.typed_turn()
        if self.tool_calls.on_user_transcript(text):
            self.tool_calls.drop_turn_reply = False  # nothing was sent: no reply to drop
            return  # a typed yes or no to a tool waiting for approval: the round answers
        if self._events.response_id is not None:
            # Typing over the assistant interrupts it, like speaking over it does.
            await self._sink.clear_playback()
            await self._send_safely(self._conn.response.cancel())
        await self.tool_calls.on_user_turn()
        await self._send_safely(self._conn.send(message_item("user", text)))
        self._events.reply_asked()
        await self._send_safely(self._conn.response.create())
        self.expect_reply()
        self._events.history.append(("user", text))

    async def update_config(self, config: SessionConfig) -> None:
        """Apply a changed profile to the live connection (``session.update``, no reconnect)."""
        if push_to_talk(config) != push_to_talk(self.config):
            self.microphone.accepting = not push_to_talk(config)
        self.config = config
        if self._conn is not None:
            await self._send_safely(
                self._conn.session.update(session=session_request_build(config))
            )

    async def _send_safely(self, sending: Any) -> None:
        try:
            await sending
        except VoiceLiveConnectionError:
            metrics.UPSTREAM_ERRORS.labels(kind="send").inc()
            logger.warning("voice live send failed; the receive loop reports the loss")

    # ------------------------------------------------------------------ rollover

    def rollover_due(self) -> bool:
        """True when the connection is old enough to replace and no reply is running."""
        age = time.monotonic() - self._connected_at
        return (
            self._conn is not None
            and not self._rolling_over
            and age >= self._upstream.rollover_seconds
            and self._events.response_id is None
            and self._events.state in (State.READY, State.CONNECTING)
        )

    def begin_rollover(self) -> None:
        """Start replacing the upstream connection in the background."""
        if self._rolling_over or self._closing:
            return
        self._rolling_over = True
        self._rollover_task = self._spawn(self._rollover(), "rollover")

    async def _rollover(self) -> None:
        """Open a fresh connection, carry the conversation over, then retire the old one.

        A failure on the way ends the session (through :meth:`_guarded`) with nothing left
        open: the new connection is closed here, the old one by :meth:`aclose`.
        """
        try:
            opened = await self._open_connection("rollover")
            try:
                await self._seed(opened.conn)
            except BaseException:
                await asyncio.shield(_close_opened(opened))
                raise
            old_conn, old_credential, old_task = self._conn, self._credential, self._receive_task
            self._adopt(opened)
            self._events.connection_replaced()
            self.reply_settled()
            self._receive_task = self._spawn(self._receive_loop(opened.conn), "receive")
        finally:
            self._rolling_over = False
        metrics.UPSTREAM_ROLLOVERS.inc()
        logger.info(
            "voice live connection rolled over with %d context items", len(self._events.history)
        )
        try:
            if old_task is not None and not old_task.done():
                old_task.cancel()
                await asyncio.wait([old_task], timeout=CLOSE_TIMEOUT)
        finally:
            # Shielded: a session closing mid-rollover still retires the old connection.
            await asyncio.shield(_close_retired(old_conn, old_credential))

    # ------------------------------------------------------------------ upstream -> browser

    async def _receive_loop(self, conn: VoiceLiveConnection) -> None:
        """The single reader of one upstream connection.

        Audio deltas (most of the traffic) are handled straight from the JSON: the SDK's typed
        ``ServerEvent`` model would cost more than the rest of the relay's work on the frame,
        and the delta's base64 is cut out without a JSON parse (audio_json.py).
        """
        while True:
            try:
                raw = await conn.recv_bytes()
            except (ConnectionClosed, VoiceLiveConnectionError):
                break
            if not raw:
                break  # what ``conn.recv()`` reports as a closed connection
            self._watchdog.heard()
            try:
                audio = split_audio_delta(raw)
                event: Any = None
                if audio is not None:
                    payload, delta = audio
                    pcm = b64decode(delta)
                else:
                    payload = json.loads(raw)
                    if payload.get("type") == _AUDIO_DELTA:
                        delta = payload.get("delta")
                        pcm = b64decode(delta) if isinstance(delta, str) else b""
                    else:
                        event = ServerEvent._deserialize(payload, [])  # what conn.recv() does
            except (ValueError, TypeError, AttributeError):
                # One malformed frame: count it and keep the session.
                metrics.UPSTREAM_ERRORS.labels(kind="malformed").inc()
                logger.warning("voice live sent a malformed frame; ignored")
                continue
            try:
                if event is None:
                    await self._events.on_audio(
                        pcm, payload.get("item_id"), payload.get("response_id")
                    )
                else:
                    await self._events.handle(event)
            except Exception:
                # A bug in handling one event must surface, not stall the session silently.
                logger.exception("failed to handle voice live event %r", payload.get("type"))
                metrics.UPSTREAM_ERRORS.labels(kind="handler").inc()
                await self._lost(ErrorCode.INTERNAL)
                return
        if conn is self._conn and not self._rolling_over:
            metrics.UPSTREAM_ERRORS.labels(kind="dropped").inc()
            await self._lost(ErrorCode.UPSTREAM_LOST)

    # ------------------------------------------------------------------ reply watchdog

    def expect_reply(self) -> None:
        """A reply was asked for or has started (see assistant/voicelive/watchdog.py)."""
        if not self._closing:
            self._watchdog.expect()

    def reply_settled(self) -> None:
        """No reply is owed any more."""
        self._watchdog.settled()

    def _stalled(self, silent: float) -> None:
        if self._closing:
            return
        metrics.UPSTREAM_ERRORS.labels(kind="stalled").inc()
        logger.warning("voice live sent nothing for %.1f s during a reply; giving up", silent)
        self._stall_task = self._spawn(self._lost(ErrorCode.UPSTREAM_LOST), "reply watchdog")

    async def _lost(self, code: ErrorCode) -> None:
        if self._closing:
            return
        self._closing = True
        await self._sink.upstream_lost(code)


async def _close_opened(opened: Opened) -> None:
    await _close_retired(opened.conn, opened.credential)


async def _close_retired(conn: VoiceLiveConnection | None, credential: Credential | None) -> None:
    if conn is not None:
        await close_quietly(conn)
    await close_credential(credential)
