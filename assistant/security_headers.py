"""Content-Security-Policy and Permissions-Policy on every response (defence in depth).

The pages are plain ES modules and stylesheets from ``static/``: no inline script, no inline
style, so the policy allows scripts and styles from our own origin only. The Django admin is
the one exception for styles: its change list writes an inline ``<style>`` block (and its
widgets' markup may carry ``style`` attributes), so under ``/admin/`` styles may be inline;
its scripts are files with ``data-`` attributes, so scripts stay ``'self'`` there as well.

Permissions-Policy: the microphone only for the talk page (``assistant:talk``), on our own
origin; every other page, the monitor included, gets no microphone, camera or the like.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import sync_and_async_middleware

#: The policy of the service's own pages.
CSP = {
    "default-src": "'self'",
    "script-src": "'self'",  # ES modules and AudioWorklet modules, files only
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",  # plus this host's ws(s):// origin, added per request
    "media-src": "'self'",
    "worker-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
#: The Django admin writes some inline styles (never inline scripts).
ADMIN_CSP = CSP | {"style-src": "'self' 'unsafe-inline'"}

#: Browser features nobody here needs; the microphone is added for the talk page.
DENIED_FEATURES = (
    "camera",
    "geolocation",
    "payment",
    "usb",
    "serial",
    "midi",
    "display-capture",
)
MICROPHONE_VIEWS = frozenset({"assistant:talk"})


def content_security_policy(request: HttpRequest) -> str:
    """The Content-Security-Policy header value for ``request``."""
    admin = request.path.startswith("/admin/")
    policy = dict(ADMIN_CSP if admin else CSP)
    # 'self' covers same-origin websockets in CSP Level 3 browsers; older ones need the
    # scheme spelled out. The Host header was validated against ALLOWED_HOSTS by now.
    scheme = "wss" if request.is_secure() else "ws"
    policy["connect-src"] += f" {scheme}://{request.get_host()}"
    return "; ".join(f"{name} {value}" for name, value in policy.items())


def permissions_policy(request: HttpRequest) -> str:
    """The Permissions-Policy header value for ``request``."""
    match = request.resolver_match
    microphone = "(self)" if match is not None and match.view_name in MICROPHONE_VIEWS else "()"
    return ", ".join([f"microphone={microphone}", *(f"{name}=()" for name in DENIED_FEATURES)])


def add_security_headers(request: HttpRequest, response: HttpResponse) -> None:
    """Set both headers on ``response`` (a view's own values win).

    ``SECURITY_CSP_REPORT_ONLY`` sends the policy as ``-Report-Only`` (to trial a change).
    """
    header = "Content-Security-Policy"
    if getattr(settings, "SECURITY_CSP_REPORT_ONLY", False):
        header += "-Report-Only"
    try:
        csp = content_security_policy(request)
    except DisallowedHost:
        # Already answered with 400; no connect-src for a host we do not serve.
        csp = "; ".join(f"{name} {value}" for name, value in CSP.items())
    response.headers.setdefault(header, csp)
    response.headers.setdefault("Permissions-Policy", permissions_policy(request))


@sync_and_async_middleware
def security_headers_middleware(get_response: Any) -> Any:
    """Middleware adding Content-Security-Policy and Permissions-Policy (sync and async)."""
    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> HttpResponse:
            response = await get_response(request)
            add_security_headers(request, response)
            return response

        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        add_security_headers(request, response)
        return response

    return middleware
