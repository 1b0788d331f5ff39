"""HTTP tools' requests, guarded against server-side request forgery.

- Only ``TOOLS_HTTP_ALLOWED_HOSTS`` when that list is set.
- Every address the host resolves to must be public, unless the admin allowed this tool a
  private one; the connection then goes to exactly the checked addresses (no second lookup
  that DNS rebinding could answer differently).
- Redirects are followed only within the same scheme, host and port (at most three).
- The response is read up to the tool's byte cap; bigger ones are refused.
- Every secret header value sent is redacted from what the service answers (``redact.py``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from django.conf import settings

from assistant.tools.context import ToolResult
from assistant.tools.models import PLACEHOLDER_RE
from assistant.tools.redact import Redactor
from assistant.tools.secrets import SecretUnavailable, decrypt_headers
from assistant.tools.specs import HttpRequestSpec

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 3
ERROR_BODY_CHARS = 500
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/problem+json")


class Refused(Exception):
    """The request may not be made (its host or address is not allowed)."""


#: NAT64's well-known prefix (RFC 6052): the IPv4 address is the last 32 bits.
NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
#: NAT64's local-use prefix (RFC 8215): where the IPv4 address sits depends on the prefix
#: length its operator chose, and it is never globally reachable: a private address.
NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, 6to4 or well-known NAT64 address reaches."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _unicast(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (ip.is_multicast or ip.is_unspecified or ip.is_reserved)


def address_allowed(address: str, *, allow_private: bool) -> bool:
    """Public unicast addresses only, unless private ones are explicitly allowed.

    An IPv6 address that carries an IPv4 one (IPv4-mapped, 6to4, well-known NAT64) is judged
    by that IPv4 address: 6to4 or NAT64 with a public one passes (IPv6-only networks reach
    IPv4 services that way), with a private one it is private. Teredo (tunnels to hosts
    behind NATs, obsolete) and NAT64's local-use prefix count as private.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.teredo is not None:
            return allow_private and all(_unicast(embedded) for embedded in ip.teredo)
        if ip in NAT64_LOCAL_USE:
            return allow_private and _unicast(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        ip = _embedded_ipv4(ip) or ip
    if not _unicast(ip):
        return False
    return ip.is_global or allow_private


class CheckedResolver(AbstractResolver):
    """Resolves with the system, then refuses any address the tool may not reach."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The host's addresses, all checked: one refused address refuses the host."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        results: list[ResolveResult] = []
        for fam, _, proto, _, sockaddr in infos:
            address = str(sockaddr[0])
            if not address_allowed(address, allow_private=self.allow_private):
                msg = f"{host} resolves to a private or reserved address"
                raise Refused(msg)
            results.append(
                ResolveResult(
                    hostname=host,
                    host=address,
                    port=int(sockaddr[1]),
                    family=fam,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST,
                )
            )
        if not results:
            msg = f"{host} does not resolve"
            raise Refused(msg)
        return results

    async def close(self) -> None:
        """Nothing to release."""


def build_request(
    spec: HttpRequestSpec, arguments: Mapping[str, Any]
) -> tuple[str, dict[str, Any] | None, dict[str, str] | None]:
    """(url, JSON body, query) from the template and the call's arguments.

    Placeholders take their arguments (percent-encoded, slashes too); the other arguments go
    in the query (GET, DELETE) or the JSON body (POST, PUT, PATCH).
    """
    used = set(PLACEHOLDER_RE.findall(spec.url_template))
    url = PLACEHOLDER_RE.sub(
        lambda m: quote(str(arguments.get(m[1], "")), safe=""), spec.url_template
    )
    rest = {key: value for key, value in arguments.items() if key not in used}
    if spec.method in {"GET", "DELETE"}:
        query = {
            key: value if isinstance(value, str) else json.dumps(value)
            for key, value in rest.items()
        }
        return url, None, query or None
    return url, rest, None


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def host_allowed(host: str) -> bool:
    """Whether the site's allowlist (when set) names ``host``."""
    allowed = settings.TOOLS_HTTP_ALLOWED_HOSTS
    return not allowed or host.lower() in allowed


async def http_call(spec: HttpRequestSpec, arguments: Mapping[str, Any]) -> ToolResult:
    """Make the tool's request; every failure becomes a result the model can explain.

    Whatever the service answers leaves with the secret header values it was sent redacted,
    so no echo of them reaches the model, the page, monitors, history or logs.
    """
    if not host_allowed(spec.host):
        return ToolResult(json.dumps({"error": "this host is not allowed"}), outcome="refused")
    try:
        secret = decrypt_headers(spec.secret_headers)
    except SecretUnavailable as exc:
        # Nothing is sent: not the request without the header, nor the other headers.
        logger.error("HTTP tool for %s is misconfigured: %s", spec.host, exc)  # the operator's
        return ToolResult(json.dumps({"error": "the tool is misconfigured"}), outcome="error")
    if _is_ip_literal(spec.host) and not address_allowed(
        spec.host, allow_private=spec.allow_private_network
    ):
        # aiohttp connects to an address literal without asking the resolver.
        return ToolResult(
            json.dumps({"error": f"{spec.host} is a private or reserved address"}),
            outcome="refused",
        )
    url, body, query = build_request(spec, arguments)
    headers = {**spec.headers, **secret}
    connector = aiohttp.TCPConnector(
        resolver=CheckedResolver(allow_private=spec.allow_private_network),
        use_dns_cache=False,
        limit=1,
    )
    try:
        # The runner bounds the whole call in time (the tool's timeout).
        async with aiohttp.ClientSession(connector=connector) as session:
            return await _follow(
                session, spec, url, headers, body, query, Redactor(secret.values())
            )
    except Refused as exc:
        return ToolResult(json.dumps({"error": str(exc)}), outcome="refused")
    except TimeoutError:
        return ToolResult(
            json.dumps({"error": "the service did not answer in time"}), outcome="timeout"
        )
    except Exception as exc:
        # Only the class: a message could quote a header or the URL (the runner would log the
        # traceback with it).
        logger.warning("HTTP tool for %s: the request failed (%s)", spec.host, type(exc).__name__)
        return ToolResult(
            json.dumps({"error": f"the request failed ({type(exc).__name__})"}), outcome="error"
        )


async def _follow(
    session: aiohttp.ClientSession,
    spec: HttpRequestSpec,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any] | None,
    query: dict[str, str] | None,
    redact: Redactor,
) -> ToolResult:
    origin = urlsplit(url)[:2]
    method = spec.method
    for _ in range(MAX_REDIRECTS + 1):
        async with session.request(
            method, url, headers=headers, json=body, params=query, allow_redirects=False
        ) as response:
            if response.status in {301, 302, 303, 307, 308} and "Location" in response.headers:
                target = urljoin(url, response.headers["Location"])
                if urlsplit(target)[:2] != origin:
                    msg = "the service redirected to another host"
                    raise Refused(msg)
                url, query = target, None
                if response.status == 303 or (response.status in {301, 302} and method == "POST"):
                    method, body = "GET", None
                continue
            raw = await response.content.read(spec.max_response_bytes + 1)
            if len(raw) > spec.max_response_bytes:
                return ToolResult(
                    json.dumps({"error": "the answer was too large"}), outcome="error"
                )
            # Everything the service wrote is redacted as it comes in: before an error body is
            # cut short (a cut could leave half a secret behind) and before any of it is used.
            content_type = redact(response.headers.get("Content-Type", ""))
            text = redact(_decode(raw, response.charset))
            if response.status >= 400:
                return ToolResult(
                    json.dumps(
                        {"error": f"HTTP {response.status}", "body": text[:ERROR_BODY_CHARS]}
                    ),
                    outcome="error",
                )
            if text and not content_type.startswith(TEXT_TYPES):
                return ToolResult(
                    json.dumps({"error": f"unsupported answer ({content_type})"}), outcome="error"
                )
            return ToolResult(text or json.dumps({"status": response.status}))
    msg = "too many redirects"
    raise Refused(msg)


def _decode(raw: bytes, charset: str | None) -> str:
    try:
        return raw.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return raw.decode("utf-8", errors="replace")
