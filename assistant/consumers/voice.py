"""``/ws/voice/``: the browser's websocket. Transport only: frames in, frames out.

Audio goes straight between this socket and the session's Voice Live connection. The channel
layer only carries control (end requests, profile changes, monitors), through a supervised
subscription of its own, so a Redis outage never ends a conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Coroutine
from typing import Any, ClassVar, cast

from django.conf import settings
from django.db import DatabaseError

from assistant import metrics, protocol, services
from assistant.codes import CLEAN_END_CODES, ClientError, CloseCode, ErrorCode, State
from assistant.consumers import commands, talk_modes
from assistant.consumers.inbound import InboundLimits, Refusal
from assistant.consumers.outbound import AckOutOfRange, AudioSendWindow, BacklogFull
from assistant.consumers.release import release_session
from assistant.consumers.socket import SupervisedConsumer
from assistant.consumers.supervisor import SessionSupervisor
from assistant.history.live import SessionHistory, session_history_start
from assistant.history.quotas import LiveQuota, handshake_refusal
from assistant.history.resume import Resume, aresume_load, requested_resume
from assistant.live import registry
from assistant.live.admission import admit, requested_profile_id, upstream_settings
from assistant.live.control import ControlSubscription
from assistant.live.layer import layer_send
from assistant.live.worker import Membership, PendingSlot, worker
from assistant.protocol import ASSISTANT_AUDIO, USER_AUDIO
from assistant.tools.live import SessionToolExecutor, requested_time_zone
from assistant.voicelive.config import SessionConfig
from assistant.voicelive.session import VoiceLiveSession
from assistant.voicelive.upstream import VoiceLiveUnavailable

logger = logging.getLogger(__name__)

AUDIO_IN_FRAMES = metrics.AUDIO_FRAMES.labels(direction="in")
AUDIO_IN_BYTES = metrics.AUDIO_BYTES.labels(direction="in")
AUDIO_OUT_FRAMES = metrics.AUDIO_FRAMES.labels(direction="out")
AUDIO_OUT_BYTES = metrics.AUDIO_BYTES.labels(direction="out")


class VoiceConsumer(SupervisedConsumer):
    """One browser conversation: one websocket, one Voice Live connection.

    Transport only: the Voice Live session (``voice``) talks to the upstream, the
    :class:`SessionSupervisor` handles control messages, timers and the heartbeat, and the
    :class:`Membership` is the session's place among the worker's live sessions.
    """

    #: Builds the Voice Live session; tests replace it with a fake.
    session_factory: ClassVar[Any] = VoiceLiveSession

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # All of a session's state; everything but ``state`` and ``ended`` stays None (and the
        # release has nothing to do) unless the socket was accepted as a live session.
        self.session_id: uuid.UUID | None = None
        self.membership: Membership | None = None
        self.supervisor: SessionSupervisor | None = None
        self.control: ControlSubscription | None = None
        self.voice: VoiceLiveSession | None = None
        self.history: SessionHistory | None = None
        self.inbound: InboundLimits | None = None
        self.outbound: AudioSendWindow | None = None
        self.start_task: asyncio.Task[None] | None = None
        self.timer_task: asyncio.Task[None] | None = None
        self.state = State.CONNECTING
        self.ended = False
        self.released = False
        self.last_activity = 0.0

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Route a message; audio frames skip Channels' per-message DB-connection check."""
        if message["type"] == "websocket.receive":
            await self.websocket_receive(cast(Any, message))
        else:
            await super().dispatch(message)

    # ------------------------------------------------------------------ open

    async def connect(self) -> None:
        """Admit the user, claim a live-session slot, then start the upstream in the background."""
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            metrics.SESSIONS_REFUSED.labels(reason="unauthenticated").inc()
            # Refused at the handshake: no websocket, no upstream. (A plain int: autobahn
            # refuses IntEnum close codes.)
            await self.close(code=int(CloseCode.UNAUTHENTICATED))
            return
        worker.install_drain_handler()
        client = self.scope.get("client") or ("unknown", 0)
        try:
            admitted = await admit(user_id=user.pk, client_ip=str(client[0]))
        except DatabaseError as exc:
            await self._database_failed(exc)
            return
        if not isinstance(admitted, PendingSlot):
            await self._refuse(*admitted)
            return
        with admitted as slot:
            await self._open(user, slot)

    async def _open(self, user: Any, slot: PendingSlot) -> None:
        query = self.scope.get("query_string", b"")
        try:
            config = await services.aprofile_config_get(
                user=user, profile_id=requested_profile_id(query)
            )
            resume = await aresume_load(
                user_id=user.pk,
                raw=requested_resume(query),
                max_items=upstream_settings().history_items,
            )
            over_quota = await handshake_refusal(user.pk)
            if over_quota is not None:
                await self._refuse(ErrorCode.QUOTA_EXCEEDED, CloseCode.QUOTA_EXCEEDED, over_quota)
                return
            claim = await registry.asession_claim(
                user_id=user.pk, profile_id=config.profile_id, channel_name=self.channel_name
            )
        except ClientError as exc:
            await self._refuse(exc.code, CloseCode.FORBIDDEN)
            return
        except DatabaseError as exc:
            await self._database_failed(exc)
            return
        if claim.refused:
            await self._refuse(ErrorCode.TOO_MANY_SESSIONS, CloseCode.TOO_MANY_SESSIONS)
            return
        for _, channel in claim.replaced:
            await layer_send(
                self.channel_layer, channel, protocol.session_end(protocol.EndReason.REPLACED)
            )
        session_id = claim.session_id
        assert session_id is not None  # not refused
        self.session_id = session_id
        self.membership = Membership(session_id)
        self.last_activity = time.monotonic()
        self.supervisor = SessionSupervisor(
            self, session_id=session_id, scope=self.scope, channel_layer=self.channel_layer
        )
        self.inbound = InboundLimits(
            control_per_minute=settings.VOICE_CONTROL_MESSAGES_PER_MINUTE,
            audio_rate_limit=settings.VOICE_AUDIO_RATE_LIMIT,
            frames_per_second=settings.VOICE_AUDIO_FRAMES_PER_SECOND,
            max_frame_bytes=settings.VOICE_MAX_AUDIO_FRAME_BYTES,
        )
        self.outbound = AudioSendWindow(
            window_bytes=settings.VOICE_AUDIO_SEND_WINDOW_BYTES,
            backlog_bytes=settings.VOICE_AUDIO_SEND_BACKLOG_BYTES,
        )
        await self.accept()
        # No await from here to the heartbeat's join: the slot becomes the session at once.
        self.membership.join(self, self.supervisor, slot)
        metrics.SESSIONS_STARTED.inc()
        logger.info("voice session %s started for user %s", session_id, user.pk)
        await self.set_state(State.CONNECTING)
        self.control = ControlSubscription(
            self.channel_layer, self.channel_name, self.supervisor.on_control
        )
        await self.control.start(
            [registry.user_group(user.pk), services.profile_group(config.profile_id)]
        )
        if self.ended:
            # Ended while joining its groups (a drain, an end request the heartbeat found) and
            # already released: starting the upstream now would leave it open.
            return
        self.voice = self.session_factory(
            config=config,
            upstream=upstream_settings(),
            sink=self,
            tools=self._tool_executor(user, query),
        )
        self.history = session_history_start(session_id, user.pk, config, self.voice, resume)
        self.supervisor.quota = LiveQuota(
            self, history=self.history, user_id=user.pk, session_id=session_id
        )
        self.start_task = asyncio.create_task(self._start_voice(config, resume))
        self.timer_task = asyncio.create_task(self._supervised(self.supervisor.run(), "heartbeat"))

    def _tool_executor(self, user: Any, query: bytes) -> SessionToolExecutor:
        """Runs the model's tool calls for this user (assistant/tools/live.py)."""
        return SessionToolExecutor(self, user=user, time_zone=requested_time_zone(query))

    async def _database_failed(self, exc: DatabaseError) -> None:
        """The database failed before the session began (locked, gone): retryable, not a 500."""
        logger.error("voice session refused: the database failed (%s: %s)", type(exc).__name__, exc)
        metrics.SESSIONS_REFUSED.labels(reason="database_error").inc()
        await self._refuse(ErrorCode.SERVER_BUSY, CloseCode.SERVER_BUSY, count=False)

    async def _refuse(
        self,
        code: ErrorCode,
        close_code: CloseCode,
        error: protocol.Error | None = None,
        *,
        count: bool = True,
    ) -> None:
        """Accept only to say why, then close: the browser can show the reason."""
        if count:
            metrics.SESSIONS_REFUSED.labels(reason=code.value).inc()
        await self.accept()
        await self.send(text_data=protocol.encode(error or protocol.error(code)))
        await self.close(code=int(close_code))

    async def _start_voice(self, config: SessionConfig, resume: Resume | None = None) -> None:
        assert self.voice is not None
        try:
            await self.voice.start()
        except VoiceLiveUnavailable as exc:
            # Logged and counted where it was raised; the page gets its stable code.
            await self.end_session(exc.code, CloseCode.UPSTREAM_UNAVAILABLE)
            return
        except Exception as exc:
            await self._failed("start", exc)
            return
        await self.send_message(
            protocol.SessionReady(
                session_id=str(self.session_id),
                profile={"id": config.profile_id, "name": config.profile_name},
            )
        )
        if resume is not None:
            await self.send_message(
                protocol.ConversationResumed(
                    conversation_id=str(resume.conversation_id), messages=len(resume.items)
                )
            )
        await talk_modes.session_ready(self, self.voice)

    # ------------------------------------------------------------------ browser -> server

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """A frame from the browser: audio (binary) or a control message (text)."""
        if self.ended:
            return
        if bytes_data is not None:
            await self._receive_audio(bytes_data)
        elif text_data is not None:
            await self._receive_control(text_data)

    async def _receive_audio(self, pcm: bytes) -> None:
        assert self.inbound is not None  # set before the socket was accepted
        refusal = self.inbound.audio(pcm)
        if refusal is not None:
            await self._refused(refusal)
            return
        self.last_activity = time.monotonic()
        if self.voice is None or self.state in (State.CONNECTING, State.ERROR, State.STOPPED):
            metrics.AUDIO_DROPPED.labels(reason="not_ready").inc()
            return
        self.voice.append_audio(pcm)
        AUDIO_IN_FRAMES.inc()
        AUDIO_IN_BYTES.inc(len(pcm))
        fanout = self.supervisor.fanout if self.supervisor else None
        if fanout is not None:
            fanout.publish_audio(USER_AUDIO, pcm)

    async def _receive_control(self, text: str) -> None:
        message: protocol.BrowserMessage | None = None
        error: ErrorCode | None = None
        try:
            message = protocol.parse_browser_message(
                text, max_chars=settings.VOICE_MAX_CONTROL_BYTES
            )
        except ClientError as exc:
            error = exc.code
        if isinstance(message, protocol.AudioAck):
            # Flow control, outside the control budget: a valid ack must advance (outbound.py),
            # so acks are bounded by the audio sent; an invalid one is charged below.
            if await self._audio_acked(message.received):
                return
            message, error = None, ErrorCode.BAD_MESSAGE
        assert self.inbound is not None  # set before the socket was accepted
        refusal = self.inbound.control()
        if refusal is not None:
            await self._refused(refusal)
            return
        if message is None:
            await self._client_error(error or ErrorCode.BAD_MESSAGE)
            return
        self.last_activity = time.monotonic()
        if self.supervisor is not None:
            self.supervisor.idle.browser_message(message)
        if isinstance(message, protocol.Ping):
            await self.send(text_data=protocol.encode(protocol.Pong()))
        elif isinstance(message, protocol.SessionStop):
            await self.end_session(None, CloseCode.NORMAL)
        elif self.voice is None or self.state in (State.CONNECTING, State.ERROR):
            await self._client_error(ErrorCode.NOT_READY)
        else:
            quota = self.supervisor.quota if self.supervisor else None
            error = await commands.apply(self, self.voice, self.history, message, quota)
            if error is not None:
                await self._client_error(error)

    async def _audio_acked(self, received: int) -> bool:
        """Apply the browser's ack: send the held audio that now fits. False if invalid."""
        if self.outbound is None:
            return False
        try:
            released = self.outbound.ack(received)
        except AckOutOfRange:
            return False
        for pcm in released:
            await self._send_audio_now(pcm)
        return True

    async def _refused(self, refusal: Refusal) -> None:
        """A frame over a limit: say so while the budget lasts, then close with 4400."""
        if refusal.close:
            await self.end_session(refusal.code, CloseCode.PROTOCOL_VIOLATION)
        else:
            await self._client_error(refusal.code)

    async def _supervised(self, work: Coroutine[Any, Any, None], what: str) -> None:
        """Run one of the session's own tasks; an exception ends the session, visibly."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._failed(what, exc)

    async def _failed(self, what: str, exc: Exception) -> None:
        """A bug or an unexpected library error: log it once, count it, end with a code."""
        metrics.UPSTREAM_ERRORS.labels(kind="internal").inc()
        logger.error(
            "voice session %s: %s failed (%s)",
            self.session_id,
            what,
            type(exc).__name__,
            exc_info=exc,
        )
        await self.end_session(ErrorCode.INTERNAL, CloseCode.UPSTREAM_UNAVAILABLE)

    async def _client_error(self, code: ErrorCode) -> None:
        metrics.CLIENT_ERRORS.labels(code=code.value).inc()
        if self.inbound is None or self.inbound.error_reply():
            await self.send(text_data=protocol.encode(protocol.error(code)))

    # ------------------------------------------------------------------ SessionSink

    async def send_message(self, message: protocol.ServerMessage) -> None:
        """Send a control message to the browser (and copy it to monitors)."""
        if self.ended and not isinstance(message, protocol.Error):
            return
        text = protocol.encode(message)
        await self.send(text_data=text)
        if self.supervisor is not None:
            self.supervisor.idle.observe(message, self.voice.audio_out_bytes if self.voice else 0)
        if self.history is not None:
            self.history.outgoing(message)
        fanout = self.supervisor.fanout if self.supervisor else None
        if fanout is not None:
            fanout.publish_text(text)

    async def clear_playback(self) -> None:
        """Tell the browser to drop the assistant audio it has not played yet.

        The browser drops what it holds; what it has not even received yet is dropped here.
        """
        if not self.ended and self.outbound is not None:
            self.outbound.clear()
        await self.send_message(protocol.PlaybackClear())

    async def send_audio(self, pcm: bytes) -> None:
        """Send assistant audio to the browser (and copy it to monitors that listen)."""
        if self.ended or self.outbound is None:
            return
        try:
            if not self.outbound.offer(pcm):
                return  # held until the browser acknowledges what it has
        except BacklogFull:
            metrics.AUDIO_DROPPED.labels(reason="client_backlog").inc()
            logger.warning("voice session %s: the browser fell too far behind", self.session_id)
            await self.end_session(ErrorCode.CLIENT_TOO_SLOW, CloseCode.CLIENT_TOO_SLOW)
            return
        await self._send_audio_now(pcm)

    async def _send_audio_now(self, pcm: bytes) -> None:
        await self.send(bytes_data=pcm)
        AUDIO_OUT_FRAMES.inc()
        AUDIO_OUT_BYTES.inc(len(pcm))
        fanout = self.supervisor.fanout if self.supervisor else None
        if fanout is not None:
            fanout.publish_audio(ASSISTANT_AUDIO, pcm)

    async def set_state(self, state: State) -> None:
        """Show a state change in the browser."""
        self.state = state
        await self.send_message(protocol.StateChanged(state=state))

    async def upstream_lost(self, code: ErrorCode) -> None:
        """Voice Live ended under us: say so, and close."""
        await self.end_session(code, CloseCode.UPSTREAM_UNAVAILABLE)

    def response_usage(self, response_id: str, usage: Any) -> None:
        """A reply ended with the upstream's usage: into the session's history."""
        if self.history is not None:
            self.history.response_usage(response_id, usage)

    # ------------------------------------------------------------------ close

    async def end_session(
        self, code: ErrorCode | None, close_code: CloseCode, *, error: protocol.Error | None = None
    ) -> None:
        """Tell the browser why (if it is an error: ``error``, else the code's), and close."""
        if self.ended:
            return
        self.ended = True
        if self.history is not None:
            self.history.end(code.value if code else "stopped")
        metrics.SESSIONS_ENDED.labels(reason=code.value if code else "normal").inc()
        with contextlib.suppress(Exception):
            if code is not None:
                await self.send(text_data=protocol.encode(error or protocol.error(code)))
                ending = State.STOPPED if code in CLEAN_END_CODES else State.ERROR
                await self.send(text_data=protocol.encode(protocol.StateChanged(state=ending)))
            else:
                await self.send(
                    text_data=protocol.encode(protocol.StateChanged(state=State.STOPPED))
                )
            await self.close(code=int(close_code))
        # Release now rather than when the browser acknowledges the close.
        await self._release(close_code)

    async def disconnect(self, code: int) -> None:
        """Called when the browser's socket closed: release everything, within bounded time."""
        if self.session_id is not None and not self.ended:
            # Closed by the browser, or lost (1006: e.g. dropped by Daphne's keepalive ping).
            reason = "connection_lost" if code == 1006 else "browser_closed"
            metrics.SESSIONS_ENDED.labels(reason=reason).inc()
            if self.history is not None:
                self.history.end(reason)
        self.ended = True
        await self._release(code)

    async def _release(self, code: int) -> None:
        """Let go of everything the session holds, once (consumers/release.py)."""
        if self.membership is None or self.released:
            return
        self.released = True
        await release_session(self, self.membership, code)
