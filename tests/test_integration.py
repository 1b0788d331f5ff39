"""The whole path, no fakes: a logged-in browser client, real Daphne, the consumer, the real
``azure-ai-voicelive`` SDK, and localvoice with its real offline models."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.audio import silence, speak
from tests.support.servers import (
    Browser,
    DaphneServer,
    Socket,
    daphne_env,
    manage,
    throwaway_database,
)

pytestmark = [pytest.mark.integration, pytest.mark.models]

FRAME_MS = 40
FRAME_BYTES = 24_000 * 2 * FRAME_MS // 1000
PASSWORD = "integration-pw-123"


@pytest.fixture(scope="module")
def server(
    localvoice_models: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaphneServer]:
    logs = tmp_path_factory.mktemp("integration")
    with throwaway_database(logs) as database:
        env = daphne_env(
            worker_name="it",
            database_url=database.url,
            redis_url="",
            upstream_url=localvoice_models,
            # The models take a moment per turn on 2 cores; the connect itself is fast.
            extra={"VOICE_CONNECT_TIMEOUT": "10"},
        )
        manage(env, "migrate", "--noinput")
        manage(
            env,
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            f"User.objects.create_user('talker', password='{PASSWORD}')",
        )
        daphne = DaphneServer("it", env, Path(logs)).start()
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


async def collect_turn(socket: Socket, timeout: float = 60.0) -> dict[str, Any]:
    """Read one turn's frames until its response is done."""
    turn: dict[str, Any] = {"states": [], "audio": 0, "assistant": "", "user": ""}
    async with asyncio.timeout(timeout):
        while True:
            frame = await socket.next_frame(timeout)
            if frame.kind == "close":
                raise AssertionError(f"closed with {frame.code}: {socket.texts('error')}")
            if frame.kind == "binary":
                turn["audio"] += len(frame.data)
                continue
            message = frame.data
            kind = message["type"]
            if kind == "state":
                turn["states"].append(message["state"])
            elif kind == "transcript.user.done":
                turn["user"] = message["transcript"]
            elif kind == "transcript.assistant.done":
                turn["assistant"] = message["transcript"]
            elif kind == "error":
                raise AssertionError(f"error from the server: {message}")
            elif kind == "response.done" and turn["audio"]:
                turn["status"] = message["status"]
                return turn


async def test_spoken_turn_over_the_real_sdk_and_localvoice(server: DaphneServer) -> None:
    async with Browser(server.base_url) as browser:
        await browser.login("talker", PASSWORD)
        socket = await browser.websocket(server.ws_url("/ws/voice/"))
        ready = await socket.expect("session.ready", timeout=20)
        assert ready["profile"]["name"]
        utterance = speak("What is the weather like in Paris today")
        sender = asyncio.create_task(stream(socket, silence(300) + utterance + silence(1500)))
        turn = await collect_turn(socket)
        await sender
        assert "paris" in turn["user"].lower(), turn
        assert turn["assistant"].strip(), turn
        assert turn["audio"] >= 24_000 * 2 // 2, "at least half a second of assistant audio"
        assert turn["status"] == "completed"
        order = [
            s for s in turn["states"] if s in ("listening", "processing", "assistant_speaking")
        ]
        assert order[:3] == ["listening", "processing", "assistant_speaking"], turn["states"]
        await socket.send_json({"type": "session.stop"})
        assert await socket.expect_close() == 1000


async def test_barge_in_over_the_real_path(server: DaphneServer) -> None:
    """Speaking over the assistant clears playback; the truncate report is accepted upstream."""
    async with Browser(server.base_url) as browser:
        await browser.login("talker", PASSWORD)
        socket = await browser.websocket(server.ws_url("/ws/voice/"))
        await socket.expect("session.ready", timeout=20)
        question = speak("Tell me a long story about a dragon and a castle")
        sender = asyncio.create_task(stream(socket, silence(300) + question + silence(900)))
        started = await socket.expect("audio.start", timeout=60)
        await sender
        interruption = asyncio.create_task(stream(socket, speak("Stop, please") + silence(1200)))
        await socket.expect("playback.clear", timeout=10)
        await socket.send_json(
            {"type": "playback.interrupted", "item_id": started["item_id"], "played_ms": 250}
        )
        await socket.expect("speech.started", timeout=5)
        await interruption
        # The conversation carries on: the interruption itself gets an answer.
        await socket.expect("transcript.assistant.done", timeout=60)
        assert not [e for e in socket.texts("error")], socket.texts("error")
        await socket.close()
