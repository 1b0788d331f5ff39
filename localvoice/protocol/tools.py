"""The function tools a session offers: the ``tools`` and ``tool_choice`` a client may send."""

from __future__ import annotations

from typing import Any

import jsonschema

from localvoice.protocol.events import ErrorCode

TOOL_CHOICES = frozenset({"auto", "none", "required"})


class ToolError(ValueError):
    """An invalid ``tools`` or ``tool_choice`` (``session_config.py`` makes it an error event).

    Args:
        code: the error code.
        message: the message text.
        param: the offending field.
    """

    def __init__(self, code: ErrorCode, message: str, param: str) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


def validate_tools(value: Any, param: str) -> list[dict[str, Any]]:
    """Check a ``tools`` list (function tools; MCP servers are stored but never called).

    Raises:
        ToolError: not a list of tool objects, or a function tool without a usable schema.
    """
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        msg = "tools must be a list of tool objects"
        raise ToolError(ErrorCode.INVALID_VALUE, msg, param)
    for index, tool in enumerate(value):
        if tool.get("type", "function") != "function":
            continue
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            msg = "a function tool needs a name"
            raise ToolError(ErrorCode.MISSING_PARAMETER, msg, f"{param}[{index}].name")
        schema = tool.get("parameters")
        if schema is not None:
            try:
                jsonschema.Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as exc:
                msg = f"tool {tool['name']!r} has an invalid parameters schema: {exc.message}"
                raise ToolError(ErrorCode.INVALID_VALUE, msg, param) from exc
    return value


def validate_tool_choice(value: Any, param: str) -> Any:
    """Check ``tool_choice``: auto, none, required or ``{"type": "function", "name": ...}``.

    Raises:
        ToolError: anything else.
    """
    if value in TOOL_CHOICES:
        return value
    if isinstance(value, dict) and value.get("type") == "function" and value.get("name"):
        return value
    msg = 'tool_choice must be "auto", "none", "required" or {"type": "function", "name": ...}'
    raise ToolError(ErrorCode.INVALID_VALUE, msg, param)
