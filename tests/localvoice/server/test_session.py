"""Turn-taking and speculation of a session, on fake stages (no model is loaded).

The session is driven directly: client events go to ``Session.handlers`` and the
server events it sends are collected. The fake VAD hears speech in any loud window, so the
tests speak with a constant level and pause with zeros, at the session's 24 kHz.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from typing import Any

import numpy as np
import pytest

from localvoice.protocol.voices import VoiceMap
from localvoice.server.session import Session
from tests.localvoice.fakes import FakeChat, FakeStt, fake_pipeline

RATE = 24000
CHUNK_MS = 100


class Client:
    """A session and the events it sent, with helpers to speak and wait."""

    def __init__(self, **stages: Any) -> None:
        self.pipeline = fake_pipeline(**stages)
        self.chat = self.pipeline.llm
        assert isinstance(self.chat, FakeChat)
        self.events: list[dict[str, Any]] = []
        self.session = Session(
            self._send, self.pipeline, VoiceMap(["joe"], "joe", {}), "gpt-realtime"
        )

    async def _send(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    async def send(self, event: dict[str, Any]) -> None:
        await self.session.handlers[event["type"]](event)

    async def audio(self, ms: int, level: int) -> None:
        """Append ``ms`` of audio in 100 ms pieces, letting background work run in between."""
        for _ in range(ms // CHUNK_MS):
            pcm = np.full(RATE * CHUNK_MS // 1000, level, dtype="<i2").tobytes()
            audio = base64.b64encode(pcm).decode("ascii")
            await self.send({"type": "input_audio_buffer.append", "audio": audio})
            await asyncio.sleep(0.02)

    async def speak(self, ms: int) -> None:
        await self.audio(ms, 6000)

    async def pause(self, ms: int) -> None:
        await self.audio(ms, 0)

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    async def wait_for(self, kind: str, count: int = 1, timeout: float = 5.0) -> None:
        async def done() -> None:
            while len(self.of(kind)) < count:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(done(), timeout)

    async def guessed(self, count: int = 1) -> None:
        """Wait until the chat model has been prompted ``count`` times."""

        async def done() -> None:
            while len(self.chat.prompts) < count:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(done(), 5.0)

    def close(self) -> None:
        self.session.close()
        self.pipeline.shutdown()


@pytest.fixture
async def client():
    made: list[Client] = []

    def make(**stages: Any) -> Client:
        made.append(Client(**stages))
        return made[-1]

    yield make
    for one in made:
        one.close()


async def test_a_spoken_turn_is_detected_transcribed_and_answered(client):
    """speech_started, speech_stopped, committed, the transcript, then a spoken reply."""
    c = client()
    await c.speak(1000)
    await c.pause(800)
    await c.wait_for("response.done")
    types = c.types()
    order = [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.created",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
        "response.audio.delta",
        "response.done",
    ]
    positions = [types.index(kind) for kind in order]
    assert positions == sorted(positions), types
    started = c.of("input_audio_buffer.speech_started")[0]
    committed = c.of("input_audio_buffer.committed")[0]
    assert started["item_id"] == committed["item_id"]
    assert started["audio_start_ms"] == 0
    done = c.of("conversation.item.input_audio_transcription.completed")[0]
    assert done["transcript"] == "what time is it"
    transcript = "".join(
        e["delta"] for e in c.of("conversation.item.input_audio_transcription.delta")
    )
    assert transcript == "what time is it"
    response = c.of("response.done")[0]["response"]
    assert response["status"] == "completed"
    assert response["output"][0]["content"][0]["transcript"] == "It is noon. Have a nice day."
    audio = b"".join(base64.b64decode(e["delta"]) for e in c.of("response.audio.delta"))
    assert len(audio) > 0
    assert len(audio) % 2 == 0
    assert c.chat.prompts[-1][-1] == {"role": "user", "content": "what time is it"}


async def test_the_reply_prepared_during_the_hang_over_is_kept(client):
    """The transcript did not change after the pause: the speculative reply is released."""
    c = client()
    await c.speak(600)
    await c.pause(200)  # past the speculation delay, inside the 500 ms hang-over
    await c.guessed()
    assert c.of("response.created") == []  # held back until the turn really ends
    await c.pause(600)
    await c.wait_for("response.done")
    response = c.of("response.done")[0]["response"]
    assert response["metadata"]["localvoice_speculative"] == "1"
    assert len(c.chat.prompts) == 1
    # Nothing of the reply went out before the turn was committed.
    types = c.types()
    assert types.index("input_audio_buffer.committed") < types.index("response.created")


async def test_the_prompt_is_prefilled_while_the_user_speaks(client):
    """The instructions at session.update, the turn at speech start, then each partial.

    A partial's last word may be cut off, so it is left out; every prefill is the prompt the
    reply gets, up to the user's text so far.
    """
    c = client(stt=FakeStt("what time is it"))
    update = {"instructions": "Be brief.", "modalities": ["text"]}
    await c.send({"type": "session.update", "session": update})
    await c.speak(1800)  # a partial transcript about every 0.8 s
    await c.pause(800)
    await c.wait_for("response.done")
    prefills = c.chat.prefills
    said = [p[-1]["content"] for p in prefills]
    assert said[:2] == ["", ""]  # session.update, then speech_started
    assert "what time is" in said[2:]
    assert "what time is it" not in said
    reply_prompt = c.chat.prompts[-1]
    for prefill in prefills:
        assert prefill[:-1] == reply_prompt[:-1]
        assert prefill[-1]["role"] == "user"
        assert reply_prompt[-1]["content"].startswith(prefill[-1]["content"])
    assert "Be brief." in prefills[0][0]["content"]


async def test_no_live_transcript_while_another_reply_waits_for_its_first_tokens(client):
    """A partial would take the core that reply's decode runs on; the turn's own is kept."""
    stt = FakeStt("what time is it")
    c = client(stt=stt)
    c.chat.replies_starting = True
    await c.speak(1800)  # a partial transcript about every 0.8 s otherwise
    await c.pause(800)
    await c.wait_for("response.done")
    # One transcription at the pause (the hang-over's guess, then the turn's), no partials.
    assert len(stt.heard) == 1
    assert [p[-1]["content"] for p in c.chat.prefills] == [""]  # at speech start; no partial
    done = c.of("conversation.item.input_audio_transcription.completed")[0]
    assert done["transcript"] == "what time is it"


async def test_nothing_is_prefilled_without_server_vad_or_during_a_reply(client):
    """Push-to-talk has no speech_started; a barge-in's prompt would be stale at once."""
    c = client()
    await c.send({"type": "session.update", "session": {"turn_detection": None}})
    await c.speak(500)
    assert c.chat.prefills == []
    c2 = client()
    c2.chat.gate = threading.Event()
    await c2.speak(600)
    await c2.pause(800)
    await c2.wait_for("response.created")
    before = len(c2.chat.prefills)
    await c2.speak(300)  # barge-in while the reply is still running
    await c2.wait_for("input_audio_buffer.speech_started", 2)
    assert len(c2.chat.prefills) == before
    c2.chat.gate.set()


async def test_a_guess_is_discarded_when_the_user_goes_on(client):
    """Speech that resumes within the hang-over drops the held reply without a trace."""
    c = client()
    await c.speak(600)
    await c.pause(300)  # longer than the speculation delay, shorter than the hang-over
    await c.guessed()  # the reply is being prepared during the hang-over
    assert c.of("response.created") == []
    await c.speak(400)
    await c.pause(800)
    await c.wait_for("response.done")
    await asyncio.sleep(0.1)
    assert len(c.chat.prompts) == 2
    assert len(c.of("input_audio_buffer.speech_started")) == 1
    assert len(c.of("response.created")) == 1
    assert len(c.of("response.done")) == 1
    ids = {e.get("response_id") for e in c.events if "response_id" in e}
    assert ids == {c.of("response.done")[0]["response"]["id"]}


async def test_a_guess_is_discarded_when_the_conversation_changes(client):
    """An item added during the hang-over makes the guess stale: the reply is generated anew."""
    c = client()
    await c.send({"type": "session.update", "session": {"modalities": ["text"]}})
    await c.speak(600)
    await c.pause(300)
    await c.guessed()  # the reply is being prepared during the hang-over
    note = {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "x"}]}
    await c.send({"type": "conversation.item.create", "item": note})
    await c.pause(600)
    await c.wait_for("response.done")
    response = c.of("response.done")[0]["response"]
    assert response["status"] == "completed"
    assert "localvoice_speculative" not in response["metadata"]
    assert response["output"][0]["content"][0]["text"] == "It is noon. Have a nice day."
    prompts = c.chat.prompts
    assert len(prompts) == 2
    assert {"role": "system", "content": "x"} in prompts[-1]
    assert {"role": "system", "content": "x"} not in prompts[0]


async def test_barge_in_cancels_the_reply(client):
    """speech_started during a reply cancels it with ``turn_detected``; no audio follows."""
    chat = FakeChat()
    chat.gate = threading.Event()
    c = client(llm=chat)
    await c.speak(600)
    await c.pause(800)
    await c.wait_for("response.created")
    await c.speak(300)
    await c.wait_for("response.done")
    response = c.of("response.done")[0]["response"]
    assert response["status"] == "cancelled"
    assert response["status_details"]["reason"] == "turn_detected"
    types = c.types()
    assert types.count("input_audio_buffer.speech_started") == 2
    after = types[types.index("response.done") :]
    assert "response.audio.delta" not in after
    chat.gate.set()


async def test_client_cancel_and_manual_commit_without_vad(client):
    """With ``turn_detection: null`` the client commits and creates the response itself."""
    c = client()
    await c.send({"type": "session.update", "session": {"turn_detection": None}})
    await c.speak(500)
    assert "input_audio_buffer.speech_started" not in c.types()
    await c.send({"type": "input_audio_buffer.commit"})
    await c.wait_for("conversation.item.input_audio_transcription.completed")
    assert c.of("response.created") == []
    chat = c.chat
    chat.gate = threading.Event()
    await c.send({"type": "response.create"})
    await c.wait_for("response.created")
    await c.send({"type": "response.cancel"})
    response = c.of("response.done")[0]["response"]
    assert response["status"] == "cancelled"
    assert response["status_details"]["reason"] == "client_cancelled"
    chat.gate.set()


async def test_a_turn_deleted_while_the_reply_before_it_plays_gets_no_reply(client):
    """Without interrupt_response the reply plays on and the next turn's reply waits behind it;
    a turn deleted meanwhile (the service's backchannel, issue 21) is not answered."""
    chat = FakeChat()
    chat.gate = threading.Event()
    c = client(llm=chat)
    turn = {"type": "server_vad", "create_response": True, "interrupt_response": False}
    await c.send({"type": "session.update", "session": {"turn_detection": turn}})
    await c.speak(600)
    await c.pause(800)
    await c.wait_for("response.created")
    await c.speak(300)
    await c.pause(800)
    await c.wait_for("conversation.item.input_audio_transcription.completed", count=2)
    second = c.of("input_audio_buffer.committed")[1]["item_id"]
    await c.send({"type": "conversation.item.delete", "item_id": second})
    await c.wait_for("conversation.item.deleted")
    chat.gate.set()
    await c.wait_for("response.done")
    assert c.of("response.done")[0]["response"]["status"] == "completed"
    await asyncio.sleep(0.3)  # the queued reply would have started by now
    assert len(c.of("response.created")) == 1, c.types()


async def test_a_reply_finished_while_held_does_not_stay_active(client):
    """A short speculative reply may be complete before its turn ends (all of it buffered).

    Once released it is over: the next turn is speculated and prefilled again.
    """
    c = client()
    for turn in (1, 2):
        await c.speak(600)
        await c.pause(800)
        await c.wait_for("response.done", count=turn)
        response = c.of("response.done")[-1]["response"]
        assert response["metadata"].get("localvoice_speculative") == "1", turn
