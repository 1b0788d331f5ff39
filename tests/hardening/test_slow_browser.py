"""A browser that cannot keep up with the assistant's audio, over the real path.

Daphne applies no backpressure: whatever the consumer sends lands in the socket's transport
buffer, however slowly the browser reads. The voice socket's flow control (``audio.ack``,
``assistant/calls/outbound.py``) bounds that: at most a window of unacknowledged audio on
the wire, a bounded backlog held in the worker, then ``client_too_slow`` and close 4413. Real
Daphne, real SDK, ``localvoice --echo`` (every microphone frame comes back as assistant audio), a
logged-in aiohttp browser; window and backlog scaled down to 2 s of audio each.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

import aiohttp
import pytest

from tests.hardening.conftest import EchoStack, echo_stack, tone
from tests.support import measurements
from tests.support.servers import Browser, Socket

pytestmark = [pytest.mark.hardening, pytest.mark.integration]

BYTES_PER_SECOND = 48_000
WINDOW = 2 * BYTES_PER_SECOND
BACKLOG = 2 * BYTES_PER_SECOND
FRAME = tone(40)  # 1,920 bytes
# The upstream may merge queued microphone frames into one append of up to 100 ms.
LARGEST_CHUNK = BYTES_PER_SECOND // 10
TIMINGS = measurements.section("slow-browser timings")

USERS_SCRIPT = """
from django.contrib.auth.models import User
User.objects.create_user("slow", password="pw-slow-12345")
User.objects.create_user("fast", password="pw-fast-12345")
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EchoStack]:
    tmp = tmp_path_factory.mktemp("slow-browser")
    window = {
        "VOICE_AUDIO_SEND_WINDOW_BYTES": str(WINDOW),
        "VOICE_AUDIO_SEND_BACKLOG_BYTES": str(BACKLOG),
    }
    with echo_stack(tmp, name="slow-browser", users_script=USERS_SCRIPT, env=window) as echo:
        yield echo


async def ended_for(stack: EchoStack, reason: str) -> float:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{stack.daphne.base_url}/metrics") as resp,
    ):
        text = await resp.text()
    pattern = rf'^voice_sessions_ended_total\{{reason="{re.escape(reason)}"\}} (\S+)$'
    match = re.search(pattern, text, re.M)
    return float(match.group(1)) if match else 0.0


async def stream_microphone(sock: Socket, seconds: float) -> int:
    """Send real-time 40 ms frames for ``seconds`` (or until the socket closes)."""
    sent = 0
    started = time.monotonic()
    for n in range(int(seconds * 25)):
        await asyncio.sleep(max(0.0, started + n * 0.04 - time.monotonic()))
        if sock.close_code is not None or sock.ws.closed:
            break
        await sock.send_audio(FRAME)
        sent += len(FRAME)
    return sent


async def test_a_browser_that_never_acknowledges_is_closed_with_bounded_audio(
    stack: EchoStack,
) -> None:
    before = await ended_for(stack, "client_too_slow")
    async with Browser(stack.daphne.base_url) as browser:
        await browser.login("slow", "pw-slow-12345")
        sock = await browser.websocket(stack.daphne.ws_url("/ws/voice/"))
        await sock.expect("session.ready")
        assert stack.upstream_connections() == 1
        sender = asyncio.create_task(stream_microphone(sock, seconds=10))
        received = 0
        started = time.monotonic()
        try:
            code = None
            async with asyncio.timeout(10):
                while code is None:
                    frame = await sock.next_frame(timeout=10)
                    if frame.kind == "binary":
                        received += len(frame.data)
                    elif frame.kind == "close":
                        code = frame.code
        finally:
            sent = await sender
        took = time.monotonic() - started
    TIMINGS["never_acked_to_close_s"] = took
    TIMINGS["never_acked_audio_received_bytes"] = received
    assert code == 4413
    assert {"type": "error", "code": "client_too_slow"}.items() <= sock.texts("error")[-1].items()
    # Never more than the window on the wire; the backlog filled up in the worker, then it gave up.
    assert WINDOW <= received <= WINDOW + LARGEST_CHUNK
    assert sent >= WINDOW + BACKLOG
    assert took < (WINDOW + BACKLOG + 2 * LARGEST_CHUNK) / BYTES_PER_SECOND + 2
    assert await ended_for(stack, "client_too_slow") == before + 1
    deadline = time.monotonic() + 2
    while stack.upstream_connections():
        assert time.monotonic() < deadline, "the upstream connection was left open"
        await asyncio.sleep(0.05)


async def test_a_browser_that_acknowledges_like_the_page_streams_on(stack: EchoStack) -> None:
    """Acks every half window (the page: every 2 s of a 10 s window): nothing held for long."""
    async with Browser(stack.daphne.base_url) as browser:
        await browser.login("fast", "pw-fast-12345")
        sock = await browser.websocket(stack.daphne.ws_url("/ws/voice/"))
        await sock.expect("session.ready")
        sender = asyncio.create_task(
            stream_microphone(sock, seconds=3 * (WINDOW + BACKLOG) / 96_000)
        )
        received = acked = 0
        try:
            while not sender.done() or received < sent_so_far(sender):
                try:
                    frame = await sock.next_frame(timeout=1)
                except TimeoutError:
                    break
                assert frame.kind != "close", f"closed with {frame.code}"
                if frame.kind == "binary":
                    received += len(frame.data)
                    if received - acked >= WINDOW // 2:
                        acked = received
                        await sock.send_json({"type": "audio.ack", "bytes": received})
        finally:
            sent = await sender
        assert received == sent  # every echoed byte arrived, none held back for good
        assert not sock.texts("error")
        await sock.close()


def sent_so_far(sender: asyncio.Task[int]) -> float:
    """What the sender has sent, once it is done (until then: no limit)."""
    return sender.result() if sender.done() else float("inf")
