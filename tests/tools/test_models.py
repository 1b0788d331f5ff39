"""Tool configuration is validated when saved, and a profile's tools become session data."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from assistant.models import AssistantProfile
from assistant.tools.models import Tool
from assistant.tools.specs import tools_for_profile

pytestmark = pytest.mark.django_db

SCHEMA = {"type": "object", "properties": {"order_id": {"type": "string"}}}


def http_tool(**fields: Any) -> Tool:
    values = {
        "name": "order_status",
        "kind": Tool.Kind.HTTP,
        "description": "Look up an order.",
        "parameters": SCHEMA,
        "url_template": "https://api.example.com/orders/{order_id}",
    } | fields
    return Tool(**values)


def errors(tool: Tool) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        tool.full_clean()
    return caught.value.message_dict


def test_a_good_http_tool_validates() -> None:
    http_tool().full_clean()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "has space"}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"parameters": {"type": "array"}}, "parameters"),
        ({"parameters": {"type": "object", "properties": {"a": {"type": "nope"}}}}, "parameters"),
        ({"url_template": "ftp://api.example.com/x"}, "url_template"),
        ({"url_template": "https://{host}/x"}, "url_template"),
        ({"url_template": "https://user:pw@api.example.com/x"}, "url_template"),
        ({"url_template": "https://api.example.com/{missing}"}, "url_template"),
        ({"url_template": ""}, "url_template"),
        ({"description": ""}, "description"),
        ({"headers": {"Accept": 5}}, "headers"),
        ({"headers": ["Accept"]}, "headers"),
        ({"timeout_seconds": 60}, "timeout_seconds"),
    ],
)
def test_bad_http_tools_are_refused_on_the_right_field(fields: dict[str, Any], field: str) -> None:
    assert field in errors(http_tool(**fields))


def test_builtin_and_mcp_tools_need_their_fields() -> None:
    assert "builtin" in errors(Tool(name="x", kind=Tool.Kind.BUILTIN, builtin="nope"))
    mcp = Tool(name="docs", kind=Tool.Kind.MCP, mcp_allowed_tools="search")
    assert {"mcp_server_url", "mcp_allowed_tools"} <= set(errors(mcp))


def test_a_profiles_enabled_tools_become_session_tools() -> None:
    profile = AssistantProfile.objects.create(name="Support")
    Tool.objects.get(name="get_current_time").profiles.add(profile)
    Tool.objects.get(name="hand_over").profiles.add(profile)
    Tool.objects.filter(name="hand_over").update(is_enabled=False)
    order = http_tool(requires_approval=True, interim_phrase="Let me check…")
    order.save()
    order.profiles.add(profile)
    mcp = Tool.objects.create(
        name="docs",
        kind=Tool.Kind.MCP,
        mcp_server_url="https://mcp.example.com/sse",
        mcp_allowed_tools=["search"],
    )
    mcp.profiles.add(profile)
    specs = {spec.name: spec for spec in tools_for_profile(profile.pk)}
    assert set(specs) == {"get_current_time", "order_status", "docs"}
    assert specs["order_status"].requires_approval
    assert specs["order_status"].http is not None
    assert specs["order_status"].http.host == "api.example.com"
    assert specs["get_current_time"].session_tool()["type"] == "function"
    assert specs["docs"].session_tool() == {
        "type": "mcp",
        "server_label": "docs",
        "server_url": "https://mcp.example.com/sse",
        "require_approval": "always",
        "allowed_tools": ["search"],
    }
    assert tools_for_profile(None) == []
    assert tools_for_profile(AssistantProfile.objects.create(name="Bare").pk) == []
