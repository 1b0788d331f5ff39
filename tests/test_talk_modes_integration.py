"""Push-to-talk, the greeting and idle handling over the whole path, no fakes.

A logged-in client, real Daphne, the consumer, the real ``azure-ai-voicelive`` SDK and localvoice
with its real offline models.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.support.audio import silence, speak
from tests.support.browser import Socket
from tests.support.servers import Browser, DaphneServer
from tests.support.talking import model_worker, stream

pytestmark = [pytest.mark.integration, pytest.mark.models]

PASSWORD = "talk-modes-pw-123"
GREETING = "Hello {first_name}, I am listening."
SETUP = f"""
from django.contrib.auth.models import User
from assistant.models import AssistantProfile
ptt = AssistantProfile.objects.create(
    name="Push-to-talk", instructions="Answer in one short sentence.", voice="alloy",
    turn_mode="push_to_talk", greeting_mode="fixed", greeting_text={GREETING!r},
)
ptt.users.add(User.objects.create_user("holder", password={PASSWORD!r}, first_name="Tess"))
idle = AssistantProfile.objects.create(
    name="Idle", instructions="Answer in one short sentence.", voice="alloy",
    idle_check_in_seconds=2, idle_end_seconds=2,
)
idle.users.add(User.objects.create_user("quiet", password={PASSWORD!r}))
"""


@pytest.fixture(scope="module")
def server(
    localvoice_models: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaphneServer]:
    logs = tmp_path_factory.mktemp("talk-modes")
    extra = {"VOICE_HEARTBEAT_SECONDS": "0.5"}
    with model_worker(
        "tm", logs, upstream_url=localvoice_models, setup=SETUP, extra=extra
    ) as worker:
        yield worker.daphne


async def until_response_done(socket: Socket, timeout: float = 60.0) -> dict[str, object]:
    return await socket.expect("response.done", timeout=timeout)


async def test_greeting_then_hold_speak_release_gets_a_reply(server: DaphneServer) -> None:
    async with Browser(server.base_url) as browser:
        await browser.login("holder", PASSWORD)
        socket = await browser.websocket(server.ws_url("/ws/voice/"))
        await socket.expect("session.ready", timeout=20)
        mode = await socket.expect("turn_mode")
        assert (mode["mode"], mode["can_switch"]) == ("push_to_talk", False)

        # The assistant speaks first, the fixed text word for word, before any audio was sent.
        await socket.expect("audio.start", timeout=60)
        said = await socket.expect("transcript.assistant.done", timeout=60)
        assert said["transcript"] == "Hello Tess, I am listening."
        await until_response_done(socket)

        # Hold, speak, release: committed and answered, with no server VAD at all.
        await socket.send_json({"type": "input.press"})
        await socket.expect("state", state="listening")
        question = speak("What is the weather like in Paris")
        await stream(socket, silence(200) + question + silence(300))
        await socket.send_json({"type": "input.release"})
        released = time.monotonic()
        heard = await socket.expect("transcript.user.done", timeout=60)
        assert "paris" in heard["transcript"].lower(), heard
        await socket.expect("audio.start", timeout=60)
        # Measured, not asserted: from the release to the reply's first audio.
        print(f"\npush-to-talk: release -> first audio {time.monotonic() - released:.2f} s")
        assert not socket.texts("speech.started")  # the turn was the button's, not the VAD's

        assert (await until_response_done(socket))["status"] == "completed"
        await socket.send_json({"type": "session.stop"})
        assert await socket.expect_close() == 1000


async def test_idle_check_in_then_a_clean_end(server: DaphneServer) -> None:
    async with Browser(server.base_url) as browser:
        await browser.login("quiet", PASSWORD)
        socket = await browser.websocket(server.ws_url("/ws/voice/"))
        await socket.expect("session.ready", timeout=20)
        # Nobody says anything: the assistant checks in once...
        check_in = await socket.expect("transcript.assistant.done", timeout=60)
        assert check_in["transcript"].strip()
        # ...and the session ends cleanly after the quiet that follows.
        error = await socket.expect("error", timeout=60)
        assert error["code"] == "idle_ended"
        assert await socket.expect_close(timeout=10) == 1000
        states = [m["state"] for m in socket.texts("state")]
        assert states[-1] == "stopped", states
        assert len(socket.texts("response.done")) == 1


async def test_a_press_during_a_reply_interrupts_it(server: DaphneServer) -> None:
    """A press right at the start of a long reply clears playback and cancels it upstream."""
    async with Browser(server.base_url) as browser:
        await browser.login("holder", PASSWORD)
        socket = await browser.websocket(server.ws_url("/ws/voice/"))
        await socket.expect("session.ready", timeout=20)
        await until_response_done(socket)  # the greeting
        await socket.send_json(
            {"type": "text.send", "text": "Tell me a long story about a knight and a dragon."}
        )
        await socket.expect("audio.start", timeout=60)
        await socket.send_json({"type": "input.press"})
        await socket.expect("playback.clear", timeout=10)
        done = await until_response_done(socket)
        assert done["status"] == "cancelled", done
        # The user's turn goes on: a too-short tap is refused without ending anything.
        await socket.send_json({"type": "input.release"})
        assert (await socket.expect("error", timeout=10))["code"] == "input_too_short"
        await socket.close()
