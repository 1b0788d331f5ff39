"""The conversation of one session: its items, truncation, and the LLM prompt they make."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from localvoice.pipeline.llms.base import TOOL_CALL_ROLE, TOOL_RESULT_ROLE, HistoryWindow
from localvoice.protocol.errors import ProtocolError
from localvoice.protocol.events import ErrorCode, new_id

ROLES = frozenset({"user", "assistant", "system"})


@dataclass(slots=True)
class Item:
    """A conversation item as the service reports it, plus the audio length of assistant audio."""

    data: dict[str, Any]
    audio_ms: int = 0

    @property
    def id(self) -> str:
        """The item id."""
        return str(self.data["id"])

    @property
    def role(self) -> str | None:
        """``user``, ``assistant``, ``system``, or ``None`` for non-message items."""
        role = self.data.get("role")
        return role if isinstance(role, str) else None

    def text(self) -> str:
        """The item's text: typed text, or the transcript of its audio."""
        parts = []
        for part in self.data.get("content") or []:
            value = part.get("text") if part.get("text") is not None else part.get("transcript")
            if isinstance(value, str):
                parts.append(value)
        return " ".join(p.strip() for p in parts if p.strip())


def function_call_item(name: str, call_id: str) -> Item:
    """A new, still empty ``function_call`` item."""
    return Item(
        {
            "id": new_id("item"),
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": name,
            "call_id": call_id,
            "arguments": "",
        }
    )


def message_item(role: str, content: list[dict[str, Any]], *, status: str = "completed") -> Item:
    """A new message item with a fresh id."""
    return Item(
        {
            "id": new_id("item"),
            "object": "realtime.item",
            "type": "message",
            "role": role,
            "status": status,
            "content": content,
        }
    )


@dataclass(slots=True)
class Conversation:
    """Ordered items of one session."""

    items: list[Item] = field(default_factory=list)
    version: int = 0  # bumped on every change, so a speculative reply can tell it is stale
    history_floor: str | None = None  # first item of the LLM's history window

    @property
    def last_id(self) -> str | None:
        """Id of the newest item (the ``previous_item_id`` of the next one)."""
        return self.items[-1].id if self.items else None

    def last_said(self, role: str) -> str:
        """The text of the newest message of ``role`` ("" when there is none)."""
        return next((i.text() for i in reversed(self.items) if i.role == role), "")

    def get(self, item_id: str) -> Item | None:
        """The item with that id, if any."""
        return next((i for i in self.items if i.id == item_id), None)

    def add(self, item: Item, previous_item_id: str | None = None) -> str | None:
        """Insert an item after ``previous_item_id`` (default: at the end).

        Returns:
            The id of the item it now follows.

        Raises:
            ProtocolError: ``previous_item_id`` is unknown.
        """
        self.version += 1
        if previous_item_id is None or previous_item_id == self.last_id:
            prev = self.last_id
            self.items.append(item)
            return prev
        if previous_item_id == "root":
            self.items.insert(0, item)
            return None
        for index, existing in enumerate(self.items):
            if existing.id == previous_item_id:
                self.items.insert(index + 1, item)
                return previous_item_id
        msg = f"previous_item_id {previous_item_id!r} does not exist"
        raise ProtocolError(ErrorCode.ITEM_NOT_FOUND, msg, "previous_item_id")

    def create_from_client(self, raw: Any) -> Item:
        """Validate a ``conversation.item.create`` item and turn it into a stored item.

        Raises:
            ProtocolError: the item is malformed.
        """
        if not isinstance(raw, dict):
            msg = "item must be an object"
            raise ProtocolError(ErrorCode.MISSING_PARAMETER, msg, "item")
        kind = raw.get("type", "message")
        if kind == "function_call_output":
            data = {"object": "realtime.item", "status": "completed", **raw}
            data.setdefault("id", new_id("item"))
            return Item(data)
        if kind != "message":
            msg = f"item.type {kind!r} is not supported by localvoice"
            raise ProtocolError(ErrorCode.UNSUPPORTED, msg, "item.type")
        role = raw.get("role")
        if role not in ROLES:
            msg = "item.role must be user, assistant or system"
            raise ProtocolError(ErrorCode.INVALID_VALUE, msg, "item.role")
        content = raw.get("content")
        if not isinstance(content, list) or not all(isinstance(p, dict) for p in content):
            msg = "item.content must be a list of content parts"
            raise ProtocolError(ErrorCode.MISSING_PARAMETER, msg, "item.content")
        item = message_item(role, copy.deepcopy(content))
        if isinstance(raw.get("id"), str) and raw["id"]:
            if self.get(raw["id"]) is not None:
                msg = f"an item with id {raw['id']!r} already exists"
                raise ProtocolError(ErrorCode.INVALID_VALUE, msg, "item.id")
            item.data["id"] = raw["id"]
        return item

    def delete(self, item_id: str) -> None:
        """Remove an item.

        Raises:
            ProtocolError: no such item.
        """
        item = self.get(item_id)
        if item is None:
            msg = f"Item with item_id {item_id!r} not found"
            raise ProtocolError(ErrorCode.ITEM_NOT_FOUND, msg, "item_id")
        self.items.remove(item)
        self.version += 1

    def truncate(self, item_id: str, content_index: int, audio_end_ms: int) -> None:
        """Cut an assistant item's transcript to the part heard before ``audio_end_ms``.

        The text is cut in proportion to the audio played, at a word boundary.

        Raises:
            ProtocolError: unknown item, not an assistant audio item, or a bad ``audio_end_ms``.
        """
        item = self.get(item_id)
        if item is None:
            msg = f"Item with item_id {item_id!r} not found"
            raise ProtocolError(ErrorCode.ITEM_NOT_FOUND, msg, "item_id")
        if item.role != "assistant":
            msg = "only assistant message items can be truncated"
            raise ProtocolError(ErrorCode.TRUNCATE_INVALID, msg, "item_id")
        content = item.data.get("content") or []
        if content_index != 0 or not content:
            msg = "content_index must be 0"
            raise ProtocolError(ErrorCode.TRUNCATE_INVALID, msg, "content_index")
        if audio_end_ms < 0 or (item.audio_ms and audio_end_ms > item.audio_ms):
            msg = f"audio_end_ms must be between 0 and the item's audio length ({item.audio_ms} ms)"
            raise ProtocolError(ErrorCode.TRUNCATE_INVALID, msg, "audio_end_ms")
        part = content[0]
        key = "transcript" if "transcript" in part else "text"
        text = str(part.get(key) or "")
        if item.audio_ms:
            keep = round(len(text) * audio_end_ms / item.audio_ms)
            cut = text[:keep]
            if keep < len(text) and " " in cut:
                cut = cut[: cut.rfind(" ")]
            part[key] = cut.rstrip()
            item.audio_ms = audio_end_ms
        item.data["status"] = "incomplete"
        self.version += 1

    def history(self, policy: HistoryWindow | None = None) -> list[dict[str, str]]:
        """The recent conversation as chat messages, newest last (the system prompt not included).

        The window only moves when it gets too long, and then jumps to the last ``policy.keep``
        messages: between jumps each prompt extends the previous one, so llama.cpp's prefix
        cache only has to evaluate the new messages. Tool calls and their outputs appear with
        the pseudo-roles ``tool_call`` and ``tool``; the model's format renders them.

        Args:
            policy: the chat model's window (``ChatFormat.window``); the default one if omitted.

        Returns:
            ``[{"role": ..., "content": ...}]``.
        """
        policy = policy or HistoryWindow()
        window: list[tuple[str, dict[str, str]]] = []
        for item in self.items:
            message = _history_message(item, policy)
            if message is not None:
                window.append((item.id, message))
        ids = [item_id for item_id, _ in window]
        if self.history_floor in ids:
            window = window[ids.index(self.history_floor) :]
        chars = sum(len(m["content"]) for _, m in window)
        if len(window) > policy.max_messages or chars > policy.max_chars:
            window = window[-policy.keep :]
            # A tool result without its call would confuse the model: start after it.
            while window and window[0][1]["role"] == TOOL_RESULT_ROLE:
                window = window[1:]
        self.history_floor = window[0][0] if window else None
        return [m for _, m in window]

    @property
    def ends_with_tool_output(self) -> bool:
        """True when the newest item is a ``function_call_output`` (the reply should use it)."""
        return bool(self.items) and self.items[-1].data.get("type") == "function_call_output"


def _history_message(item: Item, policy: HistoryWindow) -> dict[str, str] | None:
    kind = item.data.get("type")
    if kind == "function_call":
        call = {"name": item.data.get("name"), "arguments": _json_or_text(item.data)}
        return {"role": TOOL_CALL_ROLE, "content": json.dumps(call)}
    if kind == "function_call_output":
        output = str(item.data.get("output") or "")[: policy.tool_output_chars]
        return {"role": TOOL_RESULT_ROLE, "content": output}
    text = item.text() if item.role is not None else ""
    if not text:
        return None
    if len(text) > policy.message_chars:
        text = text[: policy.message_chars].rsplit(" ", 1)[0]
    assert item.role is not None
    return {"role": item.role, "content": text}


def _json_or_text(data: dict[str, Any]) -> Any:
    try:
        return json.loads(str(data.get("arguments") or "{}"))
    except ValueError:
        return data.get("arguments")
