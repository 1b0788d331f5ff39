"""Live monitors: staff follow a session held by any worker, through the channel layer.

The talking session publishes copies of its messages into a bounded queue; a task of its own
sends them to the observers. A slow observer or a layer outage loses copies (counted), never
delays the talking user's audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from channels.exceptions import ChannelFull
from channels.generic.websocket import AsyncWebsocketConsumer

from assistant import metrics
from assistant.models import LiveSession
from assistant.protocol import CloseCode, encode

logger = logging.getLogger(__name__)

MONITOR_ATTACH = "monitor.attach"
MONITOR_DETACH = "monitor.detach"
MONITOR_TEXT = "monitor.text"
MONITOR_AUDIO = "monitor.audio"
MONITOR_ENDED = "monitor.ended"
FANOUT_QUEUE = 256
USER_AUDIO = 0x01
ASSISTANT_AUDIO = 0x02


class MonitorFanout:
    """Copies a session's output to the channels of its observers.

    Args:
        layer: the channel layer.
    """

    def __init__(self, layer: Any) -> None:
        self._layer = layer
        self.observers: dict[str, bool] = {}  # channel name -> wants audio
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=FANOUT_QUEUE)
        self._task: asyncio.Task[None] | None = None

    def attach(self, channel_name: str, *, audio: bool) -> None:
        """Add an observer; the sending task starts with the first one."""
        self.observers[channel_name] = audio
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    def detach(self, channel_name: str) -> None:
        """Remove an observer."""
        self.observers.pop(channel_name, None)

    @property
    def wants_audio(self) -> bool:
        """True when some observer listens to the audio."""
        return any(self.observers.values())

    def publish_text(self, text: str) -> None:
        """Queue a JSON message for every observer."""
        if self.observers:
            self._put({"type": MONITOR_TEXT, "text": text})

    def publish_audio(self, side: int, pcm: bytes) -> None:
        """Queue audio for the observers that listen."""
        if self.wants_audio:
            self._put({"type": MONITOR_AUDIO, "side": side, "pcm": pcm})

    def _put(self, message: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            metrics.MONITOR_DROPS.inc()

    async def _run(self) -> None:
        while True:
            message = await self._queue.get()
            audio = message["type"] == MONITOR_AUDIO
            for channel, wants_audio in list(self.observers.items()):
                if audio and not wants_audio:
                    continue
                try:
                    await self._layer.send(channel, message)
                except ChannelFull:
                    metrics.MONITOR_DROPS.inc()
                except Exception:
                    metrics.MONITOR_DROPS.inc()
                    metrics.LAYER_SEND_FAILURES.labels(kind="monitor").inc()

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
                    await self._layer.send(channel, {"type": MONITOR_ENDED, "reason": reason})
        self.observers.clear()


class MonitorConsumer(AsyncWebsocketConsumer):
    """``/ws/monitor/<session_id>/``: a staff member follows one live session."""

    async def connect(self) -> None:
        """Check permission, find the session and ask its worker to copy it to us."""
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=int(CloseCode.UNAUTHENTICATED))
            return
        if not (user.is_staff and await user.ahas_perm("assistant.monitor_livesession")):
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
            await self.send(text_data=encode(MONITOR_ENDED, reason="not_found"))
            await self.close(code=int(CloseCode.NORMAL))
            return
        self.target = row.channel_name
        await self.accept()
        from django.conf import settings

        try:
            await self.channel_layer.send(
                self.target,
                {
                    "type": MONITOR_ATTACH,
                    "reply_channel": self.channel_name,
                    "audio": settings.VOICE_MONITOR_AUDIO,
                },
            )
        except Exception:
            metrics.LAYER_SEND_FAILURES.labels(kind="monitor").inc()
            await self.send(text_data=encode(MONITOR_ENDED, reason="unreachable"))
            await self.close(code=int(CloseCode.NORMAL))

    async def disconnect(self, code: int) -> None:
        """Detach from the session (best effort)."""
        target = getattr(self, "target", None)
        if target and self.channel_layer is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self.channel_layer.send(
                        target, {"type": MONITOR_DETACH, "reply_channel": self.channel_name}
                    )

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Monitors are read-only; anything they send is ignored."""

    async def monitor_text(self, message: dict[str, Any]) -> None:
        """A copy of a message the session sent to its browser."""
        await self.send(text_data=message["text"])

    async def monitor_audio(self, message: dict[str, Any]) -> None:
        """A copy of the session's audio: one byte for the side, then PCM16 24 kHz."""
        await self.send(bytes_data=bytes([message["side"]]) + message["pcm"])

    async def monitor_ended(self, message: dict[str, Any]) -> None:
        """The session ended."""
        await self.send(text_data=encode(MONITOR_ENDED, reason=message.get("reason", "ended")))
        await self.close(code=int(CloseCode.NORMAL))
