"""Copies of a live session for its monitors, sent through the channel layer.

The talking session publishes copies of its messages into a bounded queue; a task of its own
sends them to the observers. A slow observer or a layer outage loses copies (counted), never
delays the talking user's audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from assistant import metrics, protocol
from assistant.codes import MonitorEnding
from assistant.live.layer import layer_send
from assistant.protocol import MONITOR_AUDIO, LayerMessage

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

    async def aclose(self, *, reason: MonitorEnding) -> None:
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
