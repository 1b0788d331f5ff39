"""The ``tools`` a session offers: their validation."""

from __future__ import annotations

import pytest

from localvoice.protocol.tools import ToolError, validate_tools


def test_tool_validation():
    with pytest.raises(ToolError):
        validate_tools([{"type": "function", "name": "x", "parameters": {"type": 5}}], "tools")
    with pytest.raises(ToolError):
        validate_tools("nope", "tools")
    tools = [{"type": "function", "name": "x", "parameters": {"type": "object"}}]
    assert validate_tools(tools, "tools") == tools
