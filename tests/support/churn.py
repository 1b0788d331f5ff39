"""Browsers that connect and leave at every stage of a session's start: the churn of real users.

Used by tests/hardening/test_churn.py (a bounded run in the suite) and bench/churn.py (1,000
cycles with figures). Each cycle opens ``/ws/voice/`` and leaves at one of four moments, in
turn: during admission, during the upstream handshake, right at ``session.ready``, or while
audio is echoing; every other departure is abrupt (the TCP connection cut, no close frame).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from dataclasses import dataclass, field

import aiohttp

from tests.support.browser import Browser, Socket

FRAME = b"\x01\x00" * 2400  # 100 ms of PCM16 at 24 kHz, as the talk page sends
MOMENTS = ("admission", "upstream handshake", "session.ready", "mid-echo")

#: Process-log lines that mean a failure went unseen or a resource was left behind.
BAD_LOG_LINES = (
    "Task exception was never retrieved",
    "Unclosed client session",
    "Unclosed connector",
    "Traceback",
    "Exception inside application",
)
#: Counters that a browser leaving must never move (they mean an upstream or internal error).
UPSTREAM_ERROR_SERIES = (
    'voice_upstream_errors_total{kind="handler"}',
    'voice_upstream_errors_total{kind="internal"}',
    'voice_sessions_ended_total{reason="internal_error"}',
    'voice_sessions_ended_total{reason="upstream_lost"}',
)


@dataclass
class ChurnResult:
    """What one run did."""

    cycles: int = 0
    by_moment: dict[str, int] = field(default_factory=dict)
    abrupt: int = 0
    ready_seen: int = 0


async def leave(sock: Socket, *, abrupt: bool) -> None:
    """Close like a tab does (close frame) or like a lost network (TCP cut)."""
    if abrupt:
        transport = sock.ws._response.connection.transport if sock.ws._response.connection else None
        if transport is not None:
            transport.abort()
            return
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2):
            await sock.ws.close()


async def churn(browser: Browser, ws_url: str, cycles: int, *, seed: int = 3) -> ChurnResult:
    """Run ``cycles`` connect/leave cycles of one logged-in browser, one after another."""
    rng = random.Random(seed)
    result = ChurnResult(by_moment=dict.fromkeys(MOMENTS, 0))
    for i in range(cycles):
        moment = MOMENTS[i % len(MOMENTS)]
        sock = await browser.websocket(ws_url)
        with contextlib.suppress(AssertionError, TimeoutError, aiohttp.ClientError):
            if moment == "admission":
                await asyncio.sleep(rng.uniform(0, 0.003))
            elif moment == "upstream handshake":
                await asyncio.sleep(rng.uniform(0.003, 0.03))
            else:
                await sock.expect("session.ready", timeout=5)
                result.ready_seen += 1
                if moment == "mid-echo":
                    await sock.send_audio(FRAME)
                    await asyncio.sleep(rng.uniform(0, 0.05))
        abrupt = i % 2 == 1
        await leave(sock, abrupt=abrupt)
        result.abrupt += abrupt
        result.by_moment[moment] += 1
        result.cycles += 1
    return result


def series(metrics_text: str, name: str) -> float:
    """One sample of a Prometheus text exposition (0 when absent)."""
    match = re.search(rf"^{re.escape(name)} (\S+)$", metrics_text, re.M)
    return float(match.group(1)) if match else 0.0


def bad_lines(log_text: str) -> dict[str, int]:
    """How often each of :data:`BAD_LOG_LINES` occurs in a process log."""
    return {line: log_text.count(line) for line in BAD_LOG_LINES}
