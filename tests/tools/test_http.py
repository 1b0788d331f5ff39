"""HTTP tools against a real local server: success, errors, timeouts and the SSRF guards."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from assistant.tools.context import ToolContext
from assistant.tools.http import address_allowed, build_request
from assistant.tools.runner import run_tool
from assistant.tools.secrets import encrypt_headers
from assistant.tools.specs import HttpRequestSpec, ToolSpec
from tests.support.inprocess import served

CONTEXT = ToolContext(user_id=1, profile_id=1)
SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}, "verbose": {"type": "boolean"}},
    "required": ["order_id"],
}


@pytest.fixture
async def service() -> AsyncIterator[dict[str, Any]]:
    """A local service: orders, a slow one, a broken one, redirects, a huge answer."""
    seen: dict[str, Any] = {"headers": []}

    async def order(request: web.Request) -> web.Response:
        seen["headers"].append(dict(request.headers))
        return web.json_response(
            {"id": request.match_info["order_id"], "query": dict(request.query), "status": "sent"}
        )

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text="internal trouble")

    async def elsewhere(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    async def here(request: web.Request) -> web.Response:
        raise web.HTTPFound("/orders/moved")

    async def huge(request: web.Request) -> web.Response:
        return web.Response(text="x" * 100_000)

    async def binary(request: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG", content_type="image/png")

    app = web.Application()
    app.router.add_get("/orders/{order_id}", order)
    app.router.add_get("/slow/{order_id}", slow)
    app.router.add_get("/broken/{order_id}", broken)
    app.router.add_get("/elsewhere/{order_id}", elsewhere)
    app.router.add_get("/here/{order_id}", here)
    app.router.add_get("/huge/{order_id}", huge)
    app.router.add_get("/binary/{order_id}", binary)
    async with served(app) as base:
        seen["base"] = base
        yield seen


def tool(url: str, *, private: bool = True, timeout: float = 2.0, **http: Any) -> ToolSpec:
    spec = HttpRequestSpec(
        method=http.get("method", "GET"),
        url_template=url,
        headers=http.get("headers", {"Accept": "application/json"}),
        secret_headers=http.get("secret_headers", ""),
        allow_private_network=private,
        max_response_bytes=http.get("max_response_bytes", 65_536),
    )
    return ToolSpec(
        name="orders",
        kind="http",
        description="d",
        parameters=SCHEMA,
        timeout_seconds=timeout,
        http=spec,
    )


async def call(spec: ToolSpec, arguments: dict[str, Any]) -> tuple[str, Any]:
    result = await run_tool(spec, spec.name, json.dumps(arguments), CONTEXT)
    try:
        return result.outcome, json.loads(result.output)
    except ValueError:
        return result.outcome, result.output


async def test_a_call_fills_the_path_and_query_and_sends_secret_headers(
    service: dict[str, Any], settings: Any
) -> None:
    secret = encrypt_headers({"X-Api-Key": "s3cr3t"})
    spec = tool(service["base"] + "/orders/{order_id}", secret_headers=secret)
    outcome, answer = await call(spec, {"order_id": "A/7 ?", "verbose": True})
    assert outcome == "ok"
    assert answer == {"id": "A/7 ?", "query": {"verbose": "true"}, "status": "sent"}
    assert service["headers"][-1]["X-Api-Key"] == "s3cr3t"


async def test_loopback_is_refused_unless_the_admin_allowed_it(service: dict[str, Any]) -> None:
    outcome, answer = await call(
        tool(service["base"] + "/orders/{order_id}", private=False), {"order_id": "1"}
    )
    assert outcome == "refused"
    assert "private" in answer["error"]
    assert service["headers"] == []


async def test_the_site_allowlist_applies(service: dict[str, Any], settings: Any) -> None:
    settings.TOOLS_HTTP_ALLOWED_HOSTS = ["api.example.com"]
    outcome, answer = await call(tool(service["base"] + "/orders/{order_id}"), {"order_id": "1"})
    assert (outcome, answer) == ("refused", {"error": "this host is not allowed"})


async def test_redirects_stay_on_the_same_host(service: dict[str, Any]) -> None:
    outcome, answer = await call(tool(service["base"] + "/elsewhere/{order_id}"), {"order_id": "1"})
    assert outcome == "refused"
    assert "another host" in answer["error"]
    outcome, answer = await call(tool(service["base"] + "/here/{order_id}"), {"order_id": "1"})
    assert (outcome, answer["id"]) == ("ok", "moved")


async def test_errors_timeouts_and_bad_answers_become_outputs_the_model_can_explain(
    service: dict[str, Any],
) -> None:
    base = service["base"]
    outcome, answer = await call(tool(base + "/broken/{order_id}"), {"order_id": "1"})
    assert (outcome, answer) == ("error", {"error": "HTTP 500", "body": "internal trouble"})
    outcome, answer = await call(tool(base + "/slow/{order_id}", timeout=0.5), {"order_id": "1"})
    assert (outcome, answer) == ("timeout", {"error": "the tool did not answer in time"})
    outcome, answer = await call(
        tool(base + "/huge/{order_id}", max_response_bytes=1000), {"order_id": "1"}
    )
    assert (outcome, answer) == ("error", {"error": "the answer was too large"})
    outcome, answer = await call(tool(base + "/binary/{order_id}"), {"order_id": "1"})
    assert outcome == "error"
    assert "unsupported" in answer["error"]
    outcome, answer = await call(tool("http://127.0.0.1:9/orders/{order_id}"), {"order_id": "1"})
    assert outcome == "error"


async def test_bad_arguments_never_reach_the_service(service: dict[str, Any]) -> None:
    spec = tool(service["base"] + "/orders/{order_id}")
    for raw in ["not json", "[1, 2]", json.dumps({"verbose": True}), json.dumps({"order_id": 5})]:
        result = await run_tool(spec, "orders", raw, CONTEXT)
        assert result.outcome == "invalid_arguments", raw
    assert service["headers"] == []


async def test_an_unreadable_secret_is_an_error_not_a_leak(
    service: dict[str, Any], settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    secret = encrypt_headers({"X-Api-Key": "s3cr3t", "X-Other": "env:TOOL_SECRET_NOT_SET_42"})
    spec = tool(service["base"] + "/orders/{order_id}", secret_headers=secret)
    with caplog.at_level("INFO"):
        outcome, answer = await call(spec, {"order_id": "1"})
    assert (outcome, answer) == ("error", {"error": "the tool is misconfigured"})
    assert "TOOL_SECRET_NOT_SET_42" in caplog.text  # the operator learns which variable
    settings.TOOLS_SECRET_KEY = "rotated"  # the stored secret can no longer be read
    outcome, answer = await call(spec, {"order_id": "1"})
    assert (outcome, answer) == ("error", {"error": "the tool is misconfigured"})
    assert "s3cr3t" not in caplog.text
    assert service["headers"] == []


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("100.64.0.1", False),
    ],
)
def test_only_public_addresses_by_default(address: str, allowed: bool) -> None:
    assert address_allowed(address, allow_private=False) is allowed


#: IPv6 addresses that carry an IPv4 one: 6to4 (2002:AABB:CCDD::), Teredo (2001:0:server:
#: flags:port:client, the client's address inverted) and NAT64 (well-known 64:ff9b::/96 and
#: local-use 64:ff9b:1::/48, the IPv4 address in the last 32 bits).
EMBEDDED = [
    ("2002:0a01:0203::1", False),  # 6to4 of 10.1.2.3
    ("2002:7f00:0001::1", False),  # 127.0.0.1
    ("2002:a9fe:a9fe::1", False),  # 169.254.169.254
    ("2002:c0a8:0101:1::5", False),  # 192.168.1.1
    ("2002:6440:0001::1", False),  # 100.64.0.1 (shared address space)
    ("2002::1", False),  # 0.0.0.0
    ("2002:5db8:d70e::1", True),  # 93.184.215.14: a public host, reached through 6to4
    ("2001:0:4136:e378:8000:63bf:f5fe:fdfc", False),  # Teredo, client 10.1.2.3
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", False),  # Teredo, client 127.0.0.1
    ("2001:0:4136:e378:8000:63bf:a245:28f1", False),  # Teredo, client 93.186.215.14: obsolete
    ("64:ff9b::a01:203", False),  # NAT64 of 10.1.2.3
    ("64:ff9b::7f00:1", False),  # 127.0.0.1
    ("64:ff9b::a9fe:a9fe", False),  # 169.254.169.254
    ("64:ff9b::c0a8:101", False),  # 192.168.1.1
    ("64:ff9b::5db8:d70e", True),  # 93.184.215.14: how IPv6-only networks reach IPv4 services
    ("64:ff9b:1::a01:203", False),  # local-use NAT64: a private network's translator
    ("64:ff9b:1::5db8:d70e", False),
    ("::ffff:a9fe:a9fe", False),  # IPv4-mapped 169.254.169.254
]


@pytest.mark.parametrize(("address", "allowed"), EMBEDDED)
def test_ipv6_addresses_carrying_an_ipv4_one_are_judged_by_it(address: str, allowed: bool) -> None:
    assert address_allowed(address, allow_private=False) is allowed


def test_a_tool_the_admin_allowed_a_private_address_may_reach_them() -> None:
    assert address_allowed("2002:0a01:0203::1", allow_private=True)
    assert address_allowed("64:ff9b::a01:203", allow_private=True)
    assert address_allowed("2001:0:4136:e378:8000:63bf:f5fe:fdfc", allow_private=True)
    assert not address_allowed("2002:e000:0001::1", allow_private=True)  # 224.0.0.1 multicast


@pytest.mark.parametrize(
    "host", [address for address, allowed in EMBEDDED if not allowed and "::ffff" not in address]
)
async def test_an_ipv6_literal_carrying_a_private_ipv4_is_refused_before_connecting(
    host: str,
) -> None:
    """aiohttp connects to a literal without the resolver: the literal is checked first."""
    outcome, answer = await call(
        tool(f"http://[{host}]:8080/orders/{{order_id}}", private=False), {"order_id": "1"}
    )
    assert (outcome, answer) == ("refused", {"error": f"{host} is a private or reserved address"})


def test_placeholders_are_encoded_and_the_rest_goes_in_the_body_or_query() -> None:
    spec = tool("https://api.example.com/orders/{order_id}", method="POST").http
    assert spec is not None
    url, body, query = build_request(spec, {"order_id": "../admin", "note": "hi"})
    assert url == "https://api.example.com/orders/..%2Fadmin"
    assert (body, query) == ({"note": "hi"}, None)
