"""What keeps a live call in line besides its own frames.

Control messages from other workers and admins (via the channel layer: end, profile changed,
monitors), the session's timer (maximum duration, idle timeout, rollover), what the worker's
heartbeat task reads and tells (the registry beat, end requests found in the registry) and
what the worker's checks task asks and answers (the quota, the login's re-validation).
:class:`CallSupervisor` does all of it for one call, through the small
:class:`Supervised` interface the call offers.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from typing import Any, Protocol

from django.conf import settings

from assistant import protocol, services
from assistant.calls.checks import LoginRequest, session_checks
from assistant.calls.idle import IdleWatch, idle_step
from assistant.calls.talk_modes import turn_mode_message
from assistant.codes import REQUESTED_ENDINGS, Ending, State
from assistant.history.ledger import QuotaCheck
from assistant.history.quotas import LiveQuota, QuotaRequest
from assistant.history.usage import Usage
from assistant.live import registry
from assistant.live.fanout import MonitorFanout
from assistant.protocol.dispatch import handlers
from assistant.voicelive.session import VoiceLiveSession
from assistant.voicelive.talk_modes import carry_over

logger = logging.getLogger(__name__)

#: The channel layer's control messages, each handled by the method of its name.
CONTROL_TYPES = (
    protocol.SESSION_END,
    protocol.PROFILE_CHANGED,
    protocol.MONITOR_ATTACH,
    protocol.MONITOR_DETACH,
)


def requested_ending(reason: str) -> Ending:
    """The ending a ``session.end`` or a registry row asks for (unknown: the row is gone)."""
    try:
        ending = Ending(reason)
    except ValueError:
        return Ending.GONE
    return ending if ending in REQUESTED_ENDINGS else Ending.GONE


class Supervised(Protocol):
    """The call a supervisor keeps in line."""

    voice: VoiceLiveSession | None
    quota: LiveQuota | None
    state: State
    ended: bool
    last_activity: float

    async def end(self, ending: Ending) -> None:
        """Tell the browser why, close, and let go."""

    async def send_message(self, message: protocol.ServerMessage) -> None:
        """Send a control message to the browser."""


class CallSupervisor:
    """Control messages, the timer and the heartbeat's orders of one call.

    Args:
        call: the call it supervises.
        session_id: the session's registry id.
        scope: the websocket's scope (the user and the login session).
        channel_layer: the layer monitors are reached through (None: no monitors).
    """

    def __init__(
        self, call: Supervised, *, session_id: uuid.UUID, scope: Any, channel_layer: Any
    ) -> None:
        self._call = call
        self.session_id = session_id
        self._scope = scope
        self._layer = channel_layer
        self.started_at = time.monotonic()
        #: Copies of the session for its monitors, from the first one that attaches.
        self.fanout: MonitorFanout | None = None
        #: The profile's idle handling (check in, then end); see assistant/calls/idle.py.
        self.idle = IdleWatch()
        self._control_handlers = handlers(self, CONTROL_TYPES)
        # Started from the worker's heartbeat (sync callbacks); the call's release cancels
        # them with its own tasks (:meth:`tasks`).
        self._registry_profile_task: asyncio.Task[None] | None = None
        # An end request (the layer's or the registry's) runs in a task of its own, so the
        # release never waits on, or cancels, the task that delivered the request.
        self._end_task: asyncio.Task[None] | None = None
        # The login was checked at the handshake; the worker's checks re-validate it from here.
        self._last_validated = time.monotonic()
        self._revalidate_every = settings.VOICE_REVALIDATE_SECONDS
        self._login_end_task: asyncio.Task[None] | None = None

    def tasks(self) -> list[asyncio.Task[None]]:
        """The tasks this supervisor started that may still run."""
        quota_end = self._call.quota.ending if self._call.quota is not None else None
        owned = (
            self._registry_profile_task,
            self._end_task,
            self._login_end_task,
            quota_end,
        )
        return [t for t in owned if t is not None]

    # ------------------------------------------------------------------ control (layer)

    async def on_control(self, message: dict[str, Any]) -> None:
        """A control message from another worker or the admin, via the channel layer.

        Dispatched by type to the method of its name (``session.end`` -> :meth:`session_end`).
        """
        handler = self._control_handlers.get(str(message.get("type")))
        if handler is None:
            logger.warning("voice session %s: unknown control message ignored", self.session_id)
            return
        await handler(message)

    async def session_end(self, message: dict[str, Any]) -> None:
        """``session.end``: an admin's Terminate, a takeover, a logout."""
        self.end_requested(str(message.get("reason", "")))

    async def profile_changed(self, message: dict[str, Any]) -> None:
        """``profile.changed``: an admin saved the call's profile."""
        await self._apply_profile_change()

    async def monitor_attach(self, message: dict[str, Any]) -> None:
        """``monitor.attach``: a staff monitor wants copies of this call."""
        self._monitor_attach(message["reply_channel"], audio=bool(message.get("audio")))

    async def monitor_detach(self, message: dict[str, Any]) -> None:
        """``monitor.detach``: that monitor is gone."""
        if self.fanout is not None:
            self.fanout.detach(message["reply_channel"])

    @property
    def end_pending(self) -> bool:
        """True once an end was requested (its task may not have run yet)."""
        return self._end_task is not None

    def end_requested(self, reason: str) -> None:
        """End the call as asked (once), in a task of the supervisor's own."""
        if self._call.ended or self._end_task is not None:
            return
        self._end_task = asyncio.create_task(self._call.end(requested_ending(reason)))

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
        voice = self._call.voice
        return protocol.encode(
            protocol.MonitorAttached(
                session_id=str(self.session_id),
                username=user.get_username(),
                profile=voice.config.profile_name if voice else "",
                state=self._call.state,
            )
        )

    async def _apply_profile_change(self) -> None:
        voice = self._call.voice
        if voice is None:
            return
        config = await services.aprofile_config_reload(
            profile_id=voice.config.profile_id, draft=voice.config.is_draft
        )
        if config is None:
            await self._call.end(Ending.PROFILE_UNAVAILABLE)
            return
        if config.profile_version and config.profile_version == voice.config.profile_version:
            return  # already applied (the heartbeat's slow path came before the layer message)
        await voice.update_config(carry_over(voice.config, config))
        await self._call.send_message(
            protocol.ProfileUpdated(profile={"id": config.profile_id, "name": config.profile_name})
        )
        await self._call.send_message(turn_mode_message(voice.config))

    # ------------------------------------------------------------------ timer

    async def run(self) -> None:
        """Enforce the session's timeouts and roll over, on a timer; checked meanwhile.

        The registry row is written by the worker's heartbeat task (assistant/live/beats.py),
        the quota and the login are checked by the worker's checks task
        (assistant/calls/checks.py): no database work of its own here.
        """
        call = self._call
        period = settings.VOICE_HEARTBEAT_SECONDS
        session_checks.join(self.session_id, self)
        try:
            # Spread over the period: sessions started together (a reconnect storm after a
            # deploy) would otherwise all do their checks in the same instant.
            first = period * random.uniform(0.2, 1.0)  # noqa: S311 - jitter, not security
            while not call.ended:
                await asyncio.sleep(first if first else self._timer_sleep(period))
                first = 0.0
                if await idle_step(self.idle, call):
                    return
                now = time.monotonic()
                if now - self.started_at > settings.VOICE_MAX_SESSION_SECONDS:
                    await call.end(Ending.EXPIRED)
                    return
                if now - call.last_activity > settings.VOICE_IDLE_TIMEOUT_SECONDS:
                    await call.end(Ending.IDLE_TIMEOUT)
                    return
                voice = call.voice
                if voice is not None and voice.rollover_due():
                    voice.begin_rollover()
        finally:
            session_checks.leave(self.session_id)

    def _timer_sleep(self, period: float) -> float:
        """The timer's period, shorter when idle handling is due sooner."""
        voice = self._call.voice
        return self.idle.sleep_for(voice.config if voice else None, period)

    # ------------------------------------------------------------------ checks (Checked)

    def quota_request(self) -> QuotaRequest | None:
        """The quota question for the worker's checks tick; None: not due or no quota watch."""
        return self._call.quota.request() if self._call.quota is not None else None

    def login_request(self) -> LoginRequest | None:
        """The login to re-validate on this tick, every ``VOICE_REVALIDATE_SECONDS``."""
        now = time.monotonic()
        # Within a tenth of a tick counts as due: ticks are one period apart, give or take
        # a few ms, and a check put off by a whole tick would come a period late.
        slack = settings.VOICE_HEARTBEAT_SECONDS * 0.1
        if self._call.ended or now - self._last_validated + slack < self._revalidate_every:
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
        if self._call.ended:
            return
        if login_valid is False:
            if self._login_end_task is None:
                self._login_end_task = asyncio.create_task(self._call.end(Ending.LOGOUT))
            return
        if quota is not None and self._call.quota is not None:
            await self._call.quota.apply(quota)

    # ------------------------------------------------------------------ heartbeat (BeatSource)

    def beat(self) -> registry.Beat:
        """What this session's registry row says now."""
        used = Usage.of(self._call.voice)
        return registry.Beat(
            session_id=self.session_id,
            state=self._call.state.value,
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
        if self._call.ended:
            return
        voice = self._call.voice
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
        self.end_requested(reason)
