"""What one response says: a pre-generated message, the chat model's tokens, or a tool call.

With tools offered, the reply's first tokens decide: a reply that starts like a call is
collected silently, parsed by the model's adapter and checked (``tool_calls.check_call``); an
accepted call ends the reply, a rejected one is answered again without tools, as speech.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from localvoice.pipeline.stages import ChatModel, ChatStats
from localvoice.turns.conversation import Conversation
from localvoice.turns.response_spec import ResponseSpec
from localvoice.turns.tool_calls import ToolCall, check_call, offered, salvage_call

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
        head = ""
        decided: bool | None = None
        async for piece in self._stream(messages):
            if decided is False:
                yield piece
                continue
            head += piece
            decided = chat_format.tool_prefix(head)
            if decided is False:
                yield head
        if decided is not True:
            if decided is None and head.strip():
                yield head  # ended while it still looked like the start of a call
            return
        said = next((m["content"] for m in reversed(history) if m["role"] == "user"), "")
        raw = chat_format.parse_call(head) or salvage_call(head, self.tools)
        verdict = check_call(raw, self.tools, said) if raw is not None else "unparseable call"
        if isinstance(verdict, ToolCall):
            self.call = verdict
            return
        logger.info(
            "response %s: tool call %r rejected: %s", self._response_id, head[:200], verdict
        )
        self._spec.metadata["localvoice_rejected_tool_call"] = verdict[:200]
        async for piece in self._stream(chat_format.messages(instructions, history)):
            yield piece
