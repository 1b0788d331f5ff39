"""A profile's tools as plain, frozen data for a live session (built once, off the loop)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.db.models import Q

from assistant.tools.builtin import BUILTINS
from assistant.tools.models import Tool


@dataclass(frozen=True, slots=True)
class HttpRequestSpec:
    """How an HTTP tool calls out (the secret headers stay encrypted until the call)."""

    method: str
    url_template: str
    headers: Mapping[str, str]
    secret_headers: str
    allow_private_network: bool
    max_response_bytes: int

    @property
    def host(self) -> str:
        """The literal host of the URL template (lower case)."""
        return (urlsplit(self.url_template).hostname or "").lower()


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One callable tool of a session: what the model sees and how it runs."""

    name: str
    kind: str  # builtin, http, mcp
    description: str
    parameters: Mapping[str, Any]
    requires_approval: bool = False
    interim_phrase: str = ""
    timeout_seconds: float = 8.0
    http: HttpRequestSpec | None = None
    mcp: Mapping[str, Any] = field(default_factory=dict)

    def session_tool(self) -> dict[str, Any]:
        """This tool as ``session.update`` lists it (``function`` or ``mcp``)."""
        if self.kind == "mcp":
            return dict(self.mcp)
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": dict(self.parameters) or {"type": "object", "properties": {}},
        }


def tools_for_profile(profile_id: int | None) -> list[ToolSpec]:
    """The enabled tools of a profile (synchronous ORM: call off the event loop)."""
    if profile_id is None:
        return []
    tools = Tool.objects.filter(Q(profiles=profile_id), is_enabled=True).order_by("name")
    specs = []
    for tool in tools:
        if tool.kind == Tool.Kind.BUILTIN:
            builtin = BUILTINS.get(tool.builtin)
            if builtin is None:
                continue  # a built-in removed from the code: nothing to run
            specs.append(
                ToolSpec(
                    name=builtin.name,
                    kind="builtin",
                    description=builtin.description,
                    parameters=builtin.parameters,
                    requires_approval=tool.requires_approval,
                    interim_phrase=tool.interim_phrase,
                    timeout_seconds=tool.timeout_seconds,
                )
            )
        elif tool.kind == Tool.Kind.HTTP:
            specs.append(
                ToolSpec(
                    name=tool.name,
                    kind="http",
                    description=tool.description,
                    parameters=tool.parameters,
                    requires_approval=tool.requires_approval,
                    interim_phrase=tool.interim_phrase,
                    timeout_seconds=tool.timeout_seconds,
                    http=HttpRequestSpec(
                        method=tool.http_method,
                        url_template=tool.url_template,
                        headers=dict(tool.headers),
                        secret_headers=tool.secret_headers,
                        allow_private_network=tool.allow_private_network,
                        max_response_bytes=tool.max_response_bytes,
                    ),
                )
            )
        else:
            mcp: dict[str, Any] = {
                "type": "mcp",
                "server_label": tool.name,
                "server_url": tool.mcp_server_url,
                "require_approval": tool.mcp_require_approval,
            }
            if tool.mcp_allowed_tools:
                mcp["allowed_tools"] = list(tool.mcp_allowed_tools)
            specs.append(
                ToolSpec(
                    name=tool.name,
                    kind="mcp",
                    description=tool.description,
                    parameters={},
                    mcp=mcp,
                )
            )
    return specs
