"""The built-in tools, one module each. Adding one = a module with a ``TOOL`` + a line below.

A built-in tool is a name, a description and a JSON schema the model sees, and a synchronous
``run(arguments, context)`` the runner calls in a thread (so it may use the ORM).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from assistant.tools.context import ToolContext, ToolResult


@dataclass(frozen=True, slots=True)
class BuiltinTool:
    """A tool shipped with the product."""

    name: str
    label: str  # what admins see
    description: str  # what the model sees
    parameters: Mapping[str, Any]
    run: Callable[[Mapping[str, Any], ToolContext], ToolResult] = field(repr=False)


def _registry() -> dict[str, BuiltinTool]:
    from assistant.tools.builtin import clock, goodbye, handover, knowledge

    tools = [clock.TOOL, knowledge.TOOL, goodbye.TOOL, handover.TOOL]
    return {tool.name: tool for tool in tools}


BUILTINS: dict[str, BuiltinTool] = _registry()
