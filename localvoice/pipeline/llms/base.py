"""What a chat model needs to be driven well: prompt shape, sampling limits, tool-call format.

One module per model family defines a :class:`ChatFormat`, the adapter that holds that family's
policy (system-prompt rule, example exchanges, temperature cap, history window, stop strings,
tool calls); ``registry.py`` lists the models. The responder and the conversation only ask the
adapter. Nothing here imports llama.cpp, so the responder and the tests can use it freely.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from localvoice.pipeline.weights import Weights

#: Pseudo-roles of tool turns in the history (``Conversation.chat_messages``); each format
#: renders them in its model's native form.
TOOL_CALL_ROLE = "tool_call"
TOOL_RESULT_ROLE = "tool"


@dataclass(frozen=True, slots=True)
class HistoryWindow:
    """How much of the conversation a model is prompted with (``Conversation.history``).

    The window grows to ``max_messages`` / ``max_chars`` and then jumps to the last ``keep``
    messages: between jumps each prompt extends the previous one, so llama.cpp's prefix cache
    only evaluates the new messages.

    Attributes:
        max_messages: messages before the window jumps.
        max_chars: characters before the window jumps.
        keep: messages kept by a jump.
        message_chars: each message cut to this (a long earlier reply would cost prompt
            evaluation on every later turn).
        tool_output_chars: a tool output cut to this (it is the reply's substance: keep more).
    """

    max_messages: int = 8
    max_chars: int = 800
    keep: int = 2
    message_chars: int = 160
    tool_output_chars: int = 400


@dataclass(frozen=True, slots=True)
class RawCall:
    """A tool call as the model wrote it, before validation."""

    name: str
    arguments: Any


class ChatFormat:
    """The generic format (an ``--llm-url`` endpoint): plain chat messages, no tool calls.

    An unknown model gets the cautious rule of the smallest bundled one: English, brief.

    Attributes:
        key: the ``--llm`` name.
        label: what ``/healthz`` and the log show.
        weights: the packaged GGUF (``None`` for a file or endpoint given by the user).
        max_temperature: sampling temperature cap.
        stop: extra stop strings.
        supports_tools: whether the model is offered the session's tools.
        rule: appended to the system prompt (brevity, language).
        window: the conversation history the model is prompted with.
        call_opening: the token a tool call opens with (``""``: none).
        call_bias: added to that token's logit for a reply's first token when tools are
            offered: a model that explains how to call a function instead of calling it
            (the call was its second choice) calls it.
    """

    key = "generic"
    label = "chat model"
    weights: Weights | None = None
    max_temperature = 0.7
    stop: tuple[str, ...] = ()
    supports_tools = False
    rule = " Always reply in English, in one or two short spoken sentences, without lists."
    window = HistoryWindow()
    call_opening = ""
    call_bias = 0.0

    def temperature(self, requested: float) -> float:
        """The sampling temperature for a response that asks for ``requested``."""
        return min(requested, self.max_temperature)

    def messages(
        self,
        system: str,
        history: list[dict[str, str]],
        tools: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, str]]:
        """The chat messages to send: system prompt (with tools, if any) then the history."""
        prompt = system + self.rule + (self.tools_prompt(tools) if tools else "")
        return [{"role": "system", "content": prompt}, *(self.render(m) for m in history)]

    def tools_prompt(self, tools: list[dict[str, Any]]) -> str:
        """What the system prompt says about the offered tools (nothing: tools unsupported)."""
        return ""

    def render(self, message: dict[str, str]) -> dict[str, str]:
        """One history message in this model's form (tool turns become plain text here)."""
        if message["role"] == TOOL_CALL_ROLE:
            return {"role": "assistant", "content": f"(calling {message['content']})"}
        if message["role"] == TOOL_RESULT_ROLE:
            return {"role": "user", "content": f"Tool result: {message['content']}"}
        return message

    def tool_prefix(self, text: str) -> bool | None:
        """Whether a reply's beginning is a tool call: True, False, or None (undecided yet)."""
        return False

    def parse_call(self, text: str) -> RawCall | None:
        """The tool call in a complete reply, if it is one."""
        return None


def parse_json_call(text: str) -> RawCall | None:
    """``{"name": ..., "arguments": {...}}``, optionally inside one extra pair of braces."""
    body = text.strip()
    for candidate in (body, body[1:-1] if body.startswith("{{") else None):
        if candidate is None:
            continue
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            args = data.get("arguments", data.get("parameters", {}))
            if isinstance(args, str):  # some models double-encode the arguments
                try:
                    args = json.loads(args)
                except ValueError:
                    return None
            return RawCall(data["name"], args)
    return None
