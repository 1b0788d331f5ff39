"""The checks a local model's tool call must pass before it is sent as a function call.

A small model calls tools too eagerly ("What is 2 plus 2?" became a weather call), so a call
is only accepted when the tool exists, the arguments match its JSON schema, every free string
argument was actually said by the user, and the user's words share a word with the tool's name
or description (its parameter names excepted). Anything else is answered as plain speech.

A call may also follow a sentence ("Sure! <tool_call>...", as Qwen2.5-1.5B often writes it):
``CallScanner`` lets the sentence through as speech and collects the call from its first
character on, so neither is lost and nothing is said twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema

from localvoice.pipeline.llms.base import RawCall

# Words too common to show that a request is about a tool.
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "could",
        "do",
        "does",
        "for",
        "from",
        "get",
        "give",
        "how",
        "i",
        "in",
        "is",
        "it",
        "me",
        "my",
        "of",
        "on",
        "or",
        "please",
        "set",
        "tell",
        "the",
        "this",
        "to",
        "what",
        "whats",
        "when",
        "where",
        "which",
        "who",
        "will",
        "with",
        "would",
        "you",
        "your",
        "current",
        "now",
        "today",
    }
)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A validated call: the tool's name and its arguments as compact JSON."""

    name: str
    arguments: str


def offered(tools: list[dict[str, Any]], tool_choice: Any) -> list[dict[str, Any]]:
    """The function tools the model may call under ``tool_choice``."""
    functions = [t for t in tools if t.get("type", "function") == "function"]
    if tool_choice == "none":
        return []
    if isinstance(tool_choice, dict):
        return [t for t in functions if t["name"] == tool_choice.get("name")]
    return functions


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _stems(text: str) -> set[str]:
    # Crude, but "lights" must meet "light" and "timers" "timer".
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in _words(text)}


def _said_stems(text: str) -> set[str]:
    """The stems of what the user said, and of each two words it said run together.

    "Count down" then meets a tool for a "countdown", "light bulb" one for "lightbulbs".
    """
    words = _words(text)
    joined = " ".join(first + second for first, second in zip(words, words[1:], strict=False))
    return _stems(text) | _stems(joined)


def _grounded(value: str, said: str) -> bool:
    words = _words(value)
    return bool(words) and " ".join(words) in said


def _strings(value: Any, schema: dict[str, Any]) -> list[str]:
    """Free string values in the arguments (enum values are fixed by the schema, not said)."""
    if isinstance(value, str):
        return [] if "enum" in schema or "const" in schema else [value]
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        return [s for k, v in value.items() for s in _strings(v, props.get(k) or {})]
    if isinstance(value, list):
        items = schema.get("items") or {}
        return [s for v in value for s in _strings(v, items)]
    return []


def _unsnaked(value: Any, schema: dict[str, Any]) -> Any:
    """Free strings written as identifiers ("living_room") put back as said ("living room")."""
    if isinstance(value, str):
        free = "enum" not in schema and "const" not in schema
        return value.replace("_", " ") if free and "_" in value and " " not in value else value
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        return {k: _unsnaked(v, props.get(k) or {}) for k, v in value.items()}
    if isinstance(value, list):
        items = schema.get("items") or {}
        return [_unsnaked(v, items) for v in value]
    return value


_NAME_RE = re.compile(r'"name"\s*:\s*"([A-Za-z0-9_-]{1,64})"')


def salvage_call(text: str, tools: list[dict[str, Any]]) -> RawCall | None:
    """A call to a tool without parameters from a reply that did not parse.

    The small model often copies the tool's schema into the arguments until the token cap cuts
    the JSON off; the tool's name came first and is all such a call needs.
    """
    match = _NAME_RE.search(text)
    if match is None:
        return None
    tool = next((t for t in tools if t["name"] == match[1]), None)
    if tool is None or (tool.get("parameters") or {}).get("properties"):
        return None
    return RawCall(tool["name"], {})


def check_call(raw: RawCall, tools: list[dict[str, Any]], user_text: str) -> ToolCall | str:
    """Validate a model's call against the offered tools and what the user said.

    Args:
        raw: the call as parsed from the model's reply.
        tools: the offered function tools.
        user_text: the user's last message.

    Returns:
        The accepted call, or the reason it was rejected.
    """
    tool = next((t for t in tools if t["name"] == raw.name), None)
    if tool is None:
        return f"unknown tool {raw.name!r}"
    schema = tool.get("parameters") or {"type": "object"}
    args = _unsnaked(raw.arguments if raw.arguments is not None else {}, schema)
    if not schema.get("properties"):
        # A tool without parameters takes none; a small model often fills the arguments with a
        # copy of the schema ("get the time" became {"type": "object", ...}). What it wrote is
        # dropped, as a real model would send {}.
        args = {}
    try:
        jsonschema.validate(args, schema, cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError as exc:
        return f"arguments do not match the schema: {exc.message}"
    said = " ".join(_words(user_text))
    for value in _strings(args, schema):
        if not _grounded(value, said):
            return f"argument {value!r} was not said by the user"
    # Parameter names ("city", "room") do not show what the tool is for: "the biggest city in
    # Canada" is no weather request.
    topic = _stems(f"{tool['name'].replace('_', ' ')} {tool.get('description', '')}")
    topic -= _stems(" ".join((schema.get("properties") or {}).keys()))
    if not (topic - STOPWORDS) & _said_stems(user_text):
        return f"the request does not mention what {tool['name']!r} is for"
    return ToolCall(tool["name"], json.dumps(args, separators=(",", ":")))


class CallScanner:
    """Splits a streamed reply into speech and a tool call written anywhere in it.

    Text is released as speech as soon as no call can start in it: from the first position
    where the model's ``tool_prefix`` says "a call" on, the rest is the call; where it says
    "undecided" ("<to"), the text waits for the next piece.

    Args:
        tool_prefix: the chat format's test of a reply's beginning (True: a call, False: not,
            None: undecided).
    """

    def __init__(self, tool_prefix: Callable[[str], bool | None]) -> None:
        self._tool_prefix = tool_prefix
        self._pending = ""
        #: The call's text once one has begun (None: none so far).
        self.call_text: str | None = None

    def feed(self, piece: str) -> str:
        """The text of ``piece`` (with any held before it) that is certainly speech."""
        if self.call_text is not None:
            self.call_text += piece
            return ""
        self._pending += piece
        for start in range(len(self._pending)):
            decided = self._tool_prefix(self._pending[start:])
            if decided is False:
                continue
            speech = self._pending[:start]
            if decided:
                self.call_text, self._pending = self._pending[start:], ""
            else:
                self._pending = self._pending[start:]
            return speech
        speech, self._pending = self._pending, ""
        return speech

    def finish(self) -> str:
        """What was held back when the reply ended without a call (it was speech after all)."""
        rest, self._pending = self._pending, ""
        return rest if self.call_text is None else ""
