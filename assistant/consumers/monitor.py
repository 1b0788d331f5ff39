"""``/ws/monitor/<session_id>/``: staff follow a session held by any worker.

The session's worker sends copies of it through the channel layer (``assistant/live/fanout.py``);
this consumer only relays them to the monitoring browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from django.conf import settings

from assistant import protocol
from assistant.codes import MONITOR_ENDINGS, CloseCode, MonitorEnding
from assistant.consumers.socket import SupervisedConsumer
from assistant.live import registry
from assistant.live.admission import MONITOR_PERMISSION, monitor_refusal
from assistant.live.control import ControlSubscription
from assistant.live.layer import layer_send
from assistant.models import LiveSession
from assistant.protocol import (
    MONITOR_AUDIO,
    MONITOR_ENDED,
    MONITOR_TEXT,
)

logger = logging.getLogger(__name__)


def monitor_ending(reason: object) -> MonitorEnding:
    """The ending a ``monitor.ended`` layer message names (a call's own ending: ENDED)."""
    try:
        return MonitorEnding(str(reason))
    except ValueError:
        return MonitorEnding.ENDED


class MonitorConsumer(SupervisedConsumer):
    """``/ws/monitor/<session_id>/``: a staff member follows one live session.

    Held to the rules of a voice session: the channel layer is read through a supervised
    :class:`ControlSubscription` (a Redis outage does not end it), the monitor joins its user's
    group (logging out ends it, like the user's calls), and a timer re-validates the login,
    staff status and permission every ``VOICE_REVALIDATE_SECONDS`` (4401 / 4403).
    """

    control: ControlSubscription | None = None
    revalidate_task: asyncio.Task[None] | None = None
    target: str | None = None
    ended: bool = False

    async def connect(self) -> None:
        """Check permission, find the session and ask its worker to copy it to us."""
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=int(CloseCode.UNAUTHENTICATED))
            return
        if not (user.is_staff and await user.ahas_perm(MONITOR_PERMISSION)):
            await self.close(code=int(CloseCode.FORBIDDEN))
            return
        try:
            session_id = uuid.UUID(str(self.scope["url_route"]["kwargs"]["session_id"]))
        except ValueError:
            await self.close(code=int(CloseCode.FORBIDDEN))
            return
        row = await LiveSession.objects.filter(pk=session_id).afirst()
        if row is None or self.channel_layer is None:
            await self.accept()
            await self._end(MonitorEnding.NOT_FOUND)
            return
        self.target = row.channel_name
        await self.accept()
        self.control = ControlSubscription(self.channel_layer, self.channel_name, self.on_layer)
        await self.control.start([registry.user_group(user.pk)])
        self.revalidate_task = asyncio.create_task(self._revalidate())
        audio = bool(settings.VOICE_MONITOR_AUDIO)
        # The registry first: the session's heartbeat attaches us from it when the layer
        # message below is lost (and never detaches a monitor it has not read yet).
        try:
            attached = await registry.amonitor_attach(
                session_id=session_id, channel_name=self.channel_name, audio=audio
            )
        except Exception:
            # Not in the registry, the session's heartbeat would detach us again: try later.
            logger.warning("could not record a monitor in the registry")
            await self._end(MonitorEnding.UNREACHABLE)
            return
        if not attached:
            await self._end(MonitorEnding.NOT_FOUND)
            return
        # The registry is the slow path: the session attaches us on its next heartbeat.
        await layer_send(
            self.channel_layer,
            self.target,
            protocol.monitor_attach(self.channel_name, audio=audio),
            kind="monitor",
        )

    async def on_layer(self, message: dict[str, Any]) -> None:
        """A channel-layer message (the supervised subscription's handler)."""
        kind = message.get("type")
        if kind == MONITOR_TEXT:
            await self.send(text_data=message["text"])
        elif kind == MONITOR_AUDIO:
            await self.send(bytes_data=bytes([message["side"]]) + message["pcm"])
        elif kind == MONITOR_ENDED:
            await self._end(monitor_ending(message.get("reason")))
        elif kind == protocol.SESSION_END:
            # The monitoring admin logged out (their user group): as their own calls end.
            await self._end(MonitorEnding.LOGOUT)

    async def _revalidate(self) -> None:
        """Every VOICE_REVALIDATE_SECONDS: still logged in, active, staff and permitted?"""
        user = self.scope["user"]
        user_id = user.pk if user is not None else None
        while not self.ended:
            await asyncio.sleep(settings.VOICE_REVALIDATE_SECONDS)
            refusal = await monitor_refusal(session=self.scope.get("session"), user_id=user_id)
            if refusal is not None:
                await self._end(
                    MonitorEnding.LOGOUT
                    if refusal == CloseCode.UNAUTHENTICATED
                    else MonitorEnding.FORBIDDEN
                )
                return

    async def _end(self, ending: MonitorEnding) -> None:
        """Say why, then close (once) with the ending's close code."""
        if self.ended:
            return
        self.ended = True
        with contextlib.suppress(Exception):
            await self.send(text_data=protocol.encode(protocol.MonitorEnded(reason=ending)))
            await self.close(code=int(MONITOR_ENDINGS[ending]))

    async def disconnect(self, code: int) -> None:
        """Stop the timer and the subscription, detach from the session (best effort)."""
        self.ended = True
        task = self.revalidate_task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                async with asyncio.timeout(1.0):
                    await task
        if self.control is not None:
            await self.control.aclose()
        if self.target is None or self.channel_layer is None:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await registry.amonitor_detach(channel_name=self.channel_name)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await layer_send(
                    self.channel_layer,
                    self.target,
                    protocol.monitor_detach(self.channel_name),
                    kind="monitor",
                    quiet=True,
                )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Monitors are read-only; anything they send is ignored."""
