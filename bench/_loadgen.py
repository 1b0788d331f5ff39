"""The simulated browsers: N real-time PCM16 streams over real websockets, per-frame RTT.

Every frame starts with a 12-byte header: the frame's *scheduled* capture time (float64,
``time.monotonic``) and its sequence number (uint32), so the load generator's own lateness
counts against the path under test rather than being hidden. The rest is PCM16 noise. Frames
coming back merged (the relay coalesces queued frames into one upstream append) are split at
the frame size.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import struct
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.support.stats import percentile

HEADER = struct.Struct("<dI")
SAMPLE_RATE = 24_000
BYTES_PER_MS = SAMPLE_RATE * 2 // 1000  # 48 bytes per ms of PCM16 mono 24 kHz
CONNECT_CONCURRENCY = 16


@dataclass
class Stream:
    """One simulated browser."""

    index: int
    ws: aiohttp.ClientWebSocketResponse | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    error_code: str = ""
    connect_s: float = 0.0
    received: bytearray = field(default_factory=bytearray)  # 1 per seq, 0 = not (yet) back
    latencies: array[float] = field(default_factory=lambda: array("d"))
    reader: asyncio.Task[None] | None = None


@dataclass
class Target:
    """How to reach one path."""

    path: str  # relay | floor | direct
    url: str
    headers: list[dict[str, str]]  # one per stream (cookie) or a single shared one
    wait_ready: bool  # relay: wait for session.ready before streaming


@dataclass
class PointResult:
    """What one measured point produced (client side)."""

    path: str
    sessions: int
    admitted: int
    refused: int
    refused_codes: dict[str, int]
    frame_ms: int
    seconds: float
    sent: int
    received: int
    lost: int
    late: int
    p50: float
    p95: float
    p99: float
    max: float
    sender_lag_p99_ms: float
    sender_lag_max_ms: float
    connect_p95_ms: float
    gen_cpu: float
    extra: dict[str, Any] = field(default_factory=dict)


# Acknowledge received audio like the talk page does (static/js/voice-socket.js AUDIO_ACK_BYTES).
AUDIO_ACK_BYTES = 96_000


async def _read(
    stream: Stream, *, direct: bool, ack: bool, frame_bytes: int, window: list[int]
) -> None:
    """Read until the socket closes; record each returned frame's round trip (ms)."""
    ws = stream.ws
    assert ws is not None
    monotonic = time.monotonic
    unpack = HEADER.unpack_from
    received = stream.received
    latencies = stream.latencies
    got = acked = 0
    while True:
        msg = await ws.receive()
        now = monotonic()
        if msg.type == aiohttp.WSMsgType.BINARY:
            data: bytes = msg.data
            got += len(data)
            if ack and got - acked >= AUDIO_ACK_BYTES:
                acked = got
                await ws.send_str(f'{{"type":"audio.ack","bytes":{got}}}')
        elif msg.type == aiohttp.WSMsgType.TEXT:
            text: str = msg.data
            if direct:
                if '"response.audio.delta"' not in text[:40]:
                    continue
                data = base64.b64decode(json.loads(text)["delta"])
            else:
                if '"session.ready"' in text:
                    stream.ready.set()
                elif '"error"' in text[:20]:
                    stream.error_code = str(json.loads(text).get("code", ""))
                continue
        else:
            stream.close_code = ws.close_code
            break
        for off in range(0, len(data) - HEADER.size + 1, frame_bytes):
            sent_at, seq = unpack(data, off)
            if seq < len(received) and not received[seq]:
                received[seq] = 1
                if window[0] <= seq < window[1]:
                    latencies.append((now - sent_at) * 1000.0)
    stream.closed.set()
    stream.ready.set()


async def _connect(
    session: aiohttp.ClientSession,
    target: Target,
    stream: Stream,
    *,
    frame_bytes: int,
    window: list[int],
    total_frames: int,
    gate: asyncio.Semaphore,
) -> None:
    headers = target.headers[stream.index % len(target.headers)]
    stream.received = bytearray(total_frames)
    async with gate:
        started = time.monotonic()
        try:
            stream.ws = await session.ws_connect(
                target.url, headers=headers, autoping=True, max_msg_size=8 * 1024 * 1024
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            stream.error_code = f"connect:{type(exc).__name__}"
            stream.closed.set()
            stream.ready.set()
            return
        stream.reader = asyncio.create_task(
            _read(
                stream,
                direct=target.path == "direct",
                ack=target.path == "relay",
                frame_bytes=frame_bytes,
                window=window,
            )
        )
        if target.wait_ready:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stream.ready.wait(), timeout=20.0)
        else:
            stream.ready.set()
        stream.connect_s = time.monotonic() - started


def _frame_sender(direct: bool) -> Any:
    """Returns ``send(ws, frame)``: binary as is, or the JSON append the SDK would send."""
    if not direct:

        async def send_binary(ws: aiohttp.ClientWebSocketResponse, frame: bytes) -> None:
            await ws.send_bytes(frame)

        return send_binary

    async def send_json(ws: aiohttp.ClientWebSocketResponse, frame: bytes) -> None:
        audio = base64.b64encode(frame).decode()
        await ws.send_str(
            json.dumps({"type": "input_audio_buffer.append", "audio": audio}),
        )

    return send_json


async def run_point(
    target: Target,
    *,
    sessions: int,
    frame_ms: int,
    seconds: float,
    warmup: float,
    deadline_ms: float,
    grace: float = 2.0,
    on_window: Any = None,
) -> PointResult:
    """Connect ``sessions`` browsers, stream ``seconds`` of real-time audio, measure.

    ``on_window(start: bool)`` is called at the start and end of the measured window (after
    ``warmup``) so the caller can sample server CPU exactly over it.
    """
    frame_bytes = frame_ms * BYTES_PER_MS
    period = frame_ms / 1000.0
    total_frames = int((seconds + warmup) / period) + 1
    window = [int(warmup / period), total_frames]
    payload = os.urandom(frame_bytes - HEADER.size)
    streams = [Stream(i) for i in range(sessions)]
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    lag: array[float] = array("d")
    cpu0 = time.process_time()
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        await asyncio.gather(
            *(
                _connect(
                    session,
                    target,
                    s,
                    frame_bytes=frame_bytes,
                    window=window,
                    total_frames=total_frames,
                    gate=gate,
                )
                for s in streams
            )
        )
        live = [s for s in streams if s.ws is not None and not s.closed.is_set()]
        refused = [s for s in streams if s not in live]
        send = _frame_sender(target.path == "direct")
        # Spread the sessions evenly over one frame period, in groups 1 ms apart.
        groups = max(1, frame_ms)
        by_group: list[list[Stream]] = [[] for _ in range(groups)]
        for i, s in enumerate(live):
            by_group[i * groups // max(1, len(live))].append(s)
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.2
        window_open = False
        cpu_window0 = 0.0
        sent = 0
        pack = HEADER.pack
        for seq in range(total_frames):
            if seq == window[0]:
                window_open = True
                cpu_window0 = time.process_time()
                if on_window is not None:
                    on_window(True)
            for g, group in enumerate(by_group):
                if not group:
                    continue
                due = t0 + seq * period + g * period / groups
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                now = loop.time()
                if window_open:
                    lag.append((now - due) * 1000.0)
                head = pack(due, seq)
                for s in group:
                    ws = s.ws
                    if ws is None or ws.closed:
                        continue
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await send(ws, head + payload)
                        if window_open:
                            sent += 1
        if on_window is not None:
            on_window(False)
        gen_cpu = (time.process_time() - cpu_window0) / seconds
        await asyncio.sleep(grace)
        received = sum(sum(s.received[window[0] : window[1]]) for s in live)
        latencies: list[float] = []
        for s in live:
            latencies.extend(s.latencies)
        late = sum(1 for v in latencies if v > deadline_ms)
        close_tasks = [s.ws.close() for s in streams if s.ws is not None and not s.ws.closed]
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*close_tasks, return_exceptions=True), 15.0)
        for s in streams:
            if s.reader is not None:
                s.reader.cancel()
    codes: dict[str, int] = {}
    for s in refused:
        key = f"{s.close_code}:{s.error_code}"
        codes[key] = codes.get(key, 0) + 1
    connect_ms = [s.connect_s * 1000.0 for s in live]
    del cpu0
    return PointResult(
        path=target.path,
        sessions=sessions,
        admitted=len(live),
        refused=len(refused),
        refused_codes=codes,
        frame_ms=frame_ms,
        seconds=seconds,
        sent=sent,
        received=received,
        lost=sent - received,
        late=late,
        p50=percentile(latencies, 50),
        p95=percentile(latencies, 95),
        p99=percentile(latencies, 99),
        max=max(latencies) if latencies else float("nan"),
        sender_lag_p99_ms=percentile(lag, 99),
        sender_lag_max_ms=max(lag) if lag else float("nan"),
        connect_p95_ms=percentile(connect_ms, 95),
        gen_cpu=gen_cpu,
    )
