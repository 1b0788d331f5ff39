"""Simulated browsers that reconnect as the talk page does, streaming real-time audio frames.

Each browser holds at most one websocket at a time. After a close with a retryable code (4001
``server_draining``, 4503 ``server_busy``) it opens a new one after the talk page's backoff
(``static/js/voice-socket.js``: 0.5 s doubling up to 8 s, 5 tries, the count reset by each
``session.ready``); any other close ends it, as it ends the page's session. Frames carry the
header of ``_loadgen`` (scheduled send time, sequence number), and every frame remembers the
connection it was sent on, so frames are told apart by the worker that relayed them and by
what happened to that connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from assistant.codes import RETRYABLE_CLOSE_CODES
from bench._loadgen import AUDIO_ACK_BYTES, BYTES_PER_MS, HEADER

FIRST_DELAY = 0.5
MAX_DELAY = 8.0
MAX_TRIES = 5
READY_TIMEOUT = 20.0
RETRYABLE = frozenset(int(code) for code in RETRYABLE_CLOSE_CODES)


@dataclass
class Connection:
    """One websocket of a browser, from its handshake to its close (``time.monotonic()``)."""

    opened: float
    ready_at: float | None = None
    closed_at: float | None = None
    close_code: int | None = None
    error_code: str = ""
    session_id: str = ""


@dataclass
class Browser:
    """One simulated talk page: its connections and the fate of every frame it sent."""

    index: int
    username: str
    headers: dict[str, str]
    total_frames: int
    conns: list[Connection] = field(default_factory=list)
    ws: aiohttp.ClientWebSocketResponse | None = None  # the connection ready to stream
    gave_up: bool = False  # retryable closes beyond the page's tries
    sent_on: array[int] = field(default_factory=lambda: array("h"))  # connection, -1: not sent
    latency_ms: array[float] = field(default_factory=lambda: array("d"))  # nan: not back
    first_ready: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.sent_on = array("h", [-1]) * self.total_frames
        self.latency_ms = array("d", [math.nan]) * self.total_frames

    async def run(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        frame_bytes: int,
        stopping: asyncio.Event,
        gate: asyncio.Semaphore,
        jitter: float = 0.0,
    ) -> None:
        """Connect, reconnect after retryable closes, until ``stopping`` or a final close.

        As the talk page (static/js/voice-socket.js): each backoff is jittered down by up to
        half, and a reconnect whose handshake fails is one more try. ``jitter``: up to this
        many seconds added at random on top, to see what spreading a storm further would do.
        """
        attempt = 0
        while not stopping.is_set():
            conn = Connection(time.monotonic())
            self.conns.append(conn)
            # Only the first connections are paced; reconnects come as browsers send them.
            pacing = gate if len(self.conns) == 1 else contextlib.nullcontext()
            try:
                async with pacing:
                    ws = await session.ws_connect(
                        url, headers=self.headers, autoping=True, max_msg_size=8 * 1024 * 1024
                    )
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                # The page's socket closes with 1006 here: retried only during a reconnect.
                conn.closed_at = time.monotonic()
                conn.error_code = f"connect:{type(exc).__name__}"
                if attempt == 0 or stopping.is_set():
                    break
            else:
                if await self._read(ws, conn, frame_bytes):
                    attempt = 0
                if stopping.is_set() or conn.close_code not in RETRYABLE:
                    break
            if attempt >= MAX_TRIES:
                self.gave_up = True
                break
            backoff = min(FIRST_DELAY * 2**attempt, MAX_DELAY)
            delay = backoff * random.uniform(0.5, 1.0)
            delay += random.uniform(0.0, jitter) if jitter else 0.0
            attempt += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
        self.first_ready.set()  # never ready: let the caller go on

    async def _read(
        self, ws: aiohttp.ClientWebSocketResponse, conn: Connection, frame_bytes: int
    ) -> bool:
        """Read one connection until it closes; True if it got to ``session.ready``."""
        received = acked = 0
        monotonic, unpack, latency = time.monotonic, HEADER.unpack_from, self.latency_ms
        total = self.total_frames
        ready_by = asyncio.get_running_loop().call_later(READY_TIMEOUT, self._stuck, ws)
        try:
            async for msg in ws:
                now = monotonic()
                if msg.type == aiohttp.WSMsgType.BINARY:
                    data: bytes = msg.data
                    received += len(data)
                    if received - acked >= AUDIO_ACK_BYTES:
                        acked = received
                        await ws.send_str(f'{{"type":"audio.ack","bytes":{received}}}')
                    for off in range(0, len(data) - HEADER.size + 1, frame_bytes):
                        sent_at, seq = unpack(data, off)
                        if seq < total and math.isnan(latency[seq]):
                            latency[seq] = (now - sent_at) * 1000.0
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    text: str = msg.data
                    if '"session.ready"' in text:
                        ready_by.cancel()
                        conn.ready_at = now
                        conn.session_id = str(json.loads(text).get("session_id", ""))
                        self.ws = ws
                        self.first_ready.set()
                    elif '"error"' in text[:20]:
                        conn.error_code = str(json.loads(text).get("code", ""))
        finally:
            ready_by.cancel()
            if self.ws is ws:
                self.ws = None
            conn.closed_at = monotonic()
            conn.close_code = ws.close_code
        return conn.ready_at is not None

    @staticmethod
    def _stuck(ws: aiohttp.ClientWebSocketResponse) -> None:
        """No ``session.ready`` in time: give the socket up (its close ends the read)."""
        task = asyncio.ensure_future(ws.close(code=1000))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)


async def stream(
    browsers: list[Browser],
    *,
    frame_ms: int,
    t0: float,
    on_frame: Callable[[int], None] | None = None,
) -> None:
    """Send every browser's frames in real time from ``t0`` (``loop.time()``), spread evenly.

    A browser between connections sends nothing, as the page does. ``on_frame(seq)`` is called
    before each frame period (the caller's schedule: the drain, the scrapes).
    """
    period = frame_ms / 1000.0
    frame_bytes = frame_ms * BYTES_PER_MS
    payload = os.urandom(frame_bytes - HEADER.size)
    groups = max(1, frame_ms)
    by_group: list[list[Browser]] = [[] for _ in range(groups)]
    for i, b in enumerate(browsers):
        by_group[i * groups // max(1, len(browsers))].append(b)
    loop = asyncio.get_running_loop()
    total = browsers[0].total_frames if browsers else 0
    for seq in range(total):
        if on_frame is not None:
            on_frame(seq)
        for g, group in enumerate(by_group):
            if not group:
                continue
            due = t0 + seq * period + g * period / groups
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            head = HEADER.pack(due, seq)
            for b in group:
                ws = b.ws
                if ws is None or ws.closed:
                    continue
                b.sent_on[seq] = len(b.conns) - 1
                try:
                    await ws.send_bytes(head + payload)
                except (ConnectionError, RuntimeError):
                    b.sent_on[seq] = -1  # never left
