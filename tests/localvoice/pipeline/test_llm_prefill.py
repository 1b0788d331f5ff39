"""Prompt prefill and conversation slots on the real default model: what was evaluated for a
conversation (by a prefill or an earlier turn) is what its reply then skips."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from localvoice.config import ServerConfig
from localvoice.pipeline.llm import LlamaChat
from localvoice.pipeline.llms import registry as chat_models
from localvoice.pipeline.stages import ChatStats
from localvoice.pipeline.weights import resolve

# The real default model: slow to load, so out of `make test-fast`.
pytestmark = pytest.mark.models

SYSTEM = "You are a friendly voice assistant. Reply in one short spoken sentence."


def load(**options: int) -> LlamaChat:
    chat_format = chat_models.get(ServerConfig().llm)
    assert chat_format.weights is not None
    path = resolve(chat_format.weights)
    return LlamaChat(path, chat_format, n_threads=1, n_threads_batch=2, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def chat() -> Iterator[LlamaChat]:
    model = load()
    yield model
    model.close()


def settle(chat: LlamaChat) -> None:
    """Wait until the engine has run everything submitted so far."""
    deadline = time.monotonic() + 60
    while chat.engine.busy():
        assert time.monotonic() < deadline, "the engine did not settle"
        time.sleep(0.01)


def evaluated(chat: LlamaChat) -> int:
    return chat.engine.prompt_tokens_evaluated


async def reply(chat: LlamaChat, messages: list[dict[str, str]], max_tokens: int = 12) -> str:
    pieces = [
        piece
        async for piece in chat.stream(
            messages,
            temperature=0.0,
            max_tokens=max_tokens,
            cancel=threading.Event(),
            stats=ChatStats(),
        )
    ]
    return "".join(pieces)


def test_the_reply_prompt_extends_what_was_prefilled(chat):
    """The partial turn's tokens are a prefix of the reply's prompt, and they are in a slot."""
    history = [{"role": "system", "content": SYSTEM}]
    partial = [*history, {"role": "user", "content": "What is the capital"}]
    final = [*history, {"role": "user", "content": "What is the capital of France?"}]
    before = chat.prefilled_tokens
    chat.prefill(partial)
    settle(chat)
    prefix = chat._prefix_tokens(partial)
    assert chat.prefilled_tokens > before
    assert any(slot.tokens == prefix for slot in chat.engine.slots)
    full = chat._prompt_tokens(final)
    assert full[: len(prefix)] == prefix
    before = evaluated(chat)
    answer = asyncio.run(reply(chat, final))
    assert "Paris" in answer
    assert evaluated(chat) - before == len(full) - len(prefix) <= 12


def test_a_second_prefill_only_evaluates_the_new_words(chat):
    history = [{"role": "system", "content": SYSTEM}]
    chat.prefill([*history, {"role": "user", "content": "How many legs"}])
    settle(chat)
    before = chat.prefilled_tokens
    chat.prefill([*history, {"role": "user", "content": "How many legs does a spider"}])
    settle(chat)
    assert 0 < chat.prefilled_tokens - before <= 4


def test_a_waiting_reply_stops_the_prefill(chat):
    """A long prefill waits while a reply asked for right after it needs the model."""
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
    """A conversation's next turn starts from its own slot, not from another session's."""
    paris = [
        {"role": "system", "content": SYSTEM + " You know geography."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    pirate = [
        {"role": "system", "content": "You are a pirate. Reply in one short sentence."},
        {"role": "user", "content": "Where is the treasure?"},
    ]
    asyncio.run(reply(chat, paris))
    asyncio.run(reply(chat, pirate))
    spain = [*paris, {"role": "assistant", "content": "Paris."}]
    spain.append({"role": "user", "content": "And the capital of Spain?"})
    before = evaluated(chat)
    assert "Madrid" in asyncio.run(reply(chat, spain))
    new_part = len(chat._prompt_tokens(spain)) - len(chat._prompt_tokens(paris))
    assert evaluated(chat) - before <= new_part + 8  # not the instructions again


def test_replies_at_once_share_decodes_and_answer_as_alone(chat):
    """Four replies in flight together: each answers its own question, in shared decodes."""
    questions = {
        "What is the capital of Italy?": "Rome",
        "What is the capital of Germany?": "Berlin",
        "What is the capital of Japan?": "Tokyo",
        "What is the capital of Egypt?": "Cairo",
    }
    prompts = [
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}] for q in questions
    ]

    async def together() -> list[str]:
        return list(await asyncio.gather(*(reply(chat, p, max_tokens=16) for p in prompts)))

    decodes = chat.engine.decodes
    answers = asyncio.run(together())
    for answer, expected in zip(answers, questions.values(), strict=True):
        assert expected in answer
    tokens = sum(len(chat.engine.model.tokenize(a.encode(), False, False)) for a in answers)
    assert chat.engine.decodes - decodes < tokens  # several replies per decode


def test_a_cancelled_reply_stops_and_frees_its_slot(chat):
    cancel = threading.Event()
    story = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Tell a story."}]

    async def first_piece() -> str:
        stream = chat.stream(
            story, temperature=0.0, max_tokens=200, cancel=cancel, stats=ChatStats()
        )
        piece = await anext(stream)
        cancel.set()
        await stream.aclose()
        return piece

    assert asyncio.run(first_piece())
    settle(chat)
    assert all(slot.job is None for slot in chat.engine.slots)


def test_conversations_beyond_the_slots_come_back_from_snapshots():
    """With two slots, a third conversation takes the oldest one's; its next turn restores it."""
    chat = load(slots=2)
    try:
        talks = [
            [
                {"role": "system", "content": f"{SYSTEM} You are assistant number {n}."},
                {"role": "user", "content": f"Count to {n}."},
            ]
            for n in (3, 4, 5)
        ]
        for talk in talks:
            asyncio.run(reply(chat, talk, max_tokens=4))
        assert len(chat.snapshots) >= 1
        restored = chat.snapshots.restored
        again = [*talks[0], {"role": "assistant", "content": "1, 2, 3."}]
        again.append({"role": "user", "content": "Thanks."})
        asyncio.run(reply(chat, again, max_tokens=4))
        assert chat.snapshots.restored == restored + 1
        assert 0 < chat.snapshots.size_bytes <= 128 << 20
    finally:
        chat.close()


def test_a_reply_is_starting_until_its_first_tokens_and_not_once_it_ends(chat):
    """``starting``: live transcripts wait while a reply waits for its first tokens."""
    settle(chat)
    assert not chat.starting()
    count = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Count from one to thirty, in words, separated by commas."},
    ]
    seen: list[bool] = []

    async def stream() -> None:
        pieces = chat.stream(
            count, temperature=0.0, max_tokens=40, cancel=threading.Event(), stats=ChatStats()
        )
        async for _ in pieces:
            seen.append(chat.starting())

    asyncio.run(stream())
    settle(chat)
    assert len(seen) > 20
    assert seen[0]  # its first piece: the first chunk is not complete yet
    assert not any(seen[15:])  # well past its first tokens
    assert not chat.starting()
