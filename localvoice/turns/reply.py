"""What one response says: a pre-generated message, the chat model's tokens, or a tool call.

With tools offered, the reply's first tokens decide: a reply that starts like a call is
collected silently, parsed by the model's adapter and checked (``tool_calls.check_call``); an
accepted call ends the reply, a rejected one is answered again without tools, as speech.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import AsyncIterator
from typing import Any

from localvoice.pipeline.stages import ChatModel, ChatStats
from localvoice.turns.conversation import Conversation
from localvoice.turns.response_spec import ResponseSpec
from localvoice.turns.tool_calls import CallScanner, ToolCall, check_call, offered, salvage_call

logger = logging.getLogger(__name__)


class ModelReply:
    """The text of one response, streamed by ``tokens()``; stopped by ``stop()``.

    Args:
        spec: the response's settings (a rejected call is noted in its ``metadata``).
        chat: the chat model.
        conversation: the session's conversation (the prompt's history).
        response_id: for the log.
    """

    def __init__(
        self, spec: ResponseSpec, chat: ChatModel, conversation: Conversation, response_id: str
    ) -> None:
        self._spec = spec
        self._chat = chat
        self._conversation = conversation
        self._response_id = response_id
        self.stats = ChatStats()
        self._cancel = threading.Event()
        self._stream_cancel = threading.Event()  # the running LLM stream's (one per stream)
        #: A user turn not committed yet (a speculative reply): appended to the history.
        self.extra_user_text: str | None = None
        #: The accepted tool call, once the reply has turned out to be one.
        self.call: ToolCall | None = None
        # Tools are offered unless the model cannot call them or the reply should use a tool's
        # output (the newest item is a function_call_output).
        self.tools: list[dict[str, Any]] = []
        if (
            chat.format.supports_tools
            and spec.pre_generated is None
            and not conversation.ends_with_tool_output
        ):
            self.tools = offered(spec.tools, spec.tool_choice)

    def stop(self) -> None:
        """Stop the model at its next token (and any stream started later)."""
        self._cancel.set()
        self._stream_cancel.set()

    def _stream(self, messages: list[dict[str, str]]) -> AsyncIterator[str]:
        # Each stream gets its own stop flag: a finished stream sets it, and a rejected tool
        # call is followed by a second stream.
        self._stream_cancel = threading.Event()
        if self._cancel.is_set():
            self._stream_cancel.set()
        return self._chat.stream(
            messages,
            temperature=self._chat.format.temperature(self._spec.temperature),
            max_tokens=self._spec.max_tokens,
            cancel=self._stream_cancel,
            stats=self.stats,
            tools_offered=bool(self.tools),
        )

    def _history(self, user_text: str | None) -> list[dict[str, str]]:
        # The reply item is not in the history yet (or still empty), so it is not prompted.
        history = self._conversation.history(self._chat.format.window)
        if user_text is not None:  # the user's turn is not an item yet
            history.append({"role": "user", "content": user_text})
        return history

    def prompt(self, user_text: str) -> list[dict[str, str]]:
        """The messages this reply would be prompted with if the user's turn were ``user_text``.

        What ``ChatModel.prefill`` evaluates while the user is still speaking.
        """
        history = self._history(user_text)
        return self._chat.format.messages(self._spec.instructions, history, self.tools)

    async def tokens(self) -> AsyncIterator[str]:
        """The reply's text pieces; nothing more once it has turned out to be a tool call."""
        if self._spec.pre_generated is not None:
            yield self._spec.pre_generated
            return
        chat_format = self._chat.format
        history = self._history(self.extra_user_text)
        instructions = self._spec.instructions
        messages = chat_format.messages(instructions, history, self.tools)
        if not self.tools:
            async for piece in self._stream(messages):
                yield piece
            return
        scanner = CallScanner(chat_format.tool_prefix)
        spoken = ""
        async for piece in self._stream(messages):
            speech = scanner.feed(piece)
            if speech:
                spoken += speech
                yield speech
        if scanner.call_text is None:
            rest = scanner.finish()
            if rest.strip():
                yield rest  # ended while it still looked like the start of a call
            return
        call_text = scanner.call_text
        said = next((m["content"] for m in reversed(history) if m["role"] == "user"), "")
        raw = chat_format.parse_call(call_text) or salvage_call(call_text, self.tools)
        verdict = check_call(raw, self.tools, said) if raw is not None else "unparseable call"
        if isinstance(verdict, ToolCall):
            self.call = verdict
            return
        logger.info(
            "response %s: tool call %r rejected: %s", self._response_id, call_text[:200], verdict
        )
        self._spec.metadata["localvoice_rejected_tool_call"] = verdict[:200]
        answer = self._stream(chat_format.messages(instructions, history))
        async for piece in _after(spoken, answer):
            yield piece


async def _after(spoken: str, answer: AsyncIterator[str]) -> AsyncIterator[str]:
    """``answer`` without its opening words where they repeat what was already ``spoken``.

    A call rejected after a sentence ("Sure! {...}") is answered again without tools, and the
    new answer often starts with the same sentence ("Sure! ..."): it is said once. What follows
    the spoken sentence starts with a space.
    """
    said = spoken.lower().split()
    head: str | None = "" if said else None
    glue = bool(said)  # the next text continues the spoken sentence
    async for piece in answer:
        if head is None:
            if glue and piece.strip():
                piece, glue = " " + piece.lstrip(), False
            if piece:
                yield piece
            continue
        head += piece
        words = head.lower().split()
        complete = words if head[-1:].isspace() else words[:-1]
        same = _common(complete, said)
        if same < min(len(complete), len(said)) or same == len(said):
            rest, head = _without_words(head, same), None
            if rest.strip():
                yield " " + rest
                glue = False
    if head is not None:
        rest = _without_words(head, _common(head.lower().split(), said))
        if rest.strip():
            yield " " + rest


def _common(words: list[str], said: list[str]) -> int:
    """How many leading words of ``words`` repeat ``said``."""
    count = 0
    for word, spoken in zip(words, said, strict=False):
        if word != spoken:
            break
        count += 1
    return count


def _without_words(text: str, count: int) -> str:
    """``text`` without its first ``count`` words and the spaces around them."""
    return re.sub(rf"^\s*(?:\S+\s*){{{count}}}", "", text) if count else text.lstrip()
