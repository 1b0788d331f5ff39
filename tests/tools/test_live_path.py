"""Tools over the whole path, no fakes: a logged-in client speaking (espeak-ng) to real Daphne,
the consumer, the real ``azure-ai-voicelive`` SDK, and localvoice deciding the calls with its
real models; the service runs the real built-ins against its database."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.audio import silence, speak
from tests.support.browser import Socket
from tests.support.servers import Browser, DaphneServer, daphne_env, manage, throwaway_database

pytestmark = [pytest.mark.integration, pytest.mark.models]

FRAME_MS = 40
FRAME_BYTES = 24_000 * 2 * FRAME_MS // 1000
ACK_BYTES = 96_000
PASSWORD = "tools-pw-123"
# The default profile gets the built-ins the spoken requests below need.
SETUP = (
    "from django.contrib.auth.models import User; "
    "from assistant.models import AssistantProfile; "
    "from assistant.tools.models import Tool; "
    f"User.objects.create_user('toolie', password='{PASSWORD}'); "
    "profile = AssistantProfile.objects.get(is_default=True); "
    "[t.profiles.add(profile) for t in Tool.objects.filter("
    "builtin__in=['get_current_time', 'end_conversation'])]"
)


@pytest.fixture(scope="module")
def server(
    localvoice_models: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaphneServer]:
    logs = tmp_path_factory.mktemp("tools-path")
    with throwaway_database(logs) as database:
        env = daphne_env(
            worker_name="tools",
            database_url=database.url,
            redis_url="",
            upstream_url=localvoice_models,
            # Deciding on a call emits nothing until the model is done: slow on 2 busy cores.
            extra={"VOICE_CONNECT_TIMEOUT": "10", "VOICE_REPLY_STALL_SECONDS": "60"},
        )
        manage(env, "migrate", "--noinput")
        manage(env, "shell", "-c", SETUP)
        daphne = DaphneServer("tools", env, Path(logs)).start()
        try:
            yield daphne
        finally:
            daphne.stop()


async def stream(socket: Socket, pcm: bytes) -> None:
    """Send audio in real time, as the page's capture worklet does."""
    started = time.monotonic()
    for index, offset in enumerate(range(0, len(pcm), FRAME_BYTES)):
        await socket.send_audio(pcm[offset : offset + FRAME_BYTES])
        await asyncio.sleep(max(0.0, started + (index + 1) * FRAME_MS / 1000 - time.monotonic()))


class Listener:
    """Reads a session's frames, acknowledging the assistant's audio as the page does."""

    def __init__(self, socket: Socket) -> None:
        self.socket = socket
        self.audio = 0
        self.acked = 0

    async def until(self, check: Any, timeout: float = 90.0) -> dict[str, Any]:
        """Read until a message satisfies ``check``; a close or an error fails."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.socket.next_frame(timeout)
                if frame.kind == "close":
                    return {"type": "(closed)", "code": frame.code}
                if frame.kind == "binary":
                    self.audio += len(frame.data)
                    if self.audio - self.acked >= ACK_BYTES:  # as the page: every 2 s of audio
                        self.acked = self.audio
                        await self.socket.send_json({"type": "audio.ack", "bytes": self.audio})
                    continue
                if frame.data["type"] == "error":
                    seen = [m["type"] for m in self.socket.texts()][-30:]
                    raise AssertionError(f"error from the server: {frame.data} after {seen}")
                if check(frame.data):
                    return dict(frame.data)


def hours_now() -> set[int]:
    """The UTC hour now and a minute ago (the turn may straddle the hour)."""
    now = dt.datetime.now(dt.UTC)
    return {now.hour, (now - dt.timedelta(minutes=2)).hour}


def says_hour(text: str, hours: set[int]) -> bool:
    """``text`` gives one of the hours as digits ("4:05", "04:05", "16:05", "4 PM")."""
    spoken = {str(h) for h in hours} | {f"{h:02d}" for h in hours}
    spoken |= {str(h % 12 or 12) for h in hours}
    return any(
        re.search(rf"(?<!\d){re.escape(s)}(?=\s*(:|h|o'clock|am|pm|a\.m|p\.m))", text, re.I)
        for s in spoken
    )


async def test_asking_the_time_calls_the_clock_and_the_answer_has_the_hour(
    server: DaphneServer,
) -> None:
    async with Browser(server.base_url) as browser:
        await browser.login("toolie", PASSWORD)
        socket = await browser.websocket(server.ws_url("/ws/voice/?tz=UTC"))
        await socket.expect("session.ready", timeout=20)
        listener = Listener(socket)
        sender = asyncio.create_task(
            stream(socket, silence(300) + speak("What time is it?") + silence(1500))
        )
        started = await listener.until(lambda m: m["type"] == "tool.started")
        assert started["name"] == "get_current_time"
        finished = await listener.until(lambda m: m["type"] == "tool.finished")
        assert finished["outcome"] == "ok", finished
        answer = await listener.until(lambda m: m["type"] == "transcript.assistant.done")
        await sender
        assert says_hour(answer["transcript"], hours_now()), answer
        await socket.send_json({"type": "session.stop"})
        assert await socket.expect_close(timeout=10) == 1000


async def test_goodbye_ends_the_session_after_the_goodbye(server: DaphneServer) -> None:
    async with Browser(server.base_url) as browser:
        await browser.login("toolie", PASSWORD)
        socket = await browser.websocket(server.ws_url("/ws/voice/"))
        await socket.expect("session.ready", timeout=20)
        listener = Listener(socket)
        sender = asyncio.create_task(
            stream(socket, silence(300) + speak("Goodbye, thank you!") + silence(1500))
        )
        started = await listener.until(lambda m: m["type"] == "tool.started")
        assert started["name"] == "end_conversation"
        goodbye = await listener.until(lambda m: m["type"] == "transcript.assistant.done")
        assert goodbye["transcript"].strip()
        ending = await listener.until(lambda m: m["type"] in ("session.ending", "(closed)"), 30)
        assert ending == {"type": "session.ending", "reason": "goodbye"}
        assert listener.audio > 0  # the goodbye was spoken before the end
        await sender
        assert await socket.expect_close(timeout=10) == 1000
