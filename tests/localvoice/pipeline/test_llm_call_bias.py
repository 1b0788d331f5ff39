"""The first-token bias towards a tool call, on the real default model."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from localvoice.config import ServerConfig
from localvoice.pipeline.llm import LlamaChat, _call_bias
from localvoice.pipeline.llms import registry as chat_models
from localvoice.pipeline.llms.base import ChatFormat
from localvoice.pipeline.llms.qwen25 import Qwen25, Qwen25Large
from localvoice.pipeline.stages import ChatStats
from localvoice.pipeline.weights import resolve

SYSTEM = "You are a friendly voice assistant. Reply in one short spoken sentence."
CLOCK = {
    "type": "function",
    "name": "get_time",
    "description": "The current time.",
    "parameters": {"type": "object", "properties": {}},
}


@pytest.fixture(scope="module")
def biased() -> Iterator[tuple[LlamaChat, ChatFormat]]:
    """The default model with an overwhelming bias, so the test does not hang on its odds."""
    chat_format = chat_models.get(ServerConfig().llm)
    chat_format.call_bias = 50.0  # an instance attribute: the class keeps its own
    assert chat_format.weights is not None
    chat = LlamaChat(resolve(chat_format.weights), chat_format, n_threads=1, n_threads_batch=2)
    yield chat, chat_format
    chat.close()


async def reply(chat: LlamaChat, messages: list[dict[str, str]], *, tools: bool) -> str:
    pieces = [
        piece
        async for piece in chat.stream(
            messages,
            temperature=0.0,
            max_tokens=6,
            cancel=threading.Event(),
            stats=ChatStats(),
            tools_offered=tools,
        )
    ]
    return "".join(pieces)


@pytest.mark.models  # the real default model: slow to load, so out of `make test-fast`
async def test_the_bias_opens_a_reply_with_a_call_only_when_tools_are_offered(
    biased: tuple[LlamaChat, ChatFormat],
) -> None:
    chat, chat_format = biased
    messages = chat_format.messages(SYSTEM, [{"role": "user", "content": "Hello there!"}], [CLOCK])
    assert (await reply(chat, messages, tools=True)).lstrip().startswith(chat_format.call_opening)
    assert not (await reply(chat, messages, tools=False)).lstrip().startswith("<")


class Vocabulary:
    """A tokenizer where only ``{"`` is one token."""

    def tokenize(self, text: bytes, add_bos: bool, special: bool) -> list[int]:
        return [4913] if text == b'{"' else list(text)


def test_only_a_model_given_a_bias_and_an_opening_of_one_token_gets_one() -> None:
    assert _call_bias(Vocabulary(), Qwen25Large()) == (4913, 1.0)
    assert _call_bias(Vocabulary(), Qwen25()) is None  # the default model needs none
    several = Qwen25Large()
    several.call_opening = "<tool_call>"  # not one token in this vocabulary
    assert _call_bias(Vocabulary(), several) is None
