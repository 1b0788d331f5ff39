"""What a built-in tool is: what the model sees, and the function the runner calls."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from assistant.tools.builtin_names import BuiltinName
from assistant.tools.context import ToolContext, ToolResult


@dataclass(frozen=True, slots=True)
class BuiltinTool:
    """A tool shipped with the product."""

    name: BuiltinName
    description: str  # what the model sees
    parameters: Mapping[str, Any]
    run: Callable[[Mapping[str, Any], ToolContext], ToolResult] = field(repr=False)
