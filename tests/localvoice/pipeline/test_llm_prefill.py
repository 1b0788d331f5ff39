"""Prompt prefill on a real model: what it evaluates is what the reply then skips."""

from __future__ import annotations

import asyncio
import threading

import pytest

from localvoice.pipeline.llm import LlamaChat
from localvoice.pipeline.llms import registry as chat_models
from localvoice.pipeline.stages import ChatStats
from localvoice.pipeline.weights import resolve

SYSTEM = "You are a friendly voice assistant. Reply in one short spoken sentence."


@pytest.fixture(scope="module")
def chat() -> LlamaChat:
    # The 0.5B model: the mechanics are the same for every llama.cpp model, the fast inner loop
    # stays fast, and the snapshot bounds below are sized for its KV cells (about 12 KB a token).
    chat_format = chat_models.get("qwen2.5-0.5b")
    assert chat_format.weights is not None
    return LlamaChat(resolve(chat_format.weights), chat_format, n_threads=1, n_threads_batch=2)


def settle(chat: LlamaChat) -> None:
    """Wait until the model thread has run everything submitted so far (it is one FIFO thread)."""
    chat._pool.submit(lambda: None).result(timeout=60)


def prompt_tokens(chat: LlamaChat, messages: list[dict[str, str]]) -> list[int]:
    """The whole prompt, tokenised as create_chat_completion tokenises it."""
    rendered = chat._formatter(messages=messages)
    return chat._llm.tokenize(rendered.prompt.encode(), add_bos=False, special=True)


async def reply(chat: LlamaChat, messages: list[dict[str, str]]) -> str:
    pieces = [
        piece
        async for piece in chat.stream(
            messages, temperature=0.0, max_tokens=12, cancel=threading.Event(), stats=ChatStats()
        )
    ]
    return "".join(pieces)


def test_the_reply_prompt_extends_what_was_prefilled(chat):
    """The partial turn's tokens are a prefix of the reply's prompt, and they are in the cache."""
    history = [{"role": "system", "content": SYSTEM}]
    partial = [*history, {"role": "user", "content": "What is the capital"}]
    final = [*history, {"role": "user", "content": "What is the capital of France?"}]
    before = chat.prefilled_tokens
    chat.prefill(partial)
    settle(chat)
    prefix = chat._prefix_tokens(partial)
    assert chat.prefilled_tokens > before
    assert chat._llm.n_tokens == len(prefix)
    full = prompt_tokens(chat, final)
    cached = chat._llm.longest_token_prefix(chat._llm._input_ids.tolist(), full)
    assert cached == len(prefix) >= len(full) - 12  # only the end of the turn is left to do
    answer = asyncio.run(reply(chat, final))
    assert "Paris" in answer


def test_a_second_prefill_only_evaluates_the_new_words(chat):
    history = [{"role": "system", "content": SYSTEM}]
    chat.prefill([*history, {"role": "user", "content": "How many legs"}])
    settle(chat)
    before = chat.prefilled_tokens
    chat.prefill([*history, {"role": "user", "content": "How many legs does a spider"}])
    settle(chat)
    assert 0 < chat.prefilled_tokens - before <= 4


def test_a_waiting_reply_stops_the_prefill(chat):
    """A long prefill yields within a slice when a reply is asked for right after it."""
    long_system = SYSTEM + " " + " ".join(f"Rule {i}: be kind and clear." for i in range(60))
    messages = [{"role": "system", "content": long_system}, {"role": "user", "content": ""}]
    prefix = chat._prefix_tokens(messages)
    assert len(prefix) > 400
    before = chat.prefilled_tokens
    chat.prefill(messages)
    question = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Say hello."}]
    answer = asyncio.run(reply(chat, question))
    assert answer.strip()
    assert chat.prefilled_tokens - before < len(prefix) // 2


def test_sessions_taking_turns_keep_their_evaluated_prompts(chat):
    """A conversation's next turn starts from its own snapshot, not from another session's."""
    paris = [
        {"role": "system", "content": SYSTEM + " You know geography."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    pirate = [
        {"role": "system", "content": "You are a pirate. Reply in one short sentence."},
        {"role": "user", "content": "Where is the treasure?"},
    ]
    asyncio.run(reply(chat, paris))
    asyncio.run(reply(chat, pirate))  # the live cache now holds the pirate's prompt
    restored = chat.snapshots.restored
    spain = [*paris, {"role": "assistant", "content": "Paris."}]
    spain.append({"role": "user", "content": "And the capital of Spain?"})
    assert "Madrid" in asyncio.run(reply(chat, spain))
    assert chat.snapshots.restored == restored + 1
    # The same conversation again: the live cache already covers it, nothing is copied.
    asyncio.run(reply(chat, [*spain, {"role": "assistant", "content": "Madrid."}]))
    assert chat.snapshots.restored == restored + 1
    assert 0 < chat.snapshots.size_bytes <= 128 << 20


def test_snapshots_stay_within_their_bound(chat):
    from localvoice.pipeline.kvsnapshots import KvSnapshots

    tight = KvSnapshots(chat._llm, capacity_bytes=2 << 20)
    chat._llm.reset()
    with chat._lock:
        for n in range(4):
            tokens = chat._prefix_tokens([{"role": "user", "content": f"Story {n}: " * 20}])
            chat._llm.reset()
            chat._llm.eval(tokens)
            tight.save()
    assert 0 < len(tight) < 4
    assert tight.size_bytes <= 2 << 20
