"""One WebSocket connection, served by the real aiohttp app on fake stages (no model loaded)."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
from aiohttp.test_utils import TestClient, TestServer

from localvoice.config import ServerConfig
from localvoice.server.app import REALTIME_PATH, create_app
from tests.localvoice.fakes import fake_pipeline


async def receive_until(ws: Any, kind: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["type"] != kind:
        seen.append(json.loads(await ws.receive_str(timeout=timeout)))
    return seen


def audio(ms: int, level: int) -> str:
    pcm = np.full(24 * ms, level, dtype="<i2").tobytes()
    return base64.b64encode(pcm).decode("ascii")


async def test_a_spoken_turn_over_the_socket():
    """The wire sees the session, the turn, the transcript and a spoken reply, in order."""
    pipeline = fake_pipeline()
    app = create_app(ServerConfig(), pipeline)
    async with TestClient(TestServer(app)) as client, client.ws_connect(REALTIME_PATH) as ws:
        assert (await receive_until(ws, "session.created"))[0]["type"] == "session.created"
        await ws.send_json({"type": "session.update", "session": {"voice": "alloy"}})
        updated = (await receive_until(ws, "session.updated"))[-1]
        assert updated["session"]["voice"] == "alloy"
        for level, count in ((6000, 8), (0, 10)):
            for _ in range(count):
                await ws.send_json(
                    {"type": "input_audio_buffer.append", "audio": audio(100, level)}
                )
        seen = [e["type"] for e in await receive_until(ws, "response.done")]
        for first, then in [
            ("input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped"),
            (
                "input_audio_buffer.committed",
                "conversation.item.input_audio_transcription.completed",
            ),
            ("response.created", "response.audio.delta"),
            ("response.audio.delta", "response.done"),
        ]:
            assert seen.index(first) < seen.index(then), seen
        await ws.send_str("{nope")
        error = (await receive_until(ws, "error"))[-1]
        assert error["error"]["code"] == "invalid_json"
        await ws.send_json({"type": "input_audio_buffer.append", "audio": "***"})
        error = (await receive_until(ws, "error"))[-1]
        assert error["error"]["code"] == "invalid_audio"
    assert pipeline.vad.released == pipeline.vad.acquired == 1  # type: ignore[attr-defined]
    pipeline.shutdown()


async def test_healthz_describes_the_stages():
    app = create_app(ServerConfig(), fake_pipeline())
    async with TestClient(TestServer(app)) as client:
        body = await (await client.get("/healthz")).json()
    assert body["models"]["stt"] == "fake stt"
    assert body["models"]["tts"] == {"voices": ["joe"], "default": "joe"}
