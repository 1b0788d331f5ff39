"""Hand the conversation over to another assistant profile the user may use."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from assistant.tools.builtin.tool import BuiltinTool
from assistant.tools.builtin_names import BuiltinName
from assistant.tools.context import ToolContext, ToolResult


def run(arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
    """Switch to the named profile when the user may use it; else list the choices."""
    wanted = str(arguments.get("profile", "")).strip().casefold()
    choices = context.handover_profiles
    match = next((pid for pid, name in choices.items() if name.casefold() == wanted), None)
    if match is None or match == context.profile_id:
        names = [name for pid, name in choices.items() if pid != context.profile_id]
        return ToolResult(
            json.dumps({"error": "no such assistant", "available": names}), outcome="refused"
        )
    return ToolResult(json.dumps({"handed_over_to": choices[match]}), handover_profile_id=match)


TOOL = BuiltinTool(
    name=BuiltinName.HAND_OVER,
    description="Hand the conversation over to another assistant by name, when the user asks "
    "for it or it is better suited.",
    parameters={
        "type": "object",
        "properties": {
            "profile": {"type": "string", "description": "The assistant's name.", "maxLength": 200}
        },
        "required": ["profile"],
        "additionalProperties": False,
    },
    run=run,
)
