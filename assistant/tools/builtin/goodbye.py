"""End the conversation: the assistant says goodbye, then the session ends cleanly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from assistant.tools.builtin.tool import BuiltinTool
from assistant.tools.builtin_names import BuiltinName
from assistant.tools.context import ToolContext, ToolResult


def run(arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
    """Ask the session to end once the goodbye has been spoken."""
    return ToolResult(
        "The conversation will end after your reply. Say a short goodbye.", end_session=True
    )


TOOL = BuiltinTool(
    name=BuiltinName.END_CONVERSATION,
    description="End the conversation when the user says goodbye or asks to stop talking.",
    parameters={"type": "object", "properties": {}, "additionalProperties": False},
    run=run,
)
