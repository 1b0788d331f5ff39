"""The whole path, no fakes: a logged-in browser client, real Daphne, the consumer, the real
``azure-ai-voicelive`` SDK, and localvoice with its real offline models."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.support.audio import silence, speak
from tests.support.servers import Browser, DaphneServer
from tests.support.talking import collect_turn, create_user, model_worker, stream

pytestmark = [pytest.mark.integration, pytest.mark.models]

PASSWORD = "integration-pw-123"


@pytest.fixture(scope="module")
def server(
    localvoice_models: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaphneServer]:
    logs = tmp_path_factory.mktemp("integration")
    setup = create_user("talker", PASSWORD)
    with model_worker("it", logs, upstream_url=localvoice_models, setup=setup) as worker:
        yield worker.daphne


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
