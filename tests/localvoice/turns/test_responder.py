"""A response's ``auto_truncate`` on barge-in, on fake stages."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from localvoice.pipeline.llms import registry
from tests.localvoice.fakes import WEATHER_TOOL, FakeChat
from tests.localvoice.server.test_session import Client

LONG = "This first sentence of the reply is long enough to take a while to play. Then more."


class StallingChat(FakeChat):
    """Streams the first sentence, then waits for ``go`` before the rest."""

    def __init__(self) -> None:
        super().__init__(LONG)
        self.go = threading.Event()

    async def stream(
        self, messages, *, temperature, max_tokens, cancel, stats, tools_offered=False
    ):  # type: ignore[override]
        self.prompts.append(messages)
        for word in LONG.split(" "):
            if cancel.is_set():
                return
            yield word + " "
            if word.endswith("."):
                while not self.go.is_set() and not cancel.is_set():
                    await asyncio.sleep(0.005)


async def interrupted(auto_truncate: bool) -> Client:
    """A reply whose first sentence was sent, interrupted by the user a moment later."""
    chat = StallingChat()
    c = Client(llm=chat)
    turn: dict[str, Any] = {"type": "server_vad", "auto_truncate": auto_truncate}
    await c.send({"type": "session.update", "session": {"turn_detection": turn}})
    await c.speak(600)
    await c.pause(800)
    await c.wait_for("response.audio.delta")  # the first sentence; the rest is not generated
    await asyncio.sleep(0.1)
    await c.speak(300)
    await c.wait_for("response.done")
    await asyncio.sleep(0.05)
    chat.go.set()
    return c


@pytest.mark.parametrize("auto_truncate", [True, False])
async def test_auto_truncate_cuts_the_item_to_what_was_played(auto_truncate):
    c = await interrupted(auto_truncate)
    try:
        response = c.of("response.done")[0]["response"]
        assert response["status_details"]["reason"] == "turn_detected"
        item_id = response["output"][0]["id"]
        item = c.session.conversation.get(item_id)
        assert item is not None
        truncated = c.of("conversation.item.truncated")
        if not auto_truncate:
            assert truncated == []
            assert item.text().startswith("This first sentence of the reply is long")
            return
        assert [t["item_id"] for t in truncated] == [item_id]
        assert truncated[0]["audio_end_ms"] > 0
        assert item.audio_ms == truncated[0]["audio_end_ms"]
        assert len(item.text()) < len("This first sentence of the reply is long enough")
    finally:
        c.close()


@pytest.mark.parametrize("modality", ["audio", "text"])
async def test_a_sentence_before_a_call_is_a_message_then_the_call(modality):
    """A sentence before a call ("Sure! <tool_call>...") is one message item, then the call."""
    call = '<tool_call> {"name": "get_weather", "arguments": {"city": "Paris"}} </tool_call>'
    chat = FakeChat("Sure! " + call, registry.get("qwen2.5-1.5b"))
    c = Client(llm=chat)
    await c.send({"type": "session.update", "session": {"tools": [WEATHER_TOOL]}})
    item = {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "What is the weather in Paris?"}],
    }
    await c.send({"type": "conversation.item.create", "item": item})
    await c.send({"type": "response.create", "response": {"modalities": [modality]}})
    await c.wait_for("response.done")
    output = c.of("response.done")[0]["response"]["output"]
    assert [o["type"] for o in output] == ["message", "function_call"]
    part = output[0]["content"][0]
    assert part.get("transcript", part.get("text")) == "Sure!"
    assert output[1]["name"] == "get_weather"
    assert output[1]["arguments"] == '{"city":"Paris"}'
    done = c.of("response.output_item.done")
    assert [d["item"]["type"] for d in done] == ["message", "function_call"]
    assert len(c.of("response.function_call_arguments.done")) == 1
    if modality == "audio":
        assert c.pipeline.tts.spoken == ["Sure!"]
    history = [i.data["type"] for i in c.session.conversation.items]
    assert history[-2:] == ["message", "function_call"]
