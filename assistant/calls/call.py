"""One browser's live voice call, from the handshake to the release.

:class:`Call` owns the call: admission, the claim of its registry row, its supervisor (control
messages, timers, the heartbeat's orders), the upstream Voice Live session, history, quota,
talk modes, tools and the release. It reaches the browser only through its
:class:`~assistant.calls.ports.CallTransport` (the websocket consumer), so a feature plugs in
here without touching the consumer.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Coroutine
from typing import Any, ClassVar

from django.conf import settings
from django.db import DatabaseError

from assistant import metrics, protocol, services
from assistant.calls import talk_modes
from assistant.calls.commands import CallCommands
from assistant.calls.inbound import InboundLimits, Refusal
from assistant.calls.output import CallOutput
from assistant.calls.ports import CallTransport
from assistant.calls.release import release_call
from assistant.calls.supervisor import CallSupervisor
from assistant.calls.tracing import call_tracing_start, failure
from assistant.codes import (
    CLEAN_END_CODES,
    ENDINGS,
    ClientError,
    CloseCode,
    Ending,
    ErrorCode,
    State,
)
from assistant.history.live import SessionHistory, session_history_start
from assistant.history.quotas import LiveQuota, handshake_refusal
from assistant.history.resume import Resume, aresume_load, requested_resume
from assistant.live import registry
from assistant.live.admission import (
    admit,
    requested_draft,
    requested_profile_id,
    upstream_settings,
)
from assistant.live.control import ControlSubscription
from assistant.live.layer import layer_send
from assistant.live.worker import Membership, PendingSlot, worker
from assistant.protocol import USER_AUDIO
from assistant.telemetry.call_trace import CallTrace
from assistant.tools.live import SessionToolExecutor, requested_time_zone
from assistant.voicelive.config import SessionConfig
from assistant.voicelive.session import VoiceLiveSession
from assistant.voicelive.upstream import VoiceLiveUnavailable

logger = logging.getLogger(__name__)

AUDIO_IN_FRAMES = metrics.AUDIO_FRAMES.labels(direction="in")
AUDIO_IN_BYTES = metrics.AUDIO_BYTES.labels(direction="in")


class Call:
    """One browser's live conversation: one websocket, one Voice Live session.

    Args:
        transport: the browser's socket.
        scope: the websocket's scope (the user, the login session, the query string).
        channel_layer: the layer control messages arrive on (None: no layer).
        channel_name: this call's channel on it.
    """

    #: Builds the Voice Live session; tests replace it with a fake.
    voice_factory: ClassVar[Any] = VoiceLiveSession

    def __init__(
        self, transport: CallTransport, scope: Any, *, channel_layer: Any, channel_name: str
    ) -> None:
        self._transport = transport
        self.scope = scope
        self._layer = channel_layer
        self._channel = channel_name
        # Everything but ``state`` and ``ended`` stays None (and the release has nothing to
        # do) unless the socket was accepted as a live call.
        self.session_id: uuid.UUID | None = None
        self.membership: Membership | None = None
        self.supervisor: CallSupervisor | None = None
        self.control: ControlSubscription | None = None
        self.voice: VoiceLiveSession | None = None
        self.history: SessionHistory | None = None
        self.quota: LiveQuota | None = None
        self.inbound: InboundLimits | None = None
        self.trace: CallTrace | None = None
        self.output = CallOutput(self, transport)
        self.commands = CallCommands(self)
        self.start_task: asyncio.Task[None] | None = None
        self.timer_task: asyncio.Task[None] | None = None
        self.state = State.CONNECTING
        self.ended = False
        self.released = False
        self.last_activity = 0.0

    # ------------------------------------------------------------------ open

    async def open(self) -> None:
        """Admit the user, claim a live-session slot, then start the upstream in the background."""
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            metrics.SESSIONS_REFUSED.labels(reason="unauthenticated").inc()
            # Refused at the handshake: no websocket, no upstream.
            await self._transport.close(int(CloseCode.UNAUTHENTICATED))
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
            await self._claim(user, slot)

    async def _claim(self, user: Any, slot: PendingSlot) -> None:
        query = self.scope.get("query_string", b"")
        try:
            config = await services.aprofile_config_get(
                user=user, profile_id=requested_profile_id(query), draft=requested_draft(query)
            )
            resume = await aresume_load(
                user_id=user.pk,
                raw=requested_resume(query),
                max_items=upstream_settings().history_items,
            )
            # Staff trying a draft are never held to (nor counted against) a quota.
            over_quota = None if config.is_draft else await handshake_refusal(user.pk)
            if over_quota is not None:
                await self._refuse(ErrorCode.QUOTA_EXCEEDED, CloseCode.QUOTA_EXCEEDED, over_quota)
                return
            claim = await registry.asession_claim(
                user_id=user.pk, profile_id=config.profile_id, channel_name=self._channel
            )
        except ClientError as exc:
            await self._refuse(exc.code, CloseCode.FORBIDDEN)
            return
        except DatabaseError as exc:
            await self._database_failed(exc)
            return
        if claim.refused or claim.session_id is None:
            await self._refuse(ErrorCode.TOO_MANY_SESSIONS, CloseCode.TOO_MANY_SESSIONS)
            return
        for _, channel in claim.replaced:
            await layer_send(self._layer, channel, protocol.session_end(Ending.REPLACED))
        await self._begin(user, slot, claim.session_id, config, resume)

    async def _begin(
        self,
        user: Any,
        slot: PendingSlot,
        session_id: uuid.UUID,
        config: SessionConfig,
        resume: Resume | None,
    ) -> None:
        self.session_id = session_id
        # Before any task of the call exists: they inherit its log context and span.
        self.trace = call_tracing_start(session_id, user.pk, config)
        self.membership = Membership(session_id)
        self.last_activity = time.monotonic()
        self.supervisor = CallSupervisor(
            self, session_id=session_id, scope=self.scope, channel_layer=self._layer
        )
        self.inbound = InboundLimits(
            control_per_minute=settings.VOICE_CONTROL_MESSAGES_PER_MINUTE,
            audio_rate_limit=settings.VOICE_AUDIO_RATE_LIMIT,
            frames_per_second=settings.VOICE_AUDIO_FRAMES_PER_SECOND,
            max_frame_bytes=settings.VOICE_MAX_AUDIO_FRAME_BYTES,
        )
        await self._transport.accept()
        # No await from here to the heartbeat's join: the slot becomes the call at once.
        self.membership.join(self, self.supervisor, slot)
        metrics.SESSIONS_STARTED.inc()
        logger.info("voice session %s started for user %s", session_id, user.pk)
        await self.output.set_state(State.CONNECTING)
        self.control = ControlSubscription(self._layer, self._channel, self.supervisor.on_control)
        await self.control.start(
            [registry.user_group(user.pk), services.profile_group(config.profile_id)]
        )
        if self.ended or self.supervisor.end_pending:
            # Ended, or asked to end, while joining its groups (a drain, an end request the
            # heartbeat or the layer brought): starting the upstream now would leave it open.
            return
        query = self.scope.get("query_string", b"")
        tools = SessionToolExecutor(self, user=user, time_zone=requested_time_zone(query))
        self.voice = self.voice_factory(
            config=config, upstream=upstream_settings(), sink=self.output, tools=tools
        )
        if self.trace is not None:
            self.voice.connection_observer = self.trace.connection
        self.history = session_history_start(session_id, user.pk, config, self.voice, resume)
        if not config.is_draft:
            self.quota = LiveQuota(
                self, history=self.history, user_id=user.pk, session_id=session_id
            )
        self.start_task = asyncio.create_task(self._start_voice(config, resume))
        self.timer_task = asyncio.create_task(self._supervised(self.supervisor.run(), "heartbeat"))

    async def _database_failed(self, exc: DatabaseError) -> None:
        """The database failed before the call began (locked, gone): retryable, not a 500."""
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
        await self._transport.accept()
        await self._transport.send_text(protocol.encode(error or protocol.error(code)))
        await self._transport.close(int(close_code))

    async def _start_voice(self, config: SessionConfig, resume: Resume | None) -> None:
        assert self.voice is not None
        try:
            await self.voice.start()
        except VoiceLiveUnavailable as exc:
            # Logged and counted where it was raised; the page gets its stable code.
            await self.end(Ending.UPSTREAM_LOST, error=protocol.error(exc.code))
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

    # ------------------------------------------------------------------ browser -> call

    async def audio_in(self, pcm: bytes) -> None:
        """A frame of the user's audio: straight to the upstream, never via the layer."""
        if self.ended or self.inbound is None:
            return
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

    async def text_in(self, text: str) -> None:
        """A control message: validated, charged to the budget, then dispatched by type."""
        if self.ended or self.inbound is None:
            return
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
            if await self.output.audio_acked(message.received):
                return
            message, error = None, ErrorCode.BAD_MESSAGE
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
        error = await self.commands.dispatch(message)
        if error is not None:
            await self._client_error(error)

    async def _refused(self, refusal: Refusal) -> None:
        """A frame over a limit: say so while the budget lasts, then close with 4400."""
        if refusal.close:
            await self.end(Ending.PROTOCOL_VIOLATION, error=protocol.error(refusal.code))
        else:
            await self._client_error(refusal.code)

    async def _client_error(self, code: ErrorCode) -> None:
        metrics.CLIENT_ERRORS.labels(code=code.value).inc()
        if self.inbound is None or self.inbound.error_reply():
            await self.answer(protocol.error(code))

    # ------------------------------------------------------------------ call -> browser

    async def answer(self, message: protocol.ServerMessage) -> None:
        """Send ``message`` to the browser alone (not to monitors or the history)."""
        await self._transport.send_text(protocol.encode(message))

    async def send_message(self, message: protocol.ServerMessage) -> None:
        """Send a control message to the browser (and to what observes the call)."""
        await self.output.send_message(message)

    async def clear_playback(self) -> None:
        """Tell the browser to drop the assistant audio it has not played yet."""
        await self.output.clear_playback()

    # ------------------------------------------------------------------ the end

    async def _supervised(self, work: Coroutine[Any, Any, None], what: str) -> None:
        """Run one of the call's own tasks; an exception ends the call, visibly."""
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
        await self.end(Ending.INTERNAL)

    async def end(self, ending: Ending, *, error: protocol.Error | None = None) -> None:
        """Tell the browser why (``error``, else the ending's own), close, and let go."""
        if self.ended:
            return
        self.ended = True
        code, close_code = ENDINGS[ending]
        if error is not None:
            code = error.code
        if self.voice is not None:
            self.voice.finish_turn()  # timed while its history still records
        if self.history is not None:
            self.history.end(code.value if code else "stopped")
        if self.trace is not None:
            self.trace.end(ending.value, error=failure(ending, code))
        metrics.SESSIONS_ENDED.labels(reason=code.value if code else "normal").inc()
        try:
            if code is not None:
                await self.answer(error or protocol.error(code))
                state = State.STOPPED if code in CLEAN_END_CODES else State.ERROR
            else:
                state = State.STOPPED
            await self.answer(protocol.StateChanged(state=state))
            await self._transport.close(int(close_code))
        except Exception as exc:  # the socket is gone: the release matters more
            logger.debug("voice session %s: closing failed (%s)", self.session_id, exc)
        # Release now rather than when the browser acknowledges the close.
        await self._release(close_code)

    async def transport_closed(self, code: int) -> None:
        """The browser's socket closed: release everything, within bounded time."""
        if self.session_id is not None and not self.ended:
            # Closed by the browser, or lost (1006: e.g. dropped by Daphne's keepalive ping).
            ending = Ending.CONNECTION_LOST if code == CloseCode.ABNORMAL else Ending.BROWSER_CLOSED
            metrics.SESSIONS_ENDED.labels(reason=ending.value).inc()
            if self.voice is not None:
                self.voice.finish_turn()
            if self.history is not None:
                self.history.end(ending.value)
            if self.trace is not None:
                self.trace.end(ending.value, error=failure(ending, None))
        self.ended = True
        await self._release(code)

    async def _release(self, code: int) -> None:
        """Let go of everything the call holds, once (assistant/calls/release.py)."""
        if self.membership is None or self.released:
            return
        self.released = True
        await release_call(self, self.membership, code)
