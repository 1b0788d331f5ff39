"""Handshake, health, echo mode, session limit and injected faults, through the real SDK."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import aiohttp
import pytest
from azure.ai.voicelive.aio import ConnectionClosed, connect
from azure.ai.voicelive.aio import ConnectionError as VoiceLiveConnectionError
from azure.core.credentials import AccessToken, AzureKeyCredential
from azure.core.credentials_async import AsyncTokenCredential

from tests.support.audio import silence, speak
from tests.support.localvoice import (
    API_VERSION,
    REPO,
    TEST_API_KEY,
    LocalVoiceProcess,
    healthz,
    next_event,
    running_localvoice,
    send_audio,
    voicelive_session,
)

pytestmark = pytest.mark.integration


class StubToken(AsyncTokenCredential):
    """A complete AsyncTokenCredential (the SDK checks the protocol with isinstance)."""

    async def get_token(self, *scopes, **kwargs):
        return AccessToken("any-token", int(time.time()) + 3600)

    async def close(self):
        pass

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        pass


@pytest.fixture(scope="module")
def keyed_server():
    with running_localvoice("--echo", "--api-key", "s3cret", "--accept-bearer") as endpoint:
        yield endpoint


def test_healthz_lists_models(localvoice_models):
    body = healthz(localvoice_models)
    assert body["status"] == "ok"
    assert body["mode"] == "models"
    assert {"vad", "stt", "llm", "tts"} <= set(body["models"])
    assert "joe" in body["models"]["tts"]["voices"]


def test_unknown_path_is_404(localvoice_echo):
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"{localvoice_echo}/nope")
    assert info.value.code == 404


async def test_sdk_with_path_prefix_gets_404(localvoice_echo):
    with pytest.raises(VoiceLiveConnectionError, match="404"):
        async with connect(
            endpoint=f"{localvoice_echo}/prefix",
            credential=AzureKeyCredential("k"),
            model="m",
            api_version=API_VERSION,
        ):
            pass


async def test_wrong_key_is_401_right_key_and_bearer_work(keyed_server):
    with pytest.raises(VoiceLiveConnectionError, match="401"):
        async with voicelive_session(keyed_server, api_key="wrong"):
            pass
    async with voicelive_session(keyed_server, api_key="s3cret") as conn:
        assert conn is not None
    async with connect(
        endpoint=keyed_server, credential=StubToken(), model="m", api_version=API_VERSION
    ) as conn:
        assert (await next_event(conn, "session.created")).session.id


def test_a_key_is_required_to_start(tmp_path):
    """Like Voice Live, the engine never serves anonymous clients unless told to (tests)."""
    env = {k: v for k, v in os.environ.items() if k != "LOCALVOICE_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "localvoice", "--echo", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 2
    assert "LOCALVOICE_API_KEY" in done.stderr


async def test_the_key_comes_from_the_environment_and_a_missing_key_is_401(monkeypatch):
    server = LocalVoiceProcess("--echo", "--no-auth")
    server.flags = ["--echo"]  # no flag at all: the key comes from LOCALVOICE_API_KEY
    with monkeypatch.context() as patched:
        patched.setenv("LOCALVOICE_API_KEY", "from-env")
        server.start(timeout=60)
    try:
        with pytest.raises(VoiceLiveConnectionError, match="401"):
            async with voicelive_session(server.endpoint, api_key="test-key"):
                pass
        url = (
            server.endpoint.replace("http", "ws")
            + f"/voice-live/realtime?api-version={API_VERSION}"
        )
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(url)  # no key at all
        assert refused.value.status == 401
        async with voicelive_session(server.endpoint, api_key="from-env") as conn:
            await conn.session.update(session={"voice": "alloy"})
            assert (await next_event(conn, "session.updated")).session.voice == "alloy"
    finally:
        server.stop()


async def test_ws_scheme_endpoint_works(localvoice_echo):
    async with voicelive_session(localvoice_echo.replace("http://", "ws://")) as conn:
        await conn.session.update(session={"voice": "alloy"})
        assert (await next_event(conn, "session.updated")).session.voice == "alloy"


async def test_echo_is_byte_exact(localvoice_echo):
    async with voicelive_session(localvoice_echo) as conn:
        chunks = [os.urandom(960) for _ in range(20)]
        for chunk in chunks:
            await conn.input_audio_buffer.append(audio=base64.b64encode(chunk).decode())
        got = [(await next_event(conn, "response.audio.delta", timeout=5)).delta for _ in chunks]
        assert got == chunks


async def test_max_session_seconds_expires_with_1001():
    with running_localvoice("--echo", "--max-session-seconds", "1.5") as endpoint:
        async with voicelive_session(endpoint) as conn:
            await conn.session.update(session={"instructions": "x"})
            updated = await next_event(conn, "session.updated")
            assert 0 < updated.session.expires_at.timestamp() - time.time() <= 2
            err = await next_event(conn, "error", timeout=5)
            assert err.error.code == "session_expired"
            with pytest.raises(ConnectionClosed) as info:
                await next_event(conn, "never", timeout=5)
            assert info.value.code == 1001


async def test_fault_type_is_unknown_without_flag(localvoice_echo):
    async with voicelive_session(localvoice_echo) as conn:
        await conn.send({"type": "localvoice.fault", "fault": "drop"})
        assert (await next_event(conn, "error")).error.code == "unknown_event_type"


async def _fault(conn, fault: str) -> None:
    await conn.send({"type": "localvoice.fault", "fault": fault})


async def test_fault_drop_mid_reply(localvoice_models):
    async with voicelive_session(localvoice_models, {"turn_detection": None}) as conn:
        await conn.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "Tell me a story."}],
                },
            }
        )
        await conn.response.create()
        await next_event(conn, "response.audio.delta", timeout=30)
        await _fault(conn, "drop")
        # The SDK reports any lost socket as code 1000; the raw test below checks there was
        # no close frame.
        with pytest.raises((ConnectionClosed, VoiceLiveConnectionError)):
            await next_event(conn, "never", timeout=5)
        # The server carries on with other sessions.
    async with voicelive_session(localvoice_models) as conn:
        assert conn is not None


async def test_fault_drop_has_no_close_frame(localvoice_models):
    url = (
        localvoice_models.replace("http://", "ws://")
        + f"/voice-live/realtime?api-version={API_VERSION}"
    )
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, headers={"api-key": TEST_API_KEY}) as ws,
    ):
        await ws.receive_json(timeout=5)  # session.created
        await ws.send_json({"type": "localvoice.fault", "fault": "drop"})
        msg = await ws.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        assert ws.close_code == 1006 or ws.close_code is None or msg.type == aiohttp.WSMsgType.ERROR


async def test_fault_close_1011(localvoice_models):
    async with voicelive_session(localvoice_models) as conn:
        await _fault(conn, "close")
        with pytest.raises(ConnectionClosed) as info:
            await next_event(conn, "never", timeout=5)
        assert info.value.code == 1011


async def test_fault_malformed(localvoice_models):
    async with voicelive_session(localvoice_models) as conn:
        await _fault(conn, "malformed")
        with pytest.raises(VoiceLiveConnectionError, match="Failed to parse"):
            await next_event(conn, "never", timeout=5)


async def test_fault_unknown_event(localvoice_models):
    async with voicelive_session(localvoice_models) as conn:
        await _fault(conn, "unknown_event")
        ev = await next_event(conn, "localvoice.unknown_event", timeout=5)
        assert ev["type"] == "localvoice.unknown_event"


async def test_fault_error_event(localvoice_models):
    async with voicelive_session(localvoice_models) as conn:
        await _fault(conn, "error_event")
        err = await next_event(conn, "error", timeout=5)
        assert err.error.code == "server_error"
        assert err.error.type == "server_error"
        await conn.session.update(session={"instructions": "ok"})
        await next_event(conn, "session.updated")


async def test_fault_stall_then_resume(localvoice_models):
    async with voicelive_session(localvoice_models) as conn:
        await _fault(conn, "stall")
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await conn.session.update(session={"instructions": "after stall"})
        with pytest.raises(TimeoutError):
            await next_event(conn, "session.updated", timeout=3)
        await next_event(conn, "session.updated", timeout=12)
        assert time.monotonic() - started >= 8


async def test_concurrent_sessions_both_answered(localvoice_models):
    vad = {"type": "server_vad", "silence_duration_ms": 400}

    async def one(text: str) -> str:
        async with voicelive_session(localvoice_models, {"turn_detection": vad}) as conn:
            await send_audio(conn, silence(200) + speak(text) + silence(1000), speed=2.0)
            done = await next_event(conn, "response.done", timeout=60)
            assert done.response.status == "completed"
            return done.response.output[0].content[0].transcript

    replies = await asyncio.gather(one("What time is it"), one("How are you today"))
    assert all(r.strip() for r in replies)


class _FakeOpenAI(BaseHTTPRequestHandler):
    """Streams a fixed reply as OpenAI chat-completion server-sent events."""

    requests: ClassVar[list[dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _FakeOpenAI.requests.append({"path": self.path, **body})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for piece in ["Hello ", "from the ", "fake model."]:
            chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def llm_url_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _FakeOpenAI)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    try:
        with running_localvoice("--llm-url", url) as endpoint:
            yield endpoint
    finally:
        httpd.shutdown()


@pytest.mark.models
async def test_llm_url_streams_from_an_openai_compatible_endpoint(llm_url_server):
    async with voicelive_session(llm_url_server, {"instructions": "Be a fake."}) as conn:
        await conn.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "Hi"}],
                },
            }
        )
        await conn.response.create()
        seen: list = []
        done = await next_event(conn, "response.done", timeout=30, seen=seen)
        assert done.response.status == "completed"
        transcript = next(e for e in seen if e.type == "response.audio_transcript.done").transcript
        assert transcript == "Hello from the fake model."
        assert any(e.type == "response.audio.delta" for e in seen)
    request = _FakeOpenAI.requests[-1]
    assert request["path"] == "/v1/chat/completions"
    assert request["stream"] is True
    assert request["messages"][0]["role"] == "system"
    assert request["messages"][0]["content"].startswith("Be a fake.")
    assert request["messages"][-1] == {"role": "user", "content": "Hi"}


@pytest.mark.integration
@pytest.mark.models
def test_healthz_and_log_name_the_chat_model(localvoice_models_process):
    models = healthz(localvoice_models_process.endpoint)["models"]
    assert models["llm_model"] == "qwen2.5-0.5b"
    assert "Qwen2.5-Coder-0.5B-Instruct" in models["llm"]
    assert "tiny.en" in models["stt"]
    assert (
        "chat model: llama.cpp Qwen2.5-Coder-0.5B-Instruct"
        in localvoice_models_process.log_tail(400)
    )
