"""A reply's text or tool call, from a fake chat model with a real adapter (Qwen2.5's)."""

from __future__ import annotations

import pytest

from localvoice.pipeline.llms import registry
from localvoice.protocol.voices import VoiceChoice
from localvoice.turns.conversation import Conversation, message_item
from localvoice.turns.reply import ModelReply
from localvoice.turns.response_spec import ResponseSpec
from localvoice.turns.tool_calls import ToolCall
from tests.localvoice.fakes import WEATHER_TOOL, FakeChat

CALL = '<tool_call> {"name": "get_weather", "arguments": {"city": "Paris"}} </tool_call>'


def spec(**fields) -> ResponseSpec:
    defaults = {
        "instructions": "Be brief.",
        "modalities": ["text"],
        "voice": VoiceChoice("joe"),
        "voice_value": "joe",
        "output_rate": 24000,
        "output_format": "pcm16",
        "temperature": 0.8,
        "max_tokens": 60,
        "tools": [WEATHER_TOOL],
    }
    return ResponseSpec(**{**defaults, **fields})


def asked(text: str) -> Conversation:
    conversation = Conversation()
    conversation.add(message_item("user", [{"type": "input_text", "text": text}]))
    return conversation


async def said(reply: ModelReply) -> str:
    return "".join([piece async for piece in reply.tokens()])


async def test_a_grounded_call_ends_the_reply_silently():
    chat = FakeChat(CALL, registry.get("qwen2.5-0.5b"))
    reply = ModelReply(spec(), chat, asked("What is the weather in Paris?"), "resp_1")
    assert await said(reply) == ""
    assert reply.call == ToolCall("get_weather", '{"city":"Paris"}')
    assert chat.temperatures == [0.3]  # the adapter's cap
    assert "<tools>" in chat.prompts[0][0]["content"]


async def test_a_rejected_call_is_answered_again_without_tools():
    """The city was never said: the call is refused and the model answers as speech."""
    chat = FakeChat(CALL, registry.get("qwen2.5-0.5b"))
    chat.replies.append("I cannot check that.")
    response = spec()
    reply = ModelReply(response, chat, asked("What is the weather like?"), "resp_1")
    assert await said(reply) == "I cannot check that. "
    assert reply.call is None
    assert "localvoice_rejected_tool_call" in response.metadata
    assert "<tools>" not in chat.prompts[1][0]["content"]


async def test_no_tools_for_a_plain_model_or_a_pre_generated_reply():
    plain = ModelReply(spec(), FakeChat("Hi."), asked("Weather in Paris?"), "resp_1")
    assert plain.tools == []
    assert await said(plain) == "Hi. "
    qwen = FakeChat(CALL, registry.get("qwen2.5-0.5b"))
    canned = ModelReply(spec(pre_generated="Hello."), qwen, asked("Paris?"), "resp_2")
    assert canned.tools == []
    assert await said(canned) == "Hello."
    assert qwen.prompts == []


async def test_a_speculative_reply_prompts_the_uncommitted_turn():
    chat = FakeChat("Noon.")
    reply = ModelReply(spec(tools=[]), chat, Conversation(), "resp_1")
    reply.extra_user_text = "what time is it"
    await said(reply)
    assert chat.prompts[0][-1] == {"role": "user", "content": "what time is it"}


async def test_a_call_after_a_sentence_speaks_the_sentence_once_and_calls():
    """Qwen2.5-1.5B often writes "Sure! ..." before its call: both are kept, nothing twice."""
    chat = FakeChat("Sure! " + CALL, registry.get("qwen2.5-1.5b"))
    reply = ModelReply(spec(), chat, asked("What is the weather in Paris?"), "resp_1")
    assert await said(reply) == "Sure!"
    assert reply.call == ToolCall("get_weather", '{"city":"Paris"}')
    assert len(chat.prompts) == 1


@pytest.mark.parametrize(
    ("answer", "heard"),
    [
        ("Sure! I cannot check that.", "Sure! I cannot check that. "),  # the sentence once
        ("I cannot check that.", "Sure! I cannot check that. "),
        ("Sure!", "Sure!"),
    ],
)
async def test_a_call_rejected_after_a_sentence_does_not_repeat_it(answer, heard):
    chat = FakeChat("Sure! " + CALL, registry.get("qwen2.5-1.5b"))
    chat.replies.append(answer)
    reply = ModelReply(spec(), chat, asked("What is the weather like?"), "resp_1")
    assert await said(reply) == heard
    assert reply.call is None
    assert "<tools>" not in chat.prompts[1][0]["content"]
