"""Backchannels over the whole path, no fakes: "uh huh" over a reply goes on, "wait, stop" not.

A logged-in client, real Daphne, the consumer, the real ``azure-ai-voicelive`` SDK and localvoice
with its real models (Silero VAD, Whisper, the chat model, Piper). The client speaks into a
reply in real time, and streams silence in between, as the talk page's microphone does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.audio import silence, speak, trim_silence
from tests.support.browser import Socket
from tests.support.servers import Browser, DaphneServer
from tests.support.talking import Microphone, model_worker

pytestmark = [pytest.mark.integration, pytest.mark.models]

PASSWORD = "backchannels-pw-123"
SETUP = f"""
from django.contrib.auth.models import User
from assistant.models import AssistantProfile
guide = AssistantProfile.objects.create(
    name="Guide", voice="alloy", input_transcription_language="en-US",
    instructions="You are a friendly guide. Answer every question with six short sentences.",
)
guide.users.add(User.objects.create_user("nodder", password={PASSWORD!r}))
"""


@pytest.fixture(scope="module")
def server(
    localvoice_models: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaphneServer]:
    logs = tmp_path_factory.mktemp("backchannels")
    # The first six-sentence reply of a fresh localvoice on two busy cores has been seen to
    # send nothing for over 15 s (the reply watchdog's default); not what this test is about.
    extra = {"VOICE_REPLY_STALL_SECONDS": "60", "ASSISTANT_LOG_LEVEL": "DEBUG"}
    with model_worker(
        "bc", logs, upstream_url=localvoice_models, setup=SETUP, extra=extra
    ) as worker:
        yield worker.daphne


async def frames_until(socket: Socket, *kinds: str, timeout: float = 30.0) -> list[Any]:
    """Every frame (JSON messages as dicts, audio as bytes) up to the first message of ``kinds``."""
    seen: list[Any] = []
    async with asyncio.timeout(timeout):
        while True:
            frame = await socket.next_frame(timeout)
            assert frame.kind != "close", f"closed with {frame.code}"
            seen.append(frame.data)
            if frame.kind == "text" and frame.data["type"] in kinds:
                return seen


async def frames_for(socket: Socket, seconds: float) -> list[Any]:
    """Every frame that comes within ``seconds``."""
    seen: list[Any] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            frame = await socket.next_frame(left)
        except TimeoutError:
            break
        assert frame.kind != "close", f"closed with {frame.code}"
        seen.append(frame.data)
    return seen


def types(frames: list[Any]) -> list[str]:
    return [f["type"] for f in frames if isinstance(f, dict)]


async def ask(socket: Socket, mic: Microphone, question: str) -> None:
    """Ask, and return once the reply's audio is coming."""
    await mic.say(silence(200) + speak(question) + silence(900))
    await socket.expect("audio.start", timeout=90)
    await asyncio.sleep(0.5)


async def reply_end(socket: Socket) -> list[Any]:
    """Frames up to the reply's ``response.done``."""
    return await frames_until(socket, "response.done", timeout=90)


async def test_uh_huh_lets_the_reply_go_on_and_wait_stop_stops_it(server: DaphneServer) -> None:
    async with Browser(server.base_url) as browser:
        await browser.login("nodder", PASSWORD)
        socket = await browser.websocket(server.ws_url("/ws/voice/"))
        await socket.expect("session.ready", timeout=30)
        async with Microphone(socket) as mic:
            await ask(socket, mic, "Tell me about the history of Paris")
            # espeak-ng reads "mhm" as the letters M, H, M, and Whisper tiny.en often writes its
            # "mm hmm" as "And, and": "uh huh" is the hum it hears as one (bench/backchannels.py).
            uh_huh = trim_silence(speak("uh huh"))
            sender = asyncio.create_task(mic.say(uh_huh + silence(1500)))
            during = await frames_until(socket, "playback.resume", "playback.clear")
            await sender
            assert types(during)[-1] == "playback.resume", types(during)
            assert "playback.duck" in types(during)
            assert "speech.started" not in types(during)
            # The reply goes on and completes. Generated faster than it plays, it may be done
            # upstream while "uh huh" is being decided: then its response.done came already.
            after = [] if "response.done" in types(during) else await reply_end(socket)
            done = [
                f for f in during + after if isinstance(f, dict) and f["type"] == "response.done"
            ]
            assert [d["status"] for d in done] == ["completed"], types(during + after)
            assert "playback.clear" not in types(after)
            assert "transcript.user.done" not in types(during + after)  # "uh huh" is not a turn
            await asyncio.sleep(1.0)

            asked = len(socket.texts())
            await ask(socket, mic, "Tell me about the oceans of the world")
            # A reply generated faster than it plays may be done upstream already: then only the
            # page's playback stops, and nothing is left to cancel.
            already_done = any(m["type"] == "response.done" for m in socket.texts()[asked:])
            sender = asyncio.create_task(mic.say(trim_silence(speak("wait, stop")) + silence(1500)))
            during = await frames_until(socket, "playback.clear")
            await sender
            assert "playback.duck" in types(during)
            assert "playback.resume" not in types(during)
            started = await frames_until(socket, "speech.started")
            assert types(started)[-1] == "speech.started"
            if not already_done:
                # The interrupted reply's end may come before speech.started (then the next
                # response.done is the reply to "wait, stop"): completed if it was done upstream
                # before the barge-in, cancelled if the barge-in cut it.
                ends = [
                    f
                    for f in during + started
                    if isinstance(f, dict) and f["type"] == "response.done"
                ]
                if ends:
                    end, before_clear = ends[0], any(f is ends[0] for f in during)
                else:
                    end, before_clear = (
                        (await frames_until(socket, "response.done", timeout=60))[-1],
                        False,
                    )
                assert before_clear or end["status"] == "cancelled", (end, types(during + started))
        await socket.close()


async def test_uh_huh_after_the_reply_is_done_upstream_lets_it_play_on(
    server: DaphneServer,
) -> None:
    """The reply is complete upstream (its response.done came) but still plays on the page.

    localvoice then starts its own reply to "uh huh" as soon as the transcript is in, before
    the service's ``conversation.item.delete``: that reply must never reach the page.
    """
    async with Browser(server.base_url) as browser:
        await browser.login("nodder", PASSWORD)
        socket = await browser.websocket(server.ws_url("/ws/voice/"))
        await socket.expect("session.ready", timeout=30)
        async with Microphone(socket) as mic:
            await mic.say(silence(200) + speak("Tell me about how bread is made") + silence(900))
            await socket.expect("audio.start", timeout=90)
            started = asyncio.get_running_loop().time()
            reply = await reply_end(socket)
            assert reply[-1]["status"] == "completed", types(reply)
            audio_s = sum(len(f) for f in reply if isinstance(f, bytes)) / 48_000
            left_s = audio_s - (asyncio.get_running_loop().time() - started)
            assert left_s > 2.5, f"generated slower than it plays: {audio_s:.1f} s of audio"

            sender = asyncio.create_task(mic.say(trim_silence(speak("uh huh")) + silence(1500)))
            during = await frames_until(socket, "playback.resume", "playback.clear")
            await sender
            assert types(during)[-1] == "playback.resume", types(during)
            # Nothing of a reply to "uh huh": no new audio item, no response.done, no clear.
            quiet = await frames_for(socket, 6.0)
            heard = types(during + quiet)
            assert not {"audio.start", "response.done", "playback.clear"} & set(heard), heard
            assert not any(isinstance(f, bytes) for f in during + quiet)
            assert "transcript.user.done" not in heard
        await socket.close()
