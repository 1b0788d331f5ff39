"""What keeps a live voice session in line besides its own frames.

Control messages from other workers and admins (via the channel layer: end, profile changed,
monitors), the session's timer (maximum duration, idle timeout, rollover), what the worker's
heartbeat task reads and tells (the registry beat, end requests found in the registry) and
what the worker's checks task asks and answers (the quota, the login's re-validation).
:class:`SessionSupervisor` does all of it for one session, through the small
:class:`Supervised` interface the voice consumer offers.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings

from assistant import protocol, services
from assistant.codes import CloseCode, ErrorCode, State
from assistant.consumers.checks import LoginRequest, session_checks
from assistant.consumers.idle import IdleWatch, idle_step
from assistant.consumers.talk_modes import turn_mode_message
from assistant.history.usage import Usage
from assistant.live import registry
from assistant.live.fanout import MonitorFanout
from assistant.protocol import EndReason
from assistant.voicelive.session import VoiceLiveSession
from assistant.voicelive.talk_modes import carry_over

if TYPE_CHECKING:
    from assistant.history.ledger import QuotaCheck
    from assistant.history.quotas import LiveQuota, QuotaRequest

logger = logging.getLogger(__name__)

END_REASONS: dict[str, tuple[ErrorCode, CloseCode]] = {
    EndReason.REPLACED: (ErrorCode.SESSION_REPLACED, CloseCode.SESSION_REPLACED),
    EndReason.TERMINATED: (ErrorCode.TERMINATED, CloseCode.TERMINATED),
    EndReason.LOGOUT: (ErrorCode.TERMINATED, CloseCode.UNAUTHENTICATED),
    EndReason.GONE: (ErrorCode.TERMINATED, CloseCode.TERMINATED),
}


class Supervised(Protocol):
    """The live session a supervisor keeps in line (the voice consumer)."""

    voice: VoiceLiveSession | None
    state: State
    ended: bool
    last_activity: float

    async def end_session(self, code: ErrorCode | None, close_code: CloseCode) -> None:
        """Tell the browser why (if it is an error), and close."""

    async def send_message(self, message: protocol.ServerMessage) -> None:
        """Send a control message to the browser."""


class SessionSupervisor:
    """Control messages, the timer and the heartbeat's orders of one voice session.

    Args:
        session: the session it supervises.
        session_id: the session's registry id.
        scope: the websocket's scope (the user and the login session).
        channel_layer: the layer monitors are reached through (None: no monitors).
    """

    def __init__(
        self, session: Supervised, *, session_id: uuid.UUID, scope: Any, channel_layer: Any
    ) -> None:
        self._session = session
        self.session_id = session_id
        self._scope = scope
        self._layer = channel_layer
        self.started_at = time.monotonic()
        #: Copies of the session for its monitors, from the first one that attaches.
        self.fanout: MonitorFanout | None = None
        #: The profile's idle handling (check in, then end); see assistant/consumers/idle.py.
        self.idle = IdleWatch()
        # Started from the worker's heartbeat (sync callbacks); the consumer's release cancels
        # them with its own tasks (:meth:`tasks`).
        self._registry_profile_task: asyncio.Task[None] | None = None
        self._registry_end_task: asyncio.Task[None] | None = None
        #: Re-checks the user's quota on every tick (set by the consumer; None: not checked).
        self.quota: LiveQuota | None = None
        # The login was checked at the handshake; the worker's checks re-validate it from here.
        self._last_validated = time.monotonic()
        self._revalidate_every = settings.VOICE_REVALIDATE_SECONDS
        self._login_end_task: asyncio.Task[None] | None = None

    def tasks(self) -> list[asyncio.Task[None]]:
        """The tasks this supervisor started that may still run."""
        quota_end = self.quota.ending if self.quota is not None else None
        owned = (
            self._registry_profile_task,
            self._registry_end_task,
            self._login_end_task,
            quota_end,
        )
        return [t for t in owned if t is not None]

    # ------------------------------------------------------------------ control (layer)

    async def on_control(self, message: dict[str, Any]) -> None:
        """A control message from another worker or the admin, via the channel layer."""
        kind = message.get("type")
        if kind == protocol.SESSION_END:
            code, close_code = END_REASONS.get(
                message.get("reason", ""), END_REASONS[EndReason.GONE]
            )
            await self._session.end_session(code, close_code)
        elif kind == protocol.PROFILE_CHANGED:
            await self._apply_profile_change()
        elif kind == protocol.MONITOR_ATTACH:
            self._monitor_attach(message["reply_channel"], audio=bool(message.get("audio")))
        elif kind == protocol.MONITOR_DETACH and self.fanout is not None:
            self.fanout.detach(message["reply_channel"])

    def _monitor_attach(self, channel: str, *, audio: bool) -> None:
        """Copy this session to a monitor's channel (once per monitor, whichever path came)."""
        if self._layer is None:
            return
        if self.fanout is None:
            self.fanout = MonitorFanout(self._layer)
        if channel in self.fanout.observers:
            return
        self.fanout.attach(channel, audio=audio, greeting=self._monitor_greeting)

    def _monitor_greeting(self) -> str:
        """``monitor.attached`` as of now (built when the fanout delivers it)."""
        user = self._scope["user"]
        assert user is not None
        voice = self._session.voice
        return protocol.encode(
            protocol.MonitorAttached(
                session_id=str(self.session_id),
                username=user.get_username(),
                profile=voice.config.profile_name if voice else "",
                state=self._session.state,
            )
        )

    async def _apply_profile_change(self) -> None:
        voice = self._session.voice
        if voice is None:
            return
        config = await services.aprofile_config_reload(profile_id=voice.config.profile_id)
        if config is None:
            await self._session.end_session(ErrorCode.PROFILE_UNAVAILABLE, CloseCode.FORBIDDEN)
            return
        if config.profile_version and config.profile_version == voice.config.profile_version:
            return  # already applied (the heartbeat's slow path came before the layer message)
        await voice.update_config(carry_over(voice.config, config))
        await self._session.send_message(
            protocol.ProfileUpdated(profile={"id": config.profile_id, "name": config.profile_name})
        )
        await self._session.send_message(turn_mode_message(voice.config))

    # ------------------------------------------------------------------ timer

    async def run(self) -> None:
        """Enforce the session's timeouts and roll over, on a timer; checked meanwhile.

        The registry row is written by the worker's heartbeat task (assistant/live/beats.py),
        the quota and the login are checked by the worker's checks task
        (assistant/consumers/checks.py): no database work of its own here.
        """
        session = self._session
        period = settings.VOICE_HEARTBEAT_SECONDS
        session_checks.join(self.session_id, self)
        try:
            # Spread over the period: sessions started together (a reconnect storm after a
            # deploy) would otherwise all do their checks in the same instant.
            first = period * random.uniform(0.2, 1.0)  # noqa: S311 - jitter, not security
            while not session.ended:
                await asyncio.sleep(first if first else self._timer_sleep(period))
                first = 0.0
                if await idle_step(self.idle, session):
                    return
                now = time.monotonic()
                if now - self.started_at > settings.VOICE_MAX_SESSION_SECONDS:
                    await session.end_session(ErrorCode.SESSION_EXPIRED, CloseCode.TERMINATED)
                    return
                if now - session.last_activity > settings.VOICE_IDLE_TIMEOUT_SECONDS:
                    await session.end_session(ErrorCode.IDLE_TIMEOUT, CloseCode.IDLE_TIMEOUT)
                    return
                voice = session.voice
                if voice is not None and voice.rollover_due():
                    voice.begin_rollover()
        finally:
            session_checks.leave(self.session_id)

    def _timer_sleep(self, period: float) -> float:
        """The timer's period, shorter when idle handling is due sooner."""
        voice = self._session.voice
        return self.idle.sleep_for(voice.config if voice else None, period)

    # ------------------------------------------------------------------ checks (Checked)

    def quota_request(self) -> QuotaRequest | None:
        """The quota question for the worker's checks tick; None: not due or no quota watch."""
        return self.quota.request() if self.quota is not None else None

    def login_request(self) -> LoginRequest | None:
        """The login to re-validate on this tick, every ``VOICE_REVALIDATE_SECONDS``."""
        now = time.monotonic()
        # Within a tenth of a tick counts as due: ticks are one period apart, give or take
        # a few ms, and a check put off by a whole tick would come a period late.
        slack = settings.VOICE_HEARTBEAT_SECONDS * 0.1
        if self._session.ended or now - self._last_validated + slack < self._revalidate_every:
            return None
        self._last_validated = now
        login = self._scope.get("session")
        user = self._scope["user"]
        return LoginRequest(
            session_key=(login.session_key if login is not None else None) or "",
            user_id=user.pk if user else None,
        )

    async def checked(self, quota: QuotaCheck | None, login_valid: bool | None) -> None:
        """The checks tick's answers: a login gone ends the call (4401); then the quota's."""
        if self._session.ended:
            return
        if login_valid is False:
            if self._login_end_task is None:
                self._login_end_task = asyncio.create_task(
                    self._session.end_session(ErrorCode.TERMINATED, CloseCode.UNAUTHENTICATED)
                )
            return
        if quota is not None and self.quota is not None:
            await self.quota.apply(quota)

    # ------------------------------------------------------------------ heartbeat (BeatSource)

    def beat(self) -> registry.Beat:
        """What this session's registry row says now."""
        used = Usage.of(self._session.voice)
        return registry.Beat(
            session_id=self.session_id,
            state=self._session.state.value,
            audio_in_seconds=used.audio_in_seconds,
            audio_out_seconds=used.audio_out_seconds,
            typed_seconds=used.typed_seconds,
        )

    def registry_orders(self, orders: registry.Orders, read_at: float) -> None:
        """The heartbeat's read of the registry: the slow path of lost layer messages.

        A profile saved since this session loaded it is applied; monitors recorded in the
        registry are attached, and monitors gone from it (attached before the read began, so
        not merely newer than it) are detached.
        """
        if self._session.ended:
            return
        voice = self._session.voice
        running = self._registry_profile_task
        if (
            voice is not None
            and orders.profile_version
            and orders.profile_version != voice.config.profile_version
            and (running is None or running.done())
        ):
            self._registry_profile_task = asyncio.create_task(self._profile_change_from_registry())
        for channel, audio in orders.monitors.items():
            self._monitor_attach(channel, audio=audio)
        if self.fanout is not None:
            for channel in self.fanout.attached_before(read_at):
                if channel not in orders.monitors:
                    self.fanout.detach(channel)

    async def _profile_change_from_registry(self) -> None:
        """Apply a profile change found by the heartbeat; a database hiccup waits for the next."""
        try:
            await self._apply_profile_change()
        except Exception as exc:
            logger.warning(
                "voice session %s: profile change from the registry failed (%s); retried next beat",
                self.session_id,
                type(exc).__name__,
            )

    def registry_says_end(self, reason: str) -> None:
        """An end request that arrived through the registry (the layer message may be lost)."""
        if self._session.ended:
            return
        code, close_code = END_REASONS.get(reason, END_REASONS[EndReason.GONE])
        self._registry_end_task = asyncio.create_task(self._session.end_session(code, close_code))
