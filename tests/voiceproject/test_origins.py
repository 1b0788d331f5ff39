"""Which websocket Origins are the page's own: the rules of Django's CSRF check (issue 9).

The real-server version is tests/hardening/test_redteam.py; this pins each rule down one
case at a time.
"""

from __future__ import annotations

from typing import Any

import pytest

from voiceproject.origins import origin_allowed


def scope(origin: str | None, host: str = "127.0.0.1:8000", **headers: str) -> dict[str, Any]:
    raw = [(b"host", host.encode())]
    if origin is not None:
        raw.append((b"origin", origin.encode()))
    raw += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return {"type": "websocket", "headers": raw}


@pytest.fixture
def default_settings(settings: Any) -> Any:
    settings.DEBUG = True
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]
    settings.CSRF_TRUSTED_ORIGINS = []
    settings.SECURE_PROXY_SSL_HEADER = None
    return settings


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://127.0.0.1:8000", True),
        ("http://127.0.0.1:9999", False),  # another port of an allowed host
        ("https://127.0.0.1:8000", False),  # another scheme
        ("https://127.0.0.1", False),
        ("http://127.0.0.1", False),
        ("http://localhost:8000", False),  # allowed host, but not the page's
        ("null", False),
        ("", False),
        (None, False),
    ],
)
def test_default_is_exactly_the_pages_own_origin(
    default_settings: Any, origin: str | None, allowed: bool
) -> None:
    assert origin_allowed(scope(origin)) is allowed


def test_a_host_we_do_not_serve_is_never_same_origin(default_settings: Any) -> None:
    assert not origin_allowed(scope("http://evil.example:8000", host="evil.example:8000"))


def test_a_repeated_origin_header_is_refused(default_settings: Any) -> None:
    twice = scope("http://127.0.0.1:8000")
    twice["headers"].append((b"origin", b"http://127.0.0.1:8000"))
    assert not origin_allowed(twice)


def test_behind_a_proxy_the_scheme_comes_from_x_forwarded_proto(default_settings: Any) -> None:
    default_settings.ALLOWED_HOSTS = ["voice.example.com"]
    default_settings.DEBUG = False
    host = "voice.example.com"
    # Without SECURE_PROXY_SSL_HEADER the header is not trusted: the connection is plain ws.
    assert not origin_allowed(scope("https://voice.example.com", host, x_forwarded_proto="https"))
    default_settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert origin_allowed(scope("https://voice.example.com", host, x_forwarded_proto="https"))
    assert not origin_allowed(scope("http://voice.example.com", host, x_forwarded_proto="https"))
    assert origin_allowed(scope("http://voice.example.com", host, x_forwarded_proto="http"))


def test_trusted_origins_exact_and_wildcard(default_settings: Any) -> None:
    default_settings.CSRF_TRUSTED_ORIGINS = ["https://voice.example.com", "https://*.example.org"]
    assert origin_allowed(scope("https://voice.example.com"))
    assert not origin_allowed(scope("https://voice.example.com:8443"))
    assert origin_allowed(scope("https://a.example.org"))
    assert not origin_allowed(scope("http://a.example.org"))
    assert not origin_allowed(scope("https://example.org.evil.com"))
