"""Live monitors: staff follow a session held by any worker, through the channel layer.

The talking session publishes copies of its messages into a bounded queue; a task of its own
sends them to the observers. A slow observer or a layer outage loses copies (counted), never
delays the talking user's audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.conf import settings

from assistant import metrics, protocol, registry
from assistant.admission import MONITOR_PERMISSION, monitor_refusal
from assistant.codes import CloseCode
from assistant.control import ControlSubscription, SupervisedConsumer
from assistant.layer import layer_send
from assistant.models import LiveSession
from assistant.protocol import (
    MONITOR_AUDIO,
    MONITOR_ENDED,
    MONITOR_TEXT,
    LayerMessage,
)

logger = logging.getLogger(__name__)

FANOUT_QUEUE = 256


class MonitorFanout:
    """Copies a session's output to the channels of its observers.

    Args:
        layer: the channel layer.
    """

    def __init__(self, layer: Any) -> None:
        self._layer = layer
        self.observers: dict[str, bool] = {}  # channel name -> wants audio
        self._attached_at: dict[str, float] = {}  # channel name -> time.monotonic()
        self._greetings: dict[str, Callable[[], str]] = {}  # observers not greeted yet
        self._queue: asyncio.Queue[LayerMessage | None] = asyncio.Queue(maxsize=FANOUT_QUEUE)
        self._task: asyncio.Task[None] | None = None

    def attach(
        self, channel_name: str, *, audio: bool, greeting: Callable[[], str] | None = None
    ) -> None:
        """Add an observer; the sending task starts with the first one.

        Args:
            channel_name: the observer's channel.
            audio: whether it gets the audio too.
            greeting: builds the first message for it (``monitor.attached``), when it is sent:
                it goes before anything else and is retried with every later message until the
                layer takes it (an observer attached during an outage is still greeted after).
        """
        self.observers[channel_name] = audio
        self._attached_at.setdefault(channel_name, time.monotonic())
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        if greeting is not None:
            self._greetings[channel_name] = greeting
            self._put(None)  # wakes the task to greet it

    def detach(self, channel_name: str) -> None:
        """Remove an observer."""
        self.observers.pop(channel_name, None)
        self._attached_at.pop(channel_name, None)
        self._greetings.pop(channel_name, None)

    def attached_before(self, moment: float) -> list[str]:
        """Observers attached before ``moment`` (``time.monotonic()``)."""
        return [channel for channel, at in self._attached_at.items() if at < moment]

    @property
    def wants_audio(self) -> bool:
        """True when some observer listens to the audio."""
        return any(self.observers.values())

    def publish_text(self, text: str) -> None:
        """Queue a JSON message for every observer."""
        if self.observers:
            self._put(protocol.monitor_text(text))

    def publish_audio(self, side: int, pcm: bytes) -> None:
        """Queue audio for the observers that listen."""
        if self.wants_audio:
            self._put(protocol.monitor_audio(side, pcm))

    def _put(self, message: LayerMessage | None) -> None:
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            metrics.MONITOR_DROPS.inc()

    async def _run(self) -> None:
        while True:
            message = await self._queue.get()
            audio = message is not None and message["type"] == MONITOR_AUDIO
            for channel, wants_audio in list(self.observers.items()):
                greeting = self._greetings.get(channel)
                if greeting is not None:
                    if not await self._send(channel, protocol.monitor_text(greeting())):
                        continue  # not greeted: nothing else either, the next message retries
                    self._greetings.pop(channel, None)
                if message is None or (audio and not wants_audio):
                    continue
                await self._send(channel, message)

    async def _send(self, channel: str, message: LayerMessage) -> bool:
        """One copy to an observer; a lost one is counted as a monitor drop, never raised."""
        if await layer_send(self._layer, channel, message, kind="monitor", quiet=True):
            return True
        metrics.MONITOR_DROPS.inc()
        return False

    async def aclose(self, *, reason: str) -> None:
        """Tell observers the session ended and stop sending."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                async with asyncio.timeout(1.0):
                    await self._task
        for channel in list(self.observers):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await layer_send(
                        self._layer, channel, protocol.monitor_ended(reason), quiet=True
                    )
        self.observers.clear()
        self._attached_at.clear()
        self._greetings.clear()


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
            await self._end("not_found", CloseCode.NORMAL)
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
            await self._end("unreachable", CloseCode.NORMAL)
            return
        if not attached:
            await self._end("not_found", CloseCode.NORMAL)
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
            await self._end(str(message.get("reason", "ended")), CloseCode.NORMAL)
        elif kind == protocol.SESSION_END:
            # The monitoring admin logged out (their user group): as their own calls end.
            await self._end("logout", CloseCode.UNAUTHENTICATED)

    async def _revalidate(self) -> None:
        """Every VOICE_REVALIDATE_SECONDS: still logged in, active, staff and permitted?"""
        user = self.scope["user"]
        user_id = user.pk if user is not None else None
        while not self.ended:
            await asyncio.sleep(settings.VOICE_REVALIDATE_SECONDS)
            refusal = await monitor_refusal(session=self.scope.get("session"), user_id=user_id)
            if refusal is not None:
                reason = "logout" if refusal == CloseCode.UNAUTHENTICATED else "forbidden"
                await self._end(reason, refusal)
                return

    async def _end(self, reason: str, code: CloseCode) -> None:
        """Say why, then close (once)."""
        if self.ended:
            return
        self.ended = True
        with contextlib.suppress(Exception):
            await self.send(text_data=protocol.encode(protocol.MonitorEnded(reason=reason)))
            await self.close(code=int(code))

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
