"""The user's microphone audio on its way to Voice Live.

A bounded queue the consumer fills without ever waiting (the oldest frame is dropped when the
upstream falls 5 s behind), one sender task that merges what is queued into appends of at most
100 ms, and push-to-talk's commit and clear, which go out after every frame queued before them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError
from azure.ai.voicelive.aio import VoiceLiveConnection
from azure.ai.voicelive.models import ClientEventType

from assistant import metrics
from assistant.codes import ErrorCode
from assistant.protocol import BYTES_PER_SECOND
from assistant.voicelive.audio_json import audio_append

# Browser frames waiting for the upstream socket: 5 s of the talk page's 100 ms frames. Beyond
# that the oldest is dropped, so a slow upstream costs audio, never unbounded memory.
AUDIO_QUEUE_FRAMES = 50
# Frames already queued are merged into one append of at most this much audio.
MAX_APPEND_BYTES = BYTES_PER_SECOND // 10
# The audio path's event types as plain strings: compared and sent for every frame.
_COMMIT = ClientEventType.INPUT_AUDIO_BUFFER_COMMIT.value
_CLEAR = ClientEventType.INPUT_AUDIO_BUFFER_CLEAR.value
_monotonic = time.monotonic
_NOT_PRESSED = metrics.AUDIO_DROPPED.labels(reason="not_pressed")


class MicrophoneStream:
    """One session's microphone audio, from the consumer to the upstream connection.

    Args:
        connection: the session's current connection (None while there is none).
        rolling_over: True while the session replaces its connection (a failed send is then
            expected, not fatal).
        lost: ends the session with a code (a failed send outside a rollover).
        send_safely: sends one request, counting and logging a failure.
    """

    def __init__(
        self,
        *,
        connection: Callable[[], VoiceLiveConnection | None],
        rolling_over: Callable[[], bool],
        lost: Callable[[ErrorCode], Awaitable[None]],
        send_safely: Callable[[Any], Awaitable[None]],
    ) -> None:
        self._connection = connection
        self._rolling_over = rolling_over
        self._lost = lost
        self._send_safely = send_safely
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=AUDIO_QUEUE_FRAMES)
        # Held from taking a chunk to sending it: a commit waits for the audio before it.
        self._lock = asyncio.Lock()
        #: Audio sent upstream so far.
        self.sent_bytes = 0
        #: When the last of it was sent (monotonic seconds; 0 before any): with
        #: ``connection_bytes``, it places the upstream's ``audio_end_ms`` on our clock.
        self.sent_at = 0.0
        #: ``sent_bytes`` when the current upstream connection began (each counts from 0).
        self.connection_bytes = 0
        #: Push-to-talk: audio since the input buffer was last cleared or committed.
        self.turn_bytes = 0
        #: False under push-to-talk while the button is up: audio then is dropped here, so a
        #: page that sends without a press is neither heard upstream nor committed later.
        self.accepting = True

    def connection_began(self) -> None:
        """A new upstream connection takes the audio from here (its ``audio_end_ms`` is 0)."""
        self.connection_bytes = self.sent_bytes

    @property
    def queued_frames(self) -> int:
        """Frames waiting for the sender."""
        return self._queue.qsize()

    def append(self, pcm: bytes) -> None:
        """Queue microphone audio for the upstream; never waits (drops the oldest when full)."""
        if not self.accepting:
            _NOT_PRESSED.inc()
            return
        if self._queue.full():
            self._queue.get_nowait()
            metrics.AUDIO_DROPPED.labels(reason="upstream_backlog").inc()
        self._queue.put_nowait(pcm)
        self.turn_bytes += len(pcm)

    async def run(self) -> None:
        """The sender task: send what is queued, merged, until cancelled or the send fails."""
        while True:
            chunk = await self._queue.get()
            async with self._lock:
                while not self._queue.empty() and len(chunk) < MAX_APPEND_BYTES:
                    chunk += self._queue.get_nowait()
                conn = self._connection()
                if conn is None:
                    continue
                try:
                    await conn.send(audio_append(chunk))
                except VoiceLiveConnectionError:
                    if self._rolling_over():
                        continue
                    # Send errors are fatal: recovering mid-stream costs more than a restart.
                    metrics.UPSTREAM_ERRORS.labels(kind="send").inc()
                    await self._lost(ErrorCode.UPSTREAM_LOST)
                    return
                self.sent_bytes += len(chunk)
                self.sent_at = _monotonic()  # one clock read per append (~50 ns, 10 a second)

    async def commit(self) -> None:
        """``input_audio_buffer.commit``, after the audio queued before it (push-to-talk)."""
        await self._buffer_event(_COMMIT)

    async def clear(self) -> None:
        """Drop the audio queued here, then ``input_audio_buffer.clear`` (push-to-talk)."""
        await self._buffer_event(_CLEAR)

    async def _buffer_event(self, kind: str) -> None:
        async with self._lock:
            pending = b""
            while not self._queue.empty():
                pending += self._queue.get_nowait()
            self.turn_bytes = 0
            conn = self._connection()
            if conn is None:
                return
            if kind == _COMMIT:
                for start in range(0, len(pending), MAX_APPEND_BYTES):
                    chunk = pending[start : start + MAX_APPEND_BYTES]
                    await self._send_safely(conn.send(audio_append(chunk)))
                    self.sent_bytes += len(chunk)
                    self.sent_at = _monotonic()
            await self._send_safely(conn.send({"type": kind}))
