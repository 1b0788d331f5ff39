"""The websocket ``Origin`` check: the same rules as Django's CSRF origin check.

Channels' ``OriginValidator`` fed with bare ``ALLOWED_HOSTS`` ignores port and scheme, so a page
on another port or scheme of an allowed host (``http://127.0.0.1:9999``, ``https://127.0.0.1``)
could open a logged-in user's socket (issue 9). Here an ``Origin`` passes only when it is

* the very origin the browser reached us at: ``scheme://<Host header>``, with that host in
  ``ALLOWED_HOSTS`` and the scheme from ``SECURE_PROXY_SSL_HEADER`` (``X-Forwarded-Proto``
  from the proxy) when configured, else from the connection; or
* listed in ``CSRF_TRUSTED_ORIGINS`` (exact, or ``https://*.example.com`` for subdomains).

That is what ``CsrfViewMiddleware`` accepts for a form POST, so a page whose login works can
open its websocket, and nothing else can. No configuration is needed for the default.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    """One request header; None when absent or repeated (a repeated Origin is not trusted)."""
    values = [value for key, value in scope.get("headers", []) if key.lower() == name]
    if len(values) != 1:
        return None
    return bytes(values[0]).decode("latin-1")


def _host_allowed(host: str) -> bool:
    """Django's ``HttpRequest.get_host`` check of a Host header against ALLOWED_HOSTS."""
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed)


def _is_secure(scope: dict[str, Any]) -> bool:
    """Django's ``HttpRequest.is_secure`` for a websocket scope."""
    if settings.SECURE_PROXY_SSL_HEADER:
        meta_name, secure_value = settings.SECURE_PROXY_SSL_HEADER
        name = meta_name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin-1")
        value = _header(scope, name)
        if value is not None:
            return value.split(",", 1)[0].strip() == secure_value
    return scope.get("scheme") in ("https", "wss")


def origin_allowed(scope: dict[str, Any]) -> bool:
    """True when the handshake's ``Origin`` may open a websocket (see the module docstring)."""
    origin = _header(scope, b"origin")
    if not origin:
        return False
    host = _header(scope, b"host")
    if host and _host_allowed(host):
        scheme = "https" if _is_secure(scope) else "http"
        if origin == f"{scheme}://{host}":
            return True
    trusted = settings.CSRF_TRUSTED_ORIGINS
    if origin in trusted:
        return True
    try:
        parsed = urlsplit(origin)
    except ValueError:
        return False
    # "https://*.example.com" entries: any subdomain, on that scheme (as CsrfViewMiddleware).
    return any(
        is_same_domain(parsed.netloc, urlsplit(entry).netloc.lstrip("*"))
        for entry in trusted
        if "*" in entry and urlsplit(entry).scheme == parsed.scheme
    )


class SameOriginValidator:
    """ASGI middleware: websocket handshakes with a foreign ``Origin`` are refused (403).

    Args:
        application: the websocket application behind the check.
    """

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        """Refuse the handshake, or pass it on."""
        if scope["type"] == "websocket" and not origin_allowed(scope):
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.application(scope, receive, send)
